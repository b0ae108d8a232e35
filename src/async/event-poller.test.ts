/**
 * The poller against a real queue (SQLite and PostgreSQL stores): events claimed ahead of free
 * slots wait leased and start as slots free, a slot is free once the handler says so (before its
 * outcome commits), ready events that wait through a heartbeat are handed back, and stop() hands
 * back the ready ones too.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/helpers/postgres.js";
import { Store } from "../store/store.js";
import { AsyncPoller, type EventHandler, type PollerOptions } from "./event-poller.js";
import { AsyncQueue, type QueuedEvent } from "./event-queue.js";

async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A gate per event: the handler waits on it. */
function gates() {
  const open = new Map<string, () => void>();
  const waits = new Map<string, Promise<void>>();
  return {
    wait(id: string): Promise<void> {
      let w = waits.get(id);
      if (!w) {
        w = new Promise<void>((r) => open.set(id, r));
        waits.set(id, w);
      }
      return w;
    },
    open(id: string): void {
      this.wait(id);
      open.get(id)?.();
    },
  };
}

describe.each(["sqlite", "postgres"] as const)("async poller on %s", (engine) => {
  let dataDir: string;
  let pg: TestDatabase | undefined;
  let store: Store;
  let queue: AsyncQueue;
  let poller: AsyncPoller | undefined;

  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "lambent-poller-"));
    if (engine === "postgres") pg = await createTestDatabase();
    store = await Store.open({ dataDir, ...(pg ? { database: pg.url } : {}) });
    queue = new AsyncQueue(store, "node-a", 30_000);
  });
  afterEach(async () => {
    await poller?.stop(0);
    poller = undefined;
    await store.close();
    await pg?.drop();
    pg = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });

  const start = (handler: EventHandler, opts: Partial<PollerOptions>) => {
    poller = new AsyncPoller(queue, handler, {
      concurrency: 1,
      prefetch: 0,
      sweepMs: 60_000,
      heartbeatMs: 60_000,
      onError: (err) => {
        throw err;
      },
      ...opts,
    });
    poller.start();
    return poller;
  };

  const enqueue = (n: number) =>
    queue.enqueue(
      Array.from({ length: n }, (_, i) => ({
        kind: "invoke" as const,
        requestId: `r${i}`,
        functionName: "f",
        region: "us-east-1",
        payload: Buffer.from("{}"),
      })),
    );

  const states = async () => {
    const rows = await store.db.selectFrom("async_events").select(["state", "lease_owner"]).execute();
    return {
      queued: rows.filter((r) => r.state === "queued").length,
      leased: rows.filter((r) => r.state === "running" && r.lease_owner === "node-a").length,
    };
  };

  it("claims ahead of the free slots: the next events wait leased and a freed slot starts one", async () => {
    await enqueue(6);
    const g = gates();
    const started: string[] = [];
    const done: string[] = [];
    start(
      async (ev: QueuedEvent) => {
        started.push(ev.request_id);
        await g.wait(ev.request_id);
        await queue.complete(ev, [], { succeeded: 1 });
        done.push(ev.request_id);
      },
      { concurrency: 2, prefetch: 2 },
    );
    await until("two events running and two claimed ahead", async () => {
      const s = await states();
      return started.length === 2 && s.leased === 4;
    });
    // Two run (the slots), two more wait leased to this server, two are still queued in the store.
    expect(started).toHaveLength(2);
    expect(await states()).toEqual({ queued: 2, leased: 4 });
    g.open(started[0] as string);
    await until("a third event started", () => started.length === 3);
    for (let i = 0; i < 6; i++) {
      await until(`event ${i + 1} started`, () => started.length > i);
      g.open(started[i] as string);
    }
    await until("all done", () => done.length === 6);
    expect(new Set(started)).toEqual(new Set(["r0", "r1", "r2", "r3", "r4", "r5"]));
    expect(await states()).toEqual({ queued: 0, leased: 0 });
    expect((await queue.stats())[0]?.succeeded).toBe(6);
  });

  it("a slot is free once the handler says so, while its outcome is still to commit", async () => {
    await enqueue(2);
    const g = gates();
    const started: string[] = [];
    start(
      async (ev, slotFree) => {
        started.push(ev.request_id);
        slotFree();
        // The outcome's commit, held back: the next event must not wait for it.
        await g.wait(ev.request_id);
        await queue.complete(ev, [], { succeeded: 1 });
      },
      { concurrency: 1, prefetch: 0 },
    );
    await until("both events started", () => started.length === 2);
    expect(poller?.inFlight).toBe(2);
    for (const id of started) g.open(id);
    await until("both done", async () => (await states()).leased === 0);
    expect((await queue.stats())[0]?.succeeded).toBe(2);
  });

  it("events waiting ready through a whole heartbeat are handed back to the queue", async () => {
    await enqueue(3);
    const g = gates();
    const started: string[] = [];
    start(
      async (ev) => {
        started.push(ev.request_id);
        await g.wait(ev.request_id);
        await queue.complete(ev, [], { succeeded: 1 });
      },
      { concurrency: 1, prefetch: 2, heartbeatMs: 30 },
    );
    await until("one running, two claimed ahead", async () => started.length === 1);
    // The one slot stays held: after a beat the two ready events go back to the store (for other
    // servers) and are not claimed ahead again while no slot frees.
    await until("the ready events handed back", async () => (await states()).queued === 2);
    for (let beats = 0; beats < 3; beats++) await new Promise((r) => setTimeout(r, 40));
    expect(await states()).toEqual({ queued: 2, leased: 1 });
    g.open(started[0] as string);
    for (let i = 1; i < 3; i++) {
      await until(`event ${i + 1} started`, () => started.length > i);
      g.open(started[i] as string);
    }
    await until("all done", async () => {
      const s = await states();
      return s.queued === 0 && s.leased === 0;
    });
    expect(started).toHaveLength(3);
    expect((await queue.stats())[0]?.succeeded).toBe(3);
  });

  it("stop() hands the running and the ready events back to the queue", async () => {
    await enqueue(3);
    const g = gates();
    const started: string[] = [];
    const p = start(
      async (ev) => {
        started.push(ev.request_id);
        await g.wait(ev.request_id);
      },
      { concurrency: 1, prefetch: 2 },
    );
    await until("one running, two claimed ahead", async () => (await states()).leased === 3);
    await p.stop(0);
    poller = undefined;
    expect(await states()).toEqual({ queued: 3, leased: 0 });
    expect(started).toHaveLength(1);
    g.open(started[0] as string);
  });
});
