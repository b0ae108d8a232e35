/** Execution-environment lifecycle: idle shutdown and a fresh Init after it. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { startServer, type TestServer } from "./helpers/server.js";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ idleTimeoutSeconds: 1, prewarm: 0 });
  await server.deploy("idle", "node-cjs");
});
afterAll(async () => {
  await server?.stop();
});

describe("idle shutdown", () => {
  it("stops an environment idle for --idle-timeout; the next invoke runs Init again", async () => {
    const first = await invoke(server.lambda, "idle", {}, { LogType: "Tail" });
    expect(first.json).toMatchObject({ counter: 1 });
    expect(first.log).toContain("Init Duration");
    const [env] = server.platform.worker.environmentsOf("idle");
    expect(env).toBeDefined();
    await new Promise<void>((resolve) => env?.onDead(resolve));
    expect(server.platform.worker.environmentsOf("idle")).toHaveLength(0);
    const again = await invoke(server.lambda, "idle", {}, { LogType: "Tail" });
    expect(again.json).toMatchObject({ counter: 1 });
    expect(again.log).toContain("Init Duration");
  });
});
