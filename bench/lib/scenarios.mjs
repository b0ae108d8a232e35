/**
 * The scenarios. Each takes the running systems and a config, runs them interleaved
 * (round r visits every system, in an order rotated by r), and returns plain data.
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool, request } from "undici";
import { cleanEnv, commOf, descendants, memoryOf, startChild } from "./procs.mjs";
import { signedHeaders } from "./sign.mjs";
import { summarize } from "./stats.mjs";
import { settledStemCells, useRuntime } from "./stem.mjs";
import { BENCH_DIR, SLS_COLD_FUNCTIONS, SLS_SCALE_FUNCTIONS } from "./systems.mjs";

const rotate = (list, r) => list.map((_, i) => list[(i + r) % list.length]);

const origins = new WeakMap();

function pool(sys, connections) {
  const p = new Pool(sys.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  origins.set(p, sys.origin);
  return p;
}

async function invoke(p, path, body, headers = {}) {
  const t0 = performance.now();
  try {
    const res = await p.request({
      path,
      method: "POST",
      body,
      headers: signedHeaders(origins.get(p), path, "POST", body, {
        "content-type": "application/json",
        ...headers,
      }),
    });
    const buf = Buffer.from(await res.body.arrayBuffer());
    return {
      ms: performance.now() - t0,
      status: res.statusCode,
      bytes: buf.length,
      body: buf,
      headers: res.headers,
    };
  } catch (err) {
    return { ms: performance.now() - t0, status: 0, bytes: 0, error: err };
  }
}

const ok = (r) => r.status === 200 && !r.headers?.["x-amz-function-error"];

async function closeAll(pools) {
  await Promise.all([...pools.values()].map((p) => p.close().catch(() => {})));
}

// ---------------------------------------------------------------------------------------------

export async function warm(systems, cfg, log) {
  const pools = new Map(systems.map((s) => [s.id, pool(s, 1)]));
  const out = {};
  try {
    const names = new Map();
    for (const s of systems) names.set(s.id, s.path(await s.fn("hello")));
    for (const s of systems) {
      for (let i = 0; i < cfg.warmup; i++) await invoke(pools.get(s.id), names.get(s.id), "{}");
      out[s.id] = { samples: [], errors: 0 };
    }
    const per = Math.ceil(cfg.invokes / cfg.rounds);
    for (let r = 0; r < cfg.rounds; r++) {
      for (const s of rotate(systems, r)) {
        const p = pools.get(s.id);
        const path = names.get(s.id);
        const o = out[s.id];
        for (let i = 0; i < per; i++) {
          const res = await invoke(p, path, "{}");
          if (ok(res)) o.samples.push(res.ms);
          else o.errors++;
        }
      }
      log(`  warm round ${r + 1}/${cfg.rounds}`);
    }
  } finally {
    await closeAll(pools);
  }
  const result = {};
  for (const [id, o] of Object.entries(out)) result[id] = { ...summarize(o.samples), errors: o.errors };
  return result;
}

// ---------------------------------------------------------------------------------------------

async function loop(p, path, concurrency, until) {
  let okCount = 0;
  let errors = 0;
  const statuses = {};
  const worker = async () => {
    while (until()) {
      const res = await invoke(p, path, "{}");
      if (ok(res)) okCount++;
      else {
        errors++;
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ok: okCount, errors, statuses, ms: performance.now() - t0 };
}

export async function throughput(systems, cfg, log) {
  const result = {};
  for (const s of systems) result[s.id] = {};
  for (const c of cfg.concurrency) {
    const pools = new Map(systems.map((s) => [s.id, pool(s, c)]));
    try {
      const names = new Map();
      for (const s of systems) names.set(s.id, s.path(await s.fn("hello")));
      // Warm-up: every connection busy a few times, so the environments exist before timing.
      // At c=64 Lambent starts 64 runtimes, whose JIT then needs a few hundred invokes each.
      for (const s of systems) {
        let n = c * cfg.warmupPerConnection;
        const until = performance.now() + cfg.warmupMs;
        await loop(pools.get(s.id), names.get(s.id), c, () => n-- > 0 || performance.now() < until);
      }
      const acc = Object.fromEntries(systems.map((s) => [s.id, { ok: 0, errors: 0, ms: 0, statuses: {} }]));
      for (let r = 0; r < cfg.rounds; r++) {
        for (const s of rotate(systems, r)) {
          const end = performance.now() + cfg.durationMs;
          const res = await loop(pools.get(s.id), names.get(s.id), c, () => performance.now() < end);
          const a = acc[s.id];
          a.ok += res.ok;
          a.errors += res.errors;
          a.ms += res.ms;
          for (const [k, v] of Object.entries(res.statuses)) a.statuses[k] = (a.statuses[k] ?? 0) + v;
        }
      }
      for (const s of systems) {
        const a = acc[s.id];
        result[s.id][c] = { rps: (a.ok / a.ms) * 1000, ok: a.ok, errors: a.errors, statuses: a.statuses };
      }
      log(`  throughput c=${c} done`);
    } finally {
      await closeAll(pools);
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

function spawnFloorOnce() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [join(BENCH_DIR, "handlers", "spawn-child.cjs")], {
      env: cleanEnv(),
      stdio: ["ignore", "pipe", "ignore"],
    });
    let seen = false;
    child.stdout.on("data", () => {
      if (seen) return;
      seen = true;
      resolve(performance.now() - t0);
    });
    child.on("error", reject);
    child.on("exit", () => {
      if (!seen) reject(new Error("spawn floor child exited without a message"));
    });
  });
}

export async function cold(systems, cfg, log) {
  const targets = systems.filter((s) => s.kind !== "floor");
  const pools = new Map(targets.map((s) => [s.id, pool(s, 1)]));
  const out = { "spawn-floor": { samples: [], errors: 0 } };
  for (const s of targets) out[s.id] = { samples: [], create: [], errors: 0, notes: [] };
  try {
    for (let i = 0; i < cfg.count; i++) {
      for (const key of rotate(["spawn-floor", ...targets.map((s) => s.id)], i)) {
        if (key === "spawn-floor") {
          out[key].samples.push(await spawnFloorOnce());
          continue;
        }
        const s = targets.find((t) => t.id === key);
        const o = out[key];
        if (s.kind === "sls" && i >= SLS_COLD_FUNCTIONS) continue;
        const name = `cold${i}`;
        const c0 = performance.now();
        await s.fn("hello", name);
        const createMs = performance.now() - c0;
        const res = await invoke(pools.get(s.id), s.path(name), "{}");
        if (ok(res)) {
          o.samples.push(res.ms);
          if (s.kind === "lambent") o.create.push(createMs);
        } else {
          o.errors++;
          if (o.notes.length < 3) o.notes.push(`${res.status} ${res.body?.toString().slice(0, 120)}`);
        }
        if (s.kind === "lambent") await s.deleteFn(name);
      }
      // Let stem-cell pools (when there are any) refill, as they would between real deploys.
      await sleep(cfg.pauseMs);
    }
    log(`  cold: ${cfg.count} rounds`);
  } finally {
    await closeAll(pools);
  }
  const result = {};
  for (const [id, o] of Object.entries(out)) {
    result[id] = {
      ...summarize(o.samples),
      errors: o.errors,
      ...(o.create ? { createP50: summarize(o.create).p50 } : {}),
      ...(o.notes?.length ? { notes: o.notes } : {}),
    };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

/** Memory of the runtime processes under a server: every descendant of its pid. */
function treeMemory(pid) {
  const pids = descendants(pid);
  let rss = 0;
  let pss = 0;
  const comms = {};
  for (const p of pids) {
    const m = memoryOf(p);
    rss += m.rss;
    pss += m.pss;
    const c = commOf(p);
    comms[c] = (comms[c] ?? 0) + 1;
  }
  return { processes: pids.length, rss, pss, comms };
}

