/** The event invoke config API, and maximum event age (an event that waits too long is dropped). */
import {
  CreateAliasCommand,
  DeleteFunctionCommand,
  DeleteFunctionEventInvokeConfigCommand,
  GetFunctionEventInvokeConfigCommand,
  InvokeCommand,
  ListFunctionEventInvokeConfigsCommand,
  PublishVersionCommand,
  PutFunctionEventInvokeConfigCommand,
  UpdateFunctionEventInvokeConfigCommand,
} from "@aws-sdk/client-lambda";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployProbe, fnArn } from "./helpers/async-fns.js";
import { Collector } from "./helpers/collector.js";
import { startServer, type TestServer } from "./helpers/server.js";

let server: TestServer;
let sink: Collector;

beforeAll(async () => {
  sink = await Collector.start();
  // One concurrent execution for the whole account: a running function throttles every other one.
  server = await startServer({ accountConcurrency: 1, asyncRetryDelaysMs: [200, 400] });
  await deployProbe(server.lambda, "cfg", {});
  // Destinations must exist (Lambda checks a destination function and its alias): "other:live".
  await deployProbe(server.lambda, "other", {});
  const v = await server.lambda.send(new PublishVersionCommand({ FunctionName: "other" }));
  await server.lambda.send(
    new CreateAliasCommand({ FunctionName: "other", Name: "live", FunctionVersion: v.Version }),
  );
});

afterAll(async () => {
  sink?.openGate();
  await server?.stop();
  await sink?.close();
});

