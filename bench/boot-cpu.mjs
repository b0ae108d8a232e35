/**
 * The Node.js runtime's own start, without a server or sandbox: spawn `node [flags] bootstrap.mjs`
 * (or stem.mjs) against a Runtime API stub on a Unix socket and measure the time to its first
 * request (`GET /next`, a stem cell's assignment request) and the CPU the child has used by then.
 * The stub never answers and keeps the socket open, so the child is blocked on that request when
 * its CPU is read: the sum of every thread's on-CPU time (/proc/PID/task/TID/schedstat, ns),
 * next to the 10 ms-tick utime+stime of /proc/PID/stat. A bare `node -e 0` (spawn → exit) is the
 * reference. Runs are interleaved between cases; prints p50 and mean per case.
 *
 *   node bench/boot-cpu.mjs [runs=21] [--runtimes DIR] [--base DIR] [--node PATH] [--cases a,b,…]
 *
 * Cases: `process` (the process driver: NODE_PATH resolve fallback, Node 20's hook thread),
 * `process-sdk` (its handler requires the SDK's Lambda client, from --sdk DIR: the installed SDK),
 * `bwrap` (`--node-path-view`: no hook), `process-esm` (an .mjs handler), `stem` (stem.mjs up to its
 * assignment request), `node` (bare node -e 0). `--base DIR`: the same cases for another runtimes
 * folder (a base worktree's), as `base-…`, interleaved run by run.
 */
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i === -1 ? dflt : args.splice(i, 2)[1];
};
const sdkDir = opt("--sdk", join(homedir(), ".cache/lambent/runtimes/aws-sdk-js/node_modules"));
const runtimesDir = resolve(opt("--runtimes", new URL("../runtimes", import.meta.url).pathname));
const node = opt("--node", process.execPath);
const baseDir = opt("--base", undefined);
const only = opt("--cases", "node,process,bwrap,process-esm,stem").split(",");
if (baseDir) only.push(...only.filter((c) => c !== "node").map((c) => `base-${c}`));
const runs = Number(args[0] ?? 21);

const dir = mkdtempSync(join(tmpdir(), "boot-cpu-"));
const task = join(dir, "task");
mkdirSync(task);
writeFileSync(join(task, "index.js"), "exports.handler = async (e) => e;\n");
writeFileSync(
  join(task, "sdk.js"),
  'const { LambdaClient } = require("@aws-sdk/client-lambda");\nexports.handler = async () => typeof LambdaClient;\n',
);
writeFileSync(join(task, "esm.mjs"), "export const handler = async (e) => e;\n");
const sock = join(dir, "api.sock");

/** The child's CPU: every thread's schedstat (ns) and the process's utime+stime (ticks → ms). */
function childCpu(pid) {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
  }
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return { cpuMs: ns / 1e6, tickMs: (Number(f[11]) + Number(f[12])) * 10 };
}

let onRequest = null;
const held = new Set();
const server = createServer((conn) => {
  held.add(conn);
  conn.on("data", () => onRequest?.());
  conn.on("error", () => {});
  conn.on("close", () => held.delete(conn));
});
await new Promise((r) => server.listen(sock, r));

const baseEnv = {
  PATH: process.env.PATH,
  LANG: "en_US.UTF-8",
  TZ: ":UTC",
  LAMBDA_TASK_ROOT: task,
  LAMBDA_RUNTIME_DIR: runtimesDir,
  NODE_PATH: `/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:${sdkDir}:${runtimesDir}:${task}`,
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "128",
  AWS_LAMBDA_FUNCTION_NAME: "boot",
  AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
  AWS_LAMBDA_RUNTIME_API: "127.0.0.1:1",
};
const flags = ["--expose-gc", "--max-http-header-size", "81920"];
const heap = ["--max-semi-space-size=6", "--max-old-space-size=116"];
const api = `--runtime-api-socket=${sock}`;
/** The runtime's entry in a runtimes folder (bootstrap.cjs, or bootstrap.mjs before it). */
const entry = (root) =>
  existsSync(`${root}/nodejs/bootstrap.cjs`)
    ? `${root}/nodejs/bootstrap.cjs`
    : `${root}/nodejs/bootstrap.mjs`;
const runtimeCases = (root, prefix) => ({
  [`${prefix}process`]: { argv: [...flags, ...heap, entry(root), api], handler: "index.handler" },
  [`${prefix}bwrap`]: {
    argv: [...flags, ...heap, entry(root), api, "--node-path-view"],
    handler: "index.handler",
  },
  [`${prefix}process-sdk`]: { argv: [...flags, ...heap, entry(root), api], handler: "sdk.handler" },
  [`${prefix}process-esm`]: { argv: [...flags, ...heap, entry(root), api], handler: "esm.handler" },
  [`${prefix}stem`]: { argv: [...flags, `${root}/nodejs/stem.mjs`, api] },
});
const CASES = {
  node: { argv: ["-e", "0"] },
  ...runtimeCases(runtimesDir, ""),
  ...(baseDir ? runtimeCases(baseDir, "base-") : {}),
};

function once(name) {
  const c = CASES[name];
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(node, c.argv, {
      cwd: task,
      env: { ...baseEnv, ...(c.handler ? { _HANDLER: c.handler } : {}) },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d) => {
      err += d;
    });
    let measured = null;
    if (name === "node") {
      child.on("exit", () => {
        const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
        done({ wallMs, cpuMs: NaN, tickMs: NaN });
      });
      return;
    }
    onRequest = () => {
      if (measured) return;
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      measured = { wallMs, ...childCpu(child.pid) };
      child.kill("SIGKILL");
    };
    child.on("exit", () => {
      for (const s of held) s.destroy();
      if (measured) done(measured);
      else fail(new Error(`${name}: exited before its first request: ${err}`));
    });
  });
}

/** CPU of this process's reaped children (a bare `node -e 0`'s CPU is read this way), ms. */
function childrenMs() {
  const f = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
  return (Number(f[13]) + Number(f[14])) * 10;
}

const results = Object.fromEntries(only.map((c) => [c, []]));
let nodeChildrenMs = 0;
for (let i = 0; i < runs; i++) {
  for (const name of only) {
    if (name === "node") {
      const before = childrenMs();
      results.node.push(await once("node"));
      nodeChildrenMs += childrenMs() - before;
    } else {
      results[name].push(await once(name));
    }
  }
}

const p50 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (x) => (Number.isNaN(x) ? "-" : x.toFixed(1));
console.log(
  `node ${node} (${process.version} harness), ${runs} runs, load ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]}`,
);
console.log("case               | wall p50 ms | CPU p50 ms | CPU mean ms | utime+stime mean ms");
for (const [name, rs] of Object.entries(results)) {
  const cpu = rs.map((r) => r.cpuMs);
  const tick = name === "node" ? [nodeChildrenMs / runs] : rs.map((r) => r.tickMs);
  console.log(
    `${name.padEnd(18)} | ${fmt(p50(rs.map((r) => r.wallMs))).padStart(11)} | ${fmt(p50(cpu)).padStart(10)} | ${fmt(mean(cpu)).padStart(11)} | ${fmt(mean(tick)).padStart(8)}`,
  );
}
server.close();
rmSync(dir, { recursive: true, force: true });
