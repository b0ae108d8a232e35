/** Event source mappings on Redis Streams, against the machine's Redis. */
import { execSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  CreateEventSourceMappingCommand,
  GetEventSourceMappingCommand,
  UpdateEventSourceMappingCommand,
} from "@aws-sdk/client-lambda";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Collector } from "./helpers/collector.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { batchesOf, type Doc, deployBatchFunction, numbersSeen, until } from "./helpers/sources.js";

const URI = "redis://127.0.0.1:6379";
let server: TestServer;
let collector: Collector;
let redis: Redis;
const run = randomBytes(4).toString("hex");
let counter = 0;

function names() {
  counter++;
  return { fn: `redis-${run}-${counter}`, stream: `lambent-test-${run}-${counter}` };
}

async function publish(stream: string, records: object[]): Promise<string[]> {
  const ids: string[] = [];
  for (const r of records) ids.push((await redis.xadd(stream, "*", "data", JSON.stringify(r))) as string);
  return ids;
}

function onFn(fn: string) {
  // Each function reports to its own path prefix: REPORT_URL/<fn>/batch.
  return (r: { path: string }) => r.path === `/${fn}/batch`;
}

async function mapping(fn: string, stream: string, extra: Record<string, unknown> = {}) {
  const out = await server.lambda.send(
    new CreateEventSourceMappingCommand({
      FunctionName: fn,
      EventSourceArn: URI,
      Topics: [stream],
      StartingPosition: "TRIM_HORIZON",
      ...extra,
    }),
  );
  return out.UUID as string;
}

function received(fn: string) {
  return collector.received.filter(onFn(fn)).map((r) => ({ ...r, path: "/batch" }));
}

async function waitNumbers(fn: string, want: number[]) {
  await collector.waitUntil(() => want.every((n) => numbersSeen(received(fn)).includes(n)));
}

beforeAll(async () => {
  server = await startServer();
  collector = await Collector.start();
  redis = new Redis(URI);
});

afterAll(async () => {
  await server?.stop();
  await collector?.close();
  redis?.disconnect();
});