describe("event invoke config API", () => {
  it("puts, gets, updates (merging), puts again (replacing) and deletes a config", async () => {
    await expect(
      server.lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: "cfg" })),
    ).rejects.toMatchObject({
      name: "ResourceNotFoundException",
      message: `The function ${fnArn("cfg", "$LATEST")} doesn't have an EventInvokeConfig`,
    });

    const put = await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({ FunctionName: "cfg", MaximumRetryAttempts: 1 }),
    );
    expect(put.FunctionArn).toBe(fnArn("cfg", "$LATEST"));
    expect(put.MaximumRetryAttempts).toBe(1);
    expect(put.MaximumEventAgeInSeconds).toBeUndefined();
    expect(put.LastModified).toBeInstanceOf(Date);
    expect(Math.abs((put.LastModified as Date).getTime() - Date.now())).toBeLessThan(60_000);
    expect(put.DestinationConfig).toEqual({ OnSuccess: {}, OnFailure: {} });

    const updated = await server.lambda.send(
      new UpdateFunctionEventInvokeConfigCommand({
        FunctionName: "cfg",
        MaximumEventAgeInSeconds: 120,
        DestinationConfig: { OnFailure: { Destination: fnArn("other") } },
      }),
    );
    expect(updated).toMatchObject({
      MaximumRetryAttempts: 1,
      MaximumEventAgeInSeconds: 120,
      DestinationConfig: { OnSuccess: {}, OnFailure: { Destination: fnArn("other") } },
    });

    const got = await server.lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: "cfg" }));
    expect(got).toMatchObject({ MaximumRetryAttempts: 1, MaximumEventAgeInSeconds: 120 });

    const replaced = await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({ FunctionName: "cfg", MaximumEventAgeInSeconds: 300 }),
    );
    expect(replaced.MaximumRetryAttempts).toBeUndefined();
    expect(replaced.MaximumEventAgeInSeconds).toBe(300);
    expect(replaced.DestinationConfig).toEqual({ OnSuccess: {}, OnFailure: {} });

    await server.lambda.send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName: "cfg" }));
    await expect(
      server.lambda.send(new GetFunctionEventInvokeConfigCommand({ FunctionName: "cfg" })),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
    await expect(
      server.lambda.send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName: "cfg" })),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
    await expect(
      server.lambda.send(
        new UpdateFunctionEventInvokeConfigCommand({ FunctionName: "cfg", MaximumRetryAttempts: 0 }),
      ),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
  });

  it("validates the function, ranges and destinations", async () => {
    const put = (
      input: Omit<ConstructorParameters<typeof PutFunctionEventInvokeConfigCommand>[0], "FunctionName">,
      name = "cfg",
    ) => server.lambda.send(new PutFunctionEventInvokeConfigCommand({ FunctionName: name, ...input }));
    await expect(put({ MaximumRetryAttempts: 1 }, "ghost")).rejects.toMatchObject({
      name: "ResourceNotFoundException",
      $metadata: { httpStatusCode: 404 },
    });
    await expect(put({ MaximumRetryAttempts: 3 })).rejects.toMatchObject({
      name: "ValidationException",
      message: expect.stringContaining("maximumRetryAttempts"),
    });
    await expect(put({ MaximumRetryAttempts: -1 })).rejects.toMatchObject({ name: "ValidationException" });
    await expect(put({ MaximumEventAgeInSeconds: 59 })).rejects.toMatchObject({
      name: "ValidationException",
      message: expect.stringContaining("greater than or equal to 60"),
    });
    await expect(put({ MaximumEventAgeInSeconds: 21601 })).rejects.toMatchObject({
      name: "ValidationException",
    });
    await expect(put({})).rejects.toMatchObject({ name: "InvalidParameterValueException" });
    await expect(
      put({ DestinationConfig: { OnFailure: { Destination: "arn:aws:sqs:us-east-1:000000000000:q" } } }),
    ).rejects.toMatchObject({ name: "InvalidParameterValueException" });
    await expect(
      put({ DestinationConfig: { OnSuccess: { Destination: "not-an-arn" } } }),
    ).rejects.toMatchObject({
      name: "ValidationException",
    });
    await expect(
      put({ DestinationConfig: { OnSuccess: { Destination: fnArn("cfg", "$LATEST") } } }),
    ).rejects.toMatchObject({
      name: "InvalidParameterValueException",
      message: "You can't specify the function as a destination for itself.",
    });
    const ok = await put({
      DestinationConfig: {
        OnSuccess: { Destination: "https://hooks.example.com/lambda" },
        OnFailure: { Destination: fnArn("other", "live") },
      },
    });
    expect(ok.DestinationConfig).toEqual({
      OnSuccess: { Destination: "https://hooks.example.com/lambda" },
      OnFailure: { Destination: fnArn("other", "live") },
    });
  });

  it("keeps a config per qualifier, lists them with paging, and drops them with the function", async () => {
    await deployProbe(server.lambda, "quals", {});
    const v = await server.lambda.send(new PublishVersionCommand({ FunctionName: "quals" }));
    expect(v.Version).toBe("1");
    await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({ FunctionName: "quals", MaximumRetryAttempts: 0 }),
    );
    const q1 = await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: "quals",
        Qualifier: "1",
        MaximumRetryAttempts: 2,
      }),
    );
    expect(q1.FunctionArn).toBe(fnArn("quals", "1"));
    const viaName = await server.lambda.send(
      new GetFunctionEventInvokeConfigCommand({ FunctionName: "quals:1" }),
    );
    expect(viaName.MaximumRetryAttempts).toBe(2);
    await expect(
      server.lambda.send(
        new PutFunctionEventInvokeConfigCommand({
          FunctionName: "quals",
          Qualifier: "7",
          MaximumRetryAttempts: 1,
        }),
      ),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });
    await server.lambda.send(
      new CreateAliasCommand({ FunctionName: "quals", Name: "live", FunctionVersion: "1" }),
    );
    const alias = await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({ FunctionName: "quals:live", MaximumEventAgeInSeconds: 600 }),
    );
    expect(alias.FunctionArn).toBe(fnArn("quals", "live"));

    const all = await server.lambda.send(
      new ListFunctionEventInvokeConfigsCommand({ FunctionName: "quals" }),
    );
    expect(all.FunctionEventInvokeConfigs?.map((c) => c.FunctionArn).sort()).toEqual(
      [fnArn("quals", "$LATEST"), fnArn("quals", "1"), fnArn("quals", "live")].sort(),
    );
    expect(all.NextMarker).toBeUndefined();
    const page1 = await server.lambda.send(
      new ListFunctionEventInvokeConfigsCommand({ FunctionName: "quals", MaxItems: 1 }),
    );
    expect(page1.FunctionEventInvokeConfigs).toHaveLength(1);
    expect(page1.NextMarker).toBeDefined();
    const page2 = await server.lambda.send(
      new ListFunctionEventInvokeConfigsCommand({
        FunctionName: "quals",
        MaxItems: 1,
        Marker: page1.NextMarker,
      }),
    );
    expect(page2.FunctionEventInvokeConfigs).toHaveLength(1);
    const page3 = await server.lambda.send(
      new ListFunctionEventInvokeConfigsCommand({
        FunctionName: "quals",
        MaxItems: 1,
        Marker: page2.NextMarker,
      }),
    );
    expect(page3.FunctionEventInvokeConfigs).toHaveLength(1);
    expect(page3.NextMarker).toBeUndefined();
    await expect(
      server.lambda.send(new ListFunctionEventInvokeConfigsCommand({ FunctionName: "quals", MaxItems: 51 })),
    ).rejects.toMatchObject({ name: "ValidationException" });
    await expect(
      server.lambda.send(new ListFunctionEventInvokeConfigsCommand({ FunctionName: "ghost" })),
    ).rejects.toMatchObject({ name: "ResourceNotFoundException" });

    await server.lambda.send(new DeleteFunctionCommand({ FunctionName: "quals" }));
    await deployProbe(server.lambda, "quals", {});
    const after = await server.lambda.send(
      new ListFunctionEventInvokeConfigsCommand({ FunctionName: "quals" }),
    );
    expect(after.FunctionEventInvokeConfigs).toEqual([]);
  });
});

