/** Asynchronous invoke: 202, retries, destinations, dead-letter targets, queue status. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateAliasCommand,
  InvokeAsyncCommand,
  InvokeCommand,
  PublishVersionCommand,
  PutFunctionEventInvokeConfigCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployProbe, fnArn } from "./helpers/async-fns.js";
import { Collector } from "./helpers/collector.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";

let server: TestServer;
let sink: Collector;
let dir: string;

const event = (body: unknown) => Buffer.from(JSON.stringify(body));
const runs = (file: string) => readFileSync(file, "utf8").length;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "lambent-async-"));
  sink = await Collector.start();
  server = await startServer({ asyncRetryDelaysMs: [200, 400] });
  // A function destination that reports whatever event it gets.
  await deployProbe(server.lambda, "sink", { REPORT_URL: `${sink.url}/sink` });
});

afterAll(async () => {
  await server?.stop();
  await sink?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("Invoke with InvocationType Event", () => {
  it("answers 202 with a request id at once and runs the event", async () => {
    await deployProbe(server.lambda, "hello", { REPORT_URL: `${sink.url}/hello` });
    const res = await server.lambda.send(
      new InvokeCommand({ FunctionName: "hello", InvocationType: "Event", Payload: event({ n: 1 }) }),
    );
    expect(res.StatusCode).toBe(202);
    expect(res.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const [run] = await sink.onPath("/hello");
    expect(run?.body).toEqual({ run: 0, event: { n: 1 } });
  });

  it("takes the legacy InvokeAsync call too", async () => {
    await deployProbe(server.lambda, "legacy", { REPORT_URL: `${sink.url}/legacy` });
    const res = await server.lambda.send(
      new InvokeAsyncCommand({ FunctionName: "legacy", InvokeArgs: event({ legacy: true }) }),
    );
    expect(res.Status).toBe(202);
    const [run] = await sink.onPath("/legacy");
    expect(run?.body).toEqual({ run: 0, event: { legacy: true } });
  });

  it("refuses a payload over 1 MB with RequestTooLargeException", async () => {
    const big = Buffer.from(JSON.stringify({ s: "x".repeat(1024 * 1024) }));
    await expect(
      server.lambda.send(new InvokeCommand({ FunctionName: "hello", InvocationType: "Event", Payload: big })),
    ).rejects.toMatchObject({ name: "RequestTooLargeException", $metadata: { httpStatusCode: 413 } });
  });

  it("refuses an unknown function with ResourceNotFoundException", async () => {
    await expect(
      server.lambda.send(
        new InvokeCommand({ FunctionName: "nope", InvocationType: "Event", Payload: event({}) }),
      ),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
  });
});

describe("retries", () => {
  it("retries a failing function and counts attempts exactly (fails twice, then reaches OnSuccess)", async () => {
    const count = join(dir, "flaky2");
    await deployProbe(server.lambda, "flaky2", { COUNT_FILE: count, FAIL_TIMES: "2" });
    await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: "flaky2",
        DestinationConfig: { OnSuccess: { Destination: `${sink.url}/flaky2-ok` } },
      }),
    );
    const res = await server.lambda.send(
      new InvokeCommand({ FunctionName: "flaky2", InvocationType: "Event", Payload: event({ k: "v" }) }),
    );
    const [rec] = await sink.onPath("/flaky2-ok");
    expect(runs(count)).toBe(3);
    expect(rec?.headers["content-type"]).toBe("application/json");
    const body = rec?.body as { timestamp: string };
    expect(new Date(body.timestamp).toISOString()).toBe(body.timestamp);
    expect(body).toEqual({
      version: "1.0",
      timestamp: body.timestamp,
      requestContext: {
        requestId: res.$metadata.requestId,
        functionArn: fnArn("flaky2", "$LATEST"),
        condition: "Success",
        approximateInvokeCount: 3,
      },
      requestPayload: { k: "v" },
      responseContext: { statusCode: 200, executedVersion: "$LATEST" },
      responsePayload: { runs: 3 },
    });
  });

  it("with MaximumRetryAttempts 0 runs once and sends the exact record to an on-failure function", async () => {
    const count = join(dir, "flaky0");
    await deployProbe(server.lambda, "flaky0", { COUNT_FILE: count, FAIL_TIMES: "9" });
    await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: "flaky0",
        MaximumRetryAttempts: 0,
        DestinationConfig: { OnFailure: { Destination: fnArn("sink") } },
      }),
    );
    const res = await server.lambda.send(
      new InvokeCommand({ FunctionName: "flaky0", InvocationType: "Event", Payload: event({ a: [1, 2] }) }),
    );
    const [got] = await sink.waitFor(
      (r) =>
        r.path === "/sink" &&
        (r.body as { event: { requestPayload?: unknown } }).event.requestPayload !== undefined,
    );
    expect(runs(count)).toBe(1);
    const rec = (got!.body as { event: Record<string, unknown> }).event;
    const payload = rec.responsePayload as { errorType: string; errorMessage: string; trace?: unknown };
    expect(rec).toEqual({
      version: "1.0",
      timestamp: rec.timestamp,
      requestContext: {
        requestId: res.$metadata.requestId,
        functionArn: fnArn("flaky0", "$LATEST"),
        condition: "RetriesExhausted",
        approximateInvokeCount: 1,
      },
      requestPayload: { a: [1, 2] },
      responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
      responsePayload: payload,
    });
    expect(payload.errorType).toBe("Error");
    expect(payload.errorMessage).toBe("fail #1");
  });

  it("sends RetriesExhausted to an on-failure URL after 1 + MaximumRetryAttempts runs", async () => {
    const count = join(dir, "flaky1");
    await deployProbe(server.lambda, "flaky1", { COUNT_FILE: count, FAIL_TIMES: "9" });
    await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: "flaky1",
        MaximumRetryAttempts: 1,
        DestinationConfig: { OnFailure: { Destination: `${sink.url}/flaky1-failed` } },
      }),
    );
    const res = await server.lambda.send(
      new InvokeCommand({ FunctionName: "flaky1", InvocationType: "Event", Payload: event({ b: 2 }) }),
    );
    const [rec] = await sink.onPath("/flaky1-failed");
    expect(runs(count)).toBe(2);
    const body = rec?.body as Record<string, unknown>;
    expect(body.requestContext).toEqual({
      requestId: res.$metadata.requestId,
      functionArn: fnArn("flaky1", "$LATEST"),
      condition: "RetriesExhausted",
      approximateInvokeCount: 2,
    });
    expect(body.responseContext).toEqual({
      statusCode: 200,
      executedVersion: "$LATEST",
      functionError: "Unhandled",
    });
    expect(body.responsePayload).toMatchObject({ errorType: "Error", errorMessage: "fail #2" });
    expect(body.requestPayload).toEqual({ b: 2 });
  });

  it("retries a timeout like a function error", async () => {
    const count = join(dir, "slowpoke");
    await deployProbe(server.lambda, "slowpoke", { COUNT_FILE: count, SLEEP_MS: "5000" }, { Timeout: 1 });
    await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: "slowpoke",
        MaximumRetryAttempts: 1,
        DestinationConfig: { OnFailure: { Destination: `${sink.url}/slowpoke-failed` } },
      }),
    );
    await server.lambda.send(
      new InvokeCommand({ FunctionName: "slowpoke", InvocationType: "Event", Payload: event({}) }),
    );
    const [rec] = await sink.onPath("/slowpoke-failed");
    const body = rec?.body as {
      requestContext: { approximateInvokeCount: number };
      responsePayload: unknown;
    };
    expect(body.requestContext.approximateInvokeCount).toBe(2);
    expect(body.responsePayload).toMatchObject({ errorType: "Sandbox.Timedout" });
    expect(runs(count)).toBe(2);
  });
});

describe("qualifiers", () => {
  it("applies the alias's config and names the alias and the executed version in the record", async () => {
    await deployProbe(server.lambda, "aliased", {});
    await server.lambda.send(new PublishVersionCommand({ FunctionName: "aliased" }));
    await server.lambda.send(
      new CreateAliasCommand({ FunctionName: "aliased", Name: "live", FunctionVersion: "1" }),
    );
    await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: "aliased",
        Qualifier: "live",
        DestinationConfig: { OnSuccess: { Destination: `${sink.url}/aliased-ok` } },
      }),
    );
    await server.lambda.send(
      new InvokeCommand({ FunctionName: "aliased:live", InvocationType: "Event", Payload: event({ q: 1 }) }),
    );
    const [rec] = await sink.onPath("/aliased-ok");
    expect(rec?.body).toMatchObject({
      requestContext: {
        functionArn: fnArn("aliased", "live"),
        condition: "Success",
        approximateInvokeCount: 1,
      },
      responseContext: { statusCode: 200, executedVersion: "1" },
      requestPayload: { q: 1 },
    });
  });
});

describe("dead-letter targets", () => {
  it("sends the original event to a function DLQ and to a URL DLQ (with request id and error headers)", async () => {
    const count = join(dir, "doomed");
    await deployProbe(
      server.lambda,
      "doomed",
      { COUNT_FILE: count, FAIL_TIMES: "9" },
      { DeadLetterConfig: { TargetArn: fnArn("sink") } },
    );
    await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({ FunctionName: "doomed", MaximumRetryAttempts: 0 }),
    );
    await server.lambda.send(
      new InvokeCommand({ FunctionName: "doomed", InvocationType: "Event", Payload: event({ dlq: "fn" }) }),
    );
    const [viaFn] = await sink.waitFor(
      (r) => r.path === "/sink" && (r.body as { event: { dlq?: string } }).event.dlq === "fn",
    );
    expect((viaFn!.body as { event: unknown }).event).toEqual({ dlq: "fn" });

    await server.lambda.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: "doomed",
        DeadLetterConfig: { TargetArn: `${sink.url}/dlq` },
      }),
    );
    await waitUntilFunctionUpdatedV2(
      { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
      { FunctionName: "doomed" },
    );
    const res = await server.lambda.send(
      new InvokeCommand({ FunctionName: "doomed", InvocationType: "Event", Payload: event({ dlq: "url" }) }),
    );
    const [viaUrl] = await sink.onPath("/dlq");
    expect(viaUrl?.body).toEqual({ dlq: "url" });
    expect(viaUrl?.headers["lambent-request-id"]).toBe(res.$metadata.requestId);
    expect(viaUrl?.headers["lambent-condition"]).toBe("RetriesExhausted");
    expect(viaUrl?.headers["lambent-error-code"]).toBe("200");
    expect(viaUrl?.headers["lambent-error-message"]).toContain("fail #2");
  });
});

describe("URL destinations", () => {
  it("retries a failed delivery with backoff and counts the failure", async () => {
    const flaky = await Collector.start();
    try {
      flaky.status = 503;
      await deployProbe(server.lambda, "to-flaky-url", {});
      await server.lambda.send(
        new PutFunctionEventInvokeConfigCommand({
          FunctionName: "to-flaky-url",
          DestinationConfig: { OnSuccess: { Destination: `${flaky.url}/records` } },
        }),
      );
      const res = await server.lambda.send(
        new InvokeCommand({
          FunctionName: "to-flaky-url",
          InvocationType: "Event",
          Payload: event({ u: 1 }),
        }),
      );
      await flaky.waitFor((r) => r.status === 503);
      flaky.status = 200;
      const [ok] = await flaky.waitFor((r) => r.status === 200);
      expect(ok?.body).toMatchObject({
        requestContext: { requestId: res.$metadata.requestId, condition: "Success" },
      });
      // The delivery is recorded just after the POST is answered.
      const stats = async () =>
        (await server.platform.asyncInvoke.status()).functions.find((f) => f.functionName === "to-flaky-url");
      while ((await stats())?.delivered !== 1) await new Promise((r) => setTimeout(r, 20));
      expect(await stats()).toMatchObject({
        succeeded: 1,
        delivered: 1,
        deliveryFailures: 1,
        deliveriesWaiting: 0,
      });
    } finally {
      await flaky.close();
    }
  });
});

describe("queue status", () => {
  it("reports outcomes per function at GET /_lambent/queue", async () => {
    const res = await signedFetch(`${server.url}/_lambent/queue`);
    const body = (await res.json()) as {
      functions: Array<{ functionName: string; succeeded: number; failed: number; retries: number }>;
      thisServer: Record<string, { enqueued: number }>;
    };
    const flaky2 = body.functions.find((f) => f.functionName === "flaky2");
    expect(flaky2).toMatchObject({ succeeded: 1, failed: 0, retries: 2 });
    const flaky0 = body.functions.find((f) => f.functionName === "flaky0");
    expect(flaky0).toMatchObject({ succeeded: 0, failed: 1, retries: 0 });
    expect(body.thisServer.flaky2?.enqueued).toBe(1);
  });
});
