/**
 * Recursive-loop detection: a function that invokes itself asynchronously is
 * stopped at its 17th run in one chain, as Lambda does ("Lambda stops a
 * recursive loop after 16 invocations" — AWS docs, "Use Lambda recursive loop
 * detection to prevent infinite loops"); the stopped event goes to the
 * on-failure destination and is counted. RecursiveLoop=Allow lets it run on.
 * The chain is carried by the trace header's Lineage field, which the function
 * sends back as X-Amzn-Trace-Id (the AWS SDK inside the function does it from _X_AMZN_TRACE_ID).
 *
 * Through an event source mapping, as Lambda does for SQS ("Lambda uses AWS X-Ray trace headers"; the
 * SDK puts the header on the message it sends): a broker message that carries the chain's trace
 * header (a Redis stream field, a RabbitMQ or NATS header named X-Amzn-Trace-Id) is counted; the 17th
 * run is stopped, the record goes to the mapping's on-failure destination, and the poller counts it.
 */

import { randomBytes } from "node:crypto";
import {
  CreateEventSourceMappingCommand,
  type LambdaClient,
  PutFunctionEventInvokeConfigCommand,
  PutFunctionRecursionConfigCommand,
} from "@aws-sdk/client-lambda";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseLineage } from "../../src/async/lineage.js";
import { Collector } from "../helpers/collector.js";
import { createFn } from "../helpers/control-plane.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { signedFetch } from "../helpers/signed.js";
import { zipEntries } from "../helpers/zip.js";

/** Reports each run to the sink, then invokes itself (Event) up to `event.max` times, with the trace header. */
const LOOPER = `
const { LambdaClient, InvokeCommand } = require("@aws-sdk/client-lambda");
const client = new LambdaClient({
  endpoint: process.env.AWS_ENDPOINT_URL_LAMBDA || process.env.API,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  maxAttempts: 1,
});
exports.handler = async (event, context) => {
  const n = (event.n || 0) + 1;
  await fetch(process.env.SINK + "/run/" + context.functionName + "/" + n, { method: "POST", body: "{}" });
  if (n < (event.max || 1000)) {
    // The SDK's recursion-detection middleware sends _X_AMZN_TRACE_ID as X-Amzn-Trace-Id.
    await client.send(new InvokeCommand({
      FunctionName: context.functionName,
      InvocationType: "Event",
      Payload: JSON.stringify({ n, max: event.max }),
    }));
  }
  return n;
};
`;

/**
 * Handles a Redis stream batch: reports each run, then appends the next record to its own stream with
 * the chain's trace header (a Lambent-aware publisher, speaking RESP itself: no client library).
 */
const STREAM_LOOPER = `
const net = require("node:net");
function xadd(stream, fields) {
  const args = ["XADD", stream, "*", ...fields];
  let cmd = "*" + args.length + "\\r\\n";
  for (const a of args) cmd += "$" + Buffer.byteLength(a) + "\\r\\n" + a + "\\r\\n";
  return new Promise((resolve, reject) => {
    const s = net.connect(6379, "127.0.0.1", () => s.write(cmd));
    s.once("data", (d) => { s.end(); d.toString()[0] === "-" ? reject(new Error(d.toString())) : resolve(); });
    s.once("error", reject);
  });
}
exports.handler = async (event, context) => {
  for (const r of event.Records) {
    const { n, max } = JSON.parse(Buffer.from(r.kinesis.data, "base64").toString());
    await fetch(process.env.SINK + "/run/" + context.functionName + "/" + (n + 1), { method: "POST", body: "{}" });
    if (n + 1 < (max || 1000)) {
      await xadd(process.env.STREAM, [
        "data", JSON.stringify({ n: n + 1, max }),
        "X-Amzn-Trace-Id", process.env._X_AMZN_TRACE_ID,
      ]);
    }
  }
};
`;

let server: TestServer;
let lambda: LambdaClient;
let sink: Collector;

beforeAll(async () => {
  sink = await Collector.start();
  server = await startServer({ asyncRetryDelaysMs: [100, 100] });
  lambda = server.lambda;
  const zip = await zipEntries([{ name: "index.js", content: LOOPER }]);
  for (const name of ["looper", "allowed"]) {
    await createFn(lambda, name, zip, {
      Environment: { Variables: { SINK: sink.url, API: server.url } },
      Timeout: 30,
    });
    await lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: name,
        MaximumRetryAttempts: 0,
        DestinationConfig: { OnFailure: { Destination: `${sink.url}/failed/${name}` } },
      }),
    );
  }
});

afterAll(async () => {
  await server?.stop();
  await sink?.close();
});

/** The first on-failure record of `name`, checked to be a stopped loop. */
async function stoppedLoop<T>(name: string) {
  const [failure] = await sink.onPath(`/failed/${name}`);
  const record = failure!.body as T & { requestContext: { condition: string } };
  expect(record.requestContext.condition, JSON.stringify(record)).toBe("RecursiveInvocationDetected");
  return { failure: failure!, record };
}

/** The runs the sink saw of `name`, in order. */
function runsOf(name: string): string[] {
  return sink.received.filter((r) => r.path.startsWith(`/run/${name}/`)).map((r) => r.path);
}

async function invokeEvent(name: string, payload: object, trace?: string) {
  const res = await signedFetch(`${server.url}/2015-03-31/functions/${name}/invocations`, {
    method: "POST",
    headers: { "x-amz-invocation-type": "Event", ...(trace ? { "x-amzn-trace-id": trace } : {}) },
    body: JSON.stringify(payload),
  });
  expect(res.status).toBe(202);
}

