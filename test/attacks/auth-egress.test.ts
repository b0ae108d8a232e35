/**
 * Attacks through destinations, dead-letter targets and event source brokers
 * (issue 13, item 6): a caller must not make the server connect to internal
 * services (its own API, its store, the machine's loopback, private networks,
 * cloud metadata at 169.254.169.254). Every spelling of an address is tried
 * through the real AWS SDK against a server listening beyond loopback, a
 * server with an allow-list, and a loopback-only server. The checker's DNS
 * rebinding defence (a name re-pointed between configuration and delivery) is
 * proved with an injected resolver in src/control/egress.test.ts.
 */
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateEventSourceMappingCommand,
  type CreateEventSourceMappingCommandInput,
  CreateFunctionCommand,
  InvokeCommand,
  LambdaClient,
  type LambdaServiceException,
  PutFunctionEventInvokeConfigCommand,
  UpdateEventSourceMappingCommand,
  UpdateFunctionConfigurationCommand,
  UpdateFunctionEventInvokeConfigCommand,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AsyncCounter } from "../../src/async/counters.js";
import { defaultServerKeyFile, KeyStore, loadServerKey } from "../../src/auth/keys.js";
import { EventSourceMappingService } from "../../src/control/event-sources.js";
import { Platform } from "../../src/platform.js";
import { Store } from "../../src/store/store.js";
import { deployProbe, PROBE_HANDLER } from "../helpers/async-fns.js";
import { Collector } from "../helpers/collector.js";
import { ROLE } from "../helpers/server.js";
import { zipEntries } from "../helpers/zip.js";

interface Running {
  platform: Platform;
  lambda: LambdaClient;
  port: number;
  dir: string;
}

/** A server on 0.0.0.0 (beyond loopback): it needs an access key, made the way `keys create --bootstrap` does. */
async function startExposed(allow: string[] = []): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), "lambent-egress-"));
  const store = await Store.open({ dataDir: dir });
  const key = await new KeyStore(store, loadServerKey(defaultServerKeyFile(dir))).create("admin", {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: ["*"], Resource: ["*"] }],
  });
  await store.close();
  const platform = await Platform.start({
    host: "0.0.0.0",
    port: 0,
    quiet: true,
    sandbox: "process",
    dataDir: dir,
    allowDestinationHosts: allow,
  });
  const port = Number(new URL(platform.url).port);
  const lambda = new LambdaClient({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    maxAttempts: 1,
  });
  return { platform, lambda, port, dir };
}

