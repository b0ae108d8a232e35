/**
 * EMF records: what the specification and CloudWatch's limits accept, and hostile lines that must
 * stay plain log lines (never half a record, never a throw); the per-function series cap; a
 * recorder that is off records nothing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Store } from "../store/store.js";
import { EmfExtractor, parseEmf } from "./emf.js";
import { dimensionsKey, MetricsRecorder, type Tally } from "./recorder.js";

const NOW = Date.UTC(2026, 0, 15, 12, 30, 10);

function emf(directives: unknown[], members: Record<string, unknown> = {}, timestamp: unknown = NOW) {
  return JSON.stringify({ _aws: { Timestamp: timestamp, CloudWatchMetrics: directives }, ...members });
}

const ok = (members: Record<string, unknown> = {}, directive: Record<string, unknown> = {}) =>
  emf(
    [
      {
        Namespace: "Shop",
        Dimensions: [["service"]],
        Metrics: [{ Name: "Orders", Unit: "Count" }],
        ...directive,
      },
    ],
    { service: "orders", Orders: 3, ...members },
  );

describe("parseEmf", () => {
  it("reads Powertools' shape: one series per metric and dimension set, arrays as samples", () => {
    const line = emf(
      [
        {
          Namespace: "Shop",
          Dimensions: [["service", "env"], ["service"], []],
          Metrics: [
            { Name: "Orders", Unit: "Count" },
            { Name: "Latency", Unit: "Milliseconds", StorageResolution: 1 },
          ],
        },
      ],
      { service: "orders", env: "test", Orders: 3, Latency: [12, 30.5], other: { nested: true } },
    );
    const r = parseEmf(line, NOW);
    expect(r?.timestamp).toBe(NOW);
    expect(r?.series).toEqual([
      ...["Orders", "Latency"].flatMap((metric) =>
        [dimensionsKey({ service: "orders", env: "test" }), dimensionsKey({ service: "orders" }), "[]"].map(
          (dimensions) => ({
            namespace: "Shop",
            metric,
            dimensions,
            unit: metric === "Orders" ? "Count" : "Milliseconds",
            values: metric === "Orders" ? [3] : [12, 30.5],
          }),
        ),
      ),
    ]);
  });

  it("takes a directive without dimension sets as dimensionless and a missing unit as None", () => {
    const r = parseEmf(emf([{ Namespace: "N", Dimensions: [], Metrics: [{ Name: "m" }] }], { m: 0 }), NOW);
    expect(r?.series).toEqual([{ namespace: "N", metric: "m", dimensions: "[]", unit: "None", values: [0] }]);
  });

  it("ignores ordinary lines and lines that merely mention _aws", () => {
    for (const line of [
      "",
      "hello",
      ' {"_aws":{}}',
      '2026-01-15T12:00:00Z\treq\tINFO\t{"_aws":{}}',
      '{"message":"_aws"}',
      '{"_aws": not json',
      `${ok()} trailing`,
      '["_aws"]',
    ]) {
      expect(parseEmf(line, NOW)).toBeUndefined();
    }
  });

  it("refuses AWS/ namespaces (a function must not forge Lambda's metrics)", () => {
    for (const ns of ["AWS/Lambda", "aws/lambda", "AWS/"]) {
      expect(parseEmf(ok({}, { Namespace: ns }), NOW)).toBeUndefined();
    }
    expect(parseEmf(ok({}, { Namespace: "AWSome/Lambda" }), NOW)).toBeDefined();
  });

  it("refuses records outside CloudWatch's limits, whole", () => {
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`m${i}`, i]));
    const defs = (n: number) => Array.from({ length: n }, (_, i) => ({ Name: `m${i}` }));
    expect(
      parseEmf(emf([{ Namespace: "N", Dimensions: [], Metrics: defs(100) }], many(100)), NOW),
    ).toBeDefined();
    expect(
      parseEmf(emf([{ Namespace: "N", Dimensions: [], Metrics: defs(101) }], many(101)), NOW),
    ).toBeUndefined();
    const dims = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`d${i}`, "v"]));
    const set = (n: number) => Array.from({ length: n }, (_, i) => `d${i}`);
    expect(parseEmf(ok(dims(30), { Dimensions: [set(30)] }), NOW)).toBeDefined();
    expect(parseEmf(ok(dims(31), { Dimensions: [set(31)] }), NOW)).toBeUndefined();
    expect(parseEmf(ok({ Orders: Array(100).fill(1) }), NOW)).toBeDefined();
    expect(parseEmf(ok({ Orders: Array(101).fill(1) }), NOW)).toBeUndefined();
    expect(parseEmf(ok({ Orders: [] }), NOW)).toBeUndefined();
    const long = "x".repeat(256);
    expect(parseEmf(ok({}, { Namespace: long }), NOW)).toBeUndefined();
    expect(parseEmf(ok({ [long]: 1 }, { Metrics: [{ Name: long }] }), NOW)).toBeUndefined();
    expect(parseEmf(ok({ service: "v".repeat(1025) }), NOW)).toBeUndefined();
    expect(parseEmf(ok({ service: "v".repeat(1024) }), NOW)).toBeDefined();
  });

  it("refuses values that are not finite numbers, and bad names, units and resolutions", () => {
    for (const Orders of [
      "5",
      "NaN",
      "Infinity",
      true,
      null,
      {},
      [1, "2"],
      [1, null],
      1e300 * 1e10,
      2 ** 361,
    ]) {
      expect(parseEmf(ok({ Orders }), NOW)).toBeUndefined();
    }
    // 1e400 in the JSON text itself parses as Infinity.
    expect(parseEmf(ok().replace('"Orders":3', '"Orders":1e400'), NOW)).toBeUndefined();
    expect(parseEmf(ok({ Orders: -2.5 }), NOW)?.series[0]?.values).toEqual([-2.5]);
    for (const directive of [
      { Namespace: "" },
      { Namespace: 7 },
      { Namespace: ":x" },
      { Namespace: "a\u0000b" },
      { Dimensions: "service" },
      { Dimensions: [["missing"]] },
      { Dimensions: [["service", "service"]] },
      { Dimensions: [[1]] },
      { Metrics: [{ Name: "Orders", Unit: "Parsecs" }] },
      { Metrics: [{ Name: "Orders", StorageResolution: 5 }] },
      { Metrics: [{ Name: "Orders" }, { Name: "Orders" }] },
      { Metrics: [{ Unit: "Count" }] },
      { Metrics: [{ Name: "Missing" }] },
      { Metrics: "Orders" },
    ]) {
      expect(parseEmf(ok({}, directive), NOW), JSON.stringify(directive)).toBeUndefined();
    }
    expect(parseEmf(ok({}, { Namespace: "a\ud800b" }), NOW)).toBeUndefined();
    expect(parseEmf(ok({}, { Namespace: "Caf\u00e9 \ud83d\ude00" }), NOW)).toBeDefined();
    expect(parseEmf(ok({ service: 42 }), NOW)).toBeUndefined();
    expect(parseEmf(ok({ service: "" }), NOW)).toBeUndefined();
    expect(parseEmf(ok({ service: "caf\u00e9" }), NOW)).toBeUndefined();
  });

  it("reads members by own name only: __proto__ is a dimension like any other, constructor is missing", () => {
    const line = ok({ ["__proto__"]: "p" }, { Dimensions: [["__proto__", "service"]] });
    expect(line).toContain('"__proto__":"p"');
    const r = parseEmf(line, NOW);
    expect(r?.series[0]?.dimensions).toBe('[["__proto__","p"],["service","orders"]]');
    expect(({} as Record<string, unknown>).p).toBeUndefined();
    expect(parseEmf(ok({}, { Dimensions: [["constructor"]] }), NOW)).toBeUndefined();
    expect(parseEmf(ok({}, { Metrics: [{ Name: "toString" }] }), NOW)).toBeUndefined();
    expect(parseEmf(`{"__proto__":{"_aws":1},"_aws":null}`, NOW)).toBeUndefined();
  });

  it("drops timestamps more than two weeks old or two hours ahead, and non-numeric ones", () => {
    const day = 24 * 3600 * 1000;
    expect(parseEmf(ok(), NOW)).toBeDefined();
    expect(parseEmf(emf([], {}, NOW), NOW)).toBeUndefined();
    const at = (t: unknown) =>
      parseEmf(emf([{ Namespace: "N", Dimensions: [], Metrics: [{ Name: "m" }] }], { m: 1 }, t), NOW);
    expect(at(NOW - 13 * day)).toBeDefined();
    expect(at(NOW - 15 * day)).toBeUndefined();
    expect(at(NOW + 3600 * 1000)).toBeDefined();
    expect(at(NOW + 3 * 3600 * 1000)).toBeUndefined();
    expect(at(String(NOW))).toBeUndefined();
    const untimed = JSON.stringify({
      _aws: { CloudWatchMetrics: [{ Namespace: "N", Dimensions: [], Metrics: [{ Name: "m" }] }] },
      m: 1,
    });
    expect(parseEmf(untimed, NOW)).toBeUndefined();
  });

  it("survives deep nesting, huge lines and directive floods without throwing", () => {
    const deep = `{"_aws":${"[".repeat(200_000)}${"]".repeat(200_000)}}`;
    expect(parseEmf(deep, NOW)).toBeUndefined();
    const nested = (depth: number) =>
      ok().replace('"Orders":3', `"x":${"[".repeat(depth)}"]]]{{{"${"]".repeat(depth)},"Orders":3`);
    expect(parseEmf(nested(63), NOW)).toBeDefined();
    expect(parseEmf(nested(64), NOW)).toBeUndefined();
    expect(parseEmf(nested(100_000), NOW)).toBeUndefined();
    // Brackets and escaped quotes inside strings are not nesting.
    expect(parseEmf(ok({ s: `\\"${"[{".repeat(1000)}` }), NOW)).toBeDefined();
    const big = ok({ pad: "x".repeat(256 * 1024) });
    expect(parseEmf(big, NOW)).toBeDefined();
    expect(parseEmf(big.slice(0, 256 * 1024), NOW)).toBeUndefined();
    // 30 sets × 100 metrics × 100 values = 300 000 samples asked for: over the per-record bound.
    const names = Array.from({ length: 100 }, (_, i) => `m${i}`);
    const flood = emf(
      [
        {
          Namespace: "N",
          Dimensions: Array.from({ length: 30 }, (_, i) => [`d${i}`]),
          Metrics: names.map((Name) => ({ Name })),
        },
      ],
      {
        ...Object.fromEntries(names.map((n) => [n, Array(100).fill(1)])),
        ...Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`d${i}`, "v"])),
      },
    );
    expect(parseEmf(flood, NOW)).toBeUndefined();
  });
});

describe("EmfExtractor", () => {
  let dir: string;
  let store: Store;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "lambent-emf-"));
    store = await Store.open({ dataDir: dir });
  });

  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const byMetric = (tallies: Tally[]) =>
    Object.fromEntries(tallies.map((t) => [`${t.namespace}/${t.metric}${t.dimensions}`, t]));

  it("records every sample at the record's minute", () => {
    const recorder = new MetricsRecorder(store, { retentionDays: 0, now: () => NOW });
    const x = new EmfExtractor(recorder, { now: () => NOW });
    x.line("fn", ok({ Orders: [1, 2, 3] }));
    x.line("fn", ok({ Orders: 4 }, { Metrics: [{ Name: "Orders", Unit: "Count" }] }));
    x.line("fn", "plain text");
    const t = byMetric(recorder.fold())['Shop/Orders[["service","orders"]]'];
    expect(t).toMatchObject({ count: 4, sum: 10, min: 1, max: 4, unit: "Count" });
    expect(t?.minute).toBe(NOW - (NOW % 60_000));
    expect(x.counts).toEqual({ records: 2, dropped: 0 });
  });

  it("caps the distinct series a function makes per minute; other functions keep their own budget", () => {
    let now = NOW;
    const logged: string[] = [];
    const recorder = new MetricsRecorder(store, { retentionDays: 0, now: () => now });
    const x = new EmfExtractor(recorder, {
      now: () => now,
      maxSeriesPerMinute: 10,
      log: (m) => logged.push(m),
    });
    const record = (i: number) => ok({ service: `s${i}` });
    for (let i = 0; i < 12; i++) x.line("hostile", record(i));
    x.line("hostile", record(3)); // a series already counted this minute is still taken
    x.line("calm", record(0));
    expect(x.counts).toEqual({ records: 12, dropped: 2 });
    expect(logged).toHaveLength(1);
    expect(recorder.fold()).toHaveLength(10);
    now += 60_000;
    x.line("hostile", record(11));
    expect(x.counts.records).toBe(13);
    expect(logged).toHaveLength(2);
  });

  it("records nothing when metrics are off", () => {
    const recorder = new MetricsRecorder(store, { retentionDays: 0, enabled: false, now: () => NOW });
    const x = new EmfExtractor(recorder, { now: () => NOW });
    x.line("fn", ok());
    expect(recorder.fold()).toEqual([]);
    expect(x.counts.records).toBe(0);
  });
});
