/**
 * Attack: output floods. A function writing tens of MB without newlines (or 1 MB lines) used to
 * stall the server's event loop (O(n²) rescans) and fill the store. Now a line is split at 256 KB,
 * an invoke stores at most its output budget (one marker line says what was dropped), reading
 * pauses when the function's rate is spent, and a bystander function keeps being served.
 * Outcomes only — no timing assertions (the speed goal is bench/'s "log flood" scenario).
 */
import { CreateFunctionCommand, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../src/config.js";
import { invoke } from "../helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "../helpers/server.js";
import { zipEntries } from "../helpers/zip.js";

const MB = 1024 * 1024;
const BUDGET = 2 * MB;
let server: TestServer;

beforeAll(async () => {
  server = await startServer({
    sandbox: "bwrap",
    prewarm: 0,
    // A small per-invoke budget; a rate high enough that the 50 MB flood is read within its timeout.
    limits: { ...DEFAULT_LIMITS, logInvokeBytes: BUDGET, logBytesPerSecond: 64 * MB, logBurstBytes: 64 * MB },
  });
});
afterAll(async () => {
  await server?.stop();
});

async function fn(name: string, code: string, timeout = 60): Promise<void> {
  await server.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      MemorySize: 512,
      Timeout: timeout,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: code }]) },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
    { FunctionName: name },
  );
}

async function storedEvents(name: string): Promise<Array<{ message: string }>> {
  await server.platform.logs.flush();
  return server.platform.store.db
    .selectFrom("log_events")
    .select("message")
    .where("group_name", "=", `/aws/lambda/${name}`)
    .orderBy("id")
    .execute();
}

describe("log flood", () => {
  it("50 MB without a newline: the bystander is served, lines are ≤ 256 KB, the invoke stores ≤ its budget", async () => {
    await fn(
      "flood",
      `const write = (s) => new Promise((done) => process.stdout.write(s, done));
       exports.handler = async (e) => { if (e.quiet) return "quiet"; const chunk = "x".repeat(64 * 1024); for (let i = 0; i < 800; i++) await write(chunk); return "flooded"; };`,
    );
    await fn("bystander", `exports.handler = async () => "ok";`);
    expect((await invoke(server.lambda, "bystander")).json).toBe("ok");
    const flood = invoke(server.lambda, "flood");
    let done = false;
    void flood.finally(() => {
      done = true;
    });
    // While the flood runs, the bystander's invokes keep completing.
    let served = 0;
    while (!done || served < 5) {
      expect((await invoke(server.lambda, "bystander")).json).toBe("ok");
      served++;
    }
    expect((await flood).json).toBe("flooded");
    // The next invoke starts a new window: the marker says what the flood's window dropped.
    expect((await invoke(server.lambda, "flood", { quiet: true })).json).toBe("quiet");
    const events = await storedEvents("flood");
    const bytes = events.reduce((n, e) => n + Buffer.byteLength(e.message), 0);
    for (const e of events)
      expect(Buffer.byteLength(e.message)).toBeLessThanOrEqual(DEFAULT_LIMITS.logLineBytes);
    // Two windows' budgets at most (what drains after the answer counts in the next), plus the
    // START / END / REPORT lines and the marker.
    expect(bytes).toBeLessThanOrEqual(2 * BUDGET + 4096);
    expect(events.filter((e) => e.message.length === DEFAULT_LIMITS.logLineBytes).length).toBeGreaterThan(0);
    expect(events.some((e) => /^\[lambent\] \d+ log line\(s\), \d+ bytes, dropped/.test(e.message))).toBe(
      true,
    );
  });

  it("1 MB and 512 KB lines become 256 KB events, in order, nothing lost within the budget", async () => {
    await fn(
      "big-lines",
      `const write = (s) => new Promise((done) => process.stdout.write(s, done));
       exports.handler = async (e) => { if (!e.quiet) { await write("a".repeat(1024 * 1024) + "\\n"); await write("b".repeat(512 * 1024) + "\\n"); } return "done"; };`,
    );
    expect((await invoke(server.lambda, "big-lines")).json).toBe("done");
    // The last bytes still in the pipe when the runtime answered may arrive with the next invoke.
    expect((await invoke(server.lambda, "big-lines", { quiet: true })).json).toBe("done");
    const big = (await storedEvents("big-lines")).filter((e) => /^[ab]+$/.test(e.message));
    expect(big.map((e) => `${e.message[0]}${e.message.length}`)).toEqual([
      ...Array(4).fill(`a${256 * 1024}`),
      ...Array(2).fill(`b${256 * 1024}`),
    ]);
  });

  it("a flood left running after the answer is still bounded and the environment serves the next invoke", async () => {
    await fn(
      "background-flood",
      `exports.handler = async (e) => { if (e.flood) setImmediate(() => { const c = "y".repeat(65536); for (let i = 0; i < 200; i++) process.stderr.write(c); }); return "ok"; };`,
    );
    expect((await invoke(server.lambda, "background-flood", { flood: true })).json).toBe("ok");
    expect((await invoke(server.lambda, "background-flood")).json).toBe("ok");
    const events = await storedEvents("background-flood");
    const bytes = events.reduce((n, e) => n + Buffer.byteLength(e.message), 0);
    expect(bytes).toBeLessThanOrEqual(2 * BUDGET + 8192);
  });
});