async function startLoopback(): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), "lambent-egress-"));
  const platform = await Platform.start({ port: 0, quiet: true, sandbox: "process", dataDir: dir });
  const port = Number(new URL(platform.url).port);
  const lambda = new LambdaClient({
    endpoint: platform.url,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  return { platform, lambda, port, dir };
}

async function stop(r: Running | undefined): Promise<void> {
  if (!r) return;
  r.lambda.destroy();
  await r.platform.stop();
  rmSync(r.dir, { recursive: true, force: true });
}

async function refusal(p: Promise<unknown>): Promise<LambdaServiceException> {
  const err = (await p.then(
    () => null,
    (e: unknown) => e,
  )) as LambdaServiceException | null;
  if (err === null) throw new Error("the request was accepted");
  return err;
}

function expectRefused(err: LambdaServiceException, what: RegExp): void {
  expect(err.name, err.message).toBe("InvalidParameterValueException");
  expect(err.$metadata.httpStatusCode).toBe(400);
  expect(err.message).toMatch(/is not allowed: /);
  expect(err.message).toMatch(what);
}

/** Resolves once `counter` of `fn` reached `n` on this server. */
async function counted(platform: Platform, fn: string, counter: AsyncCounter, n = 1): Promise<void> {
  const reached = () => (platform.asyncInvoke.counters.snapshot()[fn]?.[counter] ?? 0) >= n;
  while (!reached()) await once(platform.asyncInvoke.counters.events, "add");
}

let exposed: Running | undefined;
let listed: Running | undefined;
let loopback: Running | undefined;
let collector: Collector;

beforeAll(async () => {
  collector = await Collector.start();
  exposed = await startExposed();
  listed = await startExposed(["127.0.0.1"]);
  loopback = await startLoopback();
  for (const r of [exposed, listed, loopback]) await deployProbe(r.lambda, "fn", {});
});

afterAll(async () => {
  await Promise.all([stop(exposed), stop(listed), stop(loopback)]);
  await collector?.close();
});

describe("a server listening beyond loopback", () => {
  const loopbackSpellings = (port: number) => [
    `http://127.0.0.1:${port}/hook`,
    `http://127.9.9.9:${port}/`,
    `http://2130706433:${port}/`,
    `http://0x7f.1:${port}/`,
    `http://0177.0.0.1:${port}/`,
    `http://127.1:${port}/`,
    `http://%31%32%37.0.0.1:${port}/`,
    `http://[::1]:${port}/`,
    `http://[::ffff:127.0.0.1]:${port}/`,
    `http://[::ffff:7f00:1]:${port}/`,
    `http://[64:ff9b::127.0.0.1]:${port}/`,
    `http://localhost:${port}/`,
    `http://localhost.:${port}/`,
    `http://LOCALHOST.:${port}/`,
    `http://allowed.example.com@127.0.0.1:${port}/`,
    `http://allowed.example.com:x@127.0.0.1:${port}/`,
    `http://127.0.0.1:${port}\\@allowed.example.com/`,
    `https://127.0.0.1:${port}/`,
  ];

  it("refuses loopback destinations in every spelling (PutFunctionEventInvokeConfig)", async () => {
    const r = exposed as Running;
    const port = Number(new URL(collector.url).port);
    for (const dest of loopbackSpellings(port)) {
      const err = await refusal(
        r.lambda.send(
          new PutFunctionEventInvokeConfigCommand({
            FunctionName: "fn",
            DestinationConfig: { OnSuccess: { Destination: dest } },
          }),
        ),
      );
      expectRefused(err, /loopback address and this server listens beyond loopback/);
    }
  });

  it("refuses private, link-local (metadata), unspecified and multicast destinations", async () => {
    const r = exposed as Running;
    for (const [dest, what] of [
      ["http://10.0.0.1/", /10\.0\.0\.1 is a private address/],
      ["http://172.16.5.4:8080/", /private/],
      ["http://192.168.1.1/", /private/],
      ["http://[fd00::1]/", /private/],
      ["http://169.254.169.254/latest/meta-data/", /link-local/],
      ["http://[::ffff:169.254.169.254]/latest/meta-data/", /169\.254\.169\.254 is a link-local/],
      ["http://2852039166/latest/meta-data/", /169\.254\.169\.254 is a link-local/],
      ["http://[fe80::1]/", /link-local/],
      ["http://0.0.0.0:8080/", /unspecified/],
      ["http://0/", /unspecified/],
      ["http://224.0.0.1/", /multicast/],
      ["http://255.255.255.255/", /reserved or broadcast/],
    ] as const) {
      const err = await refusal(
        r.lambda.send(
          new PutFunctionEventInvokeConfigCommand({
            FunctionName: "fn",
            DestinationConfig: { OnFailure: { Destination: dest } },
          }),
        ),
      );
      expectRefused(err, what);
    }
  });

  it("refuses broker destinations on internal addresses, written in any form, credentials redacted (UpdateFunctionEventInvokeConfig)", async () => {
    const r = exposed as Running;
    for (const dest of [
      "amqp://guest:guest@0x7f.1:5672/?queue=q",
      "amqp://guest:guest@[::ffff:127.0.0.1]:5672/?queue=q",
      "nats://2130706433:4222?subject=a.b",
      "redis://%31%32%37.0.0.1:6379?stream=s",
      "redis://LOCALHOST.:6379?stream=s",
    ]) {
      const err = await refusal(
        r.lambda.send(
          new UpdateFunctionEventInvokeConfigCommand({
            FunctionName: "fn",
            DestinationConfig: { OnFailure: { Destination: dest } },
          }),
        ),
      );
      expectRefused(err, /loopback/);
      expect(err.message).not.toContain("guest:guest");
    }
  });

  it("refuses internal dead-letter targets at CreateFunction and UpdateFunctionConfiguration", async () => {
    const r = exposed as Running;
    const err = await refusal(
      r.lambda.send(
        new CreateFunctionCommand({
          FunctionName: "dlq-fn",
          Runtime: "nodejs20.x",
          Handler: "index.handler",
          Role: ROLE,
          Code: { ZipFile: await zipEntries([{ name: "index.js", content: PROBE_HANDLER }]) },
          DeadLetterConfig: { TargetArn: "http://[::ffff:a9fe:a9fe]/" },
        }),
      ),
    );
    expectRefused(
      err,
      /^The dead-letter target http:\/\/\[::ffff:a9fe:a9fe\]\/ is not allowed: 169\.254\.169\.254 is a link-local/,
    );
    const err2 = await refusal(
      r.lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: "fn",
          DeadLetterConfig: { TargetArn: "http://localhost./dlq" },
        }),
      ),
    );
    expectRefused(
      err2,
      /^The dead-letter target http:\/\/localhost\.\/dlq is not allowed: localhost resolves to/,
    );
  });

  it("refuses internal brokers at CreateEventSourceMapping, whatever the URI's form", async () => {
    const r = exposed as Running;
    for (const [uri, extra] of [
      ["amqp://guest:guest@127.0.0.1:5672", { Queues: ["queue1"] }],
      ["amqp://guest:guest@0x7f.1", { Queues: ["queue1"] }],
      ["nats://[::ffff:127.0.0.1]:4222", { Topics: ["stream1"], StartingPosition: "LATEST" }],
      ["redis://2130706433:6379", { Topics: ["key1"], StartingPosition: "LATEST" }],
      ["redis://user@10.1.2.3:6379", { Topics: ["key1"], StartingPosition: "LATEST" }],
    ] as Array<[string, Partial<CreateEventSourceMappingCommandInput>]>) {
      const err = await refusal(
        r.lambda.send(
          new CreateEventSourceMappingCommand({ FunctionName: "fn", EventSourceArn: uri, ...extra }),
        ),
      );
      expectRefused(err, /^The event source .* is not allowed: .*(loopback|private)/);
      expect(err.message).not.toContain("guest:guest");
    }
    expect(await r.platform.eventSourceMappings.all()).toEqual([]);
  });

  it("refuses a stored destination at delivery time: a failed delivery, nothing sent, the server carries on", async () => {
    const r = exposed as Running;
    // A config written before the operator tightened the rules (or by another server): literal addresses.
    const before = collector.received.length;
    await r.platform.store.db
      .insertInto("event_invoke_configs")
      .values({
        function_name: "fn",
        qualifier: "$LATEST",
        maximum_retry_attempts: 0,
        maximum_event_age_seconds: null,
        on_success: `http://[::ffff:127.0.0.1]:${new URL(collector.url).port}/stored`,
        on_failure: null,
        last_modified: Date.now(),
      })
      .onConflict((oc) =>
        oc.columns(["function_name", "qualifier"]).doUpdateSet({
          on_success: `http://[::ffff:127.0.0.1]:${new URL(collector.url).port}/stored`,
        }),
      )
      .execute();
    await r.lambda.send(new InvokeCommand({ FunctionName: "fn", InvocationType: "Event", Payload: "{}" }));
    await counted(r.platform, "fn", "deliveryFailures");
    const counts = r.platform.asyncInvoke.counters.snapshot().fn;
    expect(counts).toMatchObject({ succeeded: 1, delivered: 0, deliveryFailures: 1 });
    // Not retried: the failure is permanent, and nothing reached the collector.
    expect(
      (await r.platform.asyncInvoke.status()).functions.find((f) => f.functionName === "fn"),
    ).toMatchObject({
      deliveriesWaiting: 0,
    });
    expect(collector.received.slice(before).filter((x) => x.path === "/stored")).toEqual([]);
  });
  it("refuses a stored broker destination at delivery time", async () => {
    const r = exposed as Running;
    await deployProbe(r.lambda, "to-broker", {});
    await r.platform.store.db
      .insertInto("event_invoke_configs")
      .values({
        function_name: "to-broker",
        qualifier: "$LATEST",
        maximum_retry_attempts: 0,
        maximum_event_age_seconds: null,
        on_success: "redis://2130706433:6379?stream=egress-stored",
        on_failure: null,
        last_modified: Date.now(),
      })
      .execute();
    await r.lambda.send(
      new InvokeCommand({ FunctionName: "to-broker", InvocationType: "Event", Payload: "{}" }),
    );
    await counted(r.platform, "to-broker", "deliveryFailures");
    expect(r.platform.asyncInvoke.counters.snapshot()["to-broker"]).toMatchObject({ delivered: 0 });
  });

  it("refuses a stored event source mapping's broker when its poller connects", async () => {
    const r = exposed as Running;
    // A mapping stored without the check (by an older server): the poller checks before it connects.
    const unchecked = new EventSourceMappingService(r.platform.store, r.platform.functions);
    const m = await unchecked.create(
      {
        FunctionName: "fn",
        EventSourceArn: "redis://user:pw@[::ffff:127.0.0.1]:6379",
        Topics: ["egress-stored"],
        StartingPosition: "LATEST",
      },
      "us-east-1",
    );
    r.platform.eventSourceMappings.events.emit("change", m.UUID as string);
    let result = "";
    while (!result.startsWith("PROBLEM")) {
      result = String((await r.platform.eventSourceMappings.get(m.UUID as string)).LastProcessingResult);
      if (!result.startsWith("PROBLEM")) await new Promise((done) => setTimeout(done, 50));
    }
    expect(result).toMatch(/^PROBLEM: Connection error\. 127\.0\.0\.1 is a loopback address/);
    expect(result).not.toContain("pw");
    await r.platform.eventSourceMappings.delete(m.UUID as string);
  });
});