async function waitForEnvironments(sys, want, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let h = await sys.health();
  while (h && h.environments.environments > want && Date.now() < end) {
    await sleep(100);
    h = await sys.health();
  }
  return h;
}

export async function scale(systems, cfg, log) {
  const out = {};
  for (const s of systems)
    out[s.id] = { allMs: [], envs: [], throttles: 0, errors: 0, notes: [], stemCellsReady: [] };
  for (let r = 0; r < cfg.rounds; r++) {
    for (const s of rotate(systems, r)) {
      const o = out[s.id];
      if (s.kind === "sls" && r >= SLS_SCALE_FUNCTIONS) continue;
      // A system that keeps stem cells: its runtime in use, and the burst starts once they wait.
      if (s.keepsStemCells) {
        if (r === 0) await useRuntime(s);
        o.stemCellsReady.push(await settledStemCells(s, s.keepsStemCells));
      }
      const name = await s.fn("sleep", `scale${r}`);
      const before = s.kind === "lambent" ? await waitForEnvironments(s, 0, 15000) : null;
      const p = pool(s, cfg.concurrency);
      try {
        const t0 = performance.now();
        const results = await Promise.all(
          Array.from({ length: cfg.concurrency }, () => invoke(p, s.path(name), '{"ms":200}')),
        );
        o.allMs.push(performance.now() - t0);
        for (const res of results) {
          if (res.status === 429) o.throttles++;
          else if (!ok(res)) {
            o.errors++;
            if (o.notes.length < 3) o.notes.push(`${res.status} ${res.body?.toString().slice(0, 120)}`);
          }
        }
      } finally {
        await p.close();
      }
      if (s.kind === "lambent") {
        const h = await s.health();
        o.envs.push(h.environments.environments - (before?.environments.environments ?? 0));
        await s.deleteFn(name);
        await waitForEnvironments(s, 0, 15000);
      }
    }
    log(`  scale-out round ${r + 1}/${cfg.rounds}`);
  }
  const result = {};
  for (const [id, o] of Object.entries(out)) {
    result[id] = {
      all: summarize(o.allMs),
      environmentsCreated: o.envs.length ? summarize(o.envs).max : null,
      throttles: o.throttles,
      errors: o.errors,
      ...(o.notes.length ? { notes: o.notes } : {}),
      ...(o.stemCellsReady.length ? { stemCellsReady: o.stemCellsReady } : {}),
    };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

/**
 * Multi-concurrency (Lambda Managed Instances): the same handler on nodejs22.x, once as an ordinary
 * function (one event per environment) and once on a capacity provider with
 * PerExecutionEnvironmentMaxConcurrency = `slots` (one environment runs that many events at once),
 * each driven by `concurrency` clients: invokes/s and the environments each mode needed, for a no-op
 * handler (`hello`) and one that waits on I/O (`sleep`, `sleepMs`).
 */
export async function multi(systems, cfg, log) {
  const result = {};
  for (const s of systems) {
    if (s.kind !== "lambent") {
      result[s.id] = { na: "not measured: capacity providers are Lambent-only here" };
      continue;
    }
    const arn = await s.capacityProvider("bench");
    const modes = {
      one: { Runtime: "nodejs22.x" },
      multi: {
        Runtime: "nodejs22.x",
        CapacityProviderConfig: {
          LambdaManagedInstancesCapacityProviderConfig: {
            CapacityProviderArn: arn,
            PerExecutionEnvironmentMaxConcurrency: cfg.slots,
          },
        },
      },
    };
    const out = {};
    for (const handler of ["hello", "sleep"]) {
      const body = handler === "sleep" ? JSON.stringify({ ms: cfg.sleepMs }) : "{}";
      for (const [mode, extra] of Object.entries(modes)) {
        const name = await s.fn(handler, `mc-${handler}-${mode}`, extra);
        const before = await waitForEnvironments(s, 0, 15000);
        const p = pool(s, cfg.concurrency);
        try {
          const run = async (ms) => {
            let okCount = 0;
            let errors = 0;
            const end = performance.now() + ms;
            const t0 = performance.now();
            await Promise.all(
              Array.from({ length: cfg.concurrency }, async () => {
                while (performance.now() < end) {
                  const res = await invoke(p, s.path(name), body);
                  if (ok(res)) okCount++;
                  else errors++;
                }
              }),
            );
            return { ok: okCount, errors, ms: performance.now() - t0 };
          };
          await run(cfg.warmupMs);
          const res = await run(cfg.durationMs);
          const h = await s.health();
          out[`${handler}-${mode}`] = {
            rps: (res.ok / res.ms) * 1000,
            errors: res.errors,
            environments: h.environments.environments - (before?.environments.environments ?? 0),
          };
        } finally {
          await p.close();
          await s.deleteFn(name).catch(() => {});
        }
      }
    }
    result[s.id] = out;
    log(`  multi-concurrency ${s.id} done`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

/**
 * Density: 100 invokes that each hold their environment for `holdMs`, so all 100 run at once;
 * once they have returned, the 100 idle environments' memory is summed from /proc.
 */
export async function density(systems, cfg, log) {
  const result = {};
  // Stem cells change how environments start, not what an idle one weighs: skip those variants.
  for (const s of systems.filter(
    (x) => (x.kind === "lambent" && !x.id.endsWith("-stem")) || x.kind === "sls",
  )) {
    const name = await s.fn("sleep", s.kind === "sls" ? `scale${SLS_SCALE_FUNCTIONS - 1}` : "density");
    if (s.kind === "lambent") await waitForEnvironments(s, 0, 15000);
    const before = memoryOf(s.pid);
    const p = pool(s, cfg.environments);
    let errors = 0;
    try {
      const body = JSON.stringify({ ms: cfg.holdMs });
      const results = await Promise.all(
        Array.from({ length: cfg.environments }, () => invoke(p, s.path(name), body)),
      );
      errors = results.filter((r) => !ok(r)).length;
    } finally {
      await p.close();
    }
    await sleep(500);
    if (s.kind === "lambent") {
      const mem = treeMemory(s.pid);
      const envs = (await s.health()).environments.environments;
      result[s.id] = {
        environments: envs,
        processes: mem.processes,
        rssTotal: mem.rss,
        rssPerEnv: mem.rss / envs,
        pssPerEnv: mem.pss / envs,
        comms: mem.comms,
        errors,
      };
      await s.deleteFn(name);
      await waitForEnvironments(s, 0, 15000);
    } else {
      const after = memoryOf(s.pid);
      result[s.id] = {
        environments: null,
        inProcess: s.id.includes("inprocess"),
        processes: 1,
        growth: true,
        rssPerEnv: (after.rss - before.rss) / cfg.environments,
        pssPerEnv: (after.pss - before.pss) / cfg.environments,
        errors,
      };
    }
    log(`  density ${s.id}: ${result[s.id].environments ?? "?"} environments`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

/** Reads the probe's `BENCH {…}` log lines back from Lambent's logs endpoint, following by id. */
function logReader(sys, name) {
  const seen = new Map();
  let after;
  return {
    seen,
    async poll() {
      for (;;) {
        const q = `?limit=10000${after !== undefined ? `&after=${after}` : ""}`;
        const path = `/_lambent/logs/${name}${q}`;
        const res = await request(sys.origin + path, { headers: signedHeaders(sys.origin, path, "GET") });
        const { events } = await res.body.json();
        for (const e of events) {
          after = e.id;
          const m = e.message.match(/BENCH (\{.*\})/);
          if (!m) continue;
          const row = JSON.parse(m[1]);
          if (row.i >= 0 && !seen.has(row.i)) seen.set(row.i, row);
        }
        if (events.length < 10000) return seen.size;
      }
    },
  };
}

/** Rows of the function's queue status (GET /_lambent/queue): waiting, running, succeeded, … */
async function queueStatus(sys, name) {
  const path = "/_lambent/queue";
  const res = await request(sys.origin + path, { headers: signedHeaders(sys.origin, path, "GET") });
  const body = await res.body.json();
  return body.functions?.find((f) => f.functionName === name) ?? { running: 0, succeeded: 0 };
}

/**
 * The drain of a backlog already in the store, senders idle: `cfg.slots` events of a sleeping
 * function take every one of the server's async slots, `cfg.events` no-op events are enqueued
 * behind them (queued in the store, as a backlog is), and once the sleepers end the queue drains
 * on its own. The rate counts the events that started after the last enqueue was accepted (when
 * enqueueing outlasted the hold, the events started before it are left out: they raced the senders).
 */
async function backlogDrain(sys, p, name, reader, from, event, cfg) {
  const sleeper = await sys.fn("sleep", "sleep", { MemorySize: 128 });
  // Long enough to enqueue the backlog at the rate just measured (×1.5, +2 s), under the function's timeout.
  const holdMs = Math.min(25_000, Math.round((cfg.events / cfg.enqueuePerSec) * 1500 + 2000));
  const held = (await queueStatus(sys, sleeper)).succeeded + cfg.slots;
  const sleepers = logReader(sys, sleeper);
  await sleepers.poll();
  sleepers.seen.clear();
  await Promise.all(
    Array.from({ length: cfg.slots }, (_, i) =>
      invoke(p, sys.path(sleeper), JSON.stringify({ ms: holdMs, i }), { "x-amz-invocation-type": "Event" }),
    ),
  );
  // Until every sleeper has started (the queue's "running" also counts events claimed ahead, and
  // the poller's in-flight limit for a function grows to every slot only while its events wait).
  const holdDeadline = Date.now() + 15_000;
  while ((await sleepers.poll()) < cfg.slots && Date.now() < holdDeadline) await sleep(50);
  let next = from;
  let enqueueErrors = 0;
  const end = from + cfg.events;
  await Promise.all(
    Array.from({ length: cfg.senders }, async () => {
      while (next < end) {
        const res = await invoke(p, sys.path(name), event(next++), { "x-amz-invocation-type": "Event" });
        if (res.status !== 202) enqueueErrors++;
      }
    }),
  );
  const tEnqueued = performance.timeOrigin + performance.now();
  const deadline = Date.now() + cfg.drainTimeoutMs;
  while ((await reader.poll()) < end - enqueueErrors && Date.now() < deadline) await sleep(250);
  while ((await queueStatus(sys, sleeper)).succeeded < held && Date.now() < deadline) await sleep(250);
  const rows = [...reader.seen.values()].filter((x) => x.i >= from && x.i < end);
  const starts = rows.map((x) => x.started).sort((a, b) => a - b);
  const firstStart = starts[0];
  const t0 = Math.max(firstStart, tEnqueued);
  const after = starts.filter((t) => t >= t0);
  const lastStart = starts[starts.length - 1];
  return {
    events: cfg.events,
    started: rows.length,
    holdMs,
    enqueueErrors,
    /** Events that started while the senders were still enqueueing (the hold ended too early). */
    startedWhileEnqueueing: starts.length - after.length,
    drainMs: lastStart - t0,
    drainPerSec: after.length > 1 ? ((after.length - 1) / (lastStart - t0)) * 1000 : undefined,
  };
}

export async function asyncEvents(systems, cfg, log) {
  const result = {};
  for (const s of systems) result[s.id] = { na: "not measured: Event invokes are Lambent-only here" };
  for (const s of systems.filter((x) => x.kind === "lambent")) {
    if (s.id.endsWith("-stem")) {
      result[s.id] = { na: "not run: stem cells do not change the queue" };
      continue;
    }
    const name = await s.fn("probe");
    const p = pool(s, cfg.senders);
    const event = (i) => JSON.stringify({ i, t0: performance.timeOrigin + performance.now() });
    try {
      const probe = await invoke(p, s.path(name), event(-1), { "x-amz-invocation-type": "Event" });
      if (probe.status !== 202) {
        let type = "";
        try {
          type = JSON.parse(probe.body.toString()).__type ?? "";
        } catch {}
        result[s.id] = { na: `not implemented yet (Event invoke → ${probe.status} ${type})`.trim() };
        continue;
      }
      await sleep(500);
      const reader = logReader(s, name);
      await reader.poll();
      reader.seen.clear();
      let next = 0;
      let enqueueErrors = 0;
      const tStart = performance.timeOrigin + performance.now();
      await Promise.all(
        Array.from({ length: cfg.senders }, async () => {
          while (next < cfg.events) {
            const res = await invoke(p, s.path(name), event(next++), { "x-amz-invocation-type": "Event" });
            if (res.status !== 202) enqueueErrors++;
          }
        }),
      );
      const tEnqueued = performance.timeOrigin + performance.now();
      const deadline = Date.now() + cfg.drainTimeoutMs;
      while ((await reader.poll()) < cfg.events - enqueueErrors && Date.now() < deadline) await sleep(250);
      const rows = [...reader.seen.values()].filter((x) => x.i < cfg.events);
      const lastStart = Math.max(...rows.map((x) => x.started));
      // Not backlogged: single events, one every `tricklePaceMs` (far below the drain rate), each
      // timed from its enqueue to its handler's start.
      const first = cfg.events;
      for (let k = 0; k < cfg.trickle; k++) {
        const t = performance.now();
        await invoke(p, s.path(name), event(first + k), { "x-amz-invocation-type": "Event" });
        await sleep(Math.max(0, cfg.tricklePaceMs - (performance.now() - t)));
      }
      const trickleDeadline = Date.now() + 10_000;
      while ((await reader.poll()) < cfg.events + cfg.trickle && Date.now() < trickleDeadline)
        await sleep(100);
      const trickle = [...reader.seen.values()].filter((x) => x.i >= first);
      const backlog = await backlogDrain(s, p, name, reader, first + cfg.trickle, event, {
        ...cfg,
        enqueuePerSec: (cfg.events / (tEnqueued - tStart)) * 1000,
      });
      result[s.id] = {
        store: s.asyncOnly ? "PostgreSQL" : "SQLite",
        events: cfg.events,
        started: rows.length,
        drained: rows.length >= cfg.events,
        enqueueErrors,
        enqueuePerSec: (cfg.events / (tEnqueued - tStart)) * 1000,
        drainMs: lastStart - tStart,
        drainAfterEnqueueMs: lastStart - tEnqueued,
        drainPerSec: (rows.length / (lastStart - tStart)) * 1000,
        enqueueToStart: summarize(rows.map((x) => x.started - x.enqueued)),
        trickle: { sent: cfg.trickle, started: trickle.length },
        trickleEnqueueToStart: summarize(trickle.map((x) => x.started - x.enqueued)),
        backlog,
      };
      log(
        `  async ${s.id}: ${rows.length}/${cfg.events} events ran; backlog: ${backlog.started}/${backlog.events} ran, ${backlog.drainPerSec?.toFixed(0)} events/s`,
      );
    } finally {
      await p.close();
      await s.deleteFn(name).catch(() => {});
      await s.deleteFn("sleep").catch(() => {});
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

export async function payload(systems, cfg, log) {
  const body = JSON.stringify({ data: "x".repeat(cfg.bytes - 11) });
  const pools = new Map(systems.map((s) => [s.id, pool(s, 1)]));
  const out = Object.fromEntries(systems.map((s) => [s.id, { samples: [], errors: 0, notes: [] }]));
  try {
    const names = new Map();
    for (const s of systems) names.set(s.id, s.path(await s.fn("echo")));
    for (const s of systems) await invoke(pools.get(s.id), names.get(s.id), body);
    for (let r = 0; r < cfg.count; r++) {
      for (const s of rotate(systems, r)) {
        const res = await invoke(pools.get(s.id), names.get(s.id), body);
        const o = out[s.id];
        if (ok(res) && res.bytes >= cfg.bytes - 16) o.samples.push(res.ms);
        else {
          o.errors++;
          if (o.notes.length < 2)
            o.notes.push(`${res.status} ${res.bytes} bytes ${res.body?.toString().slice(0, 100)}`);
        }
      }
    }
    log(`  payload: ${cfg.count} round trips each`);
  } finally {
    await closeAll(pools);
  }
  const result = {};
  for (const [id, o] of Object.entries(out)) {
    result[id] = { ...summarize(o.samples), errors: o.errors, ...(o.notes.length ? { notes: o.notes } : {}) };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

/**
 * Flood by one function: another function's warm p50/p99, quiet vs while a flood function writes
 * `cfg.mb` MB without newlines per invoke, back to back (issue 12's goal: within 2× of quiet).
 * Lambent systems only.
 */
export async function flood(systems, cfg, log) {
  const result = {};
  for (const s of systems.filter((x) => x.kind === "lambent")) {
    const quietPool = pool(s, 1);
    const floodPool = pool(s, 1);
    try {
      const hello = s.path(await s.fn("hello"));
      const flooder = s.path(await s.fn("flood"));
      for (let i = 0; i < cfg.warmup; i++) await invoke(quietPool, hello, "{}");
      const sample = async () => {
        const samples = [];
        let errors = 0;
        for (let i = 0; i < cfg.invokes; i++) {
          const res = await invoke(quietPool, hello, "{}");
          if (ok(res)) samples.push(res.ms);
          else errors++;
        }
        return { samples, errors };
      };
      const quiet = await sample();
      let stop = false;
      let floods = 0;
      let floodErrors = 0;
      const flooding = (async () => {
        while (!stop) {
          const res = await invoke(floodPool, flooder, JSON.stringify({ mb: cfg.mb }));
          if (ok(res)) floods++;
          else floodErrors++;
        }
      })();
      // Let the first flood get going before sampling.
      await sleep(200);
      const during = await sample();
      stop = true;
      await flooding;
      const q = summarize(quiet.samples);
      const d = summarize(during.samples);
      result[s.id] = {
        quiet: { ...q, errors: quiet.errors },
        flood: { ...d, errors: during.errors },
        floods,
        floodErrors,
        p50Ratio: d.p50 / q.p50,
        p99Ratio: d.p99 / q.p99,
      };
      log(
        `  flood ${s.id}: p50 ${q.p50.toFixed(2)} → ${d.p50.toFixed(2)} ms, p99 ${q.p99.toFixed(2)} → ${d.p99.toFixed(2)} ms (${floods} floods)`,
      );
    } finally {
      await closeAll(
        new Map([
          ["q", quietPool],
          ["f", floodPool],
        ]),
      );
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------

/**
 * Function URLs beside the Invoke API on the same Lambent servers: warm latency (sequential GETs of
 * the URL's path form over one keep-alive connection, against signed Invoke POSTs) and throughput at
 * `cfg.concurrency` clients, interleaved round by round. The URL path adds the payload-2.0 event and
 * the response mapping; Invoke adds SigV4 verification.
 */
export async function functionUrls(systems, cfg, log) {
  const lambents = systems.filter((s) => s.kind === "lambent");
  const paths = new Map();
  for (const s of lambents) {
    const name = await s.fn("hello", "hello-url");
    paths.set(s.id, { invoke: s.path(name), url: await s.url(name) });
  }
  const get = async (p, path) => {
    const t0 = performance.now();
    try {
      const res = await p.request({ path, method: "GET" });
      const body = await res.body.text();
      return {
        ms: performance.now() - t0,
        ok: res.statusCode === 200 && body === "hello",
        status: res.statusCode,
      };
    } catch {
      return { ms: performance.now() - t0, ok: false, status: 0 };
    }
  };
  const call = (mode, p, path) =>
    mode === "url"
      ? get(p, path)
      : invoke(p, path, "{}").then((r) => ({ ms: r.ms, ok: ok(r), status: r.status }));
  const modes = ["invoke", "url"];
  const fail = (o, res) => {
    o.errors++;
    o.statuses[res.status] = (o.statuses[res.status] ?? 0) + 1;
  };
  const out = {};
  for (const s of lambents)
    for (const m of modes) out[`${s.id} ${m}`] = { samples: [], errors: 0, statuses: {}, ok: 0, ms: 0 };

  const one = new Map(lambents.map((s) => [s.id, pool(s, 1)]));
  const many = new Map(lambents.map((s) => [s.id, pool(s, cfg.concurrency)]));
  try {
    for (const s of lambents)
      for (const m of modes)
        for (let i = 0; i < cfg.warmup; i++) await call(m, one.get(s.id), paths.get(s.id)[m]);
    const per = Math.ceil(cfg.invokes / cfg.rounds);
    for (let r = 0; r < cfg.rounds; r++) {
      for (const s of rotate(lambents, r)) {
        for (const m of rotate(modes, r)) {
          const o = out[`${s.id} ${m}`];
          for (let i = 0; i < per; i++) {
            const res = await call(m, one.get(s.id), paths.get(s.id)[m]);
            if (res.ok) o.samples.push(res.ms);
            else fail(o, res);
          }
          const end = performance.now() + cfg.durationMs;
          const t0 = performance.now();
          await Promise.all(
            Array.from({ length: cfg.concurrency }, async () => {
              while (performance.now() < end) {
                const res = await call(m, many.get(s.id), paths.get(s.id)[m]);
                if (res.ok) o.ok++;
                else fail(o, res);
              }
            }),
          );
          o.ms += performance.now() - t0;
        }
      }
      log(`  url round ${r + 1}/${cfg.rounds}`);
    }
  } finally {
    await closeAll(one);
    await closeAll(many);
  }
  const result = {};
  for (const [key, o] of Object.entries(out))
    result[key] = {
      ...summarize(o.samples),
      rps: (o.ok / o.ms) * 1000,
      errors: o.errors,
      statuses: o.statuses,
    };
  return result;
}

// ---------------------------------------------------------------------------------------------

/**
 * `lambent dev`'s edit loop (issue 17: goal under 300 ms for a plain JS handler): per Lambent
 * system, `lambent dev` runs on a one-function template in a folder under the server's --dev-root;
 * each round writes index.js with a new value and invokes in a loop until the answer carries it.
 * Timed is what a user waits for: the watcher, the reload request, the environment restart and the
 * first invoke of the edit. The reload alone is what `lambent dev` prints (`dev: reloaded … in N ms`).
 */
export async function devReload(systems, cfg, log) {
  const targets = systems.filter((s) => s.kind === "lambent" && s.devRoot);
  const handler = (n) => `exports.handler = async () => ({ round: ${n} });\n`;
  const runs = [];
  const result = {};
  try {
    for (const s of targets) {
      const app = join(s.devRoot, "dev-reload");
      mkdirSync(join(app, "src"), { recursive: true });
      for (const dir of [s.devRoot, app, join(app, "src")]) chmodSync(dir, 0o755);
      writeFileSync(join(app, "src", "index.js"), handler(0));
      writeFileSync(
        join(app, "template.yaml"),
        [
          "Transform: AWS::Serverless-2016-10-31",
          "Resources:",
          "  Edited:",
          "    Type: AWS::Serverless::Function",
          "    Properties:",
          "      CodeUri: src/",
          "      Handler: index.handler",
          "      Runtime: nodejs20.x",
          `      MemorySize: ${cfg.memoryMb}`,
          "",
        ].join("\n"),
      );
      const dev = startChild(
        process.execPath,
        [
          join(BENCH_DIR, "..", "bin", "lambent.js"),
          "dev",
          "--template",
          join(app, "template.yaml"),
          "--endpoint",
          s.origin,
        ],
        { cwd: app },
      );
      const r = { s, app, dev, p: pool(s, 1), samples: [], toReload: [], invokes: 0, errors: 0, notes: [] };
      // When each `dev: reloaded` line arrives: the edit → reload part of a round.
      r.reloadedAt = [];
      dev.child.stderr.on("data", (chunk) => {
        for (const _ of chunk.toString().matchAll(/dev: reloaded Edited in/g))
          r.reloadedAt.push(performance.now());
      });
      runs.push(r);
    }
    for (const r of runs) {
      await r.dev.waitFor(/dev: watching 1 function folder/, 180_000);
      r.name = /dev: Edited \((\S+)\) runs from/.exec(r.dev.output())?.[1];
      // The first invoke starts the function's first environment: not part of an edit.
      await invoke(r.p, r.s.path(r.name), "{}");
    }
    // How loaded the machine is meanwhile: a bare `node` spawn to its first output line, once a round.
    const floor = [];
    for (let round = 1; round <= cfg.rounds; round++) {
      floor.push(await spawnFloorOnce());
      for (const r of rotate(runs, round)) {
        const t0 = performance.now();
        const reloads = r.reloadedAt.length;
        writeFileSync(join(r.app, "src", "index.js"), handler(round));
        for (;;) {
          r.invokes++;
          const res = await invoke(r.p, r.s.path(r.name), "{}");
          if (!ok(res)) {
            r.errors++;
            if (r.notes.length < 3) r.notes.push(`${res.status} ${res.body?.toString().slice(0, 120)}`);
            if (r.errors > 20) throw new Error(`${r.s.id}: dev reload invokes keep failing: ${r.notes[0]}`);
            continue;
          }
          if (JSON.parse(res.body.toString()).round === round) break;
        }
        r.samples.push(performance.now() - t0);
        if (r.reloadedAt.length > reloads) r.toReload.push(r.reloadedAt[reloads] - t0);
        // The edits of a user come seconds apart: let this one's environment settle first.
        await sleep(cfg.pauseMs);
      }
    }
    log(`  dev: ${cfg.rounds} rounds`);
    result["spawn-floor"] = { ...summarize(floor), floor: true };
    for (const r of runs) {
      const reloads = [...r.dev.output().matchAll(/dev: reloaded Edited in (\d+) ms/g)].map((m) =>
        Number(m[1]),
      );
      result[r.s.id] = {
        ...summarize(r.samples),
        invokesPerRound: r.invokes / cfg.rounds,
        reload: summarize(reloads),
        editToReloaded: summarize(r.toReload),
        errors: r.errors,
        ...(r.notes.length ? { notes: r.notes } : {}),
      };
    }
  } finally {
    for (const r of runs) {
      r.dev.child.kill("SIGINT");
      await Promise.race([r.dev.exited, sleep(10_000)]);
      await r.dev.stop(1000);
      await r.p.close().catch(() => {});
    }
  }
  return result;
}
