/**
 * Memory truth in REPORT: `Max Memory Used` is the environment's real peak (within 10% of what the
 * handler's own process measures as its peak RSS, a stem cell's pre-assignment memory included), an
 * out-of-memory kill reports what it reached, and a provisioned environment's first REPORT carries no
 * Init Duration (Lambda prints none for provisioned environments).
 */
import {
  CreateFunctionCommand,
  GetProvisionedConcurrencyConfigCommand,
  PublishVersionCommand,
  PutProvisionedConcurrencyConfigCommand,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

/** Allocates `mb` MB it keeps touching, then answers with its process's VmHWM (peak RSS) in MB. */
const ALLOCATE = `const fs = require("node:fs");
let keep = [];
exports.handler = async (e) => {
  for (let i = 0; i < (e.mb ?? 0); i++) keep.push(Buffer.alloc(1024 * 1024, 1));
  const hwm = Number(/^VmHWM:\\s+(\\d+) kB$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))[1]);
  return { hwmMb: hwm / 1024, held: keep.length };
};`;

async function create(s: TestServer, name: string, memory: number, extra: { Publish?: boolean } = {}) {
  await s.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs22.x",
      Handler: "index.handler",
      Role: ROLE,
      MemorySize: memory,
      Timeout: 30,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: ALLOCATE }]) },
      ...extra,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: s.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
    { FunctionName: name },
  );
}

const maxUsed = (log: string | undefined) => Number(/\tMax Memory Used: (\d+) MB/.exec(log ?? "")?.[1]);

for (const sandbox of ["bwrap", "process"] as const) {
  describe(`Max Memory Used (${sandbox} driver)`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startServer({ sandbox, prewarm: 1 });
    });
    afterAll(async () => {
      await server?.stop();
    });

    it("is within 10% of the handler's own peak RSS, from a stem cell's cold start on", async () => {
      const stems = server.platform.worker.stemCells;
      await stems.whenReady("nodejs22.x");
      const taken = stems.stats.taken;
      await create(server, `mem-${sandbox}`, 512);
      const r = await invoke(server.lambda, `mem-${sandbox}`, { mb: 60 }, { LogType: "Tail" });
      expect(stems.stats.taken).toBe(taken + 1);
      const { hwmMb, held } = r.json as { hwmMb: number; held: number };
      expect(held).toBe(60);
      expect(hwmMb).toBeGreaterThan(60);
      const reported = maxUsed(r.log);
      expect(Math.abs(reported - hwmMb) / hwmMb).toBeLessThan(0.1);
      // The environment's peak, as on Lambda: a later invoke that allocates nothing reports no less.
      const again = await invoke(server.lambda, `mem-${sandbox}`, {}, { LogType: "Tail" });
      expect(maxUsed(again.log)).toBeGreaterThanOrEqual(reported);
    });

    it("a provisioned environment's first REPORT has no Init Duration", async () => {
      const name = `prov-${sandbox}`;
      await create(server, name, 256);
      const published = await server.lambda.send(new PublishVersionCommand({ FunctionName: name }));
      await server.lambda.send(
        new PutProvisionedConcurrencyConfigCommand({
          FunctionName: name,
          Qualifier: published.Version,
          ProvisionedConcurrentExecutions: 1,
        }),
      );
      for (;;) {
        const c = await server.lambda.send(
          new GetProvisionedConcurrencyConfigCommand({ FunctionName: name, Qualifier: published.Version }),
        );
        if (c.Status === "READY") break;
        if (c.Status === "FAILED") throw new Error(`provisioning failed: ${c.StatusReason}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const r = await invoke(server.lambda, `${name}:${published.Version}`, {}, { LogType: "Tail" });
      expect(r.log).toMatch(/^REPORT RequestId: /m);
      expect(r.log).not.toMatch(/Init Duration/);
      // An on-demand environment's first REPORT still has it.
      const cold = await invoke(server.lambda, name, {}, { LogType: "Tail" });
      expect(cold.log).toMatch(/\tInit Duration: [\d.]+ ms/);
    });
  });
}

describe("Max Memory Used at an out-of-memory kill (bwrap driver)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ sandbox: "bwrap", prewarm: 1 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("a 128 MB function allocating 200 MB reports about its limit, not 0", async () => {
    await server.platform.worker.stemCells.whenReady("nodejs22.x");
    await create(server, "oom-report", 128);
    const r = await invoke(server.lambda, "oom-report", { mb: 200 }, { LogType: "Tail" });
    expect(r.json).toMatchObject({ errorType: "Runtime.OutOfMemory" });
    expect(r.log).toMatch(/\tStatus: error\tError Type: Runtime\.OutOfMemory/);
    expect(maxUsed(r.log)).toBeGreaterThanOrEqual(120);
  });
});