describe("--allow-destination-hosts", () => {
  it("lets a listed address through, end to end", async () => {
    const r = listed as Running;
    await r.lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: "fn",
        DestinationConfig: { OnSuccess: { Destination: `${collector.url}/listed` } },
      }),
    );
    await r.lambda.send(
      new InvokeCommand({ FunctionName: "fn", InvocationType: "Event", Payload: '{"a":1}' }),
    );
    const [got] = await collector.onPath("/listed");
    expect(got?.body).toMatchObject({ requestContext: { condition: "Success" }, requestPayload: { a: 1 } });
  });

  it("still refuses what it does not cover, and never this server's own API port", async () => {
    const r = listed as Running;
    for (const [dest, what] of [
      ["http://127.0.0.2/", /127\.0\.0\.2 is a loopback address/],
      ["http://169.254.169.254/", /link-local/],
      [`http://127.0.0.1:${r.port}/2015-03-31/functions`, /this server's own API/],
      [`http://2130706433:${r.port}/`, /this server's own API/],
    ] as const) {
      const err = await refusal(
        r.lambda.send(
          new PutFunctionEventInvokeConfigCommand({
            FunctionName: "fn",
            DestinationConfig: { OnSuccess: { Destination: dest } },
          }),
        ),
      );
      expectRefused(err, what);
    }
  });

  it("checks an event source mapping's on-failure destination at UpdateEventSourceMapping", async () => {
    const r = listed as Running;
    const m = await r.lambda.send(
      new CreateEventSourceMappingCommand({
        FunctionName: "fn",
        EventSourceArn: "redis://127.0.0.1:6379",
        Topics: ["egress-test"],
        StartingPosition: "LATEST",
        Enabled: false,
      }),
    );
    const err = await refusal(
      r.lambda.send(
        new UpdateEventSourceMappingCommand({
          UUID: m.UUID,
          DestinationConfig: { OnFailure: { Destination: "http://10.9.9.9/failures" } },
        }),
      ),
    );
    expectRefused(err, /10\.9\.9\.9 is a private address/);
  });

  it("does not follow a redirect from a listed destination", async () => {
    const r = listed as Running;
    const target = await Collector.start();
    let redirector: Server | undefined;
    try {
      redirector = createServer((_req, res) => {
        res.writeHead(307, { location: `${target.url}/redirected` }).end();
      });
      redirector.listen(0, "127.0.0.1");
      await once(redirector, "listening");
      const url = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/hop`;
      await deployProbe(r.lambda, "redirected", {});
      await r.lambda.send(
        new PutFunctionEventInvokeConfigCommand({
          FunctionName: "redirected",
          DestinationConfig: { OnSuccess: { Destination: url } },
        }),
      );
      await r.lambda.send(
        new InvokeCommand({ FunctionName: "redirected", InvocationType: "Event", Payload: "{}" }),
      );
      await counted(r.platform, "redirected", "deliveryFailures");
      expect(target.received).toEqual([]);
    } finally {
      redirector?.close();
      await target.close();
    }
  });
});

describe("a loopback-only server (a developer's machine)", () => {
  it("allows loopback and private destinations", async () => {
    const r = loopback as Running;
    for (const dest of [
      `${collector.url}/dev`,
      "http://localhost:8080/",
      "http://10.0.0.1/",
      "http://[::1]:8080/",
    ]) {
      await r.lambda.send(
        new PutFunctionEventInvokeConfigCommand({
          FunctionName: "fn",
          DestinationConfig: { OnSuccess: { Destination: dest } },
        }),
      );
    }
  });

  it("never lets a destination reach its own API, in any spelling", async () => {
    const r = loopback as Running;
    for (const dest of [
      `http://127.0.0.1:${r.port}/2015-03-31/functions`,
      `http://localhost:${r.port}/`,
      `http://localhost.:${r.port}/`,
      `http://[::ffff:7f00:1]:${r.port}/`,
      `http://2130706433:${r.port}/`,
      `http://0.0.0.0:${r.port}/`,
      `http://user@127.0.0.1:${r.port}/`,
    ]) {
      const err = await refusal(
        r.lambda.send(
          new PutFunctionEventInvokeConfigCommand({
            FunctionName: "fn",
            DestinationConfig: { OnFailure: { Destination: dest } },
          }),
        ),
      );
      expectRefused(err, /this server's own API|unspecified/);
    }
    const err = await refusal(
      r.lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: "fn",
          DeadLetterConfig: { TargetArn: `http://127.0.0.1:${r.port}/` },
        }),
      ),
    );
    expectRefused(err, /this server's own API/);
  });

  it("still refuses link-local (metadata), unspecified and multicast addresses", async () => {
    const r = loopback as Running;
    for (const dest of [
      "http://169.254.169.254/latest/meta-data/",
      "http://[::ffff:169.254.169.254]/",
      "http://0.0.0.0:8080/",
      "http://[::]:8080/",
      "http://239.1.1.1/",
      "redis://169.254.169.254:6379?stream=s",
    ]) {
      const err = await refusal(
        r.lambda.send(
          new PutFunctionEventInvokeConfigCommand({
            FunctionName: "fn",
            DestinationConfig: { OnSuccess: { Destination: dest } },
          }),
        ),
      );
      expectRefused(err, /link-local|unspecified|multicast/);
    }
  });
});
