/**
 * Several servers sharing one PostgreSQL: a change made through one server
 * reaches the other's caches (versions, aliases, reservations), so every
 * server runs the current code and honours the current settings.
 */
import { once } from "node:events";
import {
  CreateAliasCommand,
  PublishVersionCommand,
  PutFunctionConcurrencyCommand,
  TooManyRequestsException,
  UpdateAliasCommand,
  UpdateFunctionCodeCommand,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

let db: TestDatabase;
let a: TestServer;
let b: TestServer;
const code = (answer: string) =>
  zipEntries([{ name: "index.js", content: `exports.handler = async () => "${answer}";` }]);

beforeAll(async () => {
  db = await createTestDatabase();
  a = await startServer({ database: db.url });
  b = await startServer({ database: db.url });
});
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await db?.drop();
});

describe("two servers on one PostgreSQL", () => {
  it("run the new code on both after an update through one", async () => {
    await a.deploy("shared", "node-cjs");
    expect((await invoke(b.lambda, "shared")).json).toMatchObject({ counter: 1 });
    const seen = once(b.platform.functions.events, "change");
    await a.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: "shared", ZipFile: await code("v2") }));
    await waitUntilFunctionUpdatedV2(
      { client: a.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
      { FunctionName: "shared" },
    );
    await seen;
    expect((await invoke(b.lambda, "shared")).json).toBe("v2");
  });

  it("follow an alias moved through the other server", async () => {
    await a.lambda.send(new PublishVersionCommand({ FunctionName: "shared" }));
    await a.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: "shared", ZipFile: await code("v3") }));
    await waitUntilFunctionUpdatedV2(
      { client: a.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
      { FunctionName: "shared" },
    );
    await a.lambda.send(new PublishVersionCommand({ FunctionName: "shared" }));
    await a.lambda.send(
      new CreateAliasCommand({ FunctionName: "shared", Name: "live", FunctionVersion: "1" }),
    );
    expect((await invoke(b.lambda, "shared:live")).json).toBe("v2");
    const seen = once(b.platform.aliases.events, "change");
    await a.lambda.send(
      new UpdateAliasCommand({ FunctionName: "shared", Name: "live", FunctionVersion: "2" }),
    );
    await seen;
    expect((await invoke(b.lambda, "shared:live")).json).toBe("v3");
  });

  it("apply a reservation made through the other server", async () => {
    expect((await invoke(b.lambda, "shared")).functionError).toBeUndefined();
    const seen = once(b.platform.concurrency.events, "reserved");
    await a.lambda.send(
      new PutFunctionConcurrencyCommand({ FunctionName: "shared", ReservedConcurrentExecutions: 0 }),
    );
    await seen;
    // The reservation reloads asynchronously after the event; the next call is throttled once it has.
    await b.platform.frontend.reservationsLoaded;
    await expect(invoke(b.lambda, "shared")).rejects.toBeInstanceOf(TooManyRequestsException);
  });
});