describe("recursive loops", () => {
  it("the Lineage field parses as Lambent writes it, and hostile values are ignored", () => {
    expect(parseLineage("Root=1-5f-abc;Lineage=0a1b2c3d:4,ffffffff:16")).toEqual({
      "0a1b2c3d": 4,
      ffffffff: 16,
    });
    expect(parseLineage("Lineage=nothex:1;Lineage=12345678:999999")).toEqual({});
    expect(parseLineage(undefined)).toEqual({});
  });

  it("a self-invoking function is stopped at its 17th run: on-failure record, counted", async () => {
    await invokeEvent("looper", { n: 0 });
    const { failure, record } = await stoppedLoop<{ requestPayload: { n: number } }>("looper");
    // Runs 1…16 happened; the 17th (payload n=16) was stopped.
    expect(record.requestPayload.n).toBe(16);
    // The record carries the chain on (a header here; a broker header or stream field elsewhere), so a
    // destination that leads back to the function through a broker or another function counts too.
    const { functionHash } = await import("../../src/async/lineage.js");
    expect(failure.headers["x-amzn-trace-id"]).toBe(`Lineage=${functionHash("looper")}:16`);
    const runs = runsOf("looper");
    expect(runs).toHaveLength(16);
    expect(runs.at(-1)).toBe("/run/looper/16");
    const queue = (await (await signedFetch(`${server.url}/_lambent/queue`)).json()) as {
      thisServer: Record<string, { recursiveLoopsStopped: number }>;
    };
    expect(queue.thisServer.looper?.recursiveLoopsStopped).toBe(1);
  });

  it("RecursiveLoop=Allow lets the chain go on past 16", async () => {
    await lambda.send(
      new PutFunctionRecursionConfigCommand({ FunctionName: "allowed", RecursiveLoop: "Allow" }),
    );
    await invokeEvent("allowed", { n: 0, max: 20 });
    await sink.onPath("/run/allowed/20");
    expect(sink.received.filter((r) => r.path.startsWith("/failed/allowed"))).toEqual([]);
  });

  it("a caller's lineage counts: an event arriving as the 17th run of the function is stopped at once", async () => {
    const { functionHash } = await import("../../src/async/lineage.js");
    await invokeEvent(
      "looper",
      { n: 100, max: 101 },
      `Root=1-00000000-000000000000000000000000;Lineage=${functionHash("looper")}:16`,
    );
    const failures = await sink.onPath("/failed/looper", 2);
    expect((failures[1]!.body as { requestPayload: { n: number } }).requestPayload.n).toBe(100);
    expect(sink.received.some((r) => r.path === "/run/looper/101")).toBe(false);
  });
});

describe("recursive loops through an event source mapping", () => {
  const REDIS = "redis://127.0.0.1:6379";
  const run = randomBytes(4).toString("hex");
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(REDIS);
  });
  afterAll(() => redis?.disconnect());

  async function streamLooper(name: string): Promise<{ stream: string; uuid: string }> {
    const stream = `lambent-loop-${run}-${name}`;
    const zip = await zipEntries([{ name: "index.js", content: STREAM_LOOPER }]);
    await createFn(lambda, name, zip, {
      Environment: { Variables: { SINK: sink.url, STREAM: stream } },
      Timeout: 30,
    });
    const m = await lambda.send(
      new CreateEventSourceMappingCommand({
        FunctionName: name,
        EventSourceArn: REDIS,
        Topics: [stream],
        StartingPosition: "TRIM_HORIZON",
        BatchSize: 1,
        DestinationConfig: { OnFailure: { Destination: `${sink.url}/failed/${name}` } },
      }),
    );
    return { stream, uuid: m.UUID as string };
  }

  it("a function re-publishing to its own Redis stream with the trace header is stopped at its 17th run", async () => {
    const { stream, uuid } = await streamLooper("stream-looper");
    await redis.xadd(stream, "*", "data", JSON.stringify({ n: 0 }));
    const { record } = await stoppedLoop<{ RedisBatchInfo: { batchSize: number } }>("stream-looper");
    expect(record.RedisBatchInfo.batchSize).toBe(1);
    // Runs 1…16 happened; the record run 16 published (n=16) was not run.
    const runs = runsOf("stream-looper");
    expect(runs).toHaveLength(16);
    expect(runs.at(-1)).toBe("/run/stream-looper/16");
    const stats = (await (
      await signedFetch(`${server.url}/_lambent/event-source-mappings/stats`)
    ).json()) as {
      mappings: Array<{ UUID: string; recursiveLoopsStopped: number }>;
    };
    expect(stats.mappings.find((m) => m.UUID === uuid)?.recursiveLoopsStopped).toBe(1);
  });

  it("RecursiveLoop=Allow lets a loop through the stream run past 16", async () => {
    const { stream, uuid } = await streamLooper("stream-allowed");
    await lambda.send(
      new PutFunctionRecursionConfigCommand({ FunctionName: "stream-allowed", RecursiveLoop: "Allow" }),
    );
    await redis.xadd(stream, "*", "data", JSON.stringify({ n: 0, max: 20 }));
    await sink.onPath("/run/stream-allowed/20");
    expect(sink.received.filter((r) => r.path.startsWith("/failed/stream-allowed"))).toEqual([]);
    const stats = (await (
      await signedFetch(`${server.url}/_lambent/event-source-mappings/stats`)
    ).json()) as {
      mappings: Array<{ UUID: string; recursiveLoopsStopped: number }>;
    };
    expect(stats.mappings.find((m) => m.UUID === uuid)?.recursiveLoopsStopped).toBe(0);
  });
});
