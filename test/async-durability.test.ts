/**
 * Durability: events accepted with 202 survive a kill -9 of the server and
 * are all delivered at least once after a restart — on SQLite (one server),
 * and on PostgreSQL with two servers sharing the queue.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployProbe, queueDrained } from "./helpers/async-fns.js";
import { buildAsync, type ChildServer, startChild } from "./helpers/child-server.js";
import { Collector } from "./helpers/collector.js";
import { createTestDatabase } from "./helpers/postgres.js";
import { lambdaClient } from "./helpers/server.js";

const EVENTS = 300;

let sink: Collector;
const dirs: string[] = [];
const children: ChildServer[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "lambent-durable-"));
  dirs.push(d);
  return d;
}

async function child(dataDir: string, args: string[] = []): Promise<ChildServer> {
  const c = await startChild(dataDir, ["--async-retry-delays", "200,400", ...args]);
  children.push(c);
  return c;
}

// Asynchronously: a blocked worker misses vitest's RPC deadline (60 s) on a loaded machine.
beforeAll(() => buildAsync(), 300_000);

beforeAll(async () => {
  sink = await Collector.start();
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) await c.kill9();
  await sink?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Send EVENTS Event invokes, `parallel` at a time, spread over the clients; returns ms taken. */
async function enqueueAll(clients: LambdaClient[], fn: string, tag: string, parallel = 16): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < EVENTS) {
        const i = next++;
        const client = clients[i % clients.length] as LambdaClient;
        const res = await client.send(
          new InvokeCommand({
            FunctionName: fn,
            InvocationType: "Event",
            Payload: Buffer.from(JSON.stringify({ tag, i })),
          }),
        );
        expect(res.StatusCode).toBe(202);
      }
    }),
  );
  return performance.now() - t0;
}

/** Runs reported by the function for `tag`: unique event numbers and the total. */
function delivered(tag: string): { unique: Set<number>; total: number } {
  const runs = sink.received.filter((r) => r.path === `/${tag}`);
  return {
    unique: new Set(runs.map((r) => (r.body as { event: { i: number } }).event.i)),
    total: runs.length,
  };
}

describe("async durability", () => {
  it("SQLite: every event accepted before a kill -9 is delivered after a restart", async () => {
    const dir = tempDir();
    let server = await child(dir);
    const lambda = lambdaClient(server.url);
    await deployProbe(lambda, "slow", { SLEEP_MS: "100", REPORT_URL: `${sink.url}/sqlite` });
    const enqueueMs = await enqueueAll([lambda], "slow", "sqlite");
    await server.kill9();
    lambda.destroy();
    const before = delivered("sqlite");

    server = await child(dir);
    const t0 = performance.now();
    await sink.waitUntil(() => delivered("sqlite").unique.size === EVENTS);
    const drainMs = performance.now() - t0;
    const after = delivered("sqlite");
    expect([...after.unique].sort((a, b) => a - b)).toEqual(Array.from({ length: EVENTS }, (_, i) => i));
    const status = await queueDrained(server.url, "slow", { listed: true });
    // Each event's outcome is recorded exactly once, however many times it ran.
    expect(status?.succeeded).toBe(EVENTS);
    console.log(
      `SQLite durability: ${EVENTS} events enqueued in ${enqueueMs.toFixed(0)} ms (${((EVENTS / enqueueMs) * 1000).toFixed(0)}/s over HTTP); ` +
        `${before.unique.size} ran before the kill -9; the restarted server ran the rest in ${drainMs.toFixed(0)} ms; ` +
        `${after.total - after.unique.size} delivered twice`,
    );
    expect(await server.stop()).toBe(0);
  }, 120_000);

  it("PostgreSQL: two servers share the queue; a kill -9 of one loses nothing", async () => {
    const db = await createTestDatabase();
    const database = db.url;
    try {
      const dirA = tempDir();
      let a = await child(dirA, ["--database", database]);
      const b = await child(tempDir(), ["--database", database]);
      const la = lambdaClient(a.url);
      const lb = lambdaClient(b.url);
      await deployProbe(la, "slowpg", { SLEEP_MS: "100", REPORT_URL: `${sink.url}/pg` });
      const enqueueMs = await enqueueAll([la, lb], "slowpg", "pg");
      await a.kill9();
      la.destroy();
      const before = delivered("pg");

      // B keeps draining; A comes back on its data dir and takes its stranded leases back at once.
      a = await child(dirA, ["--database", database]);
      await sink.waitUntil(() => delivered("pg").unique.size === EVENTS);
      const after = delivered("pg");
      expect(after.unique.size).toBe(EVENTS);
      const status = await queueDrained(b.url, "slowpg", { listed: true });
      expect(status?.succeeded).toBe(EVENTS);
      console.log(
        `PostgreSQL durability: ${EVENTS} events enqueued over two servers in ${enqueueMs.toFixed(0)} ms; ` +
          `${before.unique.size} ran before server A was killed; ${after.total - after.unique.size} delivered twice`,
      );
      lb.destroy();
      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
    } finally {
      await db.drop();
    }
  }, 120_000);
});
