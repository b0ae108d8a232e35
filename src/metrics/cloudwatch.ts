/**
 * CloudWatch's metric reading operations over the store: GetMetricData (MetricStat queries; no
 * metric math or Metrics Insights), GetMetricStatistics and ListMetrics. Inputs arrive checked
 * against the model (api/routes/cloudwatch.ts) with timestamps as epoch seconds; outputs carry
 * timestamps as Dates for the protocol's serializer.
 */
import { LambdaError } from "../errors.js";
import type { Store } from "../store/store.js";
import {
  aggregatePeriods,
  checkPeriod,
  type DimensionFilter,
  InvalidParameterValue,
  listMetrics,
  parseStatistic,
  type Statistic,
  statisticOf,
} from "./query.js";

type Input = Record<string, unknown>;

const InvalidParameterCombination = (m: string) =>
  new LambdaError("InvalidParameterCombinationException", 400, m);
const MissingParameter = (m: string) => new LambdaError("MissingRequiredParameterException", 400, m);
const InvalidNextToken = (m = "The next token specified is invalid.") =>
  new LambdaError("InvalidNextToken", 400, m);

const MAX_QUERIES = 500;
const DEFAULT_MAX_DATAPOINTS = 100_800;
const STATISTICS_MAX_DATAPOINTS = 1440;
const LIST_PAGE = 500;
const TWO_WEEKS_MS = 14 * 24 * 3600 * 1000;
const THREE_HOURS_MS = 3 * 3600 * 1000;

interface Dimension {
  Name: string;
  Value: string;
}

function dimensionsOf(list: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const d of (list as Dimension[] | undefined) ?? []) {
    if (Object.hasOwn(out, d.Name)) {
      throw InvalidParameterValue(`The dimension ${d.Name} is given more than once.`);
    }
    out[d.Name] = d.Value;
  }
  return out;
}

/** A time range in epoch seconds → ms, checked. */
function range(input: Input): { start: number; end: number } {
  const start = (input.StartTime as number) * 1000;
  const end = (input.EndTime as number) * 1000;
  if (!Number.isFinite(start) || !Number.isFinite(end))
    throw InvalidParameterValue("The time range is invalid.");
  if (!(start < end)) {
    throw InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.");
  }
  return { start, end };
}

/** Tokens are positions (query index, datapoint offset) bound to the request they came from. */
function encodeToken(fingerprint: string, query: number, offset: number): string {
  return Buffer.from(JSON.stringify([fingerprint, query, offset])).toString("base64url");
}

function decodeToken(token: string, fingerprint: string): { query: number; offset: number } {
  try {
    const [f, q, o] = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown[];
    if (
      f === fingerprint &&
      Number.isSafeInteger(q) &&
      Number.isSafeInteger(o) &&
      (q as number) >= 0 &&
      (o as number) >= 0
    ) {
      return { query: q as number, offset: o as number };
    }
  } catch {}
  throw InvalidNextToken();
}

function fingerprintOf(input: Input): string {
  const { NextToken: _token, ...rest } = input;
  let h = 0;
  for (const c of JSON.stringify(rest)) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return (h >>> 0).toString(36);
}

interface MetricDataQuery {
  Id: string;
  Label?: string;
  ReturnData?: boolean;
  Expression?: string;
  MetricStat?: {
    Metric: { Namespace?: string; MetricName?: string; Dimensions?: Dimension[] };
    Period: number;
    Stat: string;
    Unit?: string;
  };
}

export class CloudWatchMetrics {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  async getMetricData(input: Input): Promise<Input> {
    const queries = input.MetricDataQueries as MetricDataQuery[];
    if (queries.length === 0) throw MissingParameter("The parameter MetricDataQueries is required.");
    if (queries.length > MAX_QUERIES) {
      throw InvalidParameterValue(
        `The collection MetricDataQueries must not have a size greater than ${MAX_QUERIES}.`,
      );
    }
    const { start, end } = range(input);
    const ids = new Set<string>();
    const plans: Array<{ q: MetricDataQuery; stat: Statistic }> = [];
    for (const q of queries) {
      if (!/^[a-z][a-zA-Z0-9_]*$/.test(q.Id)) {
        throw InvalidParameterValue(
          `The value ${q.Id.slice(0, 255)} for parameter MetricDataQueries.member.Id is invalid: it must start with a lowercase letter and contain only letters, numbers and underscores.`,
        );
      }
      if (ids.has(q.Id)) throw InvalidParameterValue(`The Id ${q.Id} is used by more than one query.`);
      ids.add(q.Id);
      if (q.Expression !== undefined) {
        throw InvalidParameterValue(
          `Query ${q.Id}: metric math and Metrics Insights expressions are not supported by Lambent; use MetricStat.`,
        );
      }
      if (!q.MetricStat) {
        throw MissingParameter(
          `Query ${q.Id} needs a MetricStat (or an Expression, which Lambent does not support).`,
        );
      }
      const m = q.MetricStat.Metric;
      if (m.Namespace === undefined || m.MetricName === undefined) {
        throw MissingParameter(`Query ${q.Id}: the metric needs a Namespace and a MetricName.`);
      }
      checkPeriod(q.MetricStat.Period);
      plans.push({ q, stat: parseStatistic(q.MetricStat.Stat) });
    }
    const maxDatapoints = (input.MaxDatapoints as number | undefined) ?? DEFAULT_MAX_DATAPOINTS;
    if (!(maxDatapoints > 0))
      throw InvalidParameterValue("The parameter MaxDatapoints must be greater than 0.");
    const descending = (input.ScanBy as string | undefined) !== "TimestampAscending";
    const fingerprint = fingerprintOf(input);
    let { query: first, offset } =
      input.NextToken !== undefined
        ? decodeToken(input.NextToken as string, fingerprint)
        : { query: 0, offset: 0 };
    if (first > plans.length) throw InvalidNextToken();
    let budget = maxDatapoints;
    const results: Input[] = [];
    let next: string | undefined;
    for (let i = first; i < plans.length; i++) {
      const { q, stat } = plans[i] as { q: MetricDataQuery; stat: Statistic };
      if (q.ReturnData === false) continue;
      const ms = q.MetricStat as NonNullable<MetricDataQuery["MetricStat"]>;
      const periods = await aggregatePeriods(
        this.store,
        {
          namespace: ms.Metric.Namespace as string,
          metricName: ms.Metric.MetricName as string,
          dimensions: dimensionsOf(ms.Metric.Dimensions),
          start,
          end,
          periodSeconds: ms.Period,
        },
        typeof stat === "object",
      );
      const points: Array<[number, number]> = [];
      for (const p of periods) {
        if (ms.Unit !== undefined && p.unit !== ms.Unit) continue;
        const v = statisticOf(p, stat);
        if (v !== undefined) points.push([p.timestamp, v]);
      }
      if (descending) points.reverse();
      const from = i === first ? offset : 0;
      const page = points.slice(from, from + budget);
      budget -= page.length;
      const partial = from + page.length < points.length;
      results.push({
        Id: q.Id,
        Label: q.Label ?? ms.Metric.MetricName,
        Timestamps: page.map(([t]) => new Date(t)),
        Values: page.map(([, v]) => v),
        StatusCode: partial ? "PartialData" : "Complete",
        Messages: [],
      });
      if (partial) {
        next = encodeToken(fingerprint, i, from + page.length);
        break;
      }
      offset = 0;
      first = i + 1;
    }
    return { MetricDataResults: results, Messages: [], ...(next ? { NextToken: next } : {}) };
  }

