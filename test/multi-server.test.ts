/**
 * Several servers sharing one PostgreSQL: a change made through one server
 * reaches the other's caches (versions, aliases, reservations), so every
 * server runs the current code and honours the current settings.
 */

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import {
  CreateAliasCommand,
  CreateEventSourceMappingCommand,
  PublishVersionCommand,
  PutFunctionConcurrencyCommand,
  TooManyRequestsException,
  UpdateAliasCommand,
  UpdateFunctionCodeCommand,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Collector } from "./helpers/collector.js";
import { invoke } from "./helpers/invoke.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { deployBatchFunction, numbersSeen } from "./helpers/sources.js";
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

  // Last: it stops one of the servers.
  it("poll an event source mapping on exactly one server, and hand it over when that one stops", async () => {
    const collector = await Collector.start();
    const redis = new Redis("redis://127.0.0.1:6379");
    const stream = `lambent-multi-${randomBytes(4).toString("hex")}`;
    try {
      await deployBatchFunction(a.lambda, "multi-src", `${collector.url}/multi`);
      const out = await a.lambda.send(
        new CreateEventSourceMappingCommand({
          FunctionName: "multi-src",
          EventSourceArn: "redis://127.0.0.1:6379",
          Topics: [stream],
          StartingPosition: "TRIM_HORIZON",
          BatchSize: 5,
        }),
      );
      const uuid = out.UUID as string;
      const seen = () => numbersSeen(collector.received.map((r) => ({ ...r, path: "/batch" })));
      const publish = async (from: number, to: number) => {
        for (let n = from; n <= to; n++) await redis.xadd(stream, "*", "data", JSON.stringify({ n }));
      };
      await publish(1, 5);
      await collector.waitUntil(() => [1, 2, 3, 4, 5].every((n) => seen().includes(n)));
      const polling = async (s: TestServer) =>
        (await s.platform.eventSources.status()).find((m) => m.UUID === uuid)?.connected === true;
      // Both servers look at the mapping (as their periodic scans do): exactly one of them polls it.
      await Promise.all([a.platform.eventSources.reconcile(uuid), b.platform.eventSources.reconcile(uuid)]);
      const owners = [await polling(a), await polling(b)];
      expect(owners.filter(Boolean)).toHaveLength(1);
      const [owner, other] = owners[0] ? [a, b] : [b, a];
      await owner.stop();
      await publish(6, 8);
      await collector.waitUntil(() => [6, 7, 8].every((n) => seen().includes(n)));
      expect(await polling(other)).toBe(true);
      // Exactly once across both servers.
      expect([...seen()].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    } finally {
      redis.disconnect();
      await collector.close();
    }
  });
});
