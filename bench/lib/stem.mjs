/**
 * Stem cells before a burst: a Lambent server keeps `--prewarm-min` cells only for a runtime in use
 * (one that had a cold start), so a bench that wants them ready invokes another function of the same
 * runtime once, then waits until the cells waiting stop growing.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { signedHeaders } from "./sign.mjs";

/** Stem cells waiting for `runtime`, from the server's /metrics. */
export async function stemCells(sys, runtime = "nodejs20.x") {
  const headers = signedHeaders(sys.origin, "/metrics", "GET", "");
  const text = await (await fetch(`${sys.origin}/metrics`, { headers })).text();
  const re = new RegExp(`^lambent_stem_cells\\{runtime="${runtime.replace(".", "\\.")}"\\} (\\d+)`, "m");
  const m = re.exec(text);
  return m ? Number(m[1]) : 0;
}

/** One cold start of the bench's runtime (a throwaway `sleep` function), so the runtime is in use. */
export async function useRuntime(sys) {
  const name = await sys.fn("sleep", "stem-warm");
  const body = '{"ms":1}';
  const path = sys.path(name);
  const headers = signedHeaders(sys.origin, path, "POST", body, { "content-type": "application/json" });
  await (await fetch(`${sys.origin}${path}`, { method: "POST", body, headers })).text();
  await sys.deleteFn(name);
}

/**
 * Waits until `want` cells wait (at most 60 s), or, without `want`, until their number has not
 * changed for 5 s (at most 60 s); returns how many wait.
 */
export async function settledStemCells(sys, want) {
  let n = await stemCells(sys);
  let since = performance.now();
  const t0 = since;
  while (performance.now() - t0 < 60_000 && (want ? n < want : performance.now() - since < 5000)) {
    await sleep(250);
    const m = await stemCells(sys);
    if (m !== n) since = performance.now();
    n = m;
  }
  return n;
}
