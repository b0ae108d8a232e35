import { describe, expect, it } from "vitest";
import { MAX_SKEW_S, signNodeRequest, verifyNodeRequest } from "./node-auth.js";

const SECRET = "a-cluster-secret-of-some-length";
const body = Buffer.from("event");
const now = Date.UTC(2026, 11, 1, 12, 0, 0);

describe("node request signatures", () => {
  it("accept a request signed with the secret for this method, path and body", () => {
    const h = signNodeRequest(SECRET, "POST", "/invoke", body, now);
    expect(verifyNodeRequest(SECRET, h, "POST", "/invoke", body, now)).toBe(true);
  });

  it("refuse another secret, path, method or body, and a missing or malformed header", () => {
    const h = signNodeRequest(SECRET, "POST", "/invoke", body, now);
    expect(verifyNodeRequest("another-secret-entirely", h, "POST", "/invoke", body, now)).toBe(false);
    expect(verifyNodeRequest(SECRET, h, "POST", "/retire", body, now)).toBe(false);
    expect(verifyNodeRequest(SECRET, h, "GET", "/invoke", body, now)).toBe(false);
    expect(verifyNodeRequest(SECRET, h, "POST", "/invoke", Buffer.from("other"), now)).toBe(false);
    expect(verifyNodeRequest(SECRET, undefined, "POST", "/invoke", body, now)).toBe(false);
    expect(verifyNodeRequest(SECRET, "123.abc", "POST", "/invoke", body, now)).toBe(false);
  });

  it("refuse a signature made too long ago or too far ahead", () => {
    const old = signNodeRequest(SECRET, "POST", "/invoke", body, now - (MAX_SKEW_S + 2) * 1000);
    const ahead = signNodeRequest(SECRET, "POST", "/invoke", body, now + (MAX_SKEW_S + 2) * 1000);
    expect(verifyNodeRequest(SECRET, old, "POST", "/invoke", body, now)).toBe(false);
    expect(verifyNodeRequest(SECRET, ahead, "POST", "/invoke", body, now)).toBe(false);
  });
});
