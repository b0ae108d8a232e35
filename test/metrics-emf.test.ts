/**
 * EMF end to end: a function using `@aws-lambda-powertools/metrics` (bundled with its dependencies)
 * publishes custom metrics with dimensions; the AWS SDK v3's CloudWatchClient reads them back with
 * GetMetricData, GetMetricStatistics and ListMetrics and the sums equal what was emitted. Hostile
 * records printed by a function (forged AWS/Lambda metrics, 101 metrics, non-numbers, huge arrays,
 * `__proto__` and `constructor` dimensions, deep nesting, a line past 256 KB, stale timestamps) stay
 * log lines and the server keeps serving. Records sent with PutLogEvents count too (the
 * `x-amzn-logs-format: json/emf` header or not), AWS/ namespaces refused there as well. With
 * `--no-metrics` nothing is recorded.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CloudWatchClient,
  GetMetricDataCommand,
  GetMetricStatisticsCommand,
  ListMetricsCommand,
  type Metric,
  paginateListMetrics,
} from "@aws-sdk/client-cloudwatch";
import {
  CloudWatchLogsClient,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  GetLogEventsCommand,
  PutLogEventsCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { CreateFunctionCommand, InvokeCommand, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LogEvent } from "../src/logs/log-sink.js";
import { EmfExtractor } from "../src/metrics/emf.js";
import { listMetrics, queryMetric } from "../src/metrics/query.js";
import { MetricsRecorder } from "../src/metrics/recorder.js";
import { Store } from "../src/store/store.js";
import { createTestDatabase } from "./helpers/postgres.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };
let server: TestServer;
let cw: CloudWatchClient;
let t0: number;

const SHOP = `
const { Metrics, MetricUnit } = require("@aws-lambda-powertools/metrics");
const metrics = new Metrics({ namespace: "Shop", serviceName: "orders", defaultDimensions: { env: "test" } });
exports.handler = async (event) => {
  metrics.addDimension("region", "eu");
  metrics.addMetric("Orders", MetricUnit.Count, event.orders);
  metrics.addMetric("Latency", MetricUnit.Milliseconds, 10);
  metrics.addMetric("Latency", MetricUnit.Milliseconds, 30);
  const refund = metrics.singleMetric();
  refund.addDimension("kind", "refund");
  refund.addMetric("Refunds", MetricUnit.Count, 1);
  metrics.publishStoredMetrics();
  process.stdout.write("emf-done " + event.marker + "\\n");
  return { ok: true };
};
`;

/** Prints the lines it is given as they are (no console prefix), then a marker line. */
const PRINTER = `
exports.handler = async (event) => {
  for (const line of event.lines) process.stdout.write(line + "\\n");
  process.stdout.write("emf-done " + event.marker + "\\n");
  return { printed: event.lines.length };
};
`;

async function bundled(source: string): Promise<string> {
  const out = await build({
    stdin: { contents: source, resolveDir: fileURLToPath(new URL("..", import.meta.url)), loader: "js" },
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    write: false,
    logLevel: "silent",
  });
  return out.outputFiles[0]?.text ?? "";
}

async function deploy(s: TestServer, name: string, code: string): Promise<void> {
  await s.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      MemorySize: 256,
      Timeout: 30,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: code }]) },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: s.lambda, maxWaitTime: 60, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

let markers = 0;
/**
 * Invoke and wait until the function's last line (its marker) went through the log pipeline, where
 * EMF is read: every line before it has been seen. Then write the metrics to the store.
 */
async function invokeAndSettle(s: TestServer, name: string, event: Record<string, unknown>): Promise<void> {
  const marker = `m${++markers}`;
  const seen = new Promise<void>((resolve) => {
    const listener = (e: LogEvent) => {
      if (e.message.includes(`emf-done ${marker}`)) {
        s.platform.logs.live.off("event", listener);
        resolve();
      }
    };
    s.platform.logs.live.on("event", listener);
  });
  const out = await s.lambda.send(
    new InvokeCommand({ FunctionName: name, Payload: JSON.stringify({ ...event, marker }) }),
  );
  expect(out.FunctionError, Buffer.from(out.Payload ?? []).toString()).toBeUndefined();
  await seen;
  await s.platform.metrics.flush();
}

