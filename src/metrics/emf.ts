/**
 * CloudWatch's embedded metric format (EMF) in function logs: a log line that is one JSON object
 * with `_aws.CloudWatchMetrics` becomes samples of custom metrics in the namespaces it names
 * (what Powertools' Metrics and aws-embedded-metrics print). The line stays a log line either way.
 *
 * A record is taken whole or not at all: anything outside the specification or CloudWatch's limits
 * makes the whole line an ordinary log line (never half its metrics). Checked: `_aws.Timestamp` (epoch
 * ms, at most two weeks old and two hours ahead), at most 100 metrics per directive and 30
 * dimensions per set, names 1–255 characters, dimension values strings of 1–1024, metric values a
 * finite number or an array of up to 100 of them (each one sample) within CloudWatch's range, units
 * from CloudWatch's list, StorageResolution 1 or 60 (stored per minute either way), at most
 * 10,000 samples (values × dimension sets) in one record, JSON nested at most 64 deep (deep nesting
 * is what makes JSON.parse slow). Namespaces starting
 * with `AWS/` are refused: a function must not forge Lambda's own metrics.
 *
 * A function gets at most MAX_SERIES_PER_MINUTE distinct (series, minute) tallies per minute of
 * wall-clock time; records past that are dropped and counted (one server log line per function and
 * minute), so a hostile function cannot grow memory or the store without bound.
 */
import type { MetricsRecorder } from "./recorder.js";

/** Distinct (namespace, metric, dimensions, minute) a function may create per wall-clock minute. */
export const MAX_SERIES_PER_MINUTE = 1000;
const MAX_METRICS = 100;
const MAX_DIMENSIONS = 30;
const MAX_VALUES = 100;
const MAX_NAME = 255;
const MAX_DIMENSION_VALUE = 1024;
/** Directives per record (the specification sets none; bounds the work a line can ask for). */
const MAX_DIRECTIVES = 100;
/** Dimension sets per directive (likewise). */
const MAX_DIMENSION_SETS = 30;
/** Samples one record may give (values × dimension sets): bounds the work one line can ask for. */
const MAX_SAMPLES = 10_000;
/** Nesting of the whole line (the record's own structure needs 5 levels; the rest is the function's). */
const MAX_DEPTH = 64;
const MINUTE_MS = 60_000;
const TWO_WEEKS_MS = 14 * 24 * 3600 * 1000;
const TWO_HOURS_MS = 2 * 3600 * 1000;
/** CloudWatch accepts 0 and magnitudes within 2^-360 … 2^360. */
const SMALLEST = 2 ** -360;
const LARGEST = 2 ** 360;

const UNITS = new Set([
  "Seconds",
  "Microseconds",
  "Milliseconds",
  "Bytes",
  "Kilobytes",
  "Megabytes",
  "Gigabytes",
  "Terabytes",
  "Bits",
  "Kilobits",
  "Megabits",
  "Gigabits",
  "Terabits",
  "Percent",
  "Count",
  "Bytes/Second",
  "Kilobytes/Second",
  "Megabytes/Second",
  "Gigabytes/Second",
  "Terabytes/Second",
  "Bits/Second",
  "Kilobits/Second",
  "Megabits/Second",
  "Gigabits/Second",
  "Terabits/Second",
  "Count/Second",
  "None",
]);

/** Samples of one series found in a record. */
export interface EmfSeries {
  namespace: string;
  metric: string;
  /** Canonical dimensions (recorder.dimensionsKey's form). */
  dimensions: string;
  unit: string;
  values: number[];
}

