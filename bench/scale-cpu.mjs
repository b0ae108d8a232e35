/**
 * 100 concurrent invokes from zero on one Lambent server, with the CPU it cost: the server's own
 * and its reaped children's (runtimes, sandbox helpers), from /proc/PID/stat, over each round until
 * every environment is gone. Prints one JSON line per round.
 *
 *   node bench/scale-cpu.mjs <process|bwrap> <prewarm> [concurrency=100] [rounds=1] [server args…]
 *
 * With stem cells (prewarm > 0), one invoke of another function of the same runtime first makes the
 * runtime one "in use" (so `--prewarm-min` cells are kept for it), and each round starts once that
 * many cells wait (without --prewarm-min: once their number settles): `stemCellsReady` says how many
 * the burst found.
 */
import { readFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { signedHeaders } from "./lib/sign.mjs";
import { settledStemCells, useRuntime } from "./lib/stem.mjs";
import { startLambent } from "./lib/systems.mjs";

const [driver = "process", prewarm = "0", concurrency = "100", rounds = "1", ...extra] =
  process.argv.slice(2);
const TICKS_PER_S = 100;
/** Cells to wait for before each round: --prewarm-min's, when given (else until their number settles). */
const minAt = extra.indexOf("--prewarm-min");
const wantCells = minAt === -1 ? undefined : Math.min(Number(prewarm), Number(extra[minAt + 1]));
const DATA_ROOT = `/tmp/lambent-scale-cpu-${process.pid}`;

/** CPU ms of a process itself and of its waited-for children. */
function cpu(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const ms = (i) => (Number(f[i]) * 1000) / TICKS_PER_S;
  return { self: ms(11) + ms(12), children: ms(13) + ms(14) };
}

const sys = await startLambent({
  id: `scale-cpu-${driver}-${prewarm}`,
  label: "scale-cpu",
  driver,
  prewarm: Number(prewarm),
  // One data root per run: two runs of the same driver and prewarm (another session's) must not share one.
  dataRoot: DATA_ROOT,
  extraArgs: extra,
});
try {
  // Let stem cells (if any) boot first.
  await sleep(4000);
  if (Number(prewarm) > 0) await useRuntime(sys);
  for (let r = 0; r < Number(rounds); r++) {
    const stemCellsReady = Number(prewarm) > 0 ? await settledStemCells(sys, wantCells) : 0;
    const name = await sys.fn("sleep", `scale${r}`);
    const path = sys.path(name);
    const before = cpu(sys.pid);
    const pool = new Pool(sys.origin, { connections: Number(concurrency) });
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: Number(concurrency) }, async () => {
        const body = '{"ms":200}';
        const headers = signedHeaders(sys.origin, path, "POST", body, { "content-type": "application/json" });
        const res = await pool.request({ path, method: "POST", body, headers });
        const text = await res.body.text();
        return { ok: res.statusCode === 200 && !res.headers["x-amz-function-error"], text };
      }),
    );
    const wallMs = Math.round(performance.now() - t0);
    await pool.close();
    const environments = (await sys.health()).environments.environments;
    await sys.deleteFn(name);
    for (let i = 0; i < 150 && (await sys.health()).environments.environments > 0; i++) await sleep(100);
    await sleep(500);
    const after = cpu(sys.pid);
    const failed = results.filter((x) => !x.ok);
    const serverCpuMs = after.self - before.self;
    const childrenCpuMs = after.children - before.children;
    console.log(
      JSON.stringify({
        driver,
        prewarm: Number(prewarm),
        concurrency: Number(concurrency),
        wallMs,
        environments,
        stemCellsReady,
        errors: failed.length,
        ...(failed.length ? { firstError: failed[0].text.slice(0, 120) } : {}),
        serverCpuMs,
        childrenCpuMs,
        cpuPerEnvironmentMs: Math.round((serverCpuMs + childrenCpuMs) / environments),
      }),
    );
  }
} finally {
  await sys.stop();
  rmSync(DATA_ROOT, { recursive: true, force: true });
}
