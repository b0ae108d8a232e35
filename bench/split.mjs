#!/usr/bin/env node
/**
 * Where one warm invoke's CPU goes: the client (this process), the server, and the sandbox's
 * processes (the runtime, bwrap, network helpers), user and kernel time apart, with the server's and
 * the sandboxes' syscalls and context switches per invoke (`perf stat`, when it can count
 * tracepoints; else /proc context-switch counters only).
 *
 *   node bench/split.mjs [--sandbox bwrap] [--concurrency 16] [--invokes 4000] [--rounds 3]
 *                         [--server-arg=--flag …] [--event [--postgres URL]] [--handler hello]
 *
 * Each round measures `--invokes` hello-world invokes at `--concurrency` (after a warm-up of the
 * same size); the medians over rounds are printed as a Markdown table.
 *
 * --event sends `InvocationType: Event` invokes and each round lasts until the queue has run them
 * all (GET /_lambent/queue), so a row is the CPU of one event enqueued over HTTP and run.
 * --backlog (with --event): each round first holds the server's 16 async slots with sleeping events
 * (started, as their log lines say), enqueues the round's events behind them, and measures only from
 * the first finished events seen (polled every 100 ms) to the drain's end: a row is the CPU of one
 * event drained from a backlog with the senders idle (the polls and the sleepers' ends included). With
 * --postgres the server's store is a throwaway database on that server, and the PostgreSQL
 * backends serving it are a row of their own.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Pool, request } from "undici";
import { createBenchDatabase } from "./lib/postgres.mjs";
import { commOf, descendants, memoryOf } from "./lib/procs.mjs";
import { signedHeaders } from "./lib/sign.mjs";
import { startLambent } from "./lib/systems.mjs";

const { values: opts } = parseArgs({
  options: {
    sandbox: { type: "string", default: "bwrap" },
    concurrency: { type: "string", default: "16" },
    invokes: { type: "string", default: "4000" },
    rounds: { type: "string", default: "3" },
    "server-arg": { type: "string", multiple: true, default: [] },
    event: { type: "boolean", default: false },
    backlog: { type: "boolean", default: false },
    postgres: { type: "string" },
    handler: { type: "string", default: "hello" },
  },
});
const TICK_US = 1e6 / 100; // USER_HZ

/** utime and stime (µs) of a whole process (all its threads), and its threads' context switches. */
function usage(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    let switches = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        const s = readFileSync(`/proc/${pid}/task/${task}/status`, "utf8");
        switches += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
        switches += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(s)?.[1] ?? 0);
      } catch {}
    }
    return { user: Number(f[11]) * TICK_US, sys: Number(f[12]) * TICK_US, switches };
  } catch {
    return undefined;
  }
}

/** The sandbox processes' group names: the runtime, bwrap, each helper by its command. */
function group(pid) {
  const comm = commOf(pid);
  if (comm === "node" || comm === "MainThread") return "runtime";
  return comm;
}

/** PostgreSQL backends serving the bench's database (root can read their /proc). */
let pgBackends = async () => [];

async function snapshot(serverPid) {
  const procs = new Map();
  procs.set(serverPid, { group: "server", ...usage(serverPid) });
  for (const pid of await pgBackends()) {
    const u = usage(pid);
    if (u) procs.set(pid, { group: "postgres", ...u });
  }
  for (const pid of descendants(serverPid)) {
    const u = usage(pid);
    if (u) procs.set(pid, { group: group(pid), ...u });
  }
  const cpu = process.cpuUsage();
  return { procs, client: { user: cpu.user, sys: cpu.system } };
}

/** Per-group deltas between two snapshots (processes present in both). */
function delta(a, b) {
  const out = new Map();
  const add = (name, user, sys, switches = 0) => {
    const g = out.get(name) ?? { user: 0, sys: 0, switches: 0 };
    g.user += user;
    g.sys += sys;
    g.switches += switches;
    out.set(name, g);
  };
  add("client", b.client.user - a.client.user, b.client.sys - a.client.sys);
  for (const [pid, end] of b.procs) {
    const start = a.procs.get(pid);
    if (!start) continue;
    add(end.group, end.user - start.user, end.sys - start.sys, end.switches - start.switches);
  }
  return out;
}