export interface EmfRecord {
  /** Epoch ms (`_aws.Timestamp`). */
  timestamp: number;
  series: EmfSeries[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Printable text of 1–max characters with a non-space in it (CloudWatch's rule for names). */
function goodName(v: unknown, max: number): v is string {
  return (
    typeof v === "string" &&
    v.length >= 1 &&
    v.length <= max &&
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
    !/[\u0000-\u001f\u007f]/.test(v) &&
    // A lone surrogate has no UTF-8 form: stored, it would come back as another name.
    !/\p{Cs}/u.test(v) &&
    /\S/.test(v)
  );
}

/** Dimension names and values: printable ASCII (CloudWatch's rule), a name not starting with ':'. */
function goodDimension(v: unknown, max: number): v is string {
  return (
    typeof v === "string" && v.length >= 1 && v.length <= max && /^[\x20-\x7e]+$/.test(v) && /\S/.test(v)
  );
}

function goodValue(v: unknown): v is number {
  if (typeof v !== "number" || !Number.isFinite(v)) return false;
  const a = Math.abs(v);
  return a === 0 || (a >= SMALLEST && a <= LARGEST);
}

/**
 * Whether JSON text nests no deeper than `max` (brackets inside strings do not count). V8's
 * JSON.parse is tens of times slower on deep nesting than on flat text of the same size, so a
 * line nested deeper is refused before it is parsed.
 */
function nestingWithin(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // Skip the string: to its closing quote, past escaped characters.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 123 || c === 91) {
      if (++depth > max) return false;
    } else if (c === 125 || c === 93) {
      depth--;
    }
  }
  return true;
}

/** A document member by name: own members only (`__proto__`, `constructor` are plain names). */
function member(doc: Json, name: string): unknown {
  return Object.hasOwn(doc, name) ? doc[name] : undefined;
}

/**
 * The metrics of one log line, or undefined when it is not a valid EMF record. `now` bounds the
 * timestamp. Cheap for ordinary lines: only a line starting with `{` and containing `"_aws"` is parsed.
 */
export function parseEmf(line: string, now: number): EmfRecord | undefined {
  if (line.charCodeAt(0) !== 123 || !line.includes('"_aws"')) return undefined;
  if (!nestingWithin(line, MAX_DEPTH)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(doc)) return undefined;
  const aws = member(doc, "_aws");
  if (!isObject(aws)) return undefined;
  const timestamp = member(aws, "Timestamp");
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp)) return undefined;
  if (timestamp < now - TWO_WEEKS_MS || timestamp > now + TWO_HOURS_MS) return undefined;
  const directives = member(aws, "CloudWatchMetrics");
  if (!Array.isArray(directives) || directives.length > MAX_DIRECTIVES) return undefined;
  const series: EmfSeries[] = [];
  let samples = 0;
  for (const directive of directives) {
    if (!isObject(directive)) return undefined;
    const namespace = member(directive, "Namespace");
    if (!goodName(namespace, MAX_NAME) || namespace.startsWith(":")) return undefined;
    if (namespace.toUpperCase().startsWith("AWS/")) return undefined;
    const sets = member(directive, "Dimensions");
    const metrics = member(directive, "Metrics");
    if (!Array.isArray(sets) || sets.length > MAX_DIMENSION_SETS) return undefined;
    if (!Array.isArray(metrics) || metrics.length > MAX_METRICS) return undefined;
    // Each dimension set as its canonical key.
    const keys: string[] = [];
    for (const set of sets) {
      if (!Array.isArray(set) || set.length > MAX_DIMENSIONS) return undefined;
      const pairs: Array<[string, string]> = [];
      for (const name of set) {
        if (!goodDimension(name, MAX_NAME) || name.startsWith(":")) return undefined;
        const value = member(doc, name);
        if (!goodDimension(value, MAX_DIMENSION_VALUE)) return undefined;
        if (pairs.some(([n]) => n === name)) return undefined;
        pairs.push([name, value]);
      }
      pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      keys.push(JSON.stringify(pairs));
    }
    // A directive without dimension sets publishes its metrics without dimensions.
    if (keys.length === 0) keys.push("[]");
    const dimensionSets = [...new Set(keys)];
    const seen = new Set<string>();
    for (const definition of metrics) {
      if (!isObject(definition)) return undefined;
      const name = member(definition, "Name");
      if (!goodName(name, MAX_NAME) || seen.has(name)) return undefined;
      seen.add(name);
      const unit = member(definition, "Unit") ?? "None";
      if (typeof unit !== "string" || !UNITS.has(unit)) return undefined;
      const resolution = member(definition, "StorageResolution");
      if (resolution !== undefined && resolution !== 1 && resolution !== 60) return undefined;
      const raw = member(doc, name);
      let values: number[];
      if (Array.isArray(raw)) {
        if (raw.length === 0 || raw.length > MAX_VALUES || !raw.every(goodValue)) return undefined;
        values = raw as number[];
      } else if (goodValue(raw)) {
        values = [raw];
      } else {
        return undefined;
      }
      samples += values.length * dimensionSets.length;
      if (samples > MAX_SAMPLES) return undefined;
      for (const dimensions of dimensionSets) {
        series.push({ namespace, metric: name, dimensions, unit, values });
      }
    }
  }
  if (series.length === 0) return undefined;
  return { timestamp, series };
}

