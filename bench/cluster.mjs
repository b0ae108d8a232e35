#!/usr/bin/env node
/**
 * Cluster benchmark (issue 19): warm invokes/s and p50/p99 through one
 * frontend with 1, 2 and 3 worker nodes, beside the single-process server;
 * failover time after a worker is killed with -9; placement spread.
 *
 * Each worker process runs in a cgroup (v1 `cpu` controller, or v2) capped at
 * half a CPU (cfs quota 50 ms per 100 ms period), so adding a worker adds
 * capacity even on a 2-core machine; the frontend, PostgreSQL and the load
 * generator are not capped. The single-process server runs in a cgroup capped
 * at one CPU (it holds the frontend and the worker). Needs root (cgroups),
 * `npm run build`, and PostgreSQL on 127.0.0.1:5432 ($LAMBENT_TEST_POSTGRES as the tests).
 *
 *   node bench/cluster.mjs [--seconds 10] [--concurrency 8]
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CreateFunctionCommand,
  InvokeCommand,
  LambdaClient,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import pg from "pg";
import yazl from "yazl";
import { ms, num, summarize } from "./lib/stats.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SECONDS = opt("seconds", 10);
const CONCURRENCY = opt("concurrency", 8);
const ADMIN = process.env.LAMBENT_TEST_POSTGRES ?? "postgres://root@127.0.0.1:5432/postgres";
const SECRET = randomBytes(24).toString("hex");
const ROLE = "arn:aws:iam::000000000000:role/bench";

const CG_V1 = "/sys/fs/cgroup/cpu";
const cgroupBase = existsSync(`${CG_V1}/cpu.cfs_quota_us`) ? CG_V1 : "/sys/fs/cgroup";
const cgroups = [];
/** A cgroup capped at `cpus` CPUs holding `pid`. */
function pin(pid, name, cpus) {
  const dir = join(cgroupBase, `lambent-bench-${name}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const quota = Math.round(cpus * 100_000);
  if (cgroupBase === CG_V1) {
    writeFileSync(join(dir, "cpu.cfs_period_us"), "100000");
    writeFileSync(join(dir, "cpu.cfs_quota_us"), String(quota));
  } else {
    writeFileSync(join(dir, "cpu.max"), `${quota} 100000`);
  }
  writeFileSync(join(dir, "cgroup.procs"), String(pid));
  cgroups.push(dir);
}

const procs = [];
let root;
let keyFile;

async function start(name, extra, cpus) {
  const dataDir = join(root, name);
  const proc = spawn(
    process.execPath,
    [
      "bin/lambent.js",
      "server",
      "--port",
      "0",
      "--data-dir",
      dataDir,
      "--sandbox",
      "process",
      "--server-key-file",
      keyFile,
      ...extra,
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LAMBENT_CLUSTER_SECRET: SECRET } },
  );
  // Pinned before it does any work: its start-up (and everything it spawns) runs in the share.
  if (cpus) pin(proc.pid, name, cpus);
  let err = "";
  proc.stderr.on("data", (d) => {
    err = (err + d).slice(-4000);
  });
  const exited = new Promise((r) => proc.once("exit", r));
  const address = await new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      const m = /ready at (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    exited.then((code) => reject(new Error(`${name} exited (${code}): ${err}`)));
  });
  proc.stdout.resume();
  const node = { name, proc, dataDir, address, exited };
  procs.push(node);
  return node;
}

async function stopAll() {
  for (const p of procs.splice(0).reverse()) {
    if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill("SIGTERM");
    const t = setTimeout(() => p.proc.kill("SIGKILL"), 15_000);
    await p.exited;
    clearTimeout(t);
  }
  for (const dir of cgroups.splice(0)) {
    try {
      rmdirSync(dir);
    } catch {}
  }
}

async function database() {
  const name = `lambent_bench_${randomBytes(5).toString("hex")}`;
  const c = new pg.Client({ connectionString: ADMIN });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const url = new URL(ADMIN);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: ADMIN });
      await d.connect();
      await d.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await d.end();
    },
  };
}

const client = (url) =>
  new LambdaClient({
    endpoint: url,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });

function zip(content) {
  return new Promise((resolve, reject) => {
    const z = new yazl.ZipFile();
    z.addBuffer(Buffer.from(content), "index.js", { mtime: new Date(0) });
    z.end();
    const chunks = [];
    z.outputStream.on("data", (c) => chunks.push(c));
    z.outputStream.on("end", () => resolve(Buffer.concat(chunks)));
    z.outputStream.on("error", reject);
  });
}

const HANDLER = `exports.handler = async (event) => {
  if (event.delay) await new Promise((r) => setTimeout(r, event.delay));
  return { dir: __dirname };
};`;

async function deploy(lambda, name) {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      MemorySize: 128,
      Code: { ZipFile: await zip(HANDLER) },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 60, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

const invoke = async (lambda, name, event = {}) => {
  const out = await lambda.send(
    new InvokeCommand({ FunctionName: name, Payload: Buffer.from(JSON.stringify(event)) }),
  );
  if (out.FunctionError) throw new Error(`function error: ${Buffer.from(out.Payload).toString()}`);
  return JSON.parse(Buffer.from(out.Payload).toString());
};

/** CONCURRENCY loops of warm invokes for SECONDS: invokes/s and latency percentiles. */
async function load(lambda, name) {
  // Warm up: one environment per loop.
  // (A cold start on a loaded machine may run into the 10 s Init limit: try it again.)
  const warm = async (tries) => {
    try {
      await invoke(lambda, name);
    } catch (err) {
      if (tries <= 1) throw err;
      await warm(tries - 1);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, () => warm(5)));
  const lat = [];
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        try {
          await invoke(lambda, name);
          lat.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  return { rps: lat.length / elapsed, ...summarize(lat), errors };
}

const ZONES = ["zone-a", "zone-b", "zone-a"];

async function cluster(workers, rows, extra) {
  const db = await database();
  try {
    const fe = await start("frontend", ["--role", "frontend", "--database", db.url]);
    for (let i = 0; i < workers; i++) {
      await start(
        `w${i + 1}`,
        [
          "--role",
          "worker",
          "--zone",
          ZONES[i],
          "--worker-id",
          `w${i + 1}`,
          "--worker-memory",
          "4096",
          "--database",
          db.url,
        ],
        0.5,
      );
    }
    const lambda = client(fe.address);
    await deploy(lambda, "hello");
    const r = await load(lambda, "hello");
    rows.push({
      system: `cluster: 1 frontend, ${workers} worker${workers > 1 ? "s" : ""} (½ CPU each)`,
      ...r,
    });
    if (extra) await extra(lambda);
    lambda.destroy();
  } finally {
    await stopAll();
    await db.drop();
  }
}

async function main() {
  root = mkdtempSync(join(tmpdir(), "lambent-bench-cluster-"));
  keyFile = join(root, "server.key");
  writeFileSync(keyFile, randomBytes(32).toString("hex"), { mode: 0o600 });
  const rows = [];
  const extras = {};
  try {
    {
      const single = await start("single", [], 1);
      const lambda = client(single.address);
      await deploy(lambda, "hello");
      rows.push({ system: "single process (`lambent server`, 1 CPU)", ...(await load(lambda, "hello")) });
      lambda.destroy();
      await stopAll();
    }
    for (const n of [1, 2]) await cluster(n, rows);
    await cluster(3, rows, async (lambda) => {
      // Placement spread: 6 concurrent invokes of a new function, each held long enough to need its own environment.
      await deploy(lambda, "spread");
      const placed = await Promise.all(
        Array.from({ length: 6 }, () => invoke(lambda, "spread", { delay: 1500 })),
      );
      const per = {};
      for (const p of placed) {
        const w = procs.find((x) => p.dir.startsWith(`${x.dataDir}/`))?.name ?? "?";
        per[w] = (per[w] ?? 0) + 1;
      }
      extras.spread = Object.entries(per)
        .sort()
        .map(([w, n]) => `${w} (${ZONES[Number(w.slice(1)) - 1]}): ${n}`)
        .join(", ");
      // Failover: one invoke at a time; kill -9 the worker that served the last one; time to the next success.
      const last = await invoke(lambda, "hello");
      const victim = procs.find((x) => last.dir.startsWith(`${x.dataDir}/`));
      const killedAt = performance.now();
      victim.proc.kill("SIGKILL");
      let failed = 0;
      for (;;) {
        try {
          await invoke(lambda, "hello");
          break;
        } catch {
          failed++;
        }
      }
      extras.failover = { ms: performance.now() - killedAt, failed, victim: victim.name };
    });
  } finally {
    await stopAll();
    rmSync(root, { recursive: true, force: true });
  }
  const lines = [
    `Warm invokes of a hello function through one frontend, ${CONCURRENCY} concurrent loops for ${SECONDS} s (AWS SDK v3 client):`,
    "",
    "| system | invokes/s | p50 ms | p99 ms | errors |",
    "|---|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.system} | ${num(r.rps)} | ${ms(r.p50)} | ${ms(r.p99)} | ${r.errors} |`),
    "",
    `Placement spread (3 workers, 6 concurrent new environments): ${extras.spread}`,
    `Failover after kill -9 of the worker holding the warm environment (${extras.failover?.victim}): next successful invoke after ${ms(extras.failover?.ms)} ms, ${extras.failover?.failed} invoke(s) failed meanwhile`,
  ];
  console.log(lines.join("\n"));
}

process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));
main().catch(async (err) => {
  console.error(err);
  await stopAll();
  process.exit(1);
});
