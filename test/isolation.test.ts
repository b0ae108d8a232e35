/**
 * Isolation and resource limits through the whole platform, with the bwrap +
 * cgroup driver: what a function can see, how much memory and CPU it gets, what
 * happens when it exceeds them, and that nothing is left behind.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateCapacityProviderCommand,
  CreateFunctionCommand,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cpuQuotaUs, MEMORY_MB_PER_VCPU } from "../src/sandbox/cgroup-limits.js";
import { instanceIdFor } from "../src/sandbox/index.js";
import { invoke } from "./helpers/invoke.js";
import { createInlineFunction, lambdaClient, ROLE, startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

type Obj = Record<string, unknown>;
let server: TestServer;

async function fn(s: TestServer, name: string, code: string, memory = 128, timeout = 10) {
  await createInlineFunction(s.lambda, name, code, { MemorySize: memory, Timeout: timeout });
}

async function pyFn(s: TestServer, name: string, code: string) {
  await createInlineFunction(s.lambda, name, code, { Runtime: "python3.11", Timeout: 30 });
}

/** Host processes (socat relays) whose command line names one of this sandbox's sockets. */
const hostRelaysOf = (sandboxId: string | undefined) =>
  readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      } catch {
        return "";
      }
    })
    .filter((cmd) => cmd.includes(`/${sandboxId}.`));

/**
 * A Python function that talks to the sandbox's own 127.0.0.1:9001 (the Runtime API, as
 * aws-lambda-ric would with urllib) and :9000 (the platform API), politely and not.
 */
const PY_LOOPBACK = `import os, socket, struct, urllib.error, urllib.request

held = []


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return "%d %s" % (r.status, r.read().decode())
    except urllib.error.HTTPError as e:
        return "%d %s" % (e.code, e.read().decode())
    except Exception as e:
        return "error %r" % (e,)


def raw(data, half_close):
    s = socket.create_connection(("127.0.0.1", 9001), timeout=10)
    s.sendall(data)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out.decode().split("\\r\\n")[0]


def handler(event, context):
    action = event["action"]
    if action == "apis":
        procs = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                with open("/proc/%s/cmdline" % pid) as f:
                    procs.append(f.read().replace("\\0", " ").strip())
        return {
            "runtime": get("http://127.0.0.1:9001/2018-06-01/none"),
            "platform": get("http://127.0.0.1:9000/health"),
            "processes": procs,
        }
    if action == "flood":
        for _ in range(event["n"]):
            held.append(socket.create_connection(("127.0.0.1", 9001), timeout=10))
        return len(held)
    if action == "half-close":
        return raw(b"GET /2018-06-01/none HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n", True)
    if action == "reset":
        s = socket.create_connection(("127.0.0.1", 9001), timeout=10)
        s.sendall(b"POST /2018-06-01/none HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 100000\\r\\n\\r\\n" + b"x" * 50000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        return get("http://127.0.0.1:9001/2018-06-01/none")
`;

/** PY_LOOPBACK's Node.js twin. */
const NODE_LOOPBACK = `const net = require("node:net");
const held = [];
const get = (url) => fetch(url).then(async (r) => r.status + " " + (await r.text()), (e) => "error " + (e.cause?.code ?? e.message));
const raw = (data) => new Promise((resolve) => {
  const s = net.connect(9001, "127.0.0.1", () => s.end(data));
  let out = "";
  s.on("data", (c) => (out += c));
  s.on("end", () => resolve(out.split("\\r\\n")[0]));
  s.on("error", (e) => resolve("error " + e.code));
});
exports.handler = async (event) => {
  if (event.action === "apis")
    return { runtime: await get("http://127.0.0.1:9001/2018-06-01/none"), platform: await get("http://127.0.0.1:9000/health") };
  if (event.action === "flood") {
    await Promise.all(Array.from({ length: event.n }, () => new Promise((resolve, reject) => {
      const s = net.connect(9001, "127.0.0.1", resolve);
      s.on("error", reject);
      held.push(s);
    })));
    return held.length;
  }
  if (event.action === "half-close") return raw("GET /2018-06-01/none HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n");
  if (event.action === "reset") {
    await new Promise((resolve) => {
      const s = net.connect(9001, "127.0.0.1", () =>
        s.write("POST /2018-06-01/none HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 100000\\r\\n\\r\\n" + "x".repeat(50000), () => {
          s.resetAndDestroy();
          resolve();
        }),
      );
    });
    return get("http://127.0.0.1:9001/2018-06-01/none");
  }
};`;

