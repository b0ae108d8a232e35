import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { BwrapDriver } from "./bwrap.js";
import { cpuQuotaUs, MEMORY_MB_PER_VCPU } from "./cgroup-limits.js";
import type { Sandbox, SandboxDriver } from "./driver.js";
import { detectSandboxDriver, instanceIdFor } from "./index.js";

const dataDir = mkdtempSync(join(tmpdir(), "lambent-bwrap-test-"));
const runDir = join(dataDir, "run");
const detected = await detectSandboxDriver("auto", { runDir, network: "isolated" });
const available = detected.driver.name === "bwrap" && detected.warning === undefined;
if (!available)
  console.warn(`skipping the bwrap sandbox suite: ${detected.warning ?? "bwrap driver unavailable"}`);

const driver = detected.driver;
const instance = instanceIdFor(runDir);
const cgroupDir = (controller: string, id: string) =>
  `/sys/fs/cgroup/${controller}/lambent/${instance}/${id}`;
let sequence = 0;

/** Collects a sandbox's output and resolves waits on it as it arrives. */
class Output {
  text = "";
  #waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  push = (chunk: Buffer): void => {
    this.text += chunk.toString();
    this.#waiters = this.#waiters.filter((waiter) => {
      const match = this.text.match(waiter.pattern);
      if (match) waiter.resolve(match);
      return !match;
    });
  };
  waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    const match = this.text.match(pattern);
    if (match) return Promise.resolve(match);
    return new Promise((resolve) => this.#waiters.push({ pattern, resolve }));
  }
}

interface Started {
  sandbox: Sandbox;
  output: Output;
  api: Server;
  codeDir: string;
}

/** A minimal worker side: a Runtime API server on a per-environment Unix socket that answers with the environment id. */
async function start(
  using: SandboxDriver,
  script: string,
  options: { memoryMb?: number; pids?: number; env?: Record<string, string> } = {},
): Promise<Started> {
  const id = `t${process.pid}-${++sequence}`;
  const dir = join(dataDir, id);
  const codeDir = join(dir, "code");
  mkdirSync(codeDir, { recursive: true });
  mkdirSync(join(dir, "runtime"));
  writeFileSync(join(codeDir, "index.cjs"), script);
  const api = createServer((request, response) => response.end(`${id} ${request.url}`));
  const kind = using.runtimeApiEndpointKind();
  const socketPath = join(dir, "rapi.sock");
  await new Promise<void>((resolve) =>
    kind === "unix" ? api.listen(socketPath, resolve) : api.listen(0, "127.0.0.1", resolve),
  );
  const address = api.address();
  const runtimeApi =
    kind === "unix"
      ? ({ kind: "unix", path: socketPath } as const)
      : ({
          kind: "tcp",
          host: "127.0.0.1",
          port: typeof address === "object" ? (address?.port ?? 0) : 0,
        } as const);
  const mounts = { codeDir, runtimeDir: join(dir, "runtime") };
  const view = using.view(mounts, runtimeApi);
  const output = new Output();
  const sandbox = await using.spawn({
    id,
    argv: ["/usr/bin/node", `${view.taskRoot}/index.cjs`],
    env: {
      PATH: "/usr/bin:/bin",
      AWS_LAMBDA_RUNTIME_API: view.runtimeApiAddress,
      RUNTIME_API_SOCKET: view.runtimeApiSocket ?? "",
      ...options.env,
    },
    mounts,
    limits: { memoryMb: options.memoryMb ?? 512, ephemeralStorageMb: 64, pids: options.pids ?? 1024 },
    runtimeApi,
    onOutput: output.push,
  });
  return { sandbox, output, api, codeDir };
}

async function stop({ sandbox, api }: Started): Promise<void> {
  await sandbox.destroy();
  api.close();
}

const GET = (url: string) =>
  `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => console.log("GOT " + t), (e) => console.log("ERR " + (e.cause?.code ?? e.message)));`;

