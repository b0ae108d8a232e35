/**
 * Recording metrics without slowing the invoke path: every sample is added to an in-memory tally
 * of its series and minute (count, sum, min, max, log-scale buckets); a timer folds the tallies and
 * writes them in one transaction every few seconds, as upserts that add to what is stored (servers
 * sharing a PostgreSQL add up). An invoke costs one map lookup: its tally per (function, resource,
 * executed version) is expanded into AWS/Lambda's series — no dimensions, FunctionName,
 * FunctionName+Resource, FunctionName+Resource+ExecutedVersion — only when folded.
 * Rows older than the retention are deleted in bounded batches from the same timer.
 */
import { sql } from "kysely";
import type { Store } from "../store/store.js";
import { type Buckets, bucketOf } from "./histogram.js";

export const LAMBDA_NAMESPACE = "AWS/Lambda";
const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** Rows per insert statement (9 parameters each: far under SQLite's limit). */
const ROWS_PER_INSERT = 200;
/** Minutes deleted per statement. */
const PRUNE_MINUTES = 10;
const PRUNE_EVERY_MS = 10 * MINUTE_MS;

export type Unit = "Count" | "Milliseconds" | "Percent" | "None" | string;

/** A dimension set in canonical form: `[[name, value], …]` sorted by name, as JSON. */
export function dimensionsKey(dimensions: Record<string, string>): string {
  return JSON.stringify(
    Object.keys(dimensions)
      .sort()
      .map((k) => [k, dimensions[k]]),
  );
}

export function parseDimensionsKey(key: string): Record<string, string> {
  // fromEntries defines own properties: a dimension named "__proto__" stays a dimension.
  return Object.fromEntries(JSON.parse(key) as Array<[string, string]>);
}

/** Values of one series in one minute. */
export interface Tally {
  namespace: string;
  metric: string;
  dimensions: string;
  minute: number;
  unit: Unit;
  count: number;
  sum: number;
  min: number;
  max: number;
  buckets: Buckets;
}

/** One (function, resource, executed version)'s invokes in one minute. */
export interface InvokeTally {
  fn: string;
  resource: string | undefined;
  version: string;
  minute: number;
  invocations: number;
  errors: number;
  coldStarts: number;
  durationSum: number;
  durationMin: number;
  durationMax: number;
  durations: Buckets;
}

/**
 * Something that wants what each fold took in (the Prometheus view keeps running totals): the
 * invoke tallies as recorded (one per function, resource and executed version) and every other
 * series' tallies (AWS/Lambda's expansion of the invokes included).
 */
export type FoldObserver = (folded: { invokes: readonly InvokeTally[]; series: readonly Tally[] }) => void;

export interface RecorderOptions {
  /** Days rows are kept (0: forever). */
  retentionDays: number;
  /** How often tallies are written. */
  flushIntervalMs?: number;
  /** Off: every record call returns at once (the bench's "metrics off" row). */
  enabled?: boolean;
  now?: () => number;
  log?: (message: string) => void;
}

function addTo(t: Tally, value: number, times = 1): void {
  t.count += times;
  t.sum += value * times;
  if (value < t.min) t.min = value;
  if (value > t.max) t.max = value;
  const b = bucketOf(value);
  t.buckets.set(b, (t.buckets.get(b) ?? 0) + times);
}

export class MetricsRecorder {
  readonly enabled: boolean;
  private invokes = new Map<string, InvokeTally>();
  private series = new Map<string, Tally>();
  private readonly samplers: Array<() => void> = [];
  private readonly observers: FoldObserver[] = [];
  private readonly writeObservers: Array<(ms: number) => void> = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private lastPrune = 0;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly options: RecorderOptions,
  ) {
    this.enabled = options.enabled ?? true;
    this.now = options.now ?? Date.now;
  }

  /** Called before every fold: gauges (concurrency) record their samples here. */
  addSampler(sample: () => void): void {
    this.samplers.push(sample);
  }

  onFold(observer: FoldObserver): void {
    this.observers.push(observer);
  }

  /** Called with the milliseconds each batched store write took (the Prometheus view's store latency). */
  onStoreWrite(observer: (ms: number) => void): void {
    this.writeObservers.push(observer);
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    const every = this.options.flushIntervalMs ?? 5000;
    this.timer = setInterval(() => {
      void this.flush().catch((err: unknown) => this.options.log?.(`metrics flush failed: ${String(err)}`));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  /** One invoke that ran (an answer or a function error): Invocations, Errors, Duration. */
  invocation(
    fn: string,
    resource: string | undefined,
    version: string,
    durationMs: number,
    error: boolean,
    coldStart: boolean,
  ): void {
    if (!this.enabled) return;
    const minute = this.now() - (this.now() % MINUTE_MS);
    const key = `${fn}\u0000${resource ?? ""}\u0000${version}\u0000${minute}`;
    let t = this.invokes.get(key);
    if (!t) {
      t = {
        fn,
        resource,
        version,
        minute,
        invocations: 0,
        errors: 0,
        coldStarts: 0,
        durationSum: 0,
        durationMin: Number.POSITIVE_INFINITY,
        durationMax: Number.NEGATIVE_INFINITY,
        durations: new Map(),
      };
      this.invokes.set(key, t);
    }
    t.invocations++;
    if (error) t.errors++;
    if (coldStart) t.coldStarts++;
    t.durationSum += durationMs;
    if (durationMs < t.durationMin) t.durationMin = durationMs;
    if (durationMs > t.durationMax) t.durationMax = durationMs;
    const b = bucketOf(durationMs);
    t.durations.set(b, (t.durations.get(b) ?? 0) + 1);
  }

  /**
   * A sample of an AWS/Lambda metric about one function (and the alias or version it was called
   * through): recorded under FunctionName and, when qualified, FunctionName+Resource.
   */
  lambda(
    metric: string,
    fn: string,
    qualifier: string | undefined,
    value: number,
    unit: Unit = "Count",
  ): void {
    if (!this.enabled) return;
    this.record(LAMBDA_NAMESPACE, metric, dimensionsKey({ FunctionName: fn }), value, unit);
    if (qualifier !== undefined && qualifier !== "$LATEST") {
      this.record(
        LAMBDA_NAMESPACE,
        metric,
        dimensionsKey({ FunctionName: fn, Resource: `${fn}:${qualifier}` }),
        value,
        unit,
      );
    }
  }

  /** A sample of one series (`dimensions` from dimensionsKey); `at` (epoch ms) defaults to now. */
  record(
    namespace: string,
    metric: string,
    dimensions: string,
    value: number,
    unit: Unit,
    at?: number,
  ): void {
    if (!this.enabled || !Number.isFinite(value)) return;
    const time = at ?? this.now();
    this.tally(namespace, metric, dimensions, time - (time % MINUTE_MS), unit, value, 1);
  }

  /** Several samples of one series at one time (`at`: epoch ms): one lookup for them all (EMF). */
  recordAll(
    namespace: string,
    metric: string,
    dimensions: string,
    values: readonly number[],
    unit: Unit,
    at: number,
  ): void {
    if (!this.enabled) return;
    const t = this.tally(namespace, metric, dimensions, at - (at % MINUTE_MS), unit, 0, 0);
    for (const v of values) if (Number.isFinite(v)) addTo(t, v);
  }

  private tally(
    namespace: string,
    metric: string,
    dimensions: string,
    minute: number,
    unit: Unit,
    value: number,
    times: number,
  ): Tally {
    const key = `${namespace}\u0000${metric}\u0000${dimensions}\u0000${minute}`;
    let t = this.series.get(key);
    if (!t) {
      t = {
        namespace,
        metric,
        dimensions,
        minute,
        unit,
        count: 0,
        sum: 0,
        min: Number.POSITIVE_INFINITY,
        max: Number.NEGATIVE_INFINITY,
        buckets: new Map(),
      };
      this.series.set(key, t);
    }
    if (times > 0) addTo(t, value, times);
    return t;
  }

  /** Merge a summary (count, sum, min, max, buckets) into a series' minute. */
  private merge(
    dimensions: string,
    metric: string,
    minute: number,
    unit: Unit,
    s: { count: number; sum: number; min: number; max: number; buckets: Buckets },
  ): void {
    const t = this.tally(LAMBDA_NAMESPACE, metric, dimensions, minute, unit, 0, 0);
    t.count += s.count;
    t.sum += s.sum;
    if (s.min < t.min) t.min = s.min;
    if (s.max > t.max) t.max = s.max;
    for (const [b, n] of s.buckets) t.buckets.set(b, (t.buckets.get(b) ?? 0) + n);
  }

  /**
   * Expand invoke tallies into their series; hand what was folded to the observers. Synchronous.
   * `sample`: run the samplers first (the flush timer does; a Prometheus scrape folds without them,
   * so the sampled gauges keep their per-interval meaning).
   */
  fold(sample = true): Tally[] {
    if (sample) for (const s of this.samplers) s();
    const invokes = this.invokes;
    this.invokes = new Map();
    const invokeTallies = [...invokes.values()];
    const dimensionCache = new Map<string, string[]>();
    for (const t of invokeTallies) {
      const id = `${t.fn}\u0000${t.resource ?? ""}\u0000${t.version}`;
      let sets = dimensionCache.get(id);
      if (!sets) {
        sets = ["[]", dimensionsKey({ FunctionName: t.fn })];
        if (t.resource !== undefined) {
          sets.push(dimensionsKey({ FunctionName: t.fn, Resource: t.resource }));
          if (t.resource !== `${t.fn}:${t.version}`) {
            sets.push(
              dimensionsKey({ FunctionName: t.fn, Resource: t.resource, ExecutedVersion: t.version }),
            );
          }
        }
        dimensionCache.set(id, sets);
      }
      const ones = new Map([[bucketOf(1), t.invocations]]);
      const errors = new Map<number, number>();
      if (t.errors > 0) errors.set(bucketOf(1), t.errors);
      if (t.invocations > t.errors) errors.set(bucketOf(0), t.invocations - t.errors);
      for (const dims of sets) {
        this.merge(dims, "Invocations", t.minute, "Count", {
          count: t.invocations,
          sum: t.invocations,
          min: 1,
          max: 1,
          buckets: ones,
        });
        this.merge(dims, "Errors", t.minute, "Count", {
          count: t.invocations,
          sum: t.errors,
          min: t.errors > 0 ? (t.errors < t.invocations ? 0 : 1) : 0,
          max: t.errors > 0 ? 1 : 0,
          buckets: errors,
        });
        this.merge(dims, "Duration", t.minute, "Milliseconds", {
          count: t.invocations,
          sum: t.durationSum,
          min: t.durationMin,
          max: t.durationMax,
          buckets: t.durations,
        });
      }
    }
    const folded = [...this.series.values()];
    this.pending.push(...folded);
    this.series = new Map();
    for (const o of this.observers) o({ invokes: invokeTallies, series: folded });
    return folded;
  }

  private pending: Tally[] = [];

  /** Fold, then write everything folded so far in one transaction. Resolves once it is stored. */
  async flush(): Promise<void> {
    if (!this.enabled) return;
    while (this.flushing) await this.flushing;
    this.fold();
    const batch = this.pending;
    this.pending = [];
    this.flushing = (async () => {
      if (batch.length > 0) {
        const started = performance.now();
        try {
          await this.write(batch);
        } catch (err) {
          // Keep the samples for the next flush rather than lose them to a passing store error.
          this.pending.unshift(...batch);
          throw err;
        }
        const ms = performance.now() - started;
        for (const o of this.writeObservers) o(ms);
      }
      if (this.now() - this.lastPrune >= PRUNE_EVERY_MS) {
        this.lastPrune = this.now();
        await this.prune();
      }
    })().finally(() => {
      this.flushing = null;
    });
    await this.flushing;
  }

  private async write(batch: Tally[]): Promise<void> {
    const least = this.store.engine === "postgres" ? "least" : "min";
    const greatest = this.store.engine === "postgres" ? "greatest" : "max";
    const buckets = batch.flatMap((t) =>
      [...t.buckets].map(([bucket, count]) => ({
        namespace: t.namespace,
        metric_name: t.metric,
        dimensions: t.dimensions,
        minute: t.minute,
        bucket,
        count,
      })),
    );
    await this.store.db.transaction().execute(async (tx) => {
      for (let i = 0; i < batch.length; i += ROWS_PER_INSERT) {
        await tx
          .insertInto("metric_data")
          .values(
            batch.slice(i, i + ROWS_PER_INSERT).map((t) => ({
              namespace: t.namespace,
              metric_name: t.metric,
              dimensions: t.dimensions,
              minute: t.minute,
              unit: t.unit,
              sample_count: t.count,
              sum: t.sum,
              min: t.min,
              max: t.max,
            })),
          )
          .onConflict((oc) =>
            oc.columns(["namespace", "metric_name", "dimensions", "minute"]).doUpdateSet({
              sample_count: sql`metric_data.sample_count + excluded.sample_count`,
              sum: sql`metric_data.sum + excluded.sum`,
              min: sql`${sql.raw(least)}(metric_data.min, excluded.min)`,
              max: sql`${sql.raw(greatest)}(metric_data.max, excluded.max)`,
            }),
          )
          .execute();
      }
      for (let i = 0; i < buckets.length; i += ROWS_PER_INSERT) {
        await tx
          .insertInto("metric_buckets")
          .values(buckets.slice(i, i + ROWS_PER_INSERT))
          .onConflict((oc) =>
            oc
              .columns(["namespace", "metric_name", "dimensions", "minute", "bucket"])
              .doUpdateSet({ count: sql`metric_buckets.count + excluded.count` }),
          )
          .execute();
      }
    });
  }

  /** Delete minutes past the retention, in bounded batches. Returns how many rows went. */
  async prune(): Promise<number> {
    const days = this.options.retentionDays;
    if (!days || days <= 0) return 0;
    const cutoff = this.now() - days * DAY_MS;
    let deleted = 0;
    for (const table of ["metric_buckets", "metric_data"] as const) {
      for (;;) {
        const result =
          await sql`delete from ${sql.table(table)} where minute in (select distinct minute from ${sql.table(table)} where minute < ${cutoff} limit ${PRUNE_MINUTES})`.execute(
            this.store.db,
          );
        const n = Number(result.numAffectedRows ?? 0);
        deleted += n;
        if (n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    return deleted;
  }
}
