/**
 * Lambda's metrics through CloudWatch's API, against real invokes: the AWS SDK v3's
 * CloudWatchClient (JSON 1.0), raw smithy RPC v2 CBOR requests and Debian's AWS CLI v2 (query
 * protocol) read GetMetricData / GetMetricStatistics / ListMetrics; sums equal the invokes made,
 * errors and throttles are counted, duration percentiles lie between the minimum and maximum,
 * async invokes give AsyncEventsReceived and AsyncEventAge; hostile requests get CloudWatch's
 * errors in each protocol; servers sharing a PostgreSQL add their minutes up; retention prunes.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  CloudWatchClient,
  CloudWatchServiceException,
  GetMetricDataCommand,
  type GetMetricDataCommandInput,
  GetMetricStatisticsCommand,
  ListMetricsCommand,
  type MetricDataQuery,
} from "@aws-sdk/client-cloudwatch";
import {
  CreateAliasCommand,
  InvokeCommand,
  PublishVersionCommand,
  PutFunctionConcurrencyCommand,
} from "@aws-sdk/client-lambda";
import { cbor } from "@smithy/core/cbor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../src/auth/sigv4.js";
import { queryMetric } from "../src/metrics/query.js";
import { dimensionsKey, MetricsRecorder } from "../src/metrics/recorder.js";
import { Store } from "../src/store/store.js";
import { createTestDatabase } from "./helpers/postgres.js";
import { startServer, type TestServer } from "./helpers/server.js";

const run = promisify(execFile);
const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };
let server: TestServer;
let cw: CloudWatchClient;
let t0: number;

function client(url: string): CloudWatchClient {
  return new CloudWatchClient({
    endpoint: url,
    region: "us-east-1",
    credentials: CREDENTIALS,
    maxAttempts: 1,
  });
}

function query(id: string, metric: string, dims: Record<string, string>, stat: string): MetricDataQuery {
  return {
    Id: id,
    MetricStat: {
      Metric: {
        Namespace: "AWS/Lambda",
        MetricName: metric,
        Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })),
      },
      Period: 3600,
      Stat: stat,
    },
  };
}

function window(): { StartTime: Date; EndTime: Date } {
  return { StartTime: new Date(t0 - 120_000), EndTime: new Date(Date.now() + 120_000) };
}

/** One value per query id: the sum over the window's periods. */
async function values(queries: MetricDataQuery[]): Promise<Record<string, number[]>> {
  const out = await cw.send(new GetMetricDataCommand({ ...window(), MetricDataQueries: queries }));
  return Object.fromEntries((out.MetricDataResults ?? []).map((r) => [r.Id, r.Values ?? []]));
}

const total = (xs: number[] | undefined) => (xs ?? []).reduce((a, b) => a + b, 0);

async function rejection(fn: () => Promise<unknown>): Promise<CloudWatchServiceException> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CloudWatchServiceException);
    return err as CloudWatchServiceException;
  }
  throw new Error("expected the call to fail");
}

/** A CloudWatch request in smithy RPC v2 CBOR, signed for `monitoring`. */
async function cborRequest(
  operation: string,
  body: Uint8Array | Buffer,
  headers: Record<string, string> = {},
) {
  const url = new URL(`${server.url}/service/GraniteServiceVersion20100801/operation/${operation}`);
  const signed = signRequest({
    method: "POST",
    url,
    headers: { "smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor", ...headers },
    body: Buffer.from(body),
    region: "us-east-1",
    service: "monitoring",
    credentials: CREDENTIALS,
  });
  const res = await fetch(url, { method: "POST", headers: signed, body: new Uint8Array(body) });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    status: res.status,
    headers: res.headers,
    body: bytes.length > 0 ? cbor.deserialize(bytes) : undefined,
  };
}

function cli(args: string[]) {
  return run("/usr/bin/aws", ["cloudwatch", "--endpoint-url", server.url, "--output", "json", ...args], {
    env: {
      ...process.env,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_DEFAULT_REGION: "us-east-1",
      AWS_PAGER: "",
    },
  });
}