const cgroupRoot = (dataDir: string, controller: string) =>
  `/sys/fs/cgroup/${controller}/lambent/${instanceIdFor(join(dataDir, "run", "sandbox"))}`;

beforeAll(async () => {
  server = await startServer({ sandbox: "bwrap" });
});
afterAll(async () => {
  await server?.stop();
});

describe("bwrap sandbox: limits", () => {
  it("kills a function over its memory limit with Runtime.OutOfMemory, then recovers", async () => {
    await fn(
      server,
      "oom",
      `exports.handler = async (e) => { if (e.mb) { const keep = []; for (let i = 0; i < e.mb; i++) keep.push(Buffer.alloc(1024 * 1024, 1)); return keep.length; } return "fine"; };`,
      128,
      30, // filling 128 MB at 7 % of a CPU can take longer than 10 s: the OOM kill must come first
    );
    const r = await invoke(server.lambda, "oom", { mb: 300 }, { LogType: "Tail" });
    expect(r.functionError).toBe("Unhandled");
    expect(r.json).toMatchObject({ errorType: "Runtime.OutOfMemory" });
    expect((r.json as Obj).errorMessage).toMatch(/Runtime exited with error: signal: killed$/);
    expect(r.log).toContain("Runtime exited with error: signal: killed");
    expect(server.platform.worker.environmentsOf("oom")).toHaveLength(0);
    expect((await invoke(server.lambda, "oom", {})).json).toBe("fine");
  });

  it("reports Max Memory Used as the environment's real peak: the process's peak RSS, not only what its cgroup was charged", async () => {
    await fn(
      server,
      "mem",
      `let keep; exports.handler = async (e) => { keep = []; for (let i = 0; i < e.mb; i++) keep.push(Buffer.alloc(1024 * 1024, 1)); const hwm = /^VmHWM:\\s+(\\d+) kB$/m.exec(require("node:fs").readFileSync("/proc/self/status", "utf8"))[1]; return { n: keep.length, hwmMb: Number(hwm) / 1024 }; };`,
      512,
    );
    const r = await invoke(server.lambda, "mem", { mb: 80 }, { LogType: "Tail" });
    const { n, hwmMb } = r.json as { n: number; hwmMb: number };
    expect(n).toBe(80);
    const reported = Number(/Max Memory Used: (\d+) MB/.exec(r.log ?? "")?.[1]);
    // The runtime's binary is page cache another cgroup may be charged for (the cgroup's own peak
    // can be far below what the process holds): the report follows the process.
    expect(reported).toBeGreaterThanOrEqual(80);
    expect(Math.abs(reported - hwmMb) / hwmMb).toBeLessThan(0.1);
  });

  it("gives CPU in proportion to memory: the CFS quota follows MemorySize and throttles a busy handler", async () => {
    // Asserted on what the kernel enforces (quota and throttling counters), not on wall time.
    const loop = `exports.handler = async () => { let x = 0; for (let i = 0; i < 3e7; i++) x += i % 7; return x; };`;
    await fn(server, "cpu-small", loop, 128);
    await fn(server, "cpu-big", loop, 1769);
    await invoke(server.lambda, "cpu-big");
    const cpu = (name: string, file: string) => {
      const [env] = server.platform.worker.environmentsOf(name);
      return readFileSync(`${cgroupRoot(server.dataDir, "cpu")}/${env?.sandboxId}/${file}`, "utf8");
    };
    const throttled = () => Number(/nr_throttled (\d+)/.exec(cpu("cpu-small", "cpu.stat"))?.[1]);
    // The function's share applies once Init is over: the first invoke may still run at full speed.
    await invoke(server.lambda, "cpu-small");
    for (let i = 0; i < 4 && !(throttled() > 0); i++) await invoke(server.lambda, "cpu-small");
    expect(Number(cpu("cpu-big", "cpu.cfs_quota_us"))).toBe(cpuQuotaUs(1));
    expect(Number(cpu("cpu-small", "cpu.cfs_quota_us"))).toBe(cpuQuotaUs(128 / MEMORY_MB_PER_VCPU));
    expect(throttled()).toBeGreaterThan(0);
  });

  it("contains a fork bomb inside its environment while other functions keep answering", async () => {
    // The handler starts a fork bomb, then starts processes of its own that it keeps until its
    // sandbox refuses one. The bomb's shells die when a fork fails and free their pids again; the
    // handler's own never do, so the limit is reached however the bomb and the machine's load race.
    await fn(
      server,
      "bomb",
      `const cp = require("node:child_process");
       const start = () => new Promise((res) => {
         const c = cp.spawn("/bin/sleep", ["600"], { stdio: "ignore", detached: true });
         c.once("spawn", () => res(undefined));
         c.once("error", (e) => res(e.code));
       });
       exports.handler = async () => {
         cp.spawn("/bin/sh", ["-c", "b() { b | b & }; b"], { stdio: "ignore", detached: true });
         for (let n = 0; n < 5000; n++) {
           const code = await start();
           if (code) return code;
         }
         return "never refused";
       };`,
      1769,
      60,
    );
    await fn(server, "bystander", `exports.handler = async () => "ok";`);
    const bomb = invoke(server.lambda, "bomb");
    expect((await invoke(server.lambda, "bystander")).json).toBe("ok");
    expect((await bomb).json).toBe("EAGAIN");
    const [env] = server.platform.worker.environmentsOf("bomb");
    const pidsDir = `${cgroupRoot(server.dataDir, "pids")}/${env?.sandboxId}`;
    expect(Number(/max (\d+)/.exec(readFileSync(`${pidsDir}/pids.events`, "utf8"))?.[1])).toBeGreaterThan(0);
    expect(Number(readFileSync(`${pidsDir}/pids.current`, "utf8"))).toBeLessThanOrEqual(1024);
    // The platform and other functions carry on.
    expect((await invoke(server.lambda, "bystander")).json).toBe("ok");
    expect(spawnSync("/bin/true").status).toBe(0);
    // Longer than the bomb's own 60 s timeout, so a slow machine shows the bomb's own error, not vitest's.
  }, 150_000);
});

