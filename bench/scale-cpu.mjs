/**
 * 100 concurrent invokes from zero on one Lambent server, with the CPU it cost: the server's own
 * and its reaped children's (runtimes, sandbox helpers), from /proc/PID/stat, over each round until
 * every environment is gone. Prints one JSON line per round.
 *
 *   node bench/scale-cpu.mjs <process|bwrap> <prewarm> [concurrency=100] [rounds=1] [server args…]
 *
 * With stem cells (prewarm > 0), one invoke of another function of the same runtime first makes the
 * runtime one "in use" (so `--prewarm-min` cells are kept for it), and each round starts once the
 * waiting cells stop growing (at most 30 s): `stemCellsReady` says how many the burst found.
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { signedHeaders } from "./lib/sign.mjs";
import { startLambent } from "./lib/systems.mjs";

const [driver = "process", prewarm = "0", concurrency = "100", rounds = "1", ...extra] =
  process.argv.slice(2);
const TICKS_PER_S = 100;

/** Stem cells waiting for the bench's runtime (nodejs20.x), from the server's /metrics. */
async function stemCells(sys) {
  const headers = signedHeaders(sys.origin, "/metrics", "GET", "");
  const res = await fetch(`${sys.origin}/metrics`, { headers });
  const text = await res.text();
  const m = /^lambent_stem_cells\{runtime="nodejs20\.x"\} (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Waits until the waiting cells have not grown for 2 s (at most 30 s); returns how many wait. */
async function settledStemCells(sys) {
  let n = await stemCells(sys);
  let since = performance.now();
  const t0 = since;
  while (performance.now() - since < 2000 && performance.now() - t0 < 30_000) {
    await sleep(250);
    const m = await stemCells(sys);
    if (m !== n) since = performance.now();
    n = m;
  }
  return n;
}

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
  dataRoot: "/tmp/lambent-scale-cpu",
  extraArgs: extra,
});
try {
  // Let stem cells (if any) boot first.
  await sleep(4000);
  if (Number(prewarm) > 0) {
    const warm = await sys.fn("sleep", "warm");
    const body = '{"ms":1}';
    await fetch(`${sys.origin}${sys.path(warm)}`, {
      method: "POST",
      body,
      headers: signedHeaders(sys.origin, sys.path(warm), "POST", body, {
        "content-type": "application/json",
      }),
    }).then((r) => r.text());
    await sys.deleteFn(warm);
  }
  for (let r = 0; r < Number(rounds); r++) {
    const stemCellsReady = Number(prewarm) > 0 ? await settledStemCells(sys) : 0;
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
}
