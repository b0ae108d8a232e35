/**
 * The queue's fair claim against a real store (SQLite and PostgreSQL): one function's backlog does
 * not hold back another function's events, events stay oldest-first within a function, claims
 * still fill their limit, skip events not due yet, re-claim expired leases, and (PostgreSQL) two
 * servers claiming at once never take the same event.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/helpers/postgres.js";
import { Store } from "../store/store.js";
import { AsyncPoller, type EventHandler } from "./event-poller.js";
import { AsyncQueue, type QueuedEvent } from "./event-queue.js";

async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const tick = () => new Promise((r) => setTimeout(r, 3));

describe.each(["sqlite", "postgres"] as const)("fair async claims on %s", (engine) => {
  let dataDir: string;
  let pg: TestDatabase | undefined;
  let store: Store;
  let queue: AsyncQueue;
  const extra: Store[] = [];

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "lambent-fair-"));
    if (engine === "postgres") pg = await createTestDatabase();
    store = await Store.open({ dataDir, ...(pg ? { database: pg.url } : {}) });
    queue = new AsyncQueue(store, "node-a", 30_000);
  });
  afterEach(async () => {
    for (const s of extra.splice(0)) await s.close();
    await store.close();
    await pg?.drop();
    pg = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });

  const enqueue = (fn: string, n: number, tag = fn) =>
    queue.enqueue(
      Array.from({ length: n }, (_, i) => ({
        kind: "invoke" as const,
        requestId: `${tag}-${i}`,
        functionName: fn,
        region: "us-east-1",
        payload: Buffer.from("{}"),
      })),
    );

  const drain = async (q: AsyncQueue, limit: number) => {
    const all: QueuedEvent[] = [];
    for (;;) {
      const got = await q.claim(limit);
      if (got.length === 0) return all;
      all.push(...got);
    }
  };

  it("takes another function's event at once, not after one function's backlog", async () => {
    await enqueue("a", 300, "a0");
    await tick();
    await enqueue("a", 300, "a1");
    await tick();
    await enqueue("b", 1);
    const first = await queue.claim(4);
    expect(first).toHaveLength(4);
    // B's one event comes in the first turn, right after A's oldest; A's are its oldest (the first batch).
    expect(first.map((e) => e.function_name)).toEqual(["a", "b", "a", "a"]);
    expect(first.filter((e) => e.function_name === "a").every((e) => e.request_id.startsWith("a0-"))).toBe(
      true,
    );
  });

  it("keeps oldest-first order within a function and fills every claim", async () => {
    for (let batch = 0; batch < 4; batch++) {
      await enqueue("a", 25, `a${batch}`);
      await enqueue("b", 5, `b${batch}`);
      await tick();
    }
    const claims: QueuedEvent[][] = [];
    for (;;) {
      const got = await queue.claim(7);
      if (got.length === 0) break;
      claims.push(got);
    }
    // 120 events, 7 a claim: every claim but the last is full.
    expect(claims.map((c) => c.length)).toEqual([...Array(17).fill(7), 1]);
    for (const fn of ["a", "b"]) {
      const due = claims.flat().filter((e) => e.function_name === fn);
      expect(due).toHaveLength(fn === "a" ? 100 : 20);
      for (let i = 1; i < due.length; i++)
        expect(Number(due[i]?.next_run_at)).toBeGreaterThanOrEqual(Number(due[i - 1]?.next_run_at));
    }
  });

  it("serves every function in turn when more of them wait than a claim takes", async () => {
    for (let f = 0; f < 10; f++) await enqueue(`f${f}`, 20);
    const served = new Set<string>();
    // Three a claim: four claims reach all ten functions.
    for (let i = 0; i < 4; i++) for (const e of await queue.claim(3)) served.add(e.function_name);
    expect(served.size).toBe(10);
    expect(await drain(queue, 3)).toHaveLength(200 - 12);
  });

  it("leaves events not due yet (backoff) and re-claims expired leases", async () => {
    await enqueue("a", 3);
    await enqueue("b", 1);
    const [b] = (await queue.claim(4)).filter((e) => e.function_name === "b");
    expect(b).toBeDefined();
    // B backs off into the future; A's leases expire (claimed by a server whose lease time is over).
    expect(await queue.reschedule(b as QueuedEvent, { nextRunAt: Date.now() + 60_000, backoffs: 1 })).toBe(
      true,
    );
    await store.db
      .updateTable("async_events")
      .set({ lease_expires_at: 1 })
      .where("function_name", "=", "a")
      .execute();
    const other = new AsyncQueue(store, "node-b", 30_000);
    const again = await other.claim(10);
    expect(again.map((e) => e.function_name).sort()).toEqual(["a", "a", "a"]);
    expect(again.every((e) => e.lease_owner === "node-b")).toBe(true);
    expect(await other.claim(10)).toEqual([]);
  });

  it("takes hostile function names as data", async () => {
    const names = ["x' or '1'='1", "%", "_", "a\\b", "ünï😀", "z".repeat(200), "fns.name", "-- c"];
    for (const n of names) await enqueue(n, 2);
    const got = await drain(queue, 3);
    expect(got).toHaveLength(names.length * 2);
    expect(new Set(got.map((e) => e.function_name))).toEqual(new Set(names));
  });

  it("two claimers at once never take the same event", async () => {
    for (let f = 0; f < 5; f++) await enqueue(`f${f}`, 200);
    // PostgreSQL: a second server with a store of its own; SQLite (one server owns its queue): a
    // second claimer on the same store.
    let s2 = store;
    if (pg) {
      s2 = await Store.open({ dataDir: mkdtempSync(join(tmpdir(), "lambent-fair-2-")), database: pg.url });
      extra.push(s2);
    }
    const q2 = new AsyncQueue(s2, "node-b", 30_000);
    const [x, y] = await Promise.all([drain(queue, 13), drain(q2, 11)]);
    const ids = [...(x ?? []), ...(y ?? [])].map((e) => e.id);
    expect(ids).toHaveLength(1000);
    expect(new Set(ids).size).toBe(1000);
  });

  it("a poller starts another function's event while one function's backlog is still queued", async () => {
    await enqueue("a", 200);
    await tick();
    await enqueue("b", 1);
    const started: string[] = [];
    const handler: EventHandler = async (ev) => {
      started.push(ev.function_name);
      await queue.complete(ev, [], { succeeded: 1 });
    };
    const poller = new AsyncPoller(queue, handler, {
      concurrency: 2,
      prefetch: 2,
      sweepMs: 60_000,
      heartbeatMs: 60_000,
      onError: (err) => {
        throw err;
      },
    });
    poller.start();
    try {
      await until("b's event started", () => started.includes("b"));
      // Among the first claim (two slots + two ahead), not after A's 200.
      expect(started.indexOf("b")).toBeLessThan(4);
      await until("all done", () => started.length === 201);
    } finally {
      await poller.stop(0);
    }
  });
});