describe("bwrap sandbox: what a function can see", () => {
  it("cannot read /root, the data dir, other functions' code or the host's processes", async () => {
    await fn(server, "other", `exports.handler = async () => "secret code";`);
    const otherCode = server.platform.worker.environmentsOf("other").length; // not yet run: find its code dir from the store
    expect(otherCode).toBe(0);
    const codeDirs = readdirSync(join(server.dataDir, "code")).filter((d) => /^[0-9a-f]{64}$/.test(d));
    const probe = `const fs = require("node:fs");
      const tryRead = (p) => { try { return fs.statSync(p).isDirectory() ? fs.readdirSync(p) : fs.readFileSync(p, "utf8").slice(0, 100); } catch (e) { return "ERR " + e.code; } };
      exports.handler = async (e) => ({ uid: process.getuid(), results: Object.fromEntries(e.paths.map((p) => [p, tryRead(p)])), procs: fs.readdirSync("/proc").filter((d) => /^\\d+$/.test(d)).length });`;
    await fn(server, "snoop", probe);
    const paths = [
      "/root",
      server.dataDir,
      join(server.dataDir, "code", codeDirs[0] ?? "x"),
      "/proc/1/environ",
      "/work",
      "/etc/shadow",
    ];
    const r = (await invoke(server.lambda, "snoop", { paths })).json as {
      uid: number;
      results: Record<string, unknown>;
      procs: number;
    };
    expect(r.uid).toBe(993);
    for (const p of paths) expect(String(r.results[p])).toMatch(/^ERR (ENOENT|EACCES|EPERM)$/);
    // Its own PID namespace: the sandbox's init, the runtime and little else.
    expect(r.procs).toBeLessThanOrEqual(4);
  });

  it("cannot take another environment's events through its Runtime API address", async () => {
    await fn(server, "victim", `let n = 0; exports.handler = async () => ++n;`);
    await fn(
      server,
      "thief",
      `const http = require("node:http");
       const get = (path) => new Promise((resolve) => { const req = http.get({ host: "127.0.0.1", port: 9001, path, timeout: 300 }, (res) => { let b = ""; res.on("data", (c) => (b += c)); res.on("end", () => resolve(res.statusCode + " " + (res.headers["lambda-runtime-aws-request-id"] ?? "") + b)); }); req.on("timeout", () => { req.destroy(); resolve("timeout"); }); req.on("error", (e) => resolve("error " + e.code)); });
       exports.handler = async () => get("/2018-06-01/runtime/invocation/next");`,
    );
    const stolen = invoke(server.lambda, "thief");
    const victimAnswers = await Promise.all([1, 2, 3].map(() => invoke(server.lambda, "victim")));
    expect(victimAnswers.map((v) => v.functionError)).toEqual([undefined, undefined, undefined]);
    const got = (await stolen).json as string;
    // Its own Runtime API has nothing more for it; another environment's is out of reach.
    expect(got).toBe("timeout");
    expect((await invoke(server.lambda, "victim")).functionError).toBeUndefined();
  });

  it("serves 127.0.0.1:9001 from the Node.js runtime itself: the Runtime API answers, no relay process runs for it", async () => {
    await fn(
      server,
      "own-api",
      `const http = require("node:http");
       exports.handler = async () => new Promise((resolve) => {
         const req = http.get({ host: "127.0.0.1", port: 9001, path: "/2018-06-01/none", timeout: 5000 }, (res) => {
           let body = ""; res.on("data", (c) => (body += c)); res.on("end", () => resolve(res.statusCode + " " + body));
         });
         req.on("timeout", () => { req.destroy(); resolve("timeout"); });
         req.on("error", (e) => resolve("error " + e.code));
       });`,
    );
    expect((await invoke(server.lambda, "own-api")).json).toMatch(/^404 .*Unknown Runtime API path/);
    const [env] = server.platform.worker.environmentsOf("own-api");
    expect(env?.sandboxId).toBeDefined();
    // No process of the host relays to this environment's sockets: neither its Runtime API's
    // (<id>.sock) nor its platform API's (<id>.api.sock), which the runtime serves at 9000.
    expect(hostRelaysOf(env?.sandboxId)).toEqual([]);
  });

  it("serves 127.0.0.1:9001 and :9000 from a Python stem cell itself: both answer, no relay process runs", async () => {
    const stems = server.platform.worker.stemCells;
    await stems.whenReady("python3.11");
    const taken = stems.stats.taken;
    await pyFn(server, "py-own-api", PY_LOOPBACK);
    const r = (await invoke(server.lambda, "py-own-api", { action: "apis" })).json as {
      runtime: string;
      platform: string;
      processes: string[];
    };
    expect(stems.stats.taken).toBe(taken + 1);
    expect(r.runtime).toMatch(/^404 .*Unknown Runtime API path/);
    expect(r.platform).toMatch(/^200 .*"status":"ok"/);
    // In the sandbox: its init and the runtime, nothing else.
    expect(r.processes.filter((cmd) => !cmd.startsWith("bwrap"))).toEqual([
      expect.stringMatching(/python3? -s \/var\/runtime\/python\/stem\.py .*--tcp-relay=9001:/),
    ]);
    const [env] = server.platform.worker.environmentsOf("py-own-api");
    expect(env?.sandboxId).toBeDefined();
    expect(hostRelaysOf(env?.sandboxId)).toEqual([]);
  });

  it("does not reach a server on the host's 127.0.0.1 (see test/attacks/sandbox-network.test.ts)", async () => {
    const host = createServer((_req, res) => res.end("hello from the host"));
    await new Promise<void>((r) => host.listen(0, "127.0.0.1", r));
    try {
      const port = (host.address() as AddressInfo).port;
      await fn(
        server,
        "client",
        `exports.handler = async (e) => fetch("http://127.0.0.1:" + e.port + "/").then((r) => r.text(), (err) => "failed: " + (err.cause?.code ?? err.message));`,
      );
      expect((await invoke(server.lambda, "client", { port })).json).toMatch(/^failed: /);
    } finally {
      host.close();
    }
  });

  it("freezes an idle environment: no timer fires while its cgroup is FROZEN", async () => {
    // The handler keeps the wall-clock time of every tick of a 5 ms interval (the last 500).
    await fn(
      server,
      "ticker",
      `const ticks = []; setInterval(() => { ticks.push(Date.now()); if (ticks.length > 500) ticks.shift(); }, 5);
       exports.handler = async (e) => {
         if (e.ticks) { const n = ticks.length; while (ticks.length < n + e.ticks) await new Promise((r) => setTimeout(r, 5)); }
         return ticks;
       };`,
    );
    // While an invoke runs, the timer runs.
    expect(((await invoke(server.lambda, "ticker", { ticks: 3 })).json as number[]).length).toBeGreaterThan(
      2,
    );
    // Between invokes the environment is frozen: once the cgroup says FROZEN, no tick happens until
    // the next invoke thaws it (compared on the shared wall clock, not by counting).
    await invoke(server.lambda, "ticker");
    const [env] = server.platform.worker.environmentsOf("ticker");
    const state = `${cgroupRoot(server.dataDir, "freezer")}/${env?.sandboxId}/freezer.state`;
    await new Promise<void>((resolve) => {
      const look = () => (readFileSync(state, "utf8").trim() === "FROZEN" ? resolve() : setTimeout(look, 5));
      look();
    });
    const frozenAt = Date.now();
    await new Promise((r) => setTimeout(r, 200));
    const thawAt = Date.now();
    const after = (await invoke(server.lambda, "ticker")).json as number[];
    expect(after.filter((t) => t > frozenAt && t < thawAt)).toEqual([]);
  });
});

