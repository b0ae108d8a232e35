/**
 * The Prometheus view (`GET /metrics`, prom-client's registry and text format): running totals of
 * the AWS/Lambda series the recorder folds, plus gauges read at scrape time and the platform's own.
 *
 * Nothing here runs on the invoke path: the recorder's fold (every flush, and at each scrape so a
 * scrape sees every invoke that finished before it) hands over its tallies, one per function,
 * resource and executed version, and the totals grow from those. Labels are bounded by what the
 * store holds (function names, their aliases and versions) — never a request id.
 *
 * - `lambda_invocations_total`, `lambda_errors_total`, `lambda_duration_seconds` (histogram),
 *   `lambent_cold_starts_total`: labels `function_name`, `resource` (`fn:alias` or `fn:version` the
 *   call named; empty for unqualified calls), `executed_version`.
 * - the other AWS/Lambda counts (throttles, async events, dead-letter and destination failures,
 *   recursive loops, provisioned invocations and spillover) and ages (async event age, iterator
 *   age): labels `function_name`, `resource`. The recorder keeps these per function and per
 *   qualified resource; the unqualified share is the difference.
 * - gauges read at scrape: concurrent executions per function and unreserved, provisioned
 *   executions and utilization per resource, the async queue's depth, environments by state, stem
 *   cells per runtime; the store's write latency; EMF records recorded and dropped; Node's process
 *   metrics.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from "prom-client";
import { type Buckets, bucketValue } from "./histogram.js";
import type { ProvisionedSample } from "./provisioned-peaks.js";
import {
  type InvokeTally,
  LAMBDA_NAMESPACE,
  type MetricsRecorder,
  parseDimensionsKey,
  type Tally,
} from "./recorder.js";

/** Seconds: invoke durations (1 ms … 15 min). */
const DURATION_BOUNDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900,
];
/** Seconds: event ages (100 ms … 6 h). */
const AGE_BOUNDS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600];
/** Seconds: one batched store write. */
const STORE_WRITE_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** AWS/Lambda counts kept per function and resource: metric → Prometheus name, help. */
const RESOURCE_COUNTERS: Record<string, [string, string]> = {
  Throttles: ["lambda_throttles_total", "Invoke requests refused with 429 (concurrency or scaling rate)."],
  AsyncEventsReceived: ["lambda_async_events_received_total", "Events queued for asynchronous invocation."],
  AsyncEventsDropped: [
    "lambda_async_events_dropped_total",
    "Asynchronous events dropped for good (failed, expired or dropped).",
  ],
  DeadLetterErrors: ["lambda_dead_letter_errors_total", "Failed deliveries to a dead-letter target."],
  DestinationDeliveryFailures: [
    "lambda_destination_delivery_failures_total",
    "Failed deliveries to an on-success or on-failure destination.",
  ],
  RecursiveInvocationsDropped: [
    "lambda_recursive_invocations_dropped_total",
    "Runs stopped as recursive loops.",
  ],
  ProvisionedConcurrencyInvocations: [
    "lambda_provisioned_concurrency_invocations_total",
    "Invocations that ran on provisioned concurrency.",
  ],
  ProvisionedConcurrencySpilloverInvocations: [
    "lambda_provisioned_concurrency_spillover_invocations_total",
    "Invocations of a resource with provisioned concurrency that ran on-demand because all of it was busy.",
  ],
};

/** AWS/Lambda ages (milliseconds) kept per function and resource: metric → name, help. */
const RESOURCE_AGES: Record<string, [string, string]> = {
  AsyncEventAge: [
    "lambda_async_event_age_seconds",
    "Time from queueing an asynchronous event to its attempt.",
  ],
  IteratorAge: [
    "lambda_iterator_age_seconds",
    "Age of the last record of a stream source's batch when it was invoked.",
  ],
};

/** What the view reads at scrape time (wired by the composition root). */
export interface PrometheusSources {
  concurrency(): { unreserved: number; perFunction: ReadonlyMap<string, number> };
  provisioned(): ProvisionedSample[];
  /** Async events waiting or running, per function (all servers sharing the store). */
  queueDepth(): Promise<Array<{ functionName: string; kind: string; state: string; count: number }>>;
  /** Environments on this server by state (absent on a cluster frontend, which runs none). */
  environments?(): ReadonlyMap<string, number>;
  /** Stem cells waiting per runtime (absent without a local worker). */
  stemCells?(): ReadonlyMap<string, number>;
  /** EMF records taken from function logs and PutLogEvents, and dropped over the series cap, since the start. */
  emf?(): { records: number; dropped: number };
}