function window(): { StartTime: Date; EndTime: Date } {
  return { StartTime: new Date(t0 - 120_000), EndTime: new Date(Date.now() + 120_000) };
}

const dims = (d: Record<string, string>) => Object.entries(d).map(([Name, Value]) => ({ Name, Value }));
const total = (xs: number[] | undefined) => (xs ?? []).reduce((a, b) => a + b, 0);

async function listAll(client: CloudWatchClient, Namespace: string): Promise<Metric[]> {
  const out: Metric[] = [];
  for await (const page of paginateListMetrics({ client }, { Namespace })) out.push(...(page.Metrics ?? []));
  return out;
}

/** ListMetrics' answer as sortable strings: `name{a=1,b=2}`. */
const shapes = (metrics: Metric[]) =>
  metrics
    .map(
      (m) =>
        `${m.MetricName}{${(m.Dimensions ?? [])
          .map((d) => `${d.Name}=${d.Value}`)
          .sort()
          .join(",")}}`,
    )
    .sort();

const SHOP_DIMS = { service: "orders", env: "test", region: "eu" };

beforeAll(async () => {
  t0 = Date.now();
  server = await startServer();
  cw = new CloudWatchClient({
    endpoint: server.url,
    region: "us-east-1",
    credentials: CREDENTIALS,
    maxAttempts: 1,
  });
  await deploy(server, "shop", await bundled(SHOP));
  await deploy(server, "printer", await bundled(PRINTER));
}, 120_000);

afterAll(async () => {
  cw?.destroy();
  await server?.stop();
});

describe("EMF from a function using @aws-lambda-powertools/metrics", () => {
  it("becomes custom metrics: sums, samples and dimension sets read back with the AWS SDK v3", async () => {
    for (const orders of [2, 3, 5]) await invokeAndSettle(server, "shop", { orders });

    const data = await cw.send(
      new GetMetricDataCommand({
        ...window(),
        MetricDataQueries: [
          {
            Id: "orders",
            MetricStat: {
              Metric: { Namespace: "Shop", MetricName: "Orders", Dimensions: dims(SHOP_DIMS) },
              Period: 60,
              Stat: "Sum",
            },
          },
          {
            Id: "latency",
            MetricStat: {
              Metric: { Namespace: "Shop", MetricName: "Latency", Dimensions: dims(SHOP_DIMS) },
              Period: 60,
              Stat: "SampleCount",
            },
          },
          {
            Id: "refunds",
            MetricStat: {
              Metric: {
                Namespace: "Shop",
                MetricName: "Refunds",
                Dimensions: dims({ service: "orders", env: "test", kind: "refund" }),
              },
              Period: 60,
              Stat: "Sum",
            },
          },
        ],
      }),
    );
    const v = Object.fromEntries((data.MetricDataResults ?? []).map((r) => [r.Id, r.Values ?? []]));
    expect(total(v.orders)).toBe(10);
    expect(total(v.latency)).toBe(6);
    expect(total(v.refunds)).toBe(3);

    const stats = await cw.send(
      new GetMetricStatisticsCommand({
        Namespace: "Shop",
        MetricName: "Latency",
        Dimensions: dims(SHOP_DIMS),
        ...window(),
        Period: 3600,
        Statistics: ["SampleCount", "Sum", "Minimum", "Maximum"],
      }),
    );
    const points = stats.Datapoints ?? [];
    expect(points.length).toBeGreaterThan(0);
    expect(points.reduce((a, p) => a + (p.SampleCount ?? 0), 0)).toBe(6);
    expect(points.reduce((a, p) => a + (p.Sum ?? 0), 0)).toBe(120);
    expect(Math.min(...points.map((p) => p.Minimum ?? Number.NaN))).toBe(10);
    expect(Math.max(...points.map((p) => p.Maximum ?? Number.NaN))).toBe(30);
    expect(points.every((p) => p.Unit === "Milliseconds")).toBe(true);

    expect(shapes(await listAll(cw, "Shop"))).toEqual([
      "Latency{env=test,region=eu,service=orders}",
      "Orders{env=test,region=eu,service=orders}",
      "Refunds{env=test,kind=refund,service=orders}",
    ]);
    const filtered = await cw.send(
      new ListMetricsCommand({ Namespace: "Shop", Dimensions: [{ Name: "kind", Value: "refund" }] }),
    );
    expect(shapes(filtered.Metrics ?? [])).toEqual(["Refunds{env=test,kind=refund,service=orders}"]);
  }, 120_000);
});