beforeAll(async () => {
  t0 = Date.now();
  server = await startServer();
  cw = client(server.url);
  await server.deploy("echo", "node-cjs");
  await server.deploy("fails", "node-errors", { Handler: "index.throws" });
  await server.deploy("held", "node-cjs");
  const v = await server.lambda.send(new PublishVersionCommand({ FunctionName: "echo" }));
  await server.lambda.send(
    new CreateAliasCommand({ FunctionName: "echo", Name: "live", FunctionVersion: v.Version as string }),
  );
  for (let i = 0; i < 5; i++)
    await server.lambda.send(new InvokeCommand({ FunctionName: "echo", Payload: "{}" }));
  for (let i = 0; i < 3; i++) {
    await server.lambda.send(new InvokeCommand({ FunctionName: "echo", Qualifier: "live", Payload: "{}" }));
  }
  for (let i = 0; i < 2; i++)
    await server.lambda.send(new InvokeCommand({ FunctionName: "fails", Payload: "{}" }));
  await server.lambda.send(
    new PutFunctionConcurrencyCommand({ FunctionName: "held", ReservedConcurrentExecutions: 0 }),
  );
  await server.platform.frontend.reservationsLoaded;
  await expect(
    server.lambda.send(new InvokeCommand({ FunctionName: "held", Payload: "{}" })),
  ).rejects.toThrow(/Rate Exceeded/);
  await server.platform.metrics.flush();
}, 120_000);

afterAll(async () => {
  cw?.destroy();
  await server?.stop();
});

describe("AWS/Lambda metrics through GetMetricData (AWS SDK v3)", () => {
  it("counts every invoke under each dimension set: function, alias resource, executed version, account", async () => {
    const v = await values([
      query("fn", "Invocations", { FunctionName: "echo" }, "Sum"),
      query("alias", "Invocations", { FunctionName: "echo", Resource: "echo:live" }, "Sum"),
      query(
        "executed",
        "Invocations",
        { FunctionName: "echo", Resource: "echo:live", ExecutedVersion: "1" },
        "Sum",
      ),
      query("account", "Invocations", {}, "Sum"),
      query("errors", "Errors", { FunctionName: "fails" }, "Sum"),
      query("noerrors", "Errors", { FunctionName: "echo" }, "Sum"),
      query("errorrate", "Errors", { FunctionName: "fails" }, "Average"),
      query("throttles", "Throttles", { FunctionName: "held" }, "Sum"),
      query("heldinvokes", "Invocations", { FunctionName: "held" }, "Sum"),
      query("count", "Duration", { FunctionName: "echo" }, "SampleCount"),
    ]);
    expect(total(v.fn)).toBe(8);
    expect(total(v.alias)).toBe(3);
    expect(total(v.executed)).toBe(3);
    expect(total(v.account)).toBe(10);
    expect(total(v.errors)).toBe(2);
    expect(total(v.noerrors)).toBe(0);
    expect(v.errorrate).toEqual([1]);
    expect(total(v.throttles)).toBe(1);
    expect(v.heldinvokes).toEqual([]);
    expect(total(v.count)).toBe(8);
  });

  it("answers duration percentiles between the minimum and the maximum", async () => {
    const v = await values(
      ["Minimum", "p50", "p90", "p99", "Maximum", "Average"].map((s, i) =>
        query(`d${i}`, "Duration", { FunctionName: "echo" }, s),
      ),
    );
    const at = (i: number) => v[`d${i}`]?.[0] ?? Number.NaN;
    const [min, p50, p90, p99, max, avg] = [at(0), at(1), at(2), at(3), at(4), at(5)] as const;
    expect(min).toBeGreaterThan(0);
    expect(p50).toBeGreaterThanOrEqual(min);
    expect(p90).toBeGreaterThanOrEqual(p50);
    expect(p99).toBeGreaterThanOrEqual(p90);
    expect(max).toBeGreaterThanOrEqual(p99);
    expect(avg).toBeGreaterThanOrEqual(min);
    expect(avg).toBeLessThanOrEqual(max);
  });

  it("samples ConcurrentExecutions (account and function)", async () => {
    const v = await values([
      query("account", "ConcurrentExecutions", {}, "Maximum"),
      query("fn", "ConcurrentExecutions", { FunctionName: "echo" }, "Maximum"),
      query("pool", "UnreservedConcurrentExecutions", {}, "Maximum"),
    ]);
    expect(v.account?.[0]).toBeGreaterThanOrEqual(1);
    expect(v.fn?.[0]).toBeGreaterThanOrEqual(1);
    expect(v.pool?.[0]).toBeGreaterThanOrEqual(1);
  });

  it("pages with MaxDatapoints and NextToken, newest first unless ScanBy says otherwise", async () => {
    const q = (id: string): MetricDataQuery => ({
      ...query(id, "Invocations", { FunctionName: "echo" }, "Sum"),
      MetricStat: {
        ...(query(id, "Invocations", { FunctionName: "echo" }, "Sum").MetricStat as object),
        Period: 60,
      } as MetricDataQuery["MetricStat"],
    });
    const input: GetMetricDataCommandInput = {
      ...window(),
      MetricDataQueries: [q("a"), q("b"), q("c")],
      MaxDatapoints: 1,
    };
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const out = await cw.send(
        new GetMetricDataCommand({ ...input, ...(token ? { NextToken: token } : {}) }),
      );
      for (const r of out.MetricDataResults ?? []) {
        expect((r.Values ?? []).length).toBeLessThanOrEqual(1);
        if ((r.Values ?? []).length > 0) seen.push(r.Id as string);
      }
      token = out.NextToken;
      pages++;
    } while (token && pages < 50);
    expect(token).toBeUndefined();
    expect(new Set(seen)).toEqual(new Set(["a", "b", "c"]));
    const asc = await cw.send(
      new GetMetricDataCommand({ ...window(), MetricDataQueries: [q("a")], ScanBy: "TimestampAscending" }),
    );
    const ts = (asc.MetricDataResults?.[0]?.Timestamps ?? []).map((d) => d.getTime());
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
    const e = await rejection(() =>
      cw.send(new GetMetricDataCommand({ ...input, NextToken: "bm90LWEtdG9rZW4" })),
    );
    expect(e.name).toBe("InvalidNextToken");
  });
});

