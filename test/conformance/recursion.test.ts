/**
 * Recursive-loop detection: a function that invokes itself asynchronously is
 * stopped at its 17th run in one chain, as Lambda does ("Lambda stops a
 * recursive loop after 16 invocations" — AWS docs, "Use Lambda recursive loop
 * detection to prevent infinite loops"); the stopped event goes to the
 * on-failure destination and is counted. RecursiveLoop=Allow lets it run on.
 * The chain is carried by the trace header's Lineage field, which the function
 * sends back as X-Amzn-Trace-Id (the AWS SDK inside the function does it from _X_AMZN_TRACE_ID).
 */
import {
  type LambdaClient,
  PutFunctionEventInvokeConfigCommand,
  PutFunctionRecursionConfigCommand,
} from "@aws-sdk/client-lambda";
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
    const [failure] = await sink.onPath("/failed/looper");
    const record = failure!.body as {
      requestContext: { condition: string };
      requestPayload: { n: number };
    };
    expect(record.requestContext.condition, JSON.stringify(record)).toBe("RecursiveInvocationDetected");
    // Runs 1…16 happened; the 17th (payload n=16) was stopped.
    expect(record.requestPayload.n).toBe(16);
    const runs = sink.received.filter((r) => r.path.startsWith("/run/looper/")).map((r) => r.path);
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
