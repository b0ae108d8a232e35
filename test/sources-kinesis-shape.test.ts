/**
 * Stream records in Lambda's Kinesis event shape: a Powertools `BatchProcessor`
 * (`EventType.KinesisDataStreams`, npm `@aws-lambda-powertools/batch`, bundled into the function with
 * esbuild) consumes a Redis stream mapping unchanged, and its partial batch response retries only the
 * failed record; NATS JetStream records have the same shape.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CreateEventSourceMappingCommand,
  CreateFunctionCommand,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { build } from "esbuild";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Collector } from "./helpers/collector.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { type Doc, until } from "./helpers/sources.js";
import { zipEntries } from "./helpers/zip.js";

const REDIS = "redis://127.0.0.1:6379";
const NATS = "nats://127.0.0.1:4222";
const run = randomBytes(4).toString("hex");

/**
 * Powertools' Kinesis batch processor. Each record's decoded data and the whole record go to
 * REPORT_URL; a record `{ failTimes: k }` throws its first k times (counted in STATE_DIR).
 */
const POWERTOOLS_HANDLER = `
const fs = require("node:fs");
const { BatchProcessor, EventType, processPartialResponse } = require("@aws-lambda-powertools/batch");
const processor = new BatchProcessor(EventType.KinesisDataStreams);
const recordHandler = async (record) => {
  const data = JSON.parse(Buffer.from(record.kinesis.data, "base64").toString("utf8"));
  await fetch(process.env.REPORT_URL, { method: "POST", body: JSON.stringify({ data, record }) });
  if (data.failTimes) {
    const f = process.env.STATE_DIR + "/" + data.n;
    let c = 0;
    try { c = Number(fs.readFileSync(f, "utf8")); } catch {}
    fs.writeFileSync(f, String(c + 1));
    if (c < data.failTimes) throw new Error("record " + data.n + " failed");
  }
};
exports.handler = async (event, context) => processPartialResponse(event, recordHandler, processor, { context });
`;

let server: TestServer;
let collector: Collector;

async function deploy(name: string, reportPath: string): Promise<void> {
  const out = await build({
    stdin: {
      contents: POWERTOOLS_HANDLER,
      resolveDir: fileURLToPath(new URL("..", import.meta.url)),
      loader: "js",
    },
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    write: false,
    logLevel: "silent",
  });
  await server.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs22.x",
      Handler: "index.handler",
      Role: ROLE,
      Timeout: 30,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: out.outputFiles[0]?.text ?? "" }]) },
      Environment: {
        Variables: {
          REPORT_URL: `${collector.url}${reportPath}`,
          STATE_DIR: mkdtempSync(join(tmpdir(), "lambent-kinesis-")),
        },
      },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
    { FunctionName: name },
  );
}

/** What the handler saw, in order: `{ data, record }` per processed record. */
function seen(path: string): Array<{ data: Doc; record: Doc }> {
  return collector.received.filter((r) => r.path === path).map((r) => r.body as { data: Doc; record: Doc });
}

beforeAll(async () => {
  server = await startServer();
  collector = await Collector.start();
});
afterAll(async () => {
  await server?.stop();
  await collector?.close();
});

describe("stream records in Lambda's Kinesis shape", () => {
  it("Redis: Powertools' Kinesis BatchProcessor runs unchanged; a failed record is the only one retried", async () => {
    const redis = new Redis(REDIS);
    try {
      const fn = `kinesis-redis-${run}`;
      const stream = `lambent-kinesis-${run}`;
      await deploy(fn, "/redis");
      const ids: string[] = [];
      for (let n = 1; n <= 4; n++) {
        const fields = ["data", JSON.stringify(n === 4 ? { n, failTimes: 1 } : { n })];
        if (n === 2) fields.push("partitionKey", "customer-7");
        ids.push((await redis.xadd(stream, "*", ...fields)) as string);
      }
      await server.lambda.send(
        new CreateEventSourceMappingCommand({
          FunctionName: fn,
          EventSourceArn: REDIS,
          Topics: [stream],
          StartingPosition: "TRIM_HORIZON",
          BatchSize: 10,
          FunctionResponseTypes: ["ReportBatchItemFailures"],
        }),
      );
      // 1–4 in the first batch (4 fails), then 4 alone.
      await collector.waitUntil(() => seen("/redis").length >= 5);
      expect(seen("/redis").map((s) => s.data.n)).toEqual([1, 2, 3, 4, 4]);
      const [first, second] = seen("/redis").map((s) => s.record);
      const arrival = Number((ids[0] as string).split("-")[0]) / 1000;
      expect(first).toEqual({
        kinesis: {
          kinesisSchemaVersion: "1.0",
          partitionKey: stream,
          sequenceNumber: ids[0],
          data: Buffer.from(JSON.stringify({ n: 1 })).toString("base64"),
          approximateArrivalTimestamp: arrival,
        },
        eventSource: "aws:kinesis",
        eventVersion: "1.0",
        eventID: `shardId-000000000000:${ids[0]}`,
        eventName: "aws:kinesis:record",
        invokeIdentityArn: ROLE,
        awsRegion: "us-east-1",
        eventSourceARN: REDIS,
        lambent: { source: "redis", stream, id: ids[0], fields: { data: JSON.stringify({ n: 1 }) } },
      });
      expect(second?.kinesis.partitionKey).toBe("customer-7");
      // The checkpoint moved past 1–3: nothing else comes back.
      const stats = await until(async () => {
        const res = await fetchStats();
        const s = res.find((m) => m.Target === stream);
        return s && s.recordsProcessed === 4 ? s : null;
      });
      expect(stats.batches).toBe(2);
      expect(seen("/redis")).toHaveLength(5);
    } finally {
      redis.disconnect();
    }
  });

  it("NATS JetStream: the same shape, the subject as partition key, the stream sequence as sequence number", async () => {
    const nc = await connect({ servers: "127.0.0.1:4222" });
    try {
      const jsm = await jetstreamManager(nc);
      const stream = `KINESIS_${run}`;
      await jsm.streams.add({ name: stream, subjects: [`k.${run}.>`] });
      const fn = `kinesis-nats-${run}`;
      await deploy(fn, "/nats");
      await server.lambda.send(
        new CreateEventSourceMappingCommand({
          FunctionName: fn,
          EventSourceArn: NATS,
          Topics: [stream],
          StartingPosition: "TRIM_HORIZON",
        }),
      );
      nc.publish(`k.${run}.eu`, JSON.stringify({ n: 1 }));
      await collector.waitUntil(() => seen("/nats").length >= 1);
      const { record } = seen("/nats")[0] as { record: Doc };
      expect(record).toMatchObject({
        kinesis: {
          kinesisSchemaVersion: "1.0",
          partitionKey: `k.${run}.eu`,
          sequenceNumber: "1",
          data: Buffer.from(JSON.stringify({ n: 1 })).toString("base64"),
        },
        eventSource: "aws:kinesis",
        eventID: "shardId-000000000000:1",
        eventName: "aws:kinesis:record",
        invokeIdentityArn: ROLE,
        eventSourceARN: NATS,
        lambent: { source: "nats", stream, subject: `k.${run}.eu`, sequence: 1, headers: {} },
      });
      expect(typeof record.kinesis.approximateArrivalTimestamp).toBe("number");
      await jsm.streams.delete(stream);
    } finally {
      await nc.close();
    }
  });
});

async function fetchStats(): Promise<Doc[]> {
  const res = await signedFetch(`${server.url}/_lambent/event-source-mappings/stats`);
  return ((await res.json()) as { mappings: Doc[] }).mappings;
}