describe("GetMetricStatistics and ListMetrics", () => {
  it("GetMetricStatistics answers Statistics, and ExtendedStatistics percentiles", async () => {
    const base = {
      Namespace: "AWS/Lambda",
      Dimensions: [{ Name: "FunctionName", Value: "echo" }],
      ...window(),
      Period: 3600,
    };
    const s = await cw.send(
      new GetMetricStatisticsCommand({
        ...base,
        MetricName: "Invocations",
        Statistics: ["Sum", "SampleCount", "Average", "Minimum", "Maximum"],
      }),
    );
    expect(s.Label).toBe("Invocations");
    expect(total((s.Datapoints ?? []).map((d) => d.Sum as number))).toBe(8);
    expect(total((s.Datapoints ?? []).map((d) => d.SampleCount as number))).toBe(8);
    for (const d of s.Datapoints ?? []) {
      expect(d.Average).toBe(1);
      expect(d.Unit).toBe("Count");
      expect(d.Timestamp).toBeInstanceOf(Date);
    }
    const p = await cw.send(
      new GetMetricStatisticsCommand({
        ...base,
        MetricName: "Duration",
        ExtendedStatistics: ["p50", "p99.9"],
      }),
    );
    const d = p.Datapoints?.[0];
    expect(d?.ExtendedStatistics?.p50).toBeGreaterThan(0);
    expect(d?.ExtendedStatistics?.["p99.9"]).toBeGreaterThanOrEqual(d?.ExtendedStatistics?.p50 as number);
    expect(d?.Unit).toBe("Milliseconds");
  });

  it("ListMetrics filters by namespace, metric name and dimensions", async () => {
    const all = await cw.send(new ListMetricsCommand({ Namespace: "AWS/Lambda", MetricName: "Invocations" }));
    const sets = (all.Metrics ?? []).map((m) =>
      Object.fromEntries((m.Dimensions ?? []).map((d) => [d.Name, d.Value])),
    );
    expect(sets).toContainEqual({});
    expect(sets).toContainEqual({ FunctionName: "echo" });
    expect(sets).toContainEqual({ FunctionName: "echo", Resource: "echo:live" });
    expect(sets).toContainEqual({ FunctionName: "echo", Resource: "echo:live", ExecutedVersion: "1" });
    const fails = await cw.send(
      new ListMetricsCommand({
        Namespace: "AWS/Lambda",
        Dimensions: [{ Name: "FunctionName", Value: "fails" }],
      }),
    );
    const names = new Set((fails.Metrics ?? []).map((m) => m.MetricName));
    expect(names).toEqual(new Set(["Invocations", "Errors", "Duration", "ConcurrentExecutions"]));
    const withResource = await cw.send(new ListMetricsCommand({ Dimensions: [{ Name: "Resource" }] }));
    for (const m of withResource.Metrics ?? []) {
      expect((m.Dimensions ?? []).map((d) => d.Name)).toContain("Resource");
    }
    expect((withResource.Metrics ?? []).length).toBeGreaterThan(0);
    const none = await cw.send(new ListMetricsCommand({ Namespace: "No/Such" }));
    expect(none.Metrics).toEqual([]);
  });
});

