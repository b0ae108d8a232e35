/**
 * Prometheus' text format parsed by `parse-prometheus-text-format` (prom2json's shape), typed. The
 * parser folds a histogram family's samples into one (dropping labels, `_sum` and `_count` of
 * labelled series), so histograms are read from a second parse with their TYPE lines left out:
 * there `<name>_bucket`, `_sum` and `_count` are plain families with their labels.
 */
import { createRequire } from "node:module";

export interface PromSample {
  labels?: Record<string, string>;
  value?: string;
  /** Histograms: cumulative counts by `le`. */
  buckets?: Record<string, string>;
  count?: string;
  sum?: string;
}

export interface PromFamily {
  name: string;
  help: string;
  type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
  metrics: PromSample[];
}

const parse = createRequire(import.meta.url)("parse-prometheus-text-format") as (
  text: string,
) => PromFamily[];

export function parsePrometheus(text: string): Map<string, PromFamily> {
  const families = new Map(parse(text).map((f) => [f.name, f]));
  const untypedHistograms = text
    .split("\n")
    .filter((l) => !/^# TYPE \S+ histogram$/.test(l))
    .join("\n");
  for (const f of parse(untypedHistograms)) {
    if (/_(bucket|sum|count)$/.test(f.name) && !families.has(f.name)) families.set(f.name, f);
  }
  return families;
}

/** One labelled histogram series: count, sum and cumulative buckets by `le`. */
export function histogramOf(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string>,
): { count: number; sum: number; buckets: Map<string, number> } | undefined {
  const count = sampleOf(families, `${name}_count`, labels);
  const sum = sampleOf(families, `${name}_sum`, labels);
  if (count?.value === undefined || sum?.value === undefined) return undefined;
  const buckets = new Map<string, number>();
  for (const m of families.get(`${name}_bucket`)?.metrics ?? []) {
    const l = m.labels ?? {};
    if (Object.entries(labels).every(([k, v]) => (l[k] ?? "") === v) && l.le !== undefined) {
      buckets.set(l.le, Number(m.value));
    }
  }
  return { count: Number(count.value), sum: Number(sum.value), buckets };
}

/** The sample of a family whose labels include `labels` (exactly one must match). */
export function sampleOf(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string>,
): PromSample | undefined {
  const hits = (families.get(name)?.metrics ?? []).filter((m) =>
    Object.entries(labels).every(([k, v]) => (m.labels?.[k] ?? "") === v),
  );
  if (hits.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${hits.length} samples`);
  return hits[0];
}
