#!/usr/bin/env node
/**
 * Lambent benchmarks: `npm run bench [-- options]`. See bench/README.md.
 * Starts every system, runs the scenarios interleaved, prints a Markdown table and writes
 * bench/results/latest.json. Every process it starts is stopped at the end, even on failure.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, freemem, release, tmpdir, totalmem } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { createBenchDatabase } from "./lib/postgres.mjs";
import { onInterrupt } from "./lib/procs.mjs";
import { render } from "./lib/report.mjs";
import * as scenarios from "./lib/scenarios.mjs";
import { sweepLambent } from "./lib/sweep.mjs";
import {
  BENCH_DIR,
  ensureServerless,
  lambentHelp,
  ROOT,
  startFloor,
  startLambent,
  startServerless,
} from "./lib/systems.mjs";

const SCENARIOS = [
  "warm",
  "throughput",
  "cold",
  "scale",
  "density",
  "async",
  "payload",
  "flood",
  "url",
  "multi",
  "dev",
];

const { values: opts } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    systems: { type: "string" },
    prewarm: { type: "string", default: "4" },
    postgres: {
      type: "string",
      default: process.env.LAMBENT_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/postgres",
    },
    out: { type: "string", default: join(BENCH_DIR, "results", "latest.json") },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (opts.help) {
  console.log(`npm run bench -- [options]
  --quick             small counts and short durations (~1-2 min): a smoke run, not numbers to publish
  --only a,b          scenarios: ${SCENARIOS.join(",")} 
  --systems a,b       system ids (prefix match): lambent-process, lambent-process-stem,
                      lambent-process-nometrics, lambent-bwrap, lambent-bwrap-stem, sls, sls-inprocess,
                      floor (the floor is always kept); lambent-process also selects its variants;
                      lambent-bwrap-slirp and lambent-bwrap-slirp-stem (a slirp4netns per sandbox,
                      for comparison) only when named exactly; so are lambent-process-stem32 and
                      lambent-bwrap-stem32 (32 stem cells kept, --prewarm-min 32; scale-out only)
  --prewarm N         stem cells for the "stem" systems when the server has --prewarm (default 4)
  --postgres URL      PostgreSQL server for lambent-process-pg (async scenario only; a throwaway database
                      is created and dropped; default postgres://root@127.0.0.1:5432/postgres)
  --out FILE          JSON output (default bench/results/latest.json)
Every run also keeps its results and every server's stdout/stderr in bench/results/<run>/.`);
  process.exit(0);
}

const only = new Set(opts.only ? opts.only.split(",").map((s) => s.trim()) : SCENARIOS);
for (const s of only)
  if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; one of ${SCENARIOS}`);
const wantSystem = (id) =>
  id === "floor" ||
  !opts.systems ||
  opts.systems.split(",").some((p) => id === p.trim() || id.startsWith(`${p.trim()}-`));

const Q = opts.quick;
const cfg = {
  warm: { invokes: Q ? 400 : 2000, rounds: Q ? 4 : 10, warmup: Q ? 50 : 200 },
  throughput: {
    concurrency: [1, 16, 64],
    durationMs: Q ? 600 : 2000,
    rounds: Q ? 1 : 2,
    warmupPerConnection: Q ? 3 : 10,
    warmupMs: Q ? 1000 : 1500,
  },
  cold: { count: Q ? 5 : 20, pauseMs: 150 },
  scale: { rounds: Q ? 1 : 3, concurrency: 100 },
  density: { environments: 100, holdMs: 5000 },
  async: {
    events: Q ? 1000 : 5000,
    senders: 16,
    drainTimeoutMs: Q ? 30_000 : 90_000,
    /** Not backlogged: one event at a time, this many, each after the previous one started. */
    trickle: Q ? 50 : 200,
    tricklePaceMs: 20,
    /** The server's async slots (events it runs at once): the backlog phase holds them all first. */
    slots: 16,
  },
  payload: { count: Q ? 10 : 60, bytes: 1024 * 1024 },
  flood: { invokes: Q ? 300 : 1000, warmup: 100, mb: 50 },
  url: {
    invokes: Q ? 200 : 1000,
    rounds: Q ? 2 : 5,
    warmup: Q ? 20 : 100,
    concurrency: 16,
    durationMs: Q ? 600 : 2000,
  },
  multi: { concurrency: 16, slots: 16, sleepMs: 50, warmupMs: Q ? 500 : 1000, durationMs: Q ? 1000 : 3000 },
  dev: { rounds: Q ? 5 : 20, pauseMs: 500, memoryMb: 128 },
};

const log = (m) => process.stderr.write(`${m}\n`);