/** Whether `pid` still runs (a zombie nobody reaps counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Resolves once `check` holds, re-checking on each turn of the event loop (kernel state has no event to await). */
async function eventually(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe.skipIf(!available)("bwrap sandbox driver", () => {
  afterAll(async () => {
    await driver.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("initialises", async () => {
    await driver.init();
    expect(driver.isolates).toBe(true);
    expect(driver.runtimeApiEndpointKind()).toBe("unix");
  });

  it("runs as the unprivileged sandbox user with exactly the given environment (plus bwrap's PWD)", async () => {
    const started = await start(
      driver,
      `const fs = require("node:fs");
       console.log("ID " + JSON.stringify({ uid: process.getuid(), gid: process.getgid(), groups: process.getgroups(),
         user: require("node:os").userInfo().username, env: process.env, cwd: process.cwd() }));`,
      { env: { ONLY_THIS: "1" } },
    );
    const [, json] = await started.output.waitFor(/ID (.*)\n/);
    const seen = JSON.parse(json as string);
    expect(seen).toMatchObject({ uid: 993, gid: 990, groups: [990], user: "sbx_user1051", cwd: "/var/task" });
    expect(Object.keys(seen.env).sort()).toEqual([
      "AWS_LAMBDA_RUNTIME_API",
      "ONLY_THIS",
      "PATH",
      "PWD",
      "RUNTIME_API_SOCKET",
    ]);
    await stop(started);
  });

  it("shows only its own view: no host data, /root, other code, host processes; read-only code, capped /tmp", async () => {
    const other = await start(driver, "setInterval(() => {}, 1000);");
    const started = await start(
      driver,
      `const fs = require("node:fs");
       const attempt = (f) => { try { return String(f()).slice(0, 200); } catch (e) { return "DENIED " + e.code; } };
       const result = {
         root: attempt(() => fs.readdirSync("/root")),
         dataDir: attempt(() => fs.readdirSync(${JSON.stringify(dataDir)})),
         otherCode: attempt(() => fs.readFileSync(${JSON.stringify(join(other.codeDir, "index.cjs"))}, "utf8")),
         work: attempt(() => fs.readdirSync("/work")),
         hostEnviron: attempt(() => fs.readFileSync("/proc/1/environ", "utf8")),
         procs: fs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p)).length,
         shadow: attempt(() => fs.readFileSync("/etc/shadow", "utf8")),
         sys: attempt(() => fs.readdirSync("/sys")),
         writeTask: attempt(() => fs.writeFileSync("/var/task/x", "x")),
         writeTmp: attempt(() => { fs.writeFileSync("/tmp/x", "x"); return "ok"; }),
         fillTmp: attempt(() => fs.writeFileSync("/tmp/big", Buffer.alloc(65 * 1024 * 1024))),
         ownCode: attempt(() => fs.readFileSync("/var/task/index.cjs", "utf8").length > 0),
         certs: attempt(() => fs.readdirSync("/etc/ssl/certs").length > 0),
       };
       console.log("VIEW " + JSON.stringify(result));`,
    );
    const [, json] = await started.output.waitFor(/VIEW (.*)\n/);
    const view = JSON.parse(json as string);
    expect(view.root).toMatch(/^DENIED ENOENT/);
    expect(view.dataDir).toMatch(/^DENIED ENOENT/);
    expect(view.otherCode).toMatch(/^DENIED ENOENT/);
    expect(view.work).toMatch(/^DENIED ENOENT/);
    expect(view.hostEnviron).toMatch(/^DENIED EACCES/);
    expect(view.procs).toBeLessThanOrEqual(3);
    expect(view.shadow).toMatch(/^DENIED ENOENT/);
    expect(view.sys).toMatch(/^DENIED ENOENT/);
    expect(view.writeTask).toMatch(/^DENIED E(ROFS|ACCES)/);
    expect(view.writeTmp).toBe("ok");
    expect(view.fillTmp).toBe("DENIED ENOSPC");
    expect(view.ownCode).toBe("true");
    expect(view.certs).toBe("true");
    await Promise.all([stop(started), stop(other)]);
  });

  it("serves the Runtime API at 127.0.0.1:9001 and on the socket, each environment reaching only its own", async () => {
    const script = `${GET("http://127.0.0.1:9001/2018-06-01/runtime/invocation/next")}
      require("node:http").get({ socketPath: process.env.RUNTIME_API_SOCKET, path: "/via-socket" },
        (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => console.log("SOCKET " + b)); });`;
    const [a, b] = await Promise.all([start(driver, script), start(driver, script)]);
    for (const started of [a, b]) {
      const id = started.sandbox.id;
      expect((await started.output.waitFor(/GOT (.*)\n/))[1]).toBe(
        `${id} /2018-06-01/runtime/invocation/next`,
      );
      expect((await started.output.waitFor(/SOCKET (.*)\n/))[1]).toBe(`${id} /via-socket`);
    }
    await Promise.all([stop(a), stop(b)]);
  });

  it("does not reach a server on the host's 127.0.0.1:PORT, nor through slirp4netns's 10.0.2.2", async () => {
    const host = createServer((_request, response) => response.end("from the host"));
    await new Promise<void>((resolve) => host.listen(0, "127.0.0.1", resolve));
    const { port } = host.address() as { port: number };
    const started = await start(driver, GET(`http://127.0.0.1:${port}/`) + GET(`http://10.0.2.2:${port}/`));
    const outcomes = await started.output.waitFor(/(GOT|ERR) (.*)\n(GOT|ERR) (.*)\n/);
    expect([outcomes[1], outcomes[3]]).toEqual(["ERR", "ERR"]);
    await stop(started);
    host.close();
  });

  it("kills a tree that exceeds its memory and says it was the OOM killer", { timeout: 30_000 }, async () => {
    const started = await start(
      driver,
      `const chunks = []; for (let i = 0; i < 30; i++) chunks.push(Buffer.alloc(10 * 1024 * 1024, 1)); console.log("SURVIVED");`,
      { memoryMb: 128 },
    );
    const exit = await started.sandbox.exited;
    expect(exit).toEqual({ code: null, signal: "SIGKILL", oomKilled: true });
    expect(started.output.text).not.toContain("SURVIVED");
    expect(existsSync(cgroupDir("memory", started.sandbox.id))).toBe(false);
    started.api.close();
  });

  it("measures peak memory from the cgroup, close to what the process used, and resets it", async () => {
    const started = await start(
      driver,
      `const held = Buffer.alloc(100 * 1024 * 1024, 1);
       console.log("RSS " + process.memoryUsage().rss);
       setInterval(() => held.length, 1000);`,
    );
    const rss = Number((await started.output.waitFor(/RSS (\d+)\n/))[1]);
    const peak = started.sandbox.peakMemoryBytes() as number;
    expect(peak).toBeGreaterThanOrEqual(100 * 1024 * 1024);
    expect(Math.abs(peak - rss) / rss).toBeLessThan(0.25);
    started.sandbox.resetPeakMemory();
    expect(started.sandbox.peakMemoryBytes()).toBeLessThan(peak + 4 * 1024 * 1024);
    await stop(started);
  });

  it("gives CPU in proportion to memory: the CFS quota follows the memory size and throttles a busy loop", {
    timeout: 60_000,
  }, async () => {
    // Asserted on what the kernel enforces (quota and throttling counters), not on wall time:
    // these machines are shared and a timing ratio is noise.
    const loop = `let x = 0; for (let i = 0; i < 3e7; i++) x += i % 7; console.log("DONE " + x); setInterval(() => x, 1000);`;
    // Init runs with at least one vCPU; the function's share applies from endInit(), which the
    // worker calls when the runtime first asks for an event (here: right away, while node boots).
    const fast = await start(driver, loop, { memoryMb: 1769 });
    await fast.sandbox.endInit?.();
    await fast.output.waitFor(/DONE/);
    const slow = await start(driver, loop, { memoryMb: 128 });
    await slow.sandbox.endInit?.();
    await slow.output.waitFor(/DONE/);
    const cpu = (id: string, file: string) => readFileSync(`${cgroupDir("cpu", id)}/${file}`, "utf8");
    expect(Number(cpu(fast.sandbox.id, "cpu.cfs_quota_us"))).toBe(cpuQuotaUs(1));
    expect(Number(cpu(slow.sandbox.id, "cpu.cfs_quota_us"))).toBe(cpuQuotaUs(128 / MEMORY_MB_PER_VCPU));
    expect(Number(/nr_throttled (\d+)/.exec(cpu(slow.sandbox.id, "cpu.stat"))?.[1])).toBeGreaterThan(0);
    await Promise.all([stop(fast), stop(slow)]);
  });

  it("contains a fork bomb within its pids limit while the host and other environments keep working", {
    timeout: 30_000,
  }, async () => {
    const bomb = await start(
      driver,
      // The runtime stays until stopped: were it to exit once its shell did (at once, the bomb goes on
      // in the background), the sandbox and its cgroup could be gone before the limit is read.
      `require("node:child_process").spawn("/bin/sh", ["-c", "b() { b | b & }; b"], { stdio: "ignore" }); setInterval(() => {}, 1000); console.log("BOMB");`,
      { pids: 64 },
    );
    await bomb.output.waitFor(/BOMB/);
    const pidsDir = cgroupDir("pids", bomb.sandbox.id);
    await eventually(() => Number(/max (\d+)/.exec(readFileSync(`${pidsDir}/pids.events`, "utf8"))?.[1]) > 0);
    expect(Number(readFileSync(`${pidsDir}/pids.current`, "utf8"))).toBeLessThanOrEqual(64);
    expect(spawnSync("/bin/true").status).toBe(0);
    const other = await start(driver, GET("http://127.0.0.1:9001/still-serving"));
    expect((await other.output.waitFor(/GOT (.*)\n/))[1]).toBe(`${other.sandbox.id} /still-serving`);
    await Promise.all([stop(bomb), stop(other)]);
    expect(existsSync(pidsDir)).toBe(false);
  });

  it("freezes every process (a setInterval counter stops) and thaws them", async () => {
    const started = await start(driver, `let n = 0; setInterval(() => console.log("TICK " + ++n), 5);`);
    await started.output.waitFor(/TICK 3\n/);
    await started.sandbox.freeze();
    // A line written just before the freeze may still be in the pipe: let it arrive, then nothing more may.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const frozenAt = started.output.text.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(started.output.text.length).toBe(frozenAt);
    const last = Number(started.output.text.match(/TICK (\d+)\n$/)?.[1]);
    await started.sandbox.thaw();
    await started.output.waitFor(new RegExp(`TICK ${last + 1}\\n`));
    await stop(started);
  });

  it("destroy leaves no process, helper or cgroup behind", async () => {
    const started = await start(
      driver,
      `require("node:child_process").spawn("/bin/sleep", ["1000"], { stdio: "ignore" }); console.log("UP");`,
    );
    await started.output.waitFor(/UP/);
    const pids = readFileSync(`${cgroupDir("memory", started.sandbox.id)}/cgroup.procs`, "utf8")
      .split("\n")
      .filter(Boolean)
      .map(Number);
    expect(pids.length).toBeGreaterThanOrEqual(3);
    await started.sandbox.freeze();
    await stop(started);
    for (const pid of [...pids, started.sandbox.pid]) expect(alive(pid)).toBe(false);
    for (const controller of ["memory", "cpu", "pids", "freezer"]) {
      expect(existsSync(cgroupDir(controller, started.sandbox.id))).toBe(false);
    }
  });

  it("init() after a crash kills and removes the environments a previous run left behind", async () => {
    const orphan = await start(driver, `setInterval(() => console.log("TICK"), 5); console.log("UP");`);
    await orphan.output.waitFor(/UP/);
    await orphan.sandbox.freeze();
    const pids = readFileSync(`${cgroupDir("freezer", orphan.sandbox.id)}/cgroup.procs`, "utf8")
      .split("\n")
      .filter(Boolean)
      .map(Number);
    // A new server on the same data dir knows nothing of the old environment.
    const restarted = await detectSandboxDriver("bwrap", { runDir, network: "isolated" });
    await restarted.driver.init();
    await orphan.sandbox.exited;
    for (const pid of pids) expect(alive(pid)).toBe(false);
    for (const controller of ["memory", "cpu", "pids", "freezer"]) {
      expect(existsSync(cgroupDir(controller, orphan.sandbox.id))).toBe(false);
    }
    orphan.api.close();
  });

  it("with --sandbox-network host, shares the host's network and serves the Runtime API over TCP", async () => {
    const { driver: hostDriver } = await detectSandboxDriver("bwrap", {
      runDir: join(dataDir, "run-host"),
      network: "host",
    });
    await hostDriver.init();
    expect(hostDriver.runtimeApiEndpointKind()).toBe("tcp");
    const started = await start(
      hostDriver,
      `fetch("http://" + process.env.AWS_LAMBDA_RUNTIME_API + "/next").then((r) => r.text()).then((t) => console.log("GOT " + t));`,
    );
    expect((await started.output.waitFor(/GOT (.*)\n/))[1]).toBe(`${started.sandbox.id} /next`);
    await stop(started);
    await (hostDriver as BwrapDriver).close();
  });

  it("refuses a spawn once close() began; a spawn under way is killed, never left running", async () => {
    const closingRunDir = join(dataDir, "run-closing");
    const { driver: closing } = await detectSandboxDriver("bwrap", {
      runDir: closingRunDir,
      network: "isolated",
    });
    await closing.init();
    // Whether close() comes before spawn() or while it runs, no sandbox may outlive it.
    const spawning = start(closing, `setInterval(() => {}, 1000); console.log("UP");`).then(
      (started) => started,
      (error: Error) => error,
    );
    await closing.close();
    const outcome = await spawning;
    if (outcome instanceof Error) expect(outcome.message).toMatch(/shutting down/);
    else {
      await outcome.sandbox.exited;
      expect(alive(outcome.sandbox.pid)).toBe(false);
      outcome.api.close();
    }
    const late = await start(closing, "").then(
      () => "started",
      (error: Error) => error.message,
    );
    expect(late).toMatch(/shutting down/);
    const instance = instanceIdFor(closingRunDir);
    expect(existsSync(`/sys/fs/cgroup/memory/lambent/${instance}`)).toBe(false);
  });
});
