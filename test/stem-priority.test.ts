/**
 * Stem cells in a burst: a waiting cell boots at the lowest CPU priority and its adopted runtime runs
 * at the normal one in every thread; adopting a cell takes no turn of the worker's start gate; and
 * `--prewarm-min` keeps cells for a runtime in use.
 */
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { createInlineFunction, startServer, type TestServer } from "./helpers/server.js";

/** The nice value of every thread of a process (field 19 of /proc/PID/task/TID/stat). */
function threadNice(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const rest = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1] as string;
      out.push(Number(rest.split(" ")[16]));
    } catch {
      // The thread has exited.
    }
  }
  return out;
}

/** A handler that reports the nice value of every thread of its own process. */
const NICE_HANDLER = `
const fs = require("node:fs");
exports.handler = async () => fs.readdirSync("/proc/self/task").map((tid) => {
  try {
    return Number(fs.readFileSync("/proc/self/task/" + tid + "/stat", "utf8").split(") ")[1].split(" ")[16]);
  } catch {
    return null;
  }
}).filter((n) => n !== null);
`;

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ prewarm: 3, prewarmMin: 3 });
});
afterAll(async () => {
  await server?.stop();
});

describe("stem cells in a burst", () => {
  it("wait at nice 19 in every thread, and run their function at nice 0 in every thread", async () => {
    const stems = server.platform.worker.stemCells;
    await stems.whenReady("nodejs20.x");
    const pids = await stems.processIds("nodejs20.x");
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) {
      const nice = threadNice(pid);
      // A Node.js runtime has several threads (V8 workers, the ES module hooks' thread).
      expect(nice.length).toBeGreaterThan(1);
      expect(new Set(nice)).toEqual(new Set([19]));
    }
    await createInlineFunction(server.lambda, "stem-nice", NICE_HANDLER);
    const taken = stems.stats.taken;
    const r = await invoke(server.lambda, "stem-nice");
    expect(stems.stats.taken).toBe(taken + 1);
    const nice = r.json as number[];
    expect(nice.length).toBeGreaterThan(1);
    expect(new Set(nice)).toEqual(new Set([0]));
  });

  it("adopt a cell without a turn of the start gate (every turn held elsewhere)", async () => {
    const stems = server.platform.worker.stemCells;
    const gate = server.platform.worker.starts;
    await stems.whenReady("nodejs20.x");
    await createInlineFunction(server.lambda, "stem-no-turn", "exports.handler = async () => 'ok';");
    const held = [];
    for (let turn = gate.tryAcquire(); turn; turn = gate.tryAcquire()) held.push(turn);
    try {
      expect(held.length + gate.waiting).toBeGreaterThan(0);
      const taken = stems.stats.taken;
      const r = await invoke(server.lambda, "stem-no-turn");
      expect(r.json).toBe("ok");
      expect(stems.stats.taken).toBe(taken + 1);
      expect(gate.adopting).toBe(0);
    } finally {
      for (const turn of held) turn.release();
    }
  });

  it("keep --prewarm-min cells for a runtime in use, not only one per recent cold start", async () => {
    const stems = server.platform.worker.stemCells;
    // nodejs20.x has had cold starts above (fewer than 3 within the rate window would keep fewer).
    await vi.waitFor(() => expect(stems.size("nodejs20.x")).toBe(3), { timeout: 60_000, interval: 100 });
  });
});

/** The CPU weight of a process's cgroup: v1 `cpu.shares`, v2 `cpu.weight`. */
function cgroupCpuWeight(pid: number): number {
  const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").trim().split("\n");
  const v1 = lines.find((l) => l.split(":")[1]?.split(",").includes("cpu"));
  if (v1) return Number(readFileSync(`/sys/fs/cgroup/cpu${v1.split(":")[2]}/cpu.shares`, "utf8"));
  const v2 = lines.find((l) => l.startsWith("0::")) as string;
  return Number(readFileSync(`/sys/fs/cgroup${v2.slice(3)}/cpu.weight`, "utf8"));
}

describe("bwrap stem cells", () => {
  let bwrap: TestServer;
  beforeAll(async () => {
    bwrap = await startServer({ sandbox: "bwrap", prewarm: 2 });
  });
  afterAll(async () => {
    await bwrap?.stop();
  });

  it("wait in a cgroup of the lowest CPU weight, and run their function at the normal weight", async () => {
    const stems = bwrap.platform.worker.stemCells;
    await stems.whenReady("nodejs20.x");
    const waiting = await stems.processIds("nodejs20.x");
    expect(waiting.length).toBeGreaterThan(0);
    const low = new Set(waiting.map(cgroupCpuWeight));
    expect([[2], [1]]).toContainEqual([...low]);
    await createInlineFunction(bwrap.lambda, "stem-weight", "exports.handler = async () => 'ok';");
    const taken = stems.stats.taken;
    expect((await invoke(bwrap.lambda, "stem-weight")).json).toBe("ok");
    expect(stems.stats.taken).toBe(taken + 1);
    const still = new Set(await stems.processIds("nodejs20.x"));
    const adopted = waiting.filter((pid) => !still.has(pid));
    expect(adopted.length).toBeGreaterThan(0);
    for (const pid of adopted) expect([1024, 100]).toContain(cgroupCpuWeight(pid));
  });
});