describe("bwrap sandbox: a runtime's own 127.0.0.1:9001, attacked from inside", () => {
  // No stem cells: the runtime (bootstrap.py, bootstrap.cjs) itself serves the ports from its first moment.
  let plain: TestServer;
  beforeAll(async () => {
    plain = await startServer({ sandbox: "bwrap", prewarm: 0 });
    await pyFn(plain, "py-loopback", PY_LOOPBACK);
    await fn(plain, "node-loopback", NODE_LOOPBACK, 128, 30);
  });
  afterAll(async () => {
    await plain?.stop();
  });

  for (const [runtime, name] of [
    ["Python", "py-loopback"],
    ["Node.js", "node-loopback"],
  ] as const) {
    it(`${runtime}: answers invokes and new connections while hundreds of connections are held open`, async () => {
      expect((await invoke(plain.lambda, name, { action: "flood", n: 300 })).json).toBe(300);
      expect((await invoke(plain.lambda, name, { action: "flood", n: 100 })).json).toBe(400);
      const r = (await invoke(plain.lambda, name, { action: "apis" })).json as Record<string, string>;
      expect(r.runtime).toMatch(/^404 .*Unknown Runtime API path/);
      expect(r.platform).toMatch(/^200 /);
      // One environment served all of it, with no relay process of the host.
      const envs = plain.platform.worker.environmentsOf(name);
      expect(envs).toHaveLength(1);
      expect(hostRelaysOf(envs[0]?.sandboxId)).toEqual([]);
    });

    it(`${runtime}: carries a client's half-close: the request, then its end, then the whole answer`, async () => {
      expect((await invoke(plain.lambda, name, { action: "half-close" })).json).toBe(
        "HTTP/1.1 404 Not Found",
      );
    });

    it(`${runtime}: survives a client that resets mid-request: the next connection is served`, async () => {
      const r = await invoke(plain.lambda, name, { action: "reset" });
      expect(r.functionError).toBeUndefined();
      expect(r.json).toMatch(/^404 .*Unknown Runtime API path/);
      expect((await invoke(plain.lambda, name, { action: "half-close" })).json).toBe(
        "HTTP/1.1 404 Not Found",
      );
    });
  }

  it("serves them from the first of N processes of a multi-concurrency environment; the others hold none of the relay's descriptors", async () => {
    const provider = await plain.lambda.send(
      new CreateCapacityProviderCommand({
        CapacityProviderName: "relay-mc",
        VpcConfig: { SubnetIds: ["subnet-0123456789abcdef0"], SecurityGroupIds: ["sg-0123456789abcdef0"] },
        PermissionsConfig: { CapacityProviderOperatorRoleArn: "arn:aws:iam::000000000000:role/operator" },
      }),
    );
    await plain.lambda.send(
      new CreateFunctionCommand({
        FunctionName: "py-mc",
        Runtime: "python3.13",
        Handler: "index.handler",
        Role: ROLE,
        Timeout: 30,
        Code: {
          ZipFile: await zipEntries([
            {
              name: "index.py",
              // Each invoke waits until 4 run at once (a file each in the environment's /tmp), so the
              // 4 land in the 4 processes.
              content: `import os, time, urllib.error, urllib.request
def handler(event, context):
    open("/tmp/running-%d" % os.getpid(), "w").close()
    deadline = time.time() + 20
    while len([f for f in os.listdir("/tmp") if f.startswith("running-")]) < 4 and time.time() < deadline:
        time.sleep(0.01)
    try:
        urllib.request.urlopen("http://127.0.0.1:9001/2018-06-01/none", timeout=10)
    except urllib.error.HTTPError as e:
        code = e.code
    with open("/proc/self/status") as f:
        threads = int(f.read().split("Threads:")[1].split()[0])
    return {"pid": os.getpid(), "code": code, "threads": threads}
`,
            },
          ]),
        },
        CapacityProviderConfig: {
          LambdaManagedInstancesCapacityProviderConfig: {
            CapacityProviderArn: provider.CapacityProvider?.CapacityProviderArn as string,
            PerExecutionEnvironmentMaxConcurrency: 4,
          },
        },
      }),
    );
    await waitUntilFunctionActiveV2(
      { client: plain.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 60 },
      { FunctionName: "py-mc" },
    );
    const answers = (await Promise.all([0, 1, 2, 3].map(() => invoke(plain.lambda, "py-mc")))).map(
      (r) => r.json as { pid: number; code: number; threads: number },
    );
    expect(answers.map((a) => a.code)).toEqual([404, 404, 404, 404]);
    expect(new Set(answers.map((a) => a.pid)).size).toBe(4);
    // The relay thread lives in the first process only.
    expect(answers.map((a) => a.threads).sort()).toEqual([1, 1, 1, 2]);
  });
});

