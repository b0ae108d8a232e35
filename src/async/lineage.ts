/**
 * Recursive-loop detection, as Lambda does it: every invocation carries, in
 * its X-Ray trace header, a `Lineage` field counting how many times each
 * function ran in this chain of requests. The runtime puts the header in
 * `_X_AMZN_TRACE_ID`; the AWS SDK sends it back as `X-Amzn-Trace-Id` when the
 * function invokes another one, so the count follows the chain. An
 * asynchronous invocation that would run a function for the 17th time in one
 * chain is stopped (unless the function's RecursiveLoop is `Allow`).
 *
 * Lambent's field: `Lineage=<fn hash>:<count>[,<fn hash>:<count>…]`, the hash
 * being the first 8 hex digits of sha256(function name).
 */
import { createHash } from "node:crypto";

/** The header (or broker message header / stream field) that carries the trace and its Lineage. */
export const TRACE_HEADER = "X-Amzn-Trace-Id";

/** Lambda stops a chain that loops back to the same function more than 16 times. */
export const MAX_RECURSIVE_INVOCATIONS = 16;

export type Lineage = Record<string, number>;

export function functionHash(name: string): string {
  return createHash("sha256").update(name).digest("hex").slice(0, 8);
}

/** The Lineage counts of an X-Amzn-Trace-Id header (empty when absent or malformed). */
export function parseLineage(header: string | undefined): Lineage {
  const out: Lineage = {};
  if (!header) return out;
  const field = header
    .split(";")
    .map((p) => p.trim())
    .find((p) => p.startsWith("Lineage="));
  if (!field) return out;
  for (const entry of field.slice("Lineage=".length).split(",").slice(0, 64)) {
    const m = /^([0-9a-f]{8}):(\d{1,4})$/.exec(entry.trim());
    if (m?.[1] && m[2]) out[m[1]] = Math.max(out[m[1]] ?? 0, Number(m[2]));
  }
  return out;
}

/** The lineage of a run of `name`: one more invocation of it in this chain. */
export function nextLineage(lineage: Lineage | undefined, name: string): Lineage {
  const h = functionHash(name);
  return { ...(lineage ?? {}), [h]: (lineage?.[h] ?? 0) + 1 };
}

/** How many times `name` has run in this chain (including the run `lineage` describes). */
export function countOf(lineage: Lineage | undefined, name: string): number {
  return lineage?.[functionHash(name)] ?? 0;
}

/** One chain's lineage from several (a batch of broker records): the most runs seen of each function. */
export function mergeLineages(lineages: Lineage[]): Lineage {
  const out: Lineage = {};
  for (const l of lineages) for (const [h, c] of Object.entries(l)) out[h] = Math.max(out[h] ?? 0, c);
  return out;
}

export function formatLineage(lineage: Lineage): string {
  const entries = Object.entries(lineage);
  return entries.length === 0 ? "" : `Lineage=${entries.map(([h, c]) => `${h}:${c}`).join(",")}`;
}