describe("async invokes", () => {
  it("records AsyncEventsReceived and AsyncEventAge", async () => {
    const done = new Promise<void>((resolve) => {
      server.platform.asyncInvoke.counters.events.on("add", (fn, counter) => {
        if (fn === "echo" && counter === "succeeded") resolve();
      });
    });
    await server.lambda.send(
      new InvokeCommand({ FunctionName: "echo", InvocationType: "Event", Payload: "{}" }),
    );
    await done;
    await server.platform.metrics.flush();
    const v = await values([
      query("received", "AsyncEventsReceived", { FunctionName: "echo" }, "Sum"),
      query("age", "AsyncEventAge", { FunctionName: "echo" }, "SampleCount"),
      query("ageMax", "AsyncEventAge", { FunctionName: "echo" }, "Maximum"),
    ]);
    expect(total(v.received)).toBe(1);
    expect(total(v.age)).toBe(1);
    expect(v.ageMax?.[0]).toBeGreaterThanOrEqual(0);
  });
});

describe("the AWS CLI v2 (query protocol, XML answers)", () => {
  it("get-metric-statistics, get-metric-data and list-metrics", async () => {
    const { StartTime, EndTime } = window();
    const stats = JSON.parse(
      (
        await cli([
          "get-metric-statistics",
          "--namespace",
          "AWS/Lambda",
          "--metric-name",
          "Invocations",
          "--dimensions",
          "Name=FunctionName,Value=fails",
          "--start-time",
          StartTime.toISOString(),
          "--end-time",
          EndTime.toISOString(),
          "--period",
          "3600",
          "--statistics",
          "Sum",
          "Maximum",
        ])
      ).stdout,
    );
    expect(total(stats.Datapoints.map((d: { Sum: number }) => d.Sum))).toBe(2);
    const ext = JSON.parse(
      (
        await cli([
          "get-metric-statistics",
          "--namespace",
          "AWS/Lambda",
          "--metric-name",
          "Duration",
          "--dimensions",
          "Name=FunctionName,Value=echo",
          "--start-time",
          StartTime.toISOString(),
          "--end-time",
          EndTime.toISOString(),
          "--period",
          "3600",
          "--extended-statistics",
          "p90",
        ])
      ).stdout,
    );
    expect(ext.Datapoints[0].ExtendedStatistics.p90).toBeGreaterThan(0);
    const data = JSON.parse(
      (
        await cli([
          "get-metric-data",
          "--start-time",
          StartTime.toISOString(),
          "--end-time",
          EndTime.toISOString(),
          "--metric-data-queries",
          JSON.stringify([
            query("inv", "Invocations", { FunctionName: "echo", Resource: "echo:live" }, "Sum"),
          ]),
        ])
      ).stdout,
    );
    expect(data.MetricDataResults[0].Id).toBe("inv");
    expect(total(data.MetricDataResults[0].Values)).toBe(3);
    const list = JSON.parse(
      (
        await cli([
          "list-metrics",
          "--namespace",
          "AWS/Lambda",
          "--dimensions",
          "Name=FunctionName,Value=fails",
        ])
      ).stdout,
    );
    expect(list.Metrics.map((m: { MetricName: string }) => m.MetricName)).toContain("Errors");
    const bad = await cli([
      "get-metric-statistics",
      "--namespace",
      "AWS/Lambda",
      "--metric-name",
      "Duration",
      "--start-time",
      StartTime.toISOString(),
      "--end-time",
      EndTime.toISOString(),
      "--period",
      "30",
      "--statistics",
      "Sum",
    ]).catch((err: { stderr: string }) => err);
    expect((bad as { stderr: string }).stderr).toMatch(/InvalidParameterValue.*multiple of 60/);
  }, 240_000);
});