describe("bwrap sandbox: cleanup", () => {
  it("a server that fails to start (port in use) leaves no mounts, cgroups, processes or lock behind", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as AddressInfo;
    const dataDir = mkdtempSync(join(tmpdir(), "lambent-busy-"));
    try {
      const child = spawn(
        process.execPath,
        ["bin/lambent.js", "server", "--port", String(port), "--data-dir", dataDir, "--sandbox", "bwrap"],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let stderr = "";
      child.stderr?.on("data", (c: Buffer) => {
        stderr += c.toString();
      });
      child.stdout?.resume();
      const [code] = await once(child, "close");
      expect(code).toBe(1);
      expect(stderr).toContain("EADDRINUSE");
      // Everything its start acquired before the listen failed is released: the read-only views
      // and stem cells' mount points, the instance's cgroups, the stem cells, the registry entry, the lock.
      expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dataDir);
      const instanceId = instanceIdFor(join(dataDir, "run", "sandbox"));
      for (const controller of ["memory", "cpu", "pids", "freezer"]) {
        expect(existsSync(`/sys/fs/cgroup/${controller}/lambent/${instanceId}`)).toBe(false);
      }
      expect(existsSync(`/run/lambent/instances/${instanceId}`)).toBe(false);
      const processes = spawnSync("ps", ["-eo", "args"]).stdout.toString();
      expect(processes.split("\n").filter((l) => l.includes(dataDir))).toEqual([]);
      expect(existsSync(join(dataDir, "server.pid"))).toBe(false);
    } finally {
      taken.close();
    }
  });

  it("leaves no sandbox processes, cgroups or mounts after a SIGKILL of the server and a restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "lambent-kill-"));
    const start = (...extra: string[]) =>
      new Promise<{ child: ChildProcess; url: string }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          ["bin/lambent.js", "server", "--port", "0", "--data-dir", dataDir, "--sandbox", "bwrap", ...extra],
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        let out = "";
        child.stdout?.on("data", (c: Buffer) => {
          out += c.toString();
          const m = /ready at (http:\/\/\S+)/.exec(out);
          if (m?.[1]) resolve({ child, url: m[1] });
        });
        child.stderr?.on("data", (c: Buffer) => {
          out += c.toString();
        });
        child.once("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
      });
    const controllers = ["memory", "cpu", "pids", "freezer"].map((c) => cgroupRoot(dataDir, c));
    const cgroupsLeft = () =>
      controllers.flatMap((root) =>
        existsSync(root)
          ? readdirSync(root, { withFileTypes: true })
              .filter((d) => d.isDirectory())
              .map((d) => `${root}/${d.name}`)
          : [],
      );
    const mountsUnder = (dir: string) =>
      readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .filter((l) => l.includes(dir));
    const sandboxProcesses = () =>
      spawnSync("ps", ["-eo", "comm=,pid=,args="])
        .stdout.toString()
        .split("\n")
        .filter((l) => l.startsWith("bwrap ") && l.includes(dataDir));
    const registry = `/run/lambent/instances/${instanceIdFor(join(dataDir, "run", "sandbox"))}`;

    const first = await start();
    const s = { lambda: lambdaClient(first.url) } as TestServer;
    await fn(s, "leftover", `exports.handler = async () => process.pid;`);
    await Promise.all([1, 2, 3].map(() => invoke(s.lambda, "leftover")));
    expect(cgroupsLeft().length).toBeGreaterThan(0);
    const exited = once(first.child, "exit");
    first.child.kill("SIGKILL");
    await exited;
    s.lambda.destroy();

    // The restart sweeps what the killed server left before it says "ready" (and, with --prewarm 0,
    // starts nothing of its own): no sandbox, cgroup or stem-cell mount of this data dir remains.
    const second = await start("--prewarm", "0");
    try {
      expect(sandboxProcesses()).toEqual([]);
      expect(cgroupsLeft()).toEqual([]);
      expect(mountsUnder(join(dataDir, "run", "sandbox", "stems"))).toEqual([]);
      // Registered under the new server's pid, so no other server sweeps it as abandoned.
      expect(readFileSync(registry, "utf8").split(" ")[0]).toBe(String(second.child.pid));
    } finally {
      const gone = once(second.child, "exit");
      second.child.kill("SIGTERM");
      await gone;
    }
    // After a clean stop nothing at all remains: not even the instance's cgroup roots or its entry.
    for (const root of controllers) expect(existsSync(root)).toBe(false);
    expect(mountsUnder(join(dataDir, "run"))).toEqual([]);
    expect(existsSync(registry)).toBe(false);
  }, 180_000);
});