describe("hostile EMF records", () => {
  it("stay log lines: nothing forged, nothing half-recorded; the server keeps serving", async () => {
    const now = Date.now();
    const rec = (
      directive: Record<string, unknown>,
      members: Record<string, unknown>,
      timestamp: number = now,
    ) => JSON.stringify({ _aws: { Timestamp: timestamp, CloudWatchMetrics: [directive] }, ...members });
    const hostile = (metric: string, value: unknown, extra: Record<string, unknown> = {}) =>
      rec(
        { Namespace: "Hostile", Dimensions: [["fn"]], Metrics: [{ Name: metric }], ...extra },
        {
          fn: "printer",
          [metric]: value,
        },
      );
    const hundredAndOne = Array.from({ length: 101 }, (_, i) => `m${i}`);
    const lines = [
      // Forging Lambda's own metrics, under any spelling.
      rec(
        { Namespace: "AWS/Lambda", Dimensions: [["FunctionName"]], Metrics: [{ Name: "Invocations" }] },
        { FunctionName: "printer", Invocations: [1000, 1000] },
      ),
      rec(
        { Namespace: "aws/lambda", Dimensions: [["FunctionName"]], Metrics: [{ Name: "Errors" }] },
        { FunctionName: "printer", Errors: 5 },
      ),
      // 101 metrics in one directive.
      rec(
        { Namespace: "Hostile", Dimensions: [[]], Metrics: hundredAndOne.map((Name) => ({ Name })) },
        Object.fromEntries(hundredAndOne.map((n) => [n, 1])),
      ),
      // Values that are not finite numbers.
      hostile("Str", "5"),
      hostile("NanStr", "NaN"),
      hostile("InfStr", "Infinity"),
      hostile("Null", null),
      hostile("Bool", true),
      hostile("Obj", { n: 1 }),
      hostile("Mixed", [1, "2"]),
      hostile("TooBig", 2 ** 400),
      JSON.stringify({
        _aws: {
          Timestamp: now,
          CloudWatchMetrics: [{ Namespace: "Hostile", Dimensions: [], Metrics: [{ Name: "Inf" }] }],
        },
      }).replace(/}$/, ',"Inf":1e999}'),
      // Huge arrays.
      hostile("Array101", Array(101).fill(1)),
      hostile("ArrayHuge", Array(60_000).fill(1)),
      // Members that are not the document's own.
      rec({ Namespace: "Hostile", Dimensions: [["constructor"]], Metrics: [{ Name: "Ctor" }] }, { Ctor: 1 }),
      rec({ Namespace: "Hostile", Dimensions: [], Metrics: [{ Name: "toString" }] }, {}),
      // Deep nesting where the metadata should be, and a line past the 256 KB line limit.
      `{"_aws":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
      hostile("Big", 1, {}).replace(/}$/, `,"pad":"${"x".repeat(300 * 1024)}"}`),
      // Too old, too far ahead.
      rec(
        { Namespace: "Hostile", Dimensions: [], Metrics: [{ Name: "Old" }] },
        { Old: 1 },
        now - 15 * 86_400_000,
      ),
      rec(
        { Namespace: "Hostile", Dimensions: [], Metrics: [{ Name: "Ahead" }] },
        { Ahead: 1 },
        now + 3 * 3_600_000,
      ),
      // Not JSON at all, or prefixed.
      '{"_aws": {"CloudWatchMetrics": [',
      `INFO ${hostile("Prefixed", 1)}`,
      // A dimension named __proto__ is an ordinary dimension, stored as such.
      rec(
        { Namespace: "Proto", Dimensions: [["__proto__"]], Metrics: [{ Name: "Polluted", Unit: "Count" }] },
        {
          ["__proto__"]: "yes",
          Polluted: 7,
        },
      ),
      // And one valid record among them.
      hostile("Valid", [1, 2]),
    ];
    const before = server.platform.emf.counts.records;
    await invokeAndSettle(server, "printer", { lines });
    expect(server.platform.emf.counts.records - before).toBe(2);
    expect(({} as Record<string, unknown>).Polluted).toBeUndefined();

    expect(shapes(await listAll(cw, "Hostile"))).toEqual(["Valid{fn=printer}"]);
    expect(shapes(await listAll(cw, "Proto"))).toEqual(["Polluted{__proto__=yes}"]);
    const lambda = await cw.send(
      new GetMetricDataCommand({
        ...window(),
        MetricDataQueries: [
          {
            Id: "invocations",
            MetricStat: {
              Metric: {
                Namespace: "AWS/Lambda",
                MetricName: "Invocations",
                Dimensions: dims({ FunctionName: "printer" }),
              },
              Period: 3600,
              Stat: "Sum",
            },
          },
          {
            Id: "valid",
            MetricStat: {
              Metric: { Namespace: "Hostile", MetricName: "Valid", Dimensions: dims({ fn: "printer" }) },
              Period: 3600,
              Stat: "Sum",
            },
          },
        ],
      }),
    );
    const v = Object.fromEntries((lambda.MetricDataResults ?? []).map((r) => [r.Id, r.Values ?? []]));
    expect(total(v.invocations)).toBe(1);
    expect(total(v.valid)).toBe(3);
    expect(
      shapes((await cw.send(new ListMetricsCommand({ Namespace: "aws/lambda" }))).Metrics ?? []),
    ).toEqual([]);

    // Every line is still in the function's log, and the server serves the next invoke.
    await server.platform.logs.flush();
    const stored = await server.platform.logs.query({ group: "/aws/lambda/printer", limit: 10_000 });
    const messages = stored.map((r) => r.message);
    expect(messages).toContain(lines[0]);
    expect(messages).toContain(lines.at(-1));
    await invokeAndSettle(server, "shop", { orders: 1 });

    // GET /metrics counts the records taken.
    const scrape = await (await signedFetch(`${server.url}/metrics`)).text();
    const recorded = /^lambent_emf_records_total\{outcome="recorded"\} (\d+)$/m.exec(scrape);
    expect(Number(recorded?.[1])).toBe(server.platform.emf.counts.records);
    expect(scrape).toMatch(/^lambent_emf_records_total\{outcome="dropped"\} 0$/m);
  }, 120_000);
});

describe("EMF sent with PutLogEvents", () => {
  it("becomes custom metrics, with or without x-amzn-logs-format: json/emf; AWS/ namespaces stay refused", async () => {
    const logs = new CloudWatchLogsClient({
      endpoint: server.url,
      region: "us-east-1",
      credentials: CREDENTIALS,
      maxAttempts: 1,
    });
    // The header AWS's PutLogEvents example sends; CloudWatch Logs reads EMF without it too.
    let emfHeader = true;
    logs.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers: Record<string, string> };
        if (emfHeader) request.headers["x-amzn-logs-format"] = "json/emf";
        return next(args);
      },
      { step: "build", name: "emfHeader" },
    );
    const record = (namespace: string, value: number) =>
      JSON.stringify({
        _aws: {
          Timestamp: Date.now(),
          CloudWatchMetrics: [{ Namespace: namespace, Dimensions: [["app"]], Metrics: [{ Name: "Jobs" }] }],
        },
        app: "batch",
        Jobs: value,
      });
    try {
      await logs.send(new CreateLogGroupCommand({ logGroupName: "/app/batch" }));
      await logs.send(new CreateLogStreamCommand({ logGroupName: "/app/batch", logStreamName: "s" }));
      const before = server.platform.emf.counts.records;
      const put = (messages: string[]) =>
        logs.send(
          new PutLogEventsCommand({
            logGroupName: "/app/batch",
            logStreamName: "s",
            logEvents: messages.map((message) => ({ timestamp: Date.now(), message })),
          }),
        );
      await put([record("Batch", 3), "an ordinary line", record("AWS/Lambda", 1000)]);
      emfHeader = false;
      await put([record("Batch", 4)]);
      expect(server.platform.emf.counts.records - before).toBe(2);
      await server.platform.metrics.flush();
      const stats = await cw.send(
        new GetMetricStatisticsCommand({
          Namespace: "Batch",
          MetricName: "Jobs",
          Dimensions: dims({ app: "batch" }),
          Period: 60,
          Statistics: ["Sum", "SampleCount"],
          ...window(),
        }),
      );
      expect(total(stats.Datapoints?.map((d) => d.Sum ?? 0))).toBe(7);
      expect(total(stats.Datapoints?.map((d) => d.SampleCount ?? 0))).toBe(2);
      // The forged AWS/Lambda record stayed a log line only.
      expect(shapes(await listAll(cw, "AWS/Lambda")).filter((m) => m.startsWith("Jobs"))).toEqual([]);
      const events = await logs.send(
        new GetLogEventsCommand({ logGroupName: "/app/batch", logStreamName: "s" }),
      );
      expect(events.events?.map((e) => e.message)).toContain("an ordinary line");
    } finally {
      logs.destroy();
    }
  });
});

describe("--no-metrics", () => {
  it("records no EMF metrics", async () => {
    const off = await startServer({ metrics: false });
    const offCw = new CloudWatchClient({
      endpoint: off.url,
      region: "us-east-1",
      credentials: CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      await deploy(off, "shop", await bundled(SHOP));
      await invokeAndSettle(off, "shop", { orders: 4 });
      expect(off.platform.emf.counts.records).toBe(0);
      expect(await listAll(offCw, "Shop")).toEqual([]);
    } finally {
      offCw.destroy();
      await off.stop();
    }
  }, 120_000);
});

describe("records at the edge of the limits", () => {
  it("are stored and read back unchanged by SQLite and PostgreSQL", async () => {
    const db = await createTestDatabase();
    const dir = mkdtempSync(join(tmpdir(), "lambent-emf-edge-"));
    const stores = [await Store.open({ dataDir: dir }), await Store.open({ dataDir: dir, database: db.url })];
    try {
      const now = Date.now();
      const namespace = "\u00e9\ud83d\ude00".repeat(85);
      const metric = "M".repeat(255);
      const names = ["__proto__", ...Array.from({ length: 29 }, (_, i) => `d${i}'";\\`)];
      const dimensions = Object.fromEntries(names.map((n, i) => [n, `${i}"'\\%_`.padEnd(1024, "~")]));
      const values = [2 ** 360, -(2 ** 360), 2 ** -360, 0];
      const line = `{${names.map((n) => `${JSON.stringify(n)}:${JSON.stringify(dimensions[n])}`).join(",")},${JSON.stringify(
        {
          _aws: {
            Timestamp: now,
            CloudWatchMetrics: [
              {
                Namespace: namespace,
                Dimensions: [names],
                Metrics: [{ Name: metric, Unit: "Bytes/Second" }],
              },
            ],
          },
          [metric]: values,
        },
      ).slice(1)}`;
      for (const store of stores) {
        const recorder = new MetricsRecorder(store, { retentionDays: 0 });
        const emf = new EmfExtractor(recorder);
        emf.line("edge", line);
        expect(emf.counts.records).toBe(1);
        await recorder.flush();
        const listed = await listMetrics(store, { namespace, since: now - 120_000 });
        expect(listed).toHaveLength(1);
        expect(listed[0]?.metricName).toBe(metric);
        expect(listed[0]?.dimensions).toEqual(dimensions);
        expect(Object.getPrototypeOf(listed[0]?.dimensions)).toBe(Object.prototype);
        const q = {
          namespace,
          metricName: metric,
          dimensions,
          start: now - 120_000,
          end: now + 120_000,
          periodSeconds: 3600,
        };
        for (const [stat, want] of [
          ["SampleCount", 4],
          ["Maximum", 2 ** 360],
          ["Minimum", -(2 ** 360)],
        ] as const) {
          const got = await queryMetric(store, { ...q, stat });
          expect(
            got.values.reduce((a, b) => a + b, 0),
            `${store.engine} ${stat}`,
          ).toBe(want);
        }
      }
    } finally {
      for (const store of stores) await store.close();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
