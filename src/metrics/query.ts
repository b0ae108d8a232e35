/**
 * Reading metrics back: one series (namespace, metric name, exact dimension set) between two
 * times, in periods of whole minutes, as one statistic — Sum, Average, Minimum, Maximum,
 * SampleCount (exact) or a percentile pNN(.NN) (from the log-scale buckets, within ±2%).
 * Only periods that hold data are returned, oldest first. The console's charts and the CloudWatch
 * API (metrics/cloudwatch.ts) both read through here.
 */
import { LambdaError } from "../errors.js";
import type { Store } from "../store/store.js";
import { type Buckets, percentile } from "./histogram.js";
import { dimensionsKey, parseDimensionsKey } from "./recorder.js";

const MINUTE_MS = 60_000;

export const InvalidParameterValue = (m: string) => new LambdaError("InvalidParameterValueException", 400, m);

export type BasicStatistic = "Sum" | "Average" | "Minimum" | "Maximum" | "SampleCount";
const BASIC = new Set<string>(["Sum", "Average", "Minimum", "Maximum", "SampleCount"]);
const PERCENTILE_RE = /^p(\d{1,2}(?:\.\d{1,10})?|100)$/;

/** A statistic as CloudWatch spells it: one of the five, or pNN / pNN.NN. */
export type Statistic = BasicStatistic | { percentile: number };

export function parseStatistic(stat: string): Statistic {
  if (BASIC.has(stat)) return stat as BasicStatistic;
  const m = PERCENTILE_RE.exec(stat);
  if (m) {
    const p = Number(m[1]);
    if (p > 0 && p <= 100) return { percentile: p };
  }
  throw InvalidParameterValue(
    `The statistic ${JSON.stringify(stat).slice(0, 80)} is not supported: use Sum, Average, Minimum, Maximum, SampleCount or a percentile pNN(.NN).`,
  );
}

export interface MetricQuery {
  namespace: string;
  metricName: string;
  dimensions: Record<string, string>;
  /** Epoch ms; rounded down to the minute. */
  start: number;
  /** Epoch ms, exclusive. */
  end: number;
  /** A whole number of minutes, in seconds. */
  periodSeconds: number;
}

/** One period's aggregate. */
export interface PeriodAggregate {
  /** Start of the period, epoch ms. */
  timestamp: number;
  unit: string;
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Present when percentiles were asked for. */
  buckets?: Buckets;
}

export interface MetricSeries {
  timestamps: number[];
  values: number[];
}

export function checkPeriod(periodSeconds: number): void {
  if (!Number.isInteger(periodSeconds) || periodSeconds < 60 || periodSeconds % 60 !== 0) {
    throw InvalidParameterValue(
      "The parameter Period must be a multiple of 60: Lambent keeps metrics at one-minute resolution.",
    );
  }
}

/** The series' periods between start and end (oldest first), with buckets if `withBuckets`. */
export async function aggregatePeriods(
  store: Store,
  q: MetricQuery,
  withBuckets: boolean,
): Promise<PeriodAggregate[]> {
  checkPeriod(q.periodSeconds);
  const start = q.start - (((q.start % MINUTE_MS) + MINUTE_MS) % MINUTE_MS);
  const periodMs = q.periodSeconds * 1000;
  if (!(q.end > start)) return [];
  const dims = dimensionsKey(q.dimensions);
  const rows = await store.db
    .selectFrom("metric_data")
    .select(["minute", "unit", "sample_count", "sum", "min", "max"])
    .where("namespace", "=", q.namespace)
    .where("metric_name", "=", q.metricName)
    .where("dimensions", "=", dims)
    .where("minute", ">=", start)
    .where("minute", "<", q.end)
    .orderBy("minute")
    .execute();
  const periods = new Map<number, PeriodAggregate>();
  const periodOf = (minute: number) => start + Math.floor((minute - start) / periodMs) * periodMs;
  for (const r of rows) {
    const at = periodOf(r.minute);
    const p = periods.get(at);
    if (!p) {
      periods.set(at, {
        timestamp: at,
        unit: r.unit,
        count: r.sample_count,
        sum: r.sum,
        min: r.min,
        max: r.max,
        ...(withBuckets ? { buckets: new Map() } : {}),
      });
    } else {
      p.count += r.sample_count;
      p.sum += r.sum;
      p.min = Math.min(p.min, r.min);
      p.max = Math.max(p.max, r.max);
    }
  }
  if (withBuckets && rows.length > 0) {
    const buckets = await store.db
      .selectFrom("metric_buckets")
      .select(["minute", "bucket", "count"])
      .where("namespace", "=", q.namespace)
      .where("metric_name", "=", q.metricName)
      .where("dimensions", "=", dims)
      .where("minute", ">=", start)
      .where("minute", "<", q.end)
      .execute();
    for (const b of buckets) {
      const into = periods.get(periodOf(b.minute))?.buckets;
      if (into) into.set(b.bucket, (into.get(b.bucket) ?? 0) + b.count);
    }
  }
  return [...periods.values()].sort((a, b) => a.timestamp - b.timestamp);
}

/** A statistic of one period (undefined: no value, e.g. a percentile of nothing). */
export function statisticOf(p: PeriodAggregate, stat: Statistic): number | undefined {
  switch (stat) {
    case "Sum":
      return p.sum;
    case "Average":
      return p.count > 0 ? p.sum / p.count : undefined;
    case "Minimum":
      return p.min;
    case "Maximum":
      return p.max;
    case "SampleCount":
      return p.count;
    default:
      return p.buckets ? percentile(p.buckets, stat.percentile, p.min, p.max) : undefined;
  }
}

/** One statistic of one series over time: what a chart draws. */
export async function queryMetric(store: Store, q: MetricQuery & { stat: string }): Promise<MetricSeries> {
  const stat = parseStatistic(q.stat);
  const periods = await aggregatePeriods(store, q, typeof stat === "object");
  const out: MetricSeries = { timestamps: [], values: [] };
  for (const p of periods) {
    const v = statisticOf(p, stat);
    if (v === undefined) continue;
    out.timestamps.push(p.timestamp);
    out.values.push(v);
  }
  return out;
}

export interface DimensionFilter {
  name: string;
  value?: string;
}

export interface ListedMetric {
  namespace: string;
  metricName: string;
  dimensions: Record<string, string>;
}

/**
 * The series with data since `since` (epoch ms), filtered by namespace, metric name and
 * dimensions (each filter's name must be in the series' set, with its value when one is given),
 * ordered by namespace, metric name, dimensions.
 */
export async function listMetrics(
  store: Store,
  f: { namespace?: string; metricName?: string; dimensions?: DimensionFilter[]; since: number },
): Promise<ListedMetric[]> {
  let query = store.db
    .selectFrom("metric_data")
    .select(["namespace", "metric_name", "dimensions"])
    .distinct()
    .where("minute", ">=", f.since);
  if (f.namespace !== undefined) query = query.where("namespace", "=", f.namespace);
  if (f.metricName !== undefined) query = query.where("metric_name", "=", f.metricName);
  const rows = await query.orderBy("namespace").orderBy("metric_name").orderBy("dimensions").execute();
  const out: ListedMetric[] = [];
  for (const r of rows) {
    const dims = parseDimensionsKey(r.dimensions);
    const matches = (f.dimensions ?? []).every((d) =>
      d.value === undefined
        ? Object.hasOwn(dims, d.name)
        : Object.hasOwn(dims, d.name) && dims[d.name] === d.value,
    );
    if (matches) out.push({ namespace: r.namespace, metricName: r.metric_name, dimensions: dims });
  }
  return out;
}