describe("hostile requests get CloudWatch's errors", () => {
  const metric = { Namespace: "AWS/Lambda", MetricName: "Invocations" };

  it("bad periods, reversed and huge ranges, unknown statistics, expressions, 500+ queries", async () => {
    const now = Date.now();
    const stat = (over: object) =>
      cw.send(
        new GetMetricStatisticsCommand({
          ...metric,
          StartTime: new Date(now - 3600_000),
          EndTime: new Date(now),
          Period: 60,
          Statistics: ["Sum"],
          ...over,
        }),
      );
    let e = await rejection(() => stat({ Period: 45 }));
    expect(e.name).toBe("InvalidParameterValueException");
    expect(e.$metadata.httpStatusCode).toBe(400);
    expect((e as unknown as { Code?: string }).Code).toBe("InvalidParameterValue");
    e = await rejection(() => stat({ Period: 0 }));
    expect(e.name).toBe("InvalidParameterValueException");
    e = await rejection(() => stat({ StartTime: new Date(now), EndTime: new Date(now - 1000) }));
    expect(e.message).toMatch(/StartTime must be less than/);
    e = await rejection(() => stat({ StartTime: new Date(0), EndTime: new Date(8.64e15) }));
    expect(e.name).toBe("InvalidParameterCombinationException");
    e = await rejection(() => stat({ Statistics: ["Sum"], ExtendedStatistics: ["p50"] }));
    expect(e.name).toBe("InvalidParameterCombinationException");
    e = await rejection(() => stat({ Statistics: undefined, ExtendedStatistics: ["tm99"] }));
    expect(e.name).toBe("InvalidParameterValueException");
    e = await rejection(() => stat({ Statistics: ["Median"] }));
    expect(e.name).toBe("InvalidParameterValueException");
    const data = (queries: MetricDataQuery[], over: object = {}) =>
      cw.send(
        new GetMetricDataCommand({
          StartTime: new Date(now - 3600_000),
          EndTime: new Date(now),
          MetricDataQueries: queries,
          ...over,
        }),
      );
    const q = (i: number): MetricDataQuery => ({
      Id: `q${i}`,
      MetricStat: { Metric: metric, Period: 60, Stat: "Sum" },
    });
    e = await rejection(() => data(Array.from({ length: 501 }, (_, i) => q(i))));
    expect(e.message).toMatch(/500/);
    e = await rejection(() => data([{ Id: "m", Expression: "SUM(METRICS())" }]));
    expect(e.message).toMatch(/not supported/);
    e = await rejection(() => data([q(1), q(1)]));
    expect(e.name).toBe("InvalidParameterValueException");
    e = await rejection(() => data([{ ...q(1), Id: "Upper" }]));
    expect(e.name).toBe("InvalidParameterValueException");
    e = await rejection(() => data([{ Id: "a", MetricStat: { Metric: metric, Period: 60, Stat: "p101" } }]));
    expect(e.name).toBe("InvalidParameterValueException");
    e = await rejection(() => data([q(1)], { MaxDatapoints: -5 }));
    expect(e.name).toBe("InvalidParameterValueException");
    // A year at one-minute periods over an empty series: an empty answer, not a hang.
    const year = await data([q(1)], { StartTime: new Date(now - 365 * 86400_000) });
    expect(year.MetricDataResults?.[0]?.StatusCode).toBe("Complete");
    const dims = Array.from({ length: 31 }, (_, i) => ({ Name: `d${i}`, Value: "v" }));
    e = await rejection(() => cw.send(new ListMetricsCommand({ Dimensions: dims.slice(0, 11) })));
    expect(e.name).toBe("InvalidParameterValueException");
    e = await rejection(() =>
      data([{ Id: "a", MetricStat: { Metric: { ...metric, Dimensions: dims }, Period: 60, Stat: "Sum" } }]),
    );
    expect(e.name).toBe("InvalidParameterValueException");
  });

  it("CBOR: answers real requests, and refuses malformed bodies, wrong types and unknown operations", async () => {
    const now = Date.now() / 1000;
    const ok = await cborRequest(
      "GetMetricStatistics",
      cbor.serialize({
        Namespace: "AWS/Lambda",
        MetricName: "Invocations",
        Dimensions: [{ Name: "FunctionName", Value: "fails" }],
        StartTime: (t0 - 120_000) / 1000,
        EndTime: now + 120,
        Period: 3600,
        Statistics: ["Sum"],
      }),
    );
    expect(ok.status).toBe(200);
    expect(ok.headers.get("smithy-protocol")).toBe("rpc-v2-cbor");
    const body = ok.body as { Datapoints: Array<{ Sum: number; Timestamp: { tag: number } }> };
    expect(total(body.Datapoints.map((d) => d.Sum))).toBe(2);
    expect(body.Datapoints[0]?.Timestamp.tag).toBe(1);
    for (const bytes of [
      Buffer.from([0xff, 0x00]),
      Buffer.from([0xbf]),
      Buffer.from([0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      Buffer.from('{"json": true}'),
      Buffer.from([0x83, 1, 2, 3]),
    ]) {
      const r = await cborRequest("ListMetrics", bytes);
      expect(r.status).toBe(400);
      expect((r.body as { __type: string }).__type).toMatch(/#SerializationException$/);
      expect(r.headers.get("x-amzn-query-error")).toBe("Serialization;Sender");
    }
    // Deep nesting: refused, not a stack overflow.
    const deep = Buffer.concat([Buffer.alloc(100_000, 0x81), Buffer.from([0x01])]);
    expect((await cborRequest("ListMetrics", deep)).status).toBe(400);
    const wrongType = await cborRequest("ListMetrics", cbor.serialize({ Namespace: 42 }));
    expect(wrongType.status).toBe(400);
    for (const op of ["DescribeAlarms", "NoSuchOperation"]) {
      const unknown = await cborRequest(op, cbor.serialize({}));
      expect(unknown.status).toBe(400);
      expect((unknown.body as { __type: string }).__type).toMatch(/#InvalidAction$/);
    }
    const noHeader = await cborRequest("ListMetrics", cbor.serialize({}), { "smithy-protocol": "nope" });
    expect(noHeader.status).toBe(400);
  });

  it("checks the signature's service and cloudwatch:* permissions", async () => {
    const url = new URL(`${server.url}/service/GraniteServiceVersion20100801/operation/ListMetrics`);
    const body = Buffer.from(cbor.serialize({}));
    const headers = signRequest({
      method: "POST",
      url,
      headers: { "smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor" },
      body,
      region: "us-east-1",
      service: "lambda",
      credentials: CREDENTIALS,
    });
    const res = await fetch(url, { method: "POST", headers, body: new Uint8Array(body) });
    expect(res.status).toBe(403);
    const err = cbor.deserialize(new Uint8Array(await res.arrayBuffer())) as {
      __type: string;
      message: string;
    };
    expect(err.message).toMatch(/monitoring/);
  });
});

describe("the store", () => {
  it("servers sharing a PostgreSQL add their minutes up; retention prunes old minutes", async () => {
    const db = await createTestDatabase();
    const dirs = [mkdtempSync(join(tmpdir(), "lambent-m1-")), mkdtempSync(join(tmpdir(), "lambent-m2-"))];
    const stores: Store[] = [];
    for (const dataDir of dirs) stores.push(await Store.open({ dataDir, database: db.url }));
    try {
      const now = Date.now();
      // Retention 0 keeps everything: the prune below is a recorder with a one-day retention.
      const recorders = stores.map((s) => new MetricsRecorder(s, { retentionDays: 0, now: () => now }));
      const dims = dimensionsKey({ FunctionName: "shared" });
      recorders[0]?.record("Custom/Shared", "Hits", dims, 2, "Count");
      recorders[0]?.record("Custom/Shared", "Hits", dims, 10, "Count");
      recorders[1]?.record("Custom/Shared", "Hits", dims, 1, "Count");
      recorders[1]?.record("Custom/Shared", "Hits", dims, 3, "Count", now - 3 * 86400_000);
      await Promise.all(recorders.map((r) => r.flush()));
      await recorders[0]?.flush();
      const q = {
        namespace: "Custom/Shared",
        metricName: "Hits",
        dimensions: { FunctionName: "shared" },
        start: now - 4 * 86400_000,
        end: now + 60_000,
        periodSeconds: 60,
      };
      const sum = await queryMetric(stores[0] as Store, { ...q, stat: "Sum" });
      expect(sum.values).toEqual([3, 13]);
      expect((await queryMetric(stores[1] as Store, { ...q, stat: "SampleCount" })).values).toEqual([1, 3]);
      expect((await queryMetric(stores[1] as Store, { ...q, stat: "Minimum" })).values).toEqual([3, 1]);
      expect((await queryMetric(stores[1] as Store, { ...q, stat: "Maximum" })).values).toEqual([3, 10]);
      const pruner = new MetricsRecorder(stores[0] as Store, { retentionDays: 1, now: () => now });
      expect(await pruner.prune()).toBeGreaterThan(0);
      expect((await queryMetric(stores[0] as Store, { ...q, stat: "Sum" })).values).toEqual([13]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await db.drop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  });
});