function gitRev() {
  try {
    const rev = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src", "runtimes"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    return dirty.trim() ? `${rev}+uncommitted` : rev;
  } catch {
    return "unknown";
  }
}

const meta = {
  date: new Date().toISOString(),
  cpu: cpus()[0]?.model ?? "unknown",
  cpus: cpus().length,
  memGiB: +(totalmem() / 2 ** 30).toFixed(1),
  freeGiB: +(freemem() / 2 ** 30).toFixed(1),
  node: process.version,
  kernel: release(),
  lambent: gitRev(),
  quick: Q,
  scenarios: [...only],
  config: cfg,
};

async function main() {
  if (!existsSync(join(ROOT, "dist", "cli", "main.js"))) {
    log("dist/ missing: building Lambent (npm run build) …");
    execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: "inherit" });
  }
  const dataRoot = mkdtempSync(join(tmpdir(), "lambent-bench-"));
  const runDir = join(BENCH_DIR, "results", meta.date.slice(0, 19).replace(/:/g, "-"));
  const logDir = join(runDir, "logs");
  mkdirSync(logDir, { recursive: true });
  meta.runDir = runDir;
  log(`logs: ${logDir}`);
  const systems = [];
  const status = [];
  /** Throwaway PostgreSQL databases (dropped at the end). */
  const databases = [];
  /** Servers that died while the bench ran: which scenario, how, their last log lines. */
  const failures = [];
  const t0 = Date.now();
  let cleaned;
  const cleanup = () => {
    cleaned ??= (async () => {
      // The servers' own shutdown first (SIGTERM, then SIGKILL to what is left), then a sweep.
      await Promise.all(systems.map((s) => s.stop().catch(() => {})));
      for (const d of databases)
        await d.drop().catch((err) => log(`could not drop ${d.name}: ${err.message}`));
      const left = await sweepLambent({
        root: ROOT,
        dataRoot,
        // Every Lambent server's data dir, also those stopped at start-up (skipped systems).
        dataDirs: readdirSync(dataRoot).map((d) => join(dataRoot, d)),
      });
      for (const l of left) log(`sweep: ${l}`);
      try {
        rmSync(dataRoot, { recursive: true, force: true });
      } catch (err) {
        log(`could not remove ${dataRoot}: ${err.message}`);
      }
    })();
    return cleaned;
  };
  const offInterrupt = onInterrupt(cleanup);
  try {
    const help = lambentHelp();
    const hasPrewarm = /--prewarm\b/.test(help);
    const prewarm = Number(opts.prewarm);
    const variants = [
      { id: "lambent-process", label: "Lambent, process driver", driver: "process", stem: false },
      {
        id: "lambent-process-stem",
        label: `Lambent, process driver, ${prewarm} stem cells`,
        driver: "process",
        stem: true,
      },
      { id: "lambent-bwrap", label: "Lambent, bwrap driver", driver: "bwrap", stem: false },
      {
        id: "lambent-bwrap-stem",
        label: `Lambent, bwrap driver, ${prewarm} stem cells`,
        driver: "bwrap",
        stem: true,
      },
      // Enough stem cells kept for 100 from zero in about a second (--prewarm-min): scale-out only,
      // only when named exactly in --systems (each idle cell ~45 MB RSS).
      ...["process", "bwrap"].map((driver) => ({
        id: `lambent-${driver}-stem32`,
        label: `Lambent, ${driver} driver, 32 stem cells kept (--prewarm-min 32; scale-out only)`,
        driver,
        stem: true,
        prewarmCells: 32,
        optIn: true,
        extraArgs: ["--prewarm-min", "32"],
        scenarios: ["scale"],
      })),
      // The isolated network through a slirp4netns per sandbox (the path before the namespace pool),
      // for comparison: only when named exactly in --systems.
      {
        id: "lambent-bwrap-slirp",
        label: "Lambent, bwrap driver, slirp4netns per sandbox",
        driver: "bwrap",
        stem: false,
        optIn: true,
        extraArgs: ["--sandbox-network", "isolated-slirp"],
      },
      {
        id: "lambent-bwrap-slirp-stem",
        label: `Lambent, bwrap driver, slirp4netns per sandbox, ${prewarm} stem cells`,
        driver: "bwrap",
        stem: true,
        optIn: true,
        extraArgs: ["--sandbox-network", "isolated-slirp"],
      },
    ];
    // The same server recording no metrics, beside lambent-process: what recording costs a warm invoke.
    variants.push({
      id: "lambent-process-nometrics",
      label: "Lambent, process driver, --no-metrics (warm and throughput only)",
      driver: "process",
      stem: false,
      extraArgs: ["--no-metrics"],
      scenarios: ["warm", "throughput"],
    });
    // The same server on PostgreSQL, for the async scenario only (the queue is the store).
    variants.push({
      id: "lambent-process-pg",
      label: "Lambent, process driver, PostgreSQL store (async only)",
      driver: "process",
      stem: false,
      asyncOnly: true,
    });
    let bwrapSkip = null;
    for (const v of variants) {
      if (!wantSystem(v.id)) continue;
      if (v.optIn && !opts.systems?.split(",").some((p) => p.trim() === v.id)) continue;
      if (v.stem && !hasPrewarm) {
        status.push({
          id: v.id,
          label: v.label,
          status: "n/a: `lambent server` has no --prewarm option yet",
        });
        continue;
      }
      if (v.driver === "bwrap" && bwrapSkip) {
        status.push({ id: v.id, label: v.label, status: `skipped: ${bwrapSkip}` });
        continue;
      }
      try {
        const database = v.asyncOnly ? await createBenchDatabase(opts.postgres) : undefined;
        if (database) databases.push(database);
        const sys = await startLambent({
          ...v,
          dataRoot,
          logDir,
          prewarm: hasPrewarm ? (v.stem ? (v.prewarmCells ?? prewarm) : 0) : undefined,
          extraArgs: [...(v.extraArgs ?? []), ...(database ? ["--database", database.url] : [])],
        });
        sys.asyncOnly = v.asyncOnly === true;
        if (v.scenarios) sys.scenarios = v.scenarios;
        if (v.prewarmCells) sys.keepsStemCells = v.prewarmCells;
        systems.push(sys);
        const h = await sys.health();
        if (h.sandbox.driver !== v.driver) {
          systems.pop();
          await sys.stop();
          const reason = `\`--sandbox ${v.driver}\` runs driver '${h.sandbox.driver}' in this build`;
          if (v.driver === "bwrap") bwrapSkip = reason;
          status.push({ id: v.id, label: v.label, status: `skipped: ${reason}` });
          continue;
        }
        const name = await sys.fn("hello");
        const { request } = await import("undici");
        const { signedHeaders } = await import("./lib/sign.mjs");
        const res = await request(sys.origin + sys.path(name), {
          method: "POST",
          body: "{}",
          headers: signedHeaders(sys.origin, sys.path(name), "POST", "{}"),
        });
        const text = await res.body.text();
        if (res.statusCode !== 200 || res.headers["x-amz-function-error"]) {
          systems.pop();
          await sys.stop();
          const reason = `a hello-world invoke failed: ${res.statusCode} ${text.slice(0, 160)}`;
          if (v.driver === "bwrap") bwrapSkip = reason;
          status.push({ id: v.id, label: v.label, status: `skipped: ${reason}` });
          continue;
        }
        status.push({ id: v.id, label: v.label, status: "ok", health: h });
      } catch (err) {
        const reason = String(err.message ?? err)
          .split("\n")
          .filter(Boolean)
          .slice(0, 2)
          .join(" ")
          .slice(0, 200);
        if (v.driver === "bwrap") bwrapSkip = reason;
        status.push({ id: v.id, label: v.label, status: `skipped: ${reason}` });
      }
    }
    const slsVariants = [
      { id: "sls", label: "serverless-offline 13 (default: worker threads)", inProcess: false },
      { id: "sls-inprocess", label: "serverless-offline 13 --useInProcess", inProcess: true },
    ].filter((v) => wantSystem(v.id));
    let slsReady = null;
    if (slsVariants.length) {
      try {
        await ensureServerless(log);
        slsReady = null;
      } catch (err) {
        slsReady = `skipped: could not install serverless: ${String(err.message).split("\n")[0]}`;
      }
    }
    // serverless takes seconds to load: start both modes at once.
    const started = await Promise.allSettled(
      slsVariants.map((v) =>
        slsReady ? Promise.reject(new Error(slsReady)) : startServerless({ ...v, logDir }),
      ),
    );
    started.forEach((r, i) => {
      const v = slsVariants[i];
      if (r.status === "fulfilled") {
        systems.push(r.value);
        status.push({ id: v.id, label: v.label, status: "ok" });
      } else
        status.push({
          id: v.id,
          label: v.label,
          status: `skipped: ${String(r.reason?.message).split("\n")[0]}`,
        });
    });
    systems.push(await startFloor({ logDir }));
    status.push({ id: "floor", label: "floor: bare node:http calling the handler in-process", status: "ok" });
    status.push({ id: "spawn-floor", label: "floor: bare `node` spawn to first stdout line", status: "ok" });
    log(`systems: ${systems.map((s) => s.id).join(", ")} (started in ${Date.now() - t0} ms)`);

    const results = {};
    const alive = () => systems.filter((s) => !s.proc.exitStatus);
    const lambents = () => alive().filter((s) => s.kind === "lambent");
    /** Resolves with the first of `running` that exits on its own (not stopped by the bench). */
    const firstDeath = (running) =>
      Promise.race(
        running.map((s) => s.proc.exited.then(() => (s.proc.stopping ? new Promise(() => {}) : s))),
      );
    /** Marks the systems that died during `scenario` as failed, with their last log lines. */
    const recordDeaths = (scenario, running) => {
      const dead = running.filter((s) => s.proc.exitStatus && !s.proc.stopping && !s.reported);
      for (const s of dead) {
        s.reported = true;
        const { code, signal } = s.proc.exitStatus;
        const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const logFile = s.proc.log ? relative(ROOT, s.proc.log) : undefined;
        failures.push({ system: s.id, scenario, how, log: logFile, lastLines: s.proc.tail(20) });
        const st = status.find((x) => x.id === s.id);
        if (st)
          st.status = `failed: the server ${how} during ${scenario}${logFile ? ` (log: ${logFile})` : ""}`;
        log(`  ${s.id} ${how} during ${scenario}; its last log lines:\n${indent(s.proc.tail(20))}`);
      }
      return dead;
    };
    const step = async (name, fn) => {
      if (!only.has(name)) return;
      const running = alive().filter(
        (s) => (name === "async" || !s.asyncOnly) && (!s.scenarios || s.scenarios.includes(name)),
      );
      log(`${name} …`);
      const s0 = Date.now();
      let death;
      try {
        const work = fn(running);
        // A server that dies mid-scenario ends it now, reported as that server's failure.
        const first = await Promise.race([work.then(() => null), firstDeath(running)]);
        if (first) {
          death = first;
          // Let the scenario's requests to the dead server fail before the next scenario starts.
          await Promise.race([work.catch(() => {}), new Promise((r) => setTimeout(r, 10_000).unref())]);
        } else results[name] = await work;
      } catch (err) {
        if (!running.some((s) => s.proc.exitStatus && !s.proc.stopping)) {
          log(`  ${name} failed: ${err.stack ?? err}`);
          results[name] = { failed: String(err.message ?? err) };
        }
      }
      const dead = recordDeaths(name, running);
      if (death || dead.length > 0) {
        results[name] = {
          failed: `${dead.map((s) => `\`${s.id}\``).join(", ")} died during this scenario (see Failures); not comparable, not shown`,
        };
      }
      log(`  ${name}: ${((Date.now() - s0) / 1000).toFixed(1)} s`);
    };
    await step("warm", (sys) => scenarios.warm(sys, cfg.warm, log));
    await step("payload", (sys) => scenarios.payload(sys, cfg.payload, log));
    await step("throughput", (sys) => scenarios.throughput(sys, cfg.throughput, log));
    await step("cold", (sys) => scenarios.cold(sys, cfg.cold, log));
    // Scale-out and density start from zero environments: drop the functions used so far.
    for (const s of lambents()) {
      for (const fn of ["hello", "echo"]) await s.deleteFn(fn).catch(() => {});
    }
    await step("scale", (sys) => scenarios.scale(sys, cfg.scale, log));
    await step("density", (sys) => scenarios.density(sys, cfg.density, log));
    await step("async", (sys) => scenarios.asyncEvents(sys, cfg.async, log));
    await step("flood", (sys) => scenarios.flood(sys, cfg.flood, log));
    await step("url", (sys) => scenarios.functionUrls(sys, cfg.url, log));
    await step("multi", (sys) => scenarios.multi(sys, cfg.multi, log));
    await step("dev", (sys) => scenarios.devReload(sys, cfg.dev, log));
    // A server that died between scenarios (or after the last) is a failure too.
    recordDeaths("the run (between scenarios)", systems);

    meta.durationS = Math.round((Date.now() - t0) / 1000);
    const report = render({ meta, status, results, failures });
    console.log(report.markdown);
    mkdirSync(join(opts.out, ".."), { recursive: true });
    const json = `${JSON.stringify({ meta, systems: status, results, failures, goals: report.goals }, null, 2)}\n`;
    writeFileSync(opts.out, json);
    writeFileSync(opts.out.replace(/\.json$/, ".md"), `${report.markdown}\n`);
    writeFileSync(join(runDir, "results.json"), json);
    writeFileSync(join(runDir, "results.md"), `${report.markdown}\n`);
    log(`wrote ${opts.out} and ${relative(ROOT, runDir)}/ (${meta.durationS} s)`);
  } finally {
    await cleanup();
    offInterrupt();
  }
}

const indent = (text) =>
  text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