  async getMetricStatistics(input: Input): Promise<Input> {
    const { start, end } = range(input);
    const period = input.Period as number;
    checkPeriod(period);
    const statistics = (input.Statistics as string[] | undefined) ?? [];
    const extended = (input.ExtendedStatistics as string[] | undefined) ?? [];
    if (statistics.length === 0 && extended.length === 0) {
      throw MissingParameter("Either Statistics or ExtendedStatistics is required.");
    }
    if (statistics.length > 0 && extended.length > 0) {
      throw InvalidParameterCombination("Statistics and ExtendedStatistics cannot both be given.");
    }
    const wanted = Math.ceil((end - start) / (period * 1000));
    if (wanted > STATISTICS_MAX_DATAPOINTS) {
      throw InvalidParameterCombination(
        `You have requested up to ${wanted} datapoints, which exceeds the limit of ${STATISTICS_MAX_DATAPOINTS}. You may reduce the datapoints requested by increasing Period, or decreasing the time range.`,
      );
    }
    const percentiles = extended.map((s) => {
      const parsed = parseStatistic(s);
      if (typeof parsed !== "object") {
        throw InvalidParameterValue(`The extended statistic ${s} is not a percentile (pNN or pNN.NN).`);
      }
      return [s, parsed] as const;
    });
    const unit = input.Unit as string | undefined;
    const periods = await aggregatePeriods(
      this.store,
      {
        namespace: input.Namespace as string,
        metricName: input.MetricName as string,
        dimensions: dimensionsOf(input.Dimensions),
        start,
        end,
        periodSeconds: period,
      },
      percentiles.length > 0,
    );
    const datapoints: Input[] = [];
    for (const p of periods) {
      if (unit !== undefined && p.unit !== unit) continue;
      const d: Input = { Timestamp: new Date(p.timestamp), Unit: p.unit };
      for (const s of statistics) d[s] = statisticOf(p, s as Statistic);
      if (percentiles.length > 0) {
        // A map (not a structure): the XML serializer writes it as entry/key/value.
        const values = new Map<string, number>();
        for (const [name, stat] of percentiles) {
          const v = statisticOf(p, stat);
          if (v !== undefined) values.set(name, v);
        }
        d.ExtendedStatistics = values;
      }
      datapoints.push(d);
    }
    return { Label: input.MetricName, Datapoints: datapoints };
  }

  async listMetrics(input: Input): Promise<Input> {
    const filters: DimensionFilter[] = (
      (input.Dimensions as Array<{ Name: string; Value?: string }>) ?? []
    ).map((d) => (d.Value === undefined ? { name: d.Name } : { name: d.Name, value: d.Value }));
    const since = this.now() - (input.RecentlyActive === "PT3H" ? THREE_HOURS_MS : TWO_WEEKS_MS);
    const all = await listMetrics(this.store, {
      ...(input.Namespace !== undefined ? { namespace: input.Namespace as string } : {}),
      ...(input.MetricName !== undefined ? { metricName: input.MetricName as string } : {}),
      dimensions: filters,
      since,
    });
    const fingerprint = fingerprintOf(input);
    const from =
      input.NextToken !== undefined ? decodeToken(input.NextToken as string, fingerprint).offset : 0;
    const page = all.slice(from, from + LIST_PAGE);
    return {
      Metrics: page.map((m) => ({
        Namespace: m.namespace,
        MetricName: m.metricName,
        Dimensions: Object.entries(m.dimensions).map(([Name, Value]) => ({ Name, Value })),
      })),
      ...(from + LIST_PAGE < all.length ? { NextToken: encodeToken(fingerprint, 0, from + LIST_PAGE) } : {}),
    };
  }
}