/** `perf stat` counting syscalls and context switches of `pids` until stopped; undefined without perf. */
function perfStat(pids) {
  if (pids.length === 0) return undefined;
  const perf = spawn(
    "perf",
    ["stat", "-x", ",", "-e", "raw_syscalls:sys_enter,context-switches", "-p", pids.join(",")],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let text = "";
  perf.stderr.on("data", (c) => {
    text += c;
  });
  perf.on("error", () => {});
  const exited = new Promise((resolve) => perf.once("close", resolve));
  return {
    async stop() {
      perf.kill("SIGINT");
      await exited;
      const count = (event) => {
        const line = text.split("\n").find((l) => l.includes(event));
        const n = Number(line?.split(",")[0]);
        return Number.isFinite(n) ? n : undefined;
      };
      return { syscalls: count("raw_syscalls:sys_enter"), switches: count("context-switches") };
    },
  };
}

const median = (xs) => {
  const s = xs.filter((x) => x !== undefined).sort((a, b) => a - b);
  return s.length === 0 ? undefined : s[Math.floor(s.length / 2)];
};

const dataRoot = mkdtempSync(join(tmpdir(), "lambent-split-"));
let closeAdmin = async () => {};
const database = opts.postgres ? await createBenchDatabase(opts.postgres) : undefined;
if (database) {
  const { default: pg } = await import("pg");
  const admin = new pg.Pool({ connectionString: opts.postgres, max: 1 });
  pgBackends = async () =>
    (await admin.query("select pid from pg_stat_activity where datname = $1", [database.name])).rows.map(
      (r) => r.pid,
    );
  closeAdmin = () => admin.end();
}
const sys = await startLambent({
  id: `split-${opts.sandbox}`,
  label: opts.sandbox,
  driver: opts.sandbox,
  prewarm: 0,
  dataRoot,
  extraArgs: [...opts["server-arg"], ...(database ? ["--database", database.url] : [])],
});
try {
  const fn = await sys.fn(opts.handler);
  const path = sys.path(fn);
  const c = Number(opts.concurrency);
  const n = Number(opts.invokes);
  const pool = new Pool(sys.origin, { connections: c });
  const event = opts.event ? { "x-amz-invocation-type": "Event" } : {};
  /** Events this function's queue has finished so far (all servers). */
  const finished = async () => {
    const r = await request(`${sys.origin}/_lambent/queue`, {
      headers: signedHeaders(sys.origin, "/_lambent/queue", "GET"),
    });
    const body = await r.body.json();
    const f = body.functions?.find((x) => x.functionName === fn);
    return (f?.succeeded ?? 0) + (f?.failed ?? 0);
  };
  let expected = opts.event ? await finished() : 0;
  const sleeper = opts.backlog ? await sys.fn("sleep") : undefined;
  let logAfter;
  /** The sleepers' BENCH lines logged since the last call. */
  const sleeperStarts = async () => {
    const q = `?limit=10000${logAfter !== undefined ? `&after=${logAfter}` : ""}`;
    const lp = `/_lambent/logs/${sleeper}${q}`;
    const r = await request(sys.origin + lp, { headers: signedHeaders(sys.origin, lp, "GET") });
    const { events } = await r.body.json();
    for (const e of events) logAfter = e.id;
    return events.filter((e) => e.message.includes("BENCH")).length;
  };
  let holdMs = 5000;
  /** Hold every async slot with a sleeping event; resolves once all 16 have started. */
  const hold = async () => {
    await sleeperStarts();
    const sp = sys.path(sleeper);
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const body = JSON.stringify({ ms: holdMs, i });
        const r = await pool.request({
          path: sp,
          method: "POST",
          body,
          headers: signedHeaders(sys.origin, sp, "POST", body, event),
        });
        if (r.statusCode !== 202) throw new Error(`sleeper → ${r.statusCode}`);
        await r.body.dump();
      }),
    );
    let started = 0;
    const deadline = Date.now() + 15_000;
    while (started < 16 && Date.now() < deadline) {
      started += await sleeperStarts();
      await new Promise((r) => setTimeout(r, 50));
    }
    if (started < 16) throw new Error(`only ${started} sleepers started`);
  };
  /** With --backlog: called once the first events of the drain have finished (`done` of them). */
  let drainStarted = async (_done) => {};
  let enqueueMs = 0;
  let drainStart;
  let drainRate;
  const run = async (count) => {
    drainStart = undefined;
    if (opts.backlog) await hold();
    let left = count;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (left-- > 0) {
          const r = await pool.request({
            path,
            method: "POST",
            body: "{}",
            headers: signedHeaders(sys.origin, path, "POST", "{}", event),
          });
          const ok = opts.event ? 202 : 200;
          if (r.statusCode !== ok) throw new Error(`invoke → ${r.statusCode} ${await r.body.text()}`);
          await r.body.dump();
        }
      }),
    );
    enqueueMs = performance.now() - t;
    if (opts.event) {
      expected += count;
      const from = expected - count;
      for (;;) {
        const done = await finished();
        // --backlog: the drain's rate from the first finished event seen (the sleepers' hold over).
        if (drainStart === undefined && done > from) {
          drainStart = { t: performance.now(), done };
          await drainStarted(done - from);
        }
        if (done >= expected) break;
        await new Promise((r) => setTimeout(r, opts.backlog ? 100 : 50));
      }
      if (drainStart) drainRate = ((expected - drainStart.done) / (performance.now() - drainStart.t)) * 1000;
    }
    return performance.now() - t;
  };
  console.error(`warm-up: ${((n / (await run(n))) * 1000).toFixed(0)} invokes/s`);
  // Long enough to enqueue a round at the warm-up's rate, twice over.
  if (opts.backlog) holdMs = Math.min(25_000, Math.round(enqueueMs * 2 + 3000));
  const rounds = [];
  for (let i = 0; i < Number(opts.rounds); i++) {
    const sandboxPids = descendants(sys.pid);
    // (--backlog: the round's syscalls would include its enqueues: not counted.)
    const perfServer = opts.backlog ? undefined : perfStat([sys.pid]);
    const perfSandboxes = opts.backlog ? undefined : perfStat(sandboxPids);
    // perf needs a moment to attach; its counts start when it has.
    await new Promise((r) => setTimeout(r, 300));
    let a = await snapshot(sys.pid);
    let t0 = performance.now();
    // --backlog: measured from the first finished events of the drain (seen by polling) to its end;
    // the events finished before are left out of the count.
    let measured = n;
    if (opts.backlog)
      drainStarted = async (done) => {
        a = await snapshot(sys.pid);
        t0 = performance.now();
        measured = n - done;
      };
    await run(n);
    const ms = performance.now() - t0;
    const b = await snapshot(sys.pid);
    const [ps, pb] = await Promise.all([perfServer?.stop(), perfSandboxes?.stop()]);
    rounds.push({ ms, n: measured, groups: delta(a, b), perfServer: ps, perfSandboxes: pb, drainRate });
    if (opts.backlog) console.error(`round ${i + 1}: drained at ~${drainRate?.toFixed(0)} events/s`);
    if (!opts.backlog) console.error(`round ${i + 1}: ${((n / ms) * 1000).toFixed(0)} invokes/s`);
  }
  await pool.close();
  const names = [...new Set(rounds.flatMap((r) => [...r.groups.keys()]))];
  console.log(
    `\n${opts.sandbox} driver${opts.event ? `, Event invokes (${database ? "PostgreSQL" : "SQLite"} store${opts.backlog ? ", a backlog drained with the senders idle" : ""})` : ""}, ${n} invokes at concurrency ${c}, median of ${rounds.length} rounds: ` +
      `${opts.backlog ? `~${median(rounds.map((r) => r.drainRate))?.toFixed(0)} events/s drained (from the first finished event seen, polled every 100 ms)` : `${median(rounds.map((r) => (n / r.ms) * 1000)).toFixed(0)} invokes/s`}\n`,
  );
  console.log("| process | user µs/invoke | kernel µs/invoke | ctx switches/invoke (/proc) |");
  console.log("|---|---:|---:|---:|");
  let total = 0;
  for (const name of names) {
    const per = (k) => median(rounds.map((r) => (r.groups.get(name)?.[k] ?? 0) / r.n));
    const u = per("user");
    const s = per("sys");
    total += u + s;
    console.log(
      `| ${name} | ${u.toFixed(0)} | ${s.toFixed(0)} | ${name === "client" ? "" : per("switches").toFixed(2)} |`,
    );
  }
  console.log(`| **all** | | **${total.toFixed(0)}** (user + kernel) | |`);
  const perInvoke = (get) => {
    const v = median(rounds.map(get));
    return v === undefined ? "n/a" : (v / n).toFixed(1);
  };
  console.log("\n| perf stat | syscalls/invoke | context switches/invoke |\n|---|---:|---:|");
  console.log(
    `| server | ${perInvoke((r) => r.perfServer?.syscalls)} | ${perInvoke((r) => r.perfServer?.switches)} |`,
  );
  console.log(
    `| sandboxes (all processes) | ${perInvoke((r) => r.perfSandboxes?.syscalls)} | ${perInvoke((r) => r.perfSandboxes?.switches)} |`,
  );
  // The environments idle (frozen after their grace): what each one keeps, process by process.
  await new Promise((r) => setTimeout(r, 1000));
  const envs = (await sys.health()).environments?.environments;
  const idle = new Map();
  for (const pid of descendants(sys.pid)) {
    const g = idle.get(group(pid)) ?? { count: 0, rss: 0, pss: 0 };
    const m = memoryOf(pid);
    g.count++;
    g.rss += m.rss;
    g.pss += m.pss;
    idle.set(group(pid), g);
  }
  const perEnv = envs ?? idle.get("runtime")?.count ?? 1;
  console.log(`\nidle: ${perEnv} environments; per environment:\n`);
  console.log("| process | count | RSS MB | PSS MB |\n|---|---:|---:|---:|");
  for (const [name, g] of idle)
    console.log(
      `| ${name} | ${(g.count / perEnv).toFixed(2)} | ${(g.rss / perEnv / 2 ** 20).toFixed(1)} | ${(g.pss / perEnv / 2 ** 20).toFixed(1)} |`,
    );
} finally {
  await sys.stop();
  await closeAdmin();
  await database?.drop();
  rmSync(dataRoot, { recursive: true, force: true });
}
