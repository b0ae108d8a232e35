#!/usr/bin/env node
/**
 * What an isolated bwrap sandbox's network costs, pooled namespaces against a slirp4netns per
 * sandbox, measured in CPU rather than wall time (so it holds on a loaded machine):
 *
 *   node bench/netns-cost.mjs [--cold 8] [--rounds 2]
 *
 * Per round and mode (`isolated`, `isolated-slirp`, alternating): a bwrap server without stem cells,
 * `--cold` functions created and invoked once each, one after another. Reported per cold start:
 * wall time p50, the CPU (user + system) of the server and everything below it (live processes'
 * own and reaped children's time, so the pool's background `ip` runs count too); then the idle
 * environments' processes by command, with their RSS.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { commOf, descendants, memoryOf } from "./lib/procs.mjs";
import { signedHeaders } from "./lib/sign.mjs";
import { startLambent } from "./lib/systems.mjs";

const { values: opts } = parseArgs({
  options: { cold: { type: "string", default: "8" }, rounds: { type: "string", default: "2" } },
});

/** utime + stime + cutime + cstime of one process, ms. */
function cpuWithChildren(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
  } catch {
    return 0;
  }
}

function treeCpu(root) {
  return [root, ...descendants(root)].reduce((sum, pid) => sum + cpuWithChildren(pid), 0);
}

async function invoke(sys, name) {
  const path = sys.path(name);
  const started = performance.now();
  const res = await fetch(`${sys.origin}${path}`, {
    method: "POST",
    headers: signedHeaders(sys.origin, path, "POST", "{}"),
    body: "{}",
  });
  await res.text();
  if (res.status !== 200) throw new Error(`invoke ${name}: ${res.status}`);
  return performance.now() - started;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = { isolated: [], "isolated-slirp": [] };
const dataRoot = mkdtempSync(join(tmpdir(), "lambent-netns-cost-"));
try {
  for (let round = 0; round < Number(opts.rounds); round++) {
    for (const mode of Object.keys(results)) {
      const sys = await startLambent({
        id: `${mode}-${round}`,
        label: mode,
        driver: "bwrap",
        prewarm: 0,
        dataRoot,
        extraArgs: ["--sandbox-network", mode],
      });
      try {
        const names = [];
        for (let i = 0; i < Number(opts.cold); i++) names.push(await sys.fn("hello", `cold-${i}`));
        // The pool's first namespaces are made at start: let them settle before counting.
        await new Promise((r) => setTimeout(r, 2000));
        const cpuBefore = treeCpu(sys.pid);
        const walls = [];
        for (const name of names) walls.push(await invoke(sys, name));
        const cpuMs = (treeCpu(sys.pid) - cpuBefore) / names.length;
        const procs = {};
        for (const pid of descendants(sys.pid)) {
          const comm = commOf(pid);
          procs[comm] ??= { count: 0, rssMb: 0 };
          const p = procs[comm];
          p.count++;
          p.rssMb += memoryOf(pid).rss / 1e6;
        }
        results[mode].push({ wallP50: median(walls), cpuMs, procs });
        console.error(
          `${mode} round ${round}: p50 ${median(walls).toFixed(0)} ms, CPU ${cpuMs.toFixed(0)} ms/start`,
        );
      } finally {
        await sys.stop();
      }
    }
  }
} finally {
  rmSync(dataRoot, { recursive: true, force: true });
}
const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
console.log(`cold starts: ${opts.cold} per round, ${opts.rounds} rounds; load average at the end ${load}\n`);
console.log("| mode | wall p50 per round (ms) | CPU per cold start, server tree (ms) |");
console.log("|---|---:|---:|");
for (const [mode, rounds] of Object.entries(results)) {
  console.log(
    `| ${mode} | ${rounds.map((r) => r.wallP50.toFixed(0)).join(" / ")} | ${rounds.map((r) => r.cpuMs.toFixed(0)).join(" / ")} |`,
  );
}
for (const [mode, rounds] of Object.entries(results)) {
  const last = rounds.at(-1);
  if (!last) continue;
  const per = Object.entries(last.procs)
    .map(([comm, p]) => `${comm} ×${p.count} (${(p.rssMb / Number(opts.cold)).toFixed(1)} MB/env)`)
    .join(", ");
  console.log(`\n${mode}, processes below the server with ${opts.cold} idle environments: ${per}`);
}