export interface EmfOptions {
  /** Distinct (series, minute) tallies per function per wall-clock minute. */
  maxSeriesPerMinute?: number;
  now?: () => number;
  log?: (message: string) => void;
}

/** One function's use of its series budget in the current wall-clock minute. */
interface Budget {
  minute: number;
  tallies: Set<string>;
  dropped: number;
}

/** Turns function log lines into samples for the recorder, within each function's series budget. */
export class EmfExtractor {
  /** Records taken, and records dropped for the series cap (since the server started). */
  readonly counts = { records: 0, dropped: 0 };
  private readonly budgets = new Map<string, Budget>();
  private readonly now: () => number;
  private readonly max: number;

  constructor(
    private readonly recorder: MetricsRecorder,
    private readonly options: EmfOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.max = options.maxSeriesPerMinute ?? MAX_SERIES_PER_MINUTE;
  }

  /**
   * A line from `source` (`function <name>` for what a function printed, `log group <name>` for
   * PutLogEvents), whose series budget it spends. Never throws; most lines cost two string checks.
   */
  line(source: string, line: string): void {
    if (!this.recorder.enabled) return;
    if (line.charCodeAt(0) !== 123 || !line.includes('"_aws"')) return;
    const now = this.now();
    const record = parseEmf(line, now);
    if (!record) return;
    const budget = this.budget(source, now);
    const minute = record.timestamp - (record.timestamp % MINUTE_MS);
    const fresh = new Set<string>();
    for (const s of record.series) {
      const key = `${s.namespace}\u0000${s.metric}\u0000${s.dimensions}\u0000${minute}`;
      if (!budget.tallies.has(key)) fresh.add(key);
    }
    if (budget.tallies.size + fresh.size > this.max) {
      budget.dropped++;
      this.counts.dropped++;
      if (budget.dropped === 1) {
        this.options.log?.(
          `${source}: EMF records over ${this.max} series a minute are dropped (this minute's first)`,
        );
      }
      return;
    }
    for (const key of fresh) budget.tallies.add(key);
    for (const s of record.series) {
      this.recorder.recordAll(s.namespace, s.metric, s.dimensions, s.values, s.unit, record.timestamp);
    }
    this.counts.records++;
  }

  private budget(source: string, now: number): Budget {
    const minute = now - (now % MINUTE_MS);
    let budget = this.budgets.get(source);
    if (budget && budget.minute === minute) return budget;
    if (budget && budget.dropped > 1) {
      this.options.log?.(`${source}: ${budget.dropped} EMF records dropped over the series cap`);
    }
    // A new minute: forget every function's past budgets (bounded by the functions active now).
    for (const [name, b] of this.budgets) if (b.minute !== minute) this.budgets.delete(name);
    budget = { minute, tallies: new Set(), dropped: 0 };
    this.budgets.set(source, budget);
    return budget;
  }
}