describe("maximum event age", () => {
  it("drops an event that outlived MaximumEventAgeInSeconds while throttled: EventAgeExceeded, 0 invokes", async () => {
    await deployProbe(server.lambda, "blocker", { GATE_URL: `${sink.url}/gate` });
    await deployProbe(server.lambda, "aged", { REPORT_URL: `${sink.url}/aged-ran` });
    await server.lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: "aged",
        MaximumEventAgeInSeconds: 60,
        DestinationConfig: { OnFailure: { Destination: `${sink.url}/aged-failed` } },
      }),
    );
    // The blocker holds the account's only concurrent execution until the gate opens.
    const blocked = server.lambda.send(
      new InvokeCommand({ FunctionName: "blocker", Payload: Buffer.from("{}") }),
    );
    await sink.onPath("/gate");
    const res = await server.lambda.send(
      new InvokeCommand({
        FunctionName: "aged",
        InvocationType: "Event",
        Payload: Buffer.from('{"old":true}'),
      }),
    );
    // Wait until the poller was throttled (429s are retried with backoff, not counted as attempts) …
    await until(async () => {
      const s = await server.platform.asyncInvoke.status();
      return (s.functions.find((f) => f.functionName === "aged")?.throttles ?? 0) >= 1;
    });
    // … then make the waiting event 61 s old (a test-only shortcut for a minute of throttling) and wake the poller.
    const db = server.platform.store.db;
    await db
      .updateTable("async_events")
      .set({ enqueued_at: sql<number>`enqueued_at - 61000`, next_run_at: Date.now() })
      .where("function_name", "=", "aged")
      .where("state", "=", "queued")
      .execute();
    server.platform.asyncInvoke.wake();
    const [rec] = await sink.onPath("/aged-failed");
    expect(rec?.body).toEqual({
      version: "1.0",
      timestamp: (rec!.body as { timestamp: string }).timestamp,
      requestContext: {
        requestId: res.$metadata.requestId,
        functionArn: fnArn("aged", "$LATEST"),
        condition: "EventAgeExceeded",
        approximateInvokeCount: 0,
      },
      requestPayload: { old: true },
    });
    expect(sink.received.filter((r) => r.path === "/aged-ran")).toHaveLength(0);
    const s = await server.platform.asyncInvoke.status();
    expect(s.functions.find((f) => f.functionName === "aged")).toMatchObject({
      expired: 1,
      waiting: 0,
      running: 0,
    });
    sink.openGate();
    await blocked;
  });
});

/** Await a condition the test cannot be told about directly (checked every 20 ms). */
async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 20));
}