describe("Redis Streams event source", () => {
  it("delivers every record exactly once, in order, in batches of at most BatchSize", async () => {
    const { fn, stream } = names();
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
    const all = Array.from({ length: 40 }, (_, i) => ({ n: i + 1 }));
    await publish(stream, all.slice(0, 20));
    const uuid = await mapping(fn, stream, { BatchSize: 7 });
    await publish(stream, all.slice(20));
    await waitNumbers(
      fn,
      all.map((r) => r.n),
    );
    const seen = numbersSeen(received(fn));
    expect(seen).toEqual(all.map((r) => r.n));
    const sizes = batchesOf(received(fn)).map((b) => b.records.length);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(7);
    expect(sizes).toContain(7);
    const got = await until(async () => {
      const m = await server.lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
      return m.State === "Enabled" && m.LastProcessingResult === "OK" ? m : null;
    });
    expect(got.Topics).toEqual([stream]);
    expect(got.StartingPosition).toBe("TRIM_HORIZON");
    expect(got.BatchSize).toBe(7);
  });

  it("gathers records for the batching window", async () => {
    const { fn, stream } = names();
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
    await mapping(fn, stream, { BatchSize: 50, MaximumBatchingWindowInSeconds: 3 });
    // Published one by one while the first record's window is open: one batch.
    await publish(stream, [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
    await waitNumbers(fn, [1, 2, 3, 4]);
    expect(batchesOf(received(fn)).map((b) => b.records.length)).toEqual([4]);
  });

  it("ReportBatchItemFailures resumes from the first failed record", async () => {
    const { fn, stream } = names();
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`, { MODE: "partial" });
    const ids = await publish(stream, [
      { n: 1 },
      { n: 2 },
      { n: 3, failTimes: 1 },
      { n: 4 },
      { n: 5, failTimes: 1 },
    ]);
    await mapping(fn, stream, { BatchSize: 10, FunctionResponseTypes: ["ReportBatchItemFailures"] });
    await collector.waitUntil(() => batchesOf(received(fn)).length >= 2);
    const [first, second] = batchesOf(received(fn)).map((b) => b.records.map((r) => r.id));
    // Records 3 and 5 failed the first time: the checkpoint moved past 1 and 2, the retry starts at 3.
    expect(first).toEqual(ids);
    expect(second).toEqual(ids.slice(2));
    const stats = await until(async () => {
      const res = await signedFetch(`${server.url}/_lambent/event-source-mappings/stats`);
      const body = (await res.json()) as { mappings: Array<Doc> };
      const s = body.mappings.find((m) => m.Target === stream);
      return s && s.recordsProcessed === 5 ? s : null;
    });
    expect(stats.batches).toBe(2);
  });

  it("bisects a failing batch down to the poison record and sends it to the on-failure destination", async () => {
    const { fn, stream } = names();
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
    const ids = await publish(
      stream,
      Array.from({ length: 8 }, (_, i) => (i === 4 ? { n: i + 1, poison: true } : { n: i + 1 })),
    );
    await mapping(fn, stream, {
      BatchSize: 8,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 0,
      DestinationConfig: { OnFailure: { Destination: `${collector.url}/${fn}/failure` } },
    });
    const [failure] = await collector.onPath(`/${fn}/failure`);
    const okNumbers = () =>
      batchesOf(received(fn))
        .filter((b) => !b.records.some((r) => r.data.poison))
        .flatMap((b) => b.records.map((r) => r.data.n));
    await collector.waitUntil(() => [1, 2, 3, 4, 6, 7, 8].every((n) => okNumbers().includes(n)));
    const body = failure?.body as Doc;
    expect(body.requestContext.condition).toBe("RetryAttemptsExhausted");
    expect(body.responseContext.functionError).toBe("Unhandled");
    expect(body.RedisBatchInfo).toMatchObject({
      stream,
      startSequenceNumber: ids[4],
      endSequenceNumber: ids[4],
      batchSize: 1,
    });
    // Every other record was processed in a batch that succeeded.
    const ok = batchesOf(received(fn)).filter((b) => !b.records.some((r) => r.data.poison));
    expect(new Set(ok.flatMap((b) => b.records.map((r) => r.data.n)))).toEqual(
      new Set([1, 2, 3, 4, 6, 7, 8]),
    );
  });

  it("exhausted retries send the batch description to a Redis stream destination", async () => {
    const { fn, stream } = names();
    const failStream = `${stream}-failures`;
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
    const ids = await publish(stream, [{ n: 1 }, { n: 2, poison: true }, { n: 3 }]);
    await mapping(fn, stream, {
      BatchSize: 3,
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: `${URI}?stream=${failStream}` } },
    });
    const res = (await redis.xread("BLOCK", 30000, "STREAMS", failStream, "0")) as [
      string,
      [string, string[]][],
    ][];
    const fields = res[0]?.[1][0]?.[1] as string[];
    const body = JSON.parse(fields[fields.indexOf("data") + 1] as string);
    expect(body.requestContext.approximateInvokeCount).toBe(3);
    expect(body.RedisBatchInfo).toMatchObject({
      startSequenceNumber: ids[0],
      endSequenceNumber: ids[2],
      batchSize: 3,
    });
    expect(batchesOf(received(fn))).toHaveLength(3);
  });

  it("filter criteria drop non-matching records before the invoke", async () => {
    const { fn, stream } = names();
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
    await publish(stream, [
      { n: 1, kind: "keep", size: 5 },
      { n: 2, kind: "drop", size: 5 },
      { n: 3, kind: "keep", size: 50 },
      { n: 4, kind: "keep", size: 7 },
    ]);
    const uuid = await mapping(fn, stream, {
      FilterCriteria: {
        Filters: [{ Pattern: JSON.stringify({ data: { kind: ["keep"], size: [{ numeric: ["<", 10] }] } }) }],
      },
    });
    await waitNumbers(fn, [1, 4]);
    expect(numbersSeen(received(fn))).toEqual([1, 4]);
    const stats = await until(async () => {
      const res = await signedFetch(`${server.url}/_lambent/event-source-mappings/stats`);
      const body = (await res.json()) as { mappings: Array<Doc> };
      const s = body.mappings.find((m) => m.UUID === uuid);
      return s && s.recordsFiltered === 2 && s.recordsProcessed === 2 ? s : null;
    });
    expect(stats.recordsProcessed).toBe(2);
  });

  it("disabling a mapping stops consumption; enabling resumes it", async () => {
    const { fn, stream } = names();
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
    await publish(stream, [{ n: 1 }]);
    const uuid = await mapping(fn, stream);
    await waitNumbers(fn, [1]);
    const upd = await server.lambda.send(new UpdateEventSourceMappingCommand({ UUID: uuid, Enabled: false }));
    expect(upd.State).toBe("Disabling");
    await until(
      async () =>
        (await server.lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }))).State === "Disabled",
    );
    await publish(stream, [{ n: 2 }]);
    // The poller is stopped: the group has not read the new entry.
    const groups = (await redis.call("XINFO", "GROUPS", stream)) as unknown[][];
    const g = groups[0] as unknown[];
    expect(g[g.indexOf("lag") + 1]).toBe(1);
    expect(numbersSeen(received(fn))).toEqual([1]);
    await server.lambda.send(new UpdateEventSourceMappingCommand({ UUID: uuid, Enabled: true }));
    await waitNumbers(fn, [2]);
    expect(numbersSeen(received(fn))).toEqual([1, 2]);
  });

  it("recovers from a Redis restart and loses no record published after it", async () => {
    const { fn, stream } = names();
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
    await publish(stream, [{ n: 1 }, { n: 2 }]);
    const uuid = await mapping(fn, stream, { BatchSize: 5 });
    await waitNumbers(fn, [1, 2]);
    redis.disconnect();
    execSync("redis-cli -p 6379 shutdown nosave || true");
    await until(async () => {
      const m = await server.lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
      return m.LastProcessingResult?.startsWith("PROBLEM: Connection error") ? m : null;
    });
    execSync("bash scripts/services.sh");
    redis = new Redis(URI);
    await publish(stream, [{ n: 3 }, { n: 4 }, { n: 5 }]);
    await waitNumbers(fn, [3, 4, 5]);
    await until(async () => {
      const m = await server.lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
      return m.LastProcessingResult === "OK";
    });
  });
});
