/**
 * Attacks on the function URL front door. Each must keep failing:
 * - a request addressed to a URL (by Host) is never an API request, whatever its path and signature;
 * - a URL id that does not exist, or a caller not allowed, answers the same 403 (nothing to probe);
 * - through its environment's own channel, a function cannot present the development key (or any key
 *   but its own session's) to an AWS_IAM URL, as for the API (isolated bwrap sandboxes).
 */

import { request } from "node:http";
import { fileURLToPath } from "node:url";
import {
  CreateFunctionCommand,
  CreateFunctionUrlConfigCommand,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../../src/auth/sigv4.js";
import { detectSandboxDriver } from "../../src/sandbox/index.js";
import { ROLE, startServer, type TestServer } from "../helpers/server.js";
import { signedFetch } from "../helpers/signed.js";
import { zipEntries } from "../helpers/zip.js";

/** A raw request with a Host header of our choosing (fetch does not let one set Host). */
function withHost(
  url: string,
  host: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      { host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, headers: { ...headers, host } },
      (res) => {
        let body = "";
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("the function URL front door", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("a URL host with an API path and a valid root signature is never an API request", async () => {
    const host = `${"b".repeat(32)}.lambda-url.us-east-1.localhost`;
    const url = `${server.url}/2015-03-31/functions/`;
    const signed = signRequest({
      method: "GET",
      url: new URL(`http://${host}/2015-03-31/functions/`),
      headers: {},
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    const res = await withHost(url, host, signed);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toEqual({ Message: "Forbidden" });
    expect(res.body).not.toContain("Functions");
    // The same request without the URL host is the API's ListFunctions.
    expect((await signedFetch(url)).status).toBe(200);
  });

  it("an unknown URL id, a malformed one and a forbidden caller all answer the same 403", async () => {
    for (const path of [`/_lambent/urls/${"c".repeat(32)}/`, "/_lambent/urls/../../2015-03-31/functions/"]) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
    const unknown = await fetch(`${server.url}/_lambent/urls/${"c".repeat(32)}/`);
    expect(await unknown.json()).toEqual({ Message: "Forbidden" });
  });
});

const bwrapUsable = (await detectSandboxDriver("auto", {
  runDir: "/tmp",
  network: "isolated",
  adoptableRoots: [],
}).then(
  (d) => d.driver.name === "bwrap",
  () => false,
)) as boolean;

// Inside the function: sign a request to the URL's path form with the given credentials and send it
// through the environment's own API endpoint.
const PROBE = `
const { signRequest } = require("./src/auth/sigv4.ts");
exports.handler = async (event) => {
  const url = process.env.AWS_ENDPOINT_URL_LAMBDA + event.path;
  const credentials = event.dev
    ? { accessKeyId: "test", secretAccessKey: "test" }
    : { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
        sessionToken: process.env.AWS_SESSION_TOKEN };
  const headers = signRequest({ method: "GET", url: new URL(url), headers: {}, region: "us-east-1", credentials });
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.text() };
};
`;

describe.skipIf(!bwrapUsable)("a function inside an isolated bwrap sandbox", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ sandbox: "bwrap" });
    const out = await build({
      stdin: { contents: PROBE, resolveDir: fileURLToPath(new URL("../..", import.meta.url)), loader: "js" },
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node20",
      write: false,
      logLevel: "silent",
    });
    const role = "arn:aws:iam::000000000000:role/url-caller";
    const res = await signedFetch(`${server.url}/_lambent/roles/url-caller`, {
      method: "PUT",
      body: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Action: ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"], Resource: "*" },
        ],
      }),
    });
    expect(res.status).toBe(200);
    for (const [name, code, r] of [
      ["probe", await zipEntries([{ name: "index.js", content: out.outputFiles[0]?.text ?? "" }]), role],
      [
        "target",
        await zipEntries([{ name: "index.js", content: 'exports.handler = async () => "reached";' }]),
        ROLE,
      ],
    ] as const) {
      await server.lambda.send(
        new CreateFunctionCommand({
          FunctionName: name,
          Runtime: "nodejs20.x",
          Handler: "index.handler",
          Role: r,
          Timeout: 30,
          Code: { ZipFile: code },
        }),
      );
      await waitUntilFunctionActiveV2(
        { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
        { FunctionName: name },
      );
    }
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("cannot present the development key to an AWS_IAM URL through its channel; its own session may", async () => {
    const created = await server.lambda.send(
      new CreateFunctionUrlConfigCommand({ FunctionName: "target", AuthType: "AWS_IAM" }),
    );
    const id = new URL(created.FunctionUrl as string).hostname.split(".")[0];
    const probe = async (dev: boolean) => {
      const out = await server.lambda.send(
        new (await import("@aws-sdk/client-lambda")).InvokeCommand({
          FunctionName: "probe",
          Payload: Buffer.from(JSON.stringify({ path: `/_lambent/urls/${id}/`, dev })),
        }),
      );
      expect(out.FunctionError).toBeUndefined();
      return JSON.parse(Buffer.from(out.Payload as Uint8Array).toString()) as {
        status: number;
        body: string;
      };
    };
    const dev = await probe(true);
    expect(dev.status).toBe(403);
    expect(dev.body).not.toContain("reached");
    const own = await probe(false);
    expect(own).toEqual({ status: 200, body: '"reached"' });
  });
});