interface BucketSeries {
  labels: Record<string, string>;
  /** Per bound, then +Inf: counts (not cumulative). */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * A histogram fed with pre-aggregated counts: the recorder's log-scale buckets (ratio 1.04) moved
 * into fixed `le` bounds by each bucket's middle value, so a value within ±2% of a bound may count
 * in the neighbouring bucket; `_sum` and `_count` are exact. prom-client's Histogram observes one
 * value at a time, hence this small metric of the registry's own shape.
 */
class BucketHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly series = new Map<string, BucketSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    private readonly bounds: readonly number[],
    /** Multiplies a recorded value into the exported unit (ms → s: 0.001). */
    private readonly scale: number,
  ) {}

  add(labels: Record<string, string>, buckets: Buckets, sum: number, count: number): void {
    if (count <= 0) return;
    const key = this.labelNames.map((n) => labels[n] ?? "").join("\u0000");
    let s = this.series.get(key);
    if (!s) {
      s = { labels, counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (const [bucket, n] of buckets) {
      if (n <= 0) continue;
      const v = bucketValue(bucket) * this.scale;
      let i = this.bounds.findIndex((b) => v <= b);
      if (i < 0) i = this.bounds.length;
      s.counts[i] = (s.counts[i] ?? 0) + n;
    }
    s.sum += sum * this.scale;
    s.count += count;
  }

  async get() {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const s of this.series.values()) {
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i] ?? 0;
        values.push({ labels: { ...s.labels, le }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...s.labels, le: "+Inf" }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
  }
}

/** count, sum and buckets of one (metric, function[, resource]) within a fold. */
interface Part {
  count: number;
  sum: number;
  buckets: Buckets;
}

function addPart(into: Part, t: Tally): void {
  into.count += t.count;
  into.sum += t.sum;
  for (const [b, n] of t.buckets) into.buckets.set(b, (into.buckets.get(b) ?? 0) + n);
}

function subtractPart(from: Part, p: Part): void {
  from.count -= p.count;
  from.sum -= p.sum;
  for (const [b, n] of p.buckets) from.buckets.set(b, (from.buckets.get(b) ?? 0) - n);
}

const emptyPart = (): Part => ({ count: 0, sum: 0, buckets: new Map() });

export class PrometheusView {
  readonly registry = new Registry();
  private readonly invocations: Counter<string>;
  private readonly errors: Counter<string>;
  private readonly duration: BucketHistogram;
  private readonly coldStarts: Counter<string>;
  private readonly counters = new Map<string, Counter<string>>();
  private readonly ages = new Map<string, BucketHistogram>();

  constructor(
    private readonly recorder: MetricsRecorder,
    sources: PrometheusSources,
  ) {
    const registers = [this.registry];
    const invokeLabels = ["function_name", "resource", "executed_version"];
    this.invocations = new Counter({
      name: "lambda_invocations_total",
      help: "Invocations that ran (an answer or a function error), as AWS/Lambda Invocations.",
      labelNames: invokeLabels,
      registers,
    });
    this.errors = new Counter({
      name: "lambda_errors_total",
      help: "Invocations that ended in a function error, as AWS/Lambda Errors.",
      labelNames: invokeLabels,
      registers,
    });
    this.duration = new BucketHistogram(
      "lambda_duration_seconds",
      "Time the function spent on each invocation, as AWS/Lambda Duration.",
      invokeLabels,
      DURATION_BOUNDS,
      0.001,
    );
    this.registry.registerMetric(this.duration as unknown as Metric);
    this.coldStarts = new Counter({
      name: "lambent_cold_starts_total",
      help: "Invocations that waited for a new execution environment's Init.",
      labelNames: ["function_name", "executed_version"],
      registers,
    });
    for (const [metric, [name, help]] of Object.entries(RESOURCE_COUNTERS)) {
      this.counters.set(
        metric,
        new Counter({ name, help, labelNames: ["function_name", "resource"], registers }),
      );
    }
    for (const [metric, [name, help]] of Object.entries(RESOURCE_AGES)) {
      const h = new BucketHistogram(name, help, ["function_name", "resource"], AGE_BOUNDS, 0.001);
      this.registry.registerMetric(h as unknown as Metric);
      this.ages.set(metric, h);
    }

    new Gauge({
      name: "lambda_concurrent_executions",
      help: "Executions running now, per function (sum for the account).",
      labelNames: ["function_name"],
      registers,
      collect() {
        this.reset();
        for (const [fn, n] of sources.concurrency().perFunction) this.set({ function_name: fn }, n);
      },
    });
    new Gauge({
      name: "lambda_unreserved_concurrent_executions",
      help: "Executions running now in the account's unreserved pool.",
      registers,
      collect() {
        this.set(sources.concurrency().unreserved);
      },
    });
    new Gauge({
      name: "lambda_provisioned_concurrent_executions",
      help: "Executions running now on provisioned concurrency, per version or alias with a config.",
      labelNames: ["function_name", "resource"],
      registers,
      collect() {
        this.reset();
        for (const p of sources.provisioned()) {
          this.set({ function_name: p.functionName, resource: p.resource }, p.executions);
        }
      },
    });
    new Gauge({
      name: "lambda_provisioned_concurrency_utilization",
      help: "Provisioned executions running now divided by the allocated provisioned concurrency (0–1).",
      labelNames: ["function_name", "resource"],
      registers,
      collect() {
        this.reset();
        for (const p of sources.provisioned()) {
          if (p.allocated > 0) {
            this.set({ function_name: p.functionName, resource: p.resource }, p.executions / p.allocated);
          }
        }
      },
    });
    new Gauge({
      name: "lambent_async_queue_depth",
      help: "Asynchronous events (kind invoke) and destination deliveries (kind destination) in the queue, waiting or running.",
      labelNames: ["function_name", "kind", "state"],
      registers,
      async collect() {
        this.reset();
        for (const d of await sources.queueDepth()) {
          this.set({ function_name: d.functionName, kind: d.kind, state: d.state }, d.count);
        }
      },
    });
    if (sources.environments) {
      const environments = sources.environments;
      new Gauge({
        name: "lambent_environments",
        help: "Execution environments on this server by lifecycle state.",
        labelNames: ["state"],
        registers,
        collect() {
          this.reset();
          for (const [state, n] of environments()) this.set({ state }, n);
        },
      });
    }
    if (sources.stemCells) {
      const stemCells = sources.stemCells;
      new Gauge({
        name: "lambent_stem_cells",
        help: "Pre-started sandboxes waiting for a function, per runtime.",
        labelNames: ["runtime"],
        registers,
        collect() {
          this.reset();
          for (const [runtime, n] of stemCells()) this.set({ runtime }, n);
        },
      });
    }
    if (sources.emf) {
      const emf = sources.emf;
      new Counter({
        name: "lambent_emf_records_total",
        help: "EMF records in function logs and PutLogEvents: recorded as metrics, or dropped over a series cap.",
        labelNames: ["outcome"],
        registers,
        collect() {
          const c = emf();
          this.reset();
          this.inc({ outcome: "recorded" }, c.records);
          this.inc({ outcome: "dropped" }, c.dropped);
        },
      });
    }
    const storeWrites = new Histogram({
      name: "lambent_store_write_seconds",
      help: "Time each batched metrics write to the store took.",
      buckets: STORE_WRITE_BOUNDS,
      registers,
    });
    recorder.onStoreWrite((ms) => storeWrites.observe(ms / 1000));
    if (recorder.enabled) collectDefaultMetrics({ register: this.registry });
    recorder.onFold(({ invokes, series }) => {
      this.foldInvokes(invokes);
      this.foldSeries(series);
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition, with every invoke finished so far folded in. */
  async scrape(): Promise<string> {
    this.recorder.fold(false);
    return this.registry.metrics();
  }

  private foldInvokes(invokes: readonly InvokeTally[]): void {
    for (const t of invokes) {
      const labels = { function_name: t.fn, resource: t.resource ?? "", executed_version: t.version };
      this.invocations.inc(labels, t.invocations);
      this.errors.inc(labels, t.errors);
      this.duration.add(labels, t.durations, t.durationSum, t.invocations);
      if (t.coldStarts > 0) {
        this.coldStarts.inc({ function_name: t.fn, executed_version: t.version }, t.coldStarts);
      }
    }
  }

  /**
   * The recorder keeps these per function ({FunctionName}) and per qualified resource
   * ({FunctionName, Resource}); each fold's function total minus its resources is the unqualified share.
   */
  private foldSeries(series: readonly Tally[]): void {
    const groups = new Map<
      string,
      { metric: string; fn: string; total: Part; resources: Map<string, Part> }
    >();
    for (const t of series) {
      if (t.namespace !== LAMBDA_NAMESPACE) continue;
      if (!Object.hasOwn(RESOURCE_COUNTERS, t.metric) && !Object.hasOwn(RESOURCE_AGES, t.metric)) continue;
      const dims = parseDimensionsKey(t.dimensions);
      const names = Object.keys(dims);
      const fn = dims.FunctionName;
      if (fn === undefined) continue;
      const key = `${t.metric}\u0000${fn}`;
      let g = groups.get(key);
      if (!g) {
        g = { metric: t.metric, fn, total: emptyPart(), resources: new Map() };
        groups.set(key, g);
      }
      if (names.length === 1) addPart(g.total, t);
      else if (names.length === 2 && dims.Resource !== undefined) {
        let r = g.resources.get(dims.Resource);
        if (!r) {
          r = emptyPart();
          g.resources.set(dims.Resource, r);
        }
        addPart(r, t);
      }
    }
    for (const g of groups.values()) {
      const unqualified = g.total;
      for (const [resource, part] of g.resources) {
        this.add(g.metric, { function_name: g.fn, resource }, part);
        subtractPart(unqualified, part);
      }
      this.add(g.metric, { function_name: g.fn, resource: "" }, unqualified);
    }
  }

  private add(metric: string, labels: Record<string, string>, part: Part): void {
    if (part.count <= 0) return;
    const counter = this.counters.get(metric);
    if (counter) {
      if (part.sum > 0) counter.inc(labels, part.sum);
      return;
    }
    const buckets = new Map([...part.buckets].filter(([, n]) => n > 0));
    this.ages.get(metric)?.add(labels, buckets, part.sum, part.count);
  }
}
