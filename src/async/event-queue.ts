/**
 * The durable event queue: a table in the store. Enqueue commits before the
 * caller hears 202. Pollers claim due rows with a lease (`FOR UPDATE SKIP
 * LOCKED` on PostgreSQL, so several servers share the queue; SQLite is owned
 * by one server); an event its server can run at once is stored already
 * leased to it instead (see event-poller.ts). A row is finished by deleting it under its lease, in the
 * same transaction that writes its follow-ups (destination deliveries) and
 * bumps the outcome counters — so an outcome is recorded exactly once even
 * when a run is repeated after a lost lease.
 */
import { randomUUID } from "node:crypto";
import { type Kysely, sql, type Transaction } from "kysely";
import type { AsyncEventsTable, AsyncStatsTable, Database } from "../store/schema.js";
import type { Store } from "../store/store.js";

export type QueuedEvent = AsyncEventsTable;

export type EventKind = "invoke" | "destination";

export interface NewEvent {
  kind: EventKind;
  requestId: string;
  functionName: string;
  qualifier?: string;
  region: string;
  payload: Buffer;
  target?: string;
  meta?: unknown;
  /** Epoch ms; now when absent. */
  enqueuedAt?: number;
  /** Stored already leased to this server (its poller reserved a slot and runs it once committed). */
  leased?: boolean;
}

export type StatName = Exclude<keyof AsyncStatsTable, "function_name">;
export type StatBumps = Partial<Record<StatName, number>>;

export interface QueueDepth {
  functionName: string;
  kind: string;
  state: string;
  count: number;
}

/** Rows per INSERT (SQLite takes at most 32766 bound values per statement). */
const INSERT_SLICE = 500;

/** PostgreSQL NOTIFY channel that wakes every server's pollers. */
export const NOTIFY_CHANNEL = "lambent_async";

export class AsyncQueue {
  constructor(
    private readonly store: Store,
    /** This server's lease owner id. */
    readonly owner: string,
    private readonly leaseMs: number,
  ) {}

  private get db(): Kysely<Database> {
    return this.store.db;
  }

  private row(e: NewEvent, now: number): AsyncEventsTable {
    return {
      id: randomUUID(),
      kind: e.kind,
      request_id: e.requestId,
      function_name: e.functionName,
      qualifier: e.qualifier ?? null,
      region: e.region,
      payload: e.payload,
      attempts: 0,
      backoffs: 0,
      next_run_at: now,
      lease_owner: e.leased ? this.owner : null,
      lease_expires_at: e.leased ? now + this.leaseMs : null,
      enqueued_at: e.enqueuedAt ?? now,
      state: e.leased ? "running" : "queued",
      target: e.target ?? null,
      meta: e.meta === undefined ? null : JSON.stringify(e.meta),
    };
  }

  /**
   * Store events durably (committed when this resolves, or with `tx`). Enqueues that arrive
   * in the same turn of the event loop share one transaction (group commit);
   * each caller still resolves only once its rows are committed. Resolves with the rows stored.
   */
  async enqueue(events: NewEvent[], tx?: Transaction<Database>): Promise<QueuedEvent[]> {
    if (events.length === 0) return [];
    if (tx) return this.insertEvents(events, tx);
    return new Promise((resolve, reject) => {
      this.pendingEnqueues.push({ events, resolve, reject });
      this.scheduleFlush();
    });
  }

  /**
   * Insert events: in `t`, or (at most INSERT_SLICE of them) as one statement that commits on its
   * own. Other servers' pollers hear of queued events (a leased one is this server's to run).
   */
  private async insertEvents(events: NewEvent[], t: Kysely<Database>): Promise<QueuedEvent[]> {
    const now = Date.now();
    const rows = events.map((e) => this.row(e, now));
    const notify = this.store.engine === "postgres" && rows.some((r) => r.state === "queued");
    if (notify && rows.length <= INSERT_SLICE) {
      // One round trip: the insert and its NOTIFY (sent at commit) in one statement.
      await t
        .with("inserted", (db) => db.insertInto("async_events").values(rows).returning("id"))
        .selectFrom("inserted")
        .select(sql`pg_notify(${NOTIFY_CHANNEL}, '')`.as("notified"))
        .limit(1)
        .execute();
      return rows;
    }
    // SQLite takes at most 32766 bound values per statement: insert in slices.
    for (let i = 0; i < rows.length; i += INSERT_SLICE)
      await t
        .insertInto("async_events")
        .values(rows.slice(i, i + INSERT_SLICE))
        .execute();
    if (notify) await sql`select pg_notify(${NOTIFY_CHANNEL}, '')`.execute(t);
    return rows;
  }

  private readonly pendingEnqueues: Array<{
    events: NewEvent[];
    resolve: (rows: QueuedEvent[]) => void;
    reject: (e: unknown) => void;
  }> = [];
  private readonly pendingCompletions: Array<{
    ev: QueuedEvent;
    followUps: NewEvent[];
    stats: StatBumps;
    resolve: (ok: boolean) => void;
    reject: (e: unknown) => void;
  }> = [];
  private readonly pendingClaims: Array<{
    limit: number;
    resolve: (rows: QueuedEvent[]) => void;
    reject: (e: unknown) => void;
  }> = [];
  private flushScheduled = false;
  /** The flush committing now: what arrives meanwhile waits for it and goes in the next one (group commit). */
  private flushing: Promise<void> | null = null;

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    if (this.flushing) return;
    setImmediate(() => this.startFlush());
  }

  private startFlush(): void {
    this.flushScheduled = false;
    const run = this.flush().finally(() => {
      this.flushing = null;
      if (this.flushScheduled) this.startFlush();
    });
    this.flushing = run;
  }

  /**
   * Commit every enqueue, completion and claim gathered since the last flush, in one transaction
   * (claims last, so they see the events enqueued in it).
   */
  private async flush(): Promise<void> {
    const enqueues = this.pendingEnqueues.splice(0);
    const completions = this.pendingCompletions.splice(0);
    const claims = this.pendingClaims.splice(0);
    if (enqueues.length === 0 && completions.length === 0 && claims.length === 0) return;
    let results: boolean[] = [];
    let stored: QueuedEvent[] = [];
    let claimed: QueuedEvent[][] = [];
    const inserts = enqueues.reduce((n, e) => n + e.events.length, 0);
    if (completions.length === 0 && claims.length === 0 && inserts <= INSERT_SLICE) {
      // Only new events: one statement, committed by itself (no BEGIN and COMMIT round trips).
      try {
        stored = await this.insertEvents(
          enqueues.flatMap((e) => e.events),
          this.db,
        );
      } catch (err) {
        for (const e of enqueues) e.reject(err);
        return;
      }
      this.resolveEnqueues(enqueues, stored);
      return;
    }
    try {
      await this.db.transaction().execute(async (tx) => {
        results = [];
        const followUps: NewEvent[] = enqueues.flatMap((e) => e.events);
        const bumps = new Map<string, StatBumps>();
        // One statement for all of them: the rows still leased to this server go.
        const deleted = new Set<string>();
        for (let i = 0; i < completions.length; i += 500) {
          const rows = await tx
            .deleteFrom("async_events")
            .where(
              "id",
              "in",
              completions.slice(i, i + 500).map((c) => c.ev.id),
            )
            .where("lease_owner", "=", this.owner)
            .where("state", "=", "running")
            .returning("id")
            .execute();
          for (const r of rows) deleted.add(r.id);
        }
        for (const c of completions) {
          // The same event twice (a run repeated after its lease ran out): only one outcome counts.
          const ok = deleted.delete(c.ev.id);
          results.push(ok);
          // A completion whose lease was lost changes nothing.
          if (!ok) continue;
          followUps.push(...c.followUps);
          const sum = bumps.get(c.ev.function_name) ?? {};
          for (const [k, n] of Object.entries(c.stats) as [StatName, number | undefined][]) {
            if (n) sum[k] = (sum[k] ?? 0) + n;
          }
          bumps.set(c.ev.function_name, sum);
        }
        stored = followUps.length > 0 ? await this.insertEvents(followUps, tx) : [];
        for (const [fn, stats] of bumps) await bumpStats(tx, fn, stats);
        claimed = [];
        for (const c of claims) claimed.push(await this.claimIn(tx, c.limit));
      });
    } catch (err) {
      for (const e of enqueues) e.reject(err);
      for (const c of completions) c.reject(err);
      for (const c of claims) c.reject(err);
      return;
    }
    for (const [i, c] of claims.entries()) c.resolve(claimed[i] as QueuedEvent[]);
    this.resolveEnqueues(enqueues, stored);
    for (const [i, c] of completions.entries()) c.resolve(results[i] as boolean);
  }

  /** Each enqueuer gets its rows: they come first in `stored`, in order. */
  private resolveEnqueues(enqueues: typeof this.pendingEnqueues, stored: QueuedEvent[]): void {
    let at = 0;
    for (const e of enqueues) {
      e.resolve(stored.slice(at, at + e.events.length));
      at += e.events.length;
    }
  }

  /**
   * Lease up to `limit` due events (oldest due first). The claim rides in the next group commit,
   * with the enqueues and completions that arrive meanwhile.
   */
  async claim(limit: number): Promise<QueuedEvent[]> {
    if (limit <= 0) return [];
    return new Promise((resolve, reject) => {
      this.pendingClaims.push({ limit, resolve, reject });
      this.scheduleFlush();
    });
  }

  private async claimIn(tx: Transaction<Database>, limit: number): Promise<QueuedEvent[]> {
    const now = Date.now();
    const due = tx
      .selectFrom("async_events")
      .select("id")
      .where("next_run_at", "<=", now)
      .where((eb) =>
        eb.or([
          eb("state", "=", "queued"),
          eb.and([eb("state", "=", "running"), eb("lease_expires_at", "<", now)]),
        ]),
      )
      .orderBy("next_run_at")
      .limit(limit);
    const rows = await tx
      .updateTable("async_events")
      .set({ state: "running", lease_owner: this.owner, lease_expires_at: now + this.leaseMs })
      .where("id", "in", this.store.engine === "postgres" ? due.forUpdate().skipLocked() : due)
      .returningAll()
      .execute();
    for (const r of rows) r.payload = Buffer.from(r.payload);
    return rows.sort((a, b) => a.next_run_at - b.next_run_at);
  }

  /** When the next queued event falls due (undefined = none waiting). */
  async nextDue(): Promise<number | undefined> {
    const r = await this.db
      .selectFrom("async_events")
      .select((eb) => eb.fn.min<number>("next_run_at").as("due"))
      .where("state", "=", "queued")
      .executeTakeFirst();
    return r?.due === null || r?.due === undefined ? undefined : Number(r.due);
  }

  /** Extend the leases this server holds (called well within the lease time). */
  async heartbeat(): Promise<void> {
    await this.db
      .updateTable("async_events")
      .set({ lease_expires_at: Date.now() + this.leaseMs })
      .where("lease_owner", "=", this.owner)
      .where("state", "=", "running")
      .execute();
  }

  /**
   * Hand leased events back to the queue. `ids` absent = every lease held by
   * `owner` (this server's earlier life, after a crash) or, with `all`, every
   * lease (SQLite: one server owns the queue). `notify`: other servers' pollers hear of them.
   */
  async release(opts: { ids?: string[]; all?: boolean; notify?: boolean } = {}): Promise<number> {
    if (opts.ids && opts.ids.length === 0) return 0;
    let q = this.db
      .updateTable("async_events")
      .set({ state: "queued", lease_owner: null, lease_expires_at: null })
      .where("state", "=", "running");
    if (opts.ids) q = q.where("id", "in", opts.ids).where("lease_owner", "=", this.owner);
    else if (!opts.all) q = q.where("lease_owner", "=", this.owner);
    const res = await q.executeTakeFirst();
    if (opts.notify && this.store.engine === "postgres" && Number(res.numUpdatedRows) > 0)
      await sql`select pg_notify(${NOTIFY_CHANNEL}, '')`.execute(this.db);
    return Number(res.numUpdatedRows);
  }

  /**
   * Put a leased event back with a later due time. Resolves false when the
   * lease was lost (another server owns the event now).
   */
  async reschedule(
    ev: QueuedEvent,
    change: { nextRunAt: number; attempts?: number; backoffs?: number; meta?: unknown },
    stats?: StatBumps,
  ): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const res = await tx
        .updateTable("async_events")
        .set({
          state: "queued",
          lease_owner: null,
          lease_expires_at: null,
          next_run_at: change.nextRunAt,
          attempts: change.attempts ?? ev.attempts,
          backoffs: change.backoffs ?? ev.backoffs,
          ...(change.meta !== undefined ? { meta: JSON.stringify(change.meta) } : {}),
        })
        .where("id", "=", ev.id)
        .where("lease_owner", "=", this.owner)
        .where("state", "=", "running")
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) return false;
      if (stats) await bumpStats(tx, ev.function_name, stats);
      return true;
    });
  }

  /**
   * Finish a leased event: delete it, enqueue its follow-ups and count the
   * outcome, atomically. Resolves false (and changes nothing) when the lease
   * was lost.
   */
  async complete(ev: QueuedEvent, followUps: NewEvent[], stats: StatBumps): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pendingCompletions.push({ ev, followUps, stats, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** Events per function, kind and state. */
  async depth(): Promise<QueueDepth[]> {
    const rows = await this.db
      .selectFrom("async_events")
      .select((eb) => ["function_name", "kind", "state", eb.fn.countAll<number>().as("n")])
      .groupBy(["function_name", "kind", "state"])
      .execute();
    return rows.map((r) => ({
      functionName: r.function_name,
      kind: r.kind,
      state: r.state,
      count: Number(r.n),
    }));
  }

  async stats(): Promise<AsyncStatsTable[]> {
    const rows = await this.db.selectFrom("async_stats").selectAll().orderBy("function_name").execute();
    return rows.map((r) => {
      const out = { ...r };
      for (const k of STAT_NAMES) out[k] = Number(r[k]);
      return out;
    });
  }
}

export const STAT_NAMES: StatName[] = [
  "succeeded",
  "failed",
  "expired",
  "dropped",
  "retries",
  "throttles",
  "delivered",
  "delivery_failures",
];

async function bumpStats(tx: Transaction<Database>, functionName: string, stats: StatBumps): Promise<void> {
  const entries = Object.entries(stats).filter(([, n]) => n !== undefined && n !== 0) as [StatName, number][];
  if (entries.length === 0) return;
  const initial = { function_name: functionName } as AsyncStatsTable;
  for (const k of STAT_NAMES) initial[k] = stats[k] ?? 0;
  await tx
    .insertInto("async_stats")
    .values(initial)
    .onConflict((oc) =>
      oc.column("function_name").doUpdateSet((eb) => {
        const set: Record<string, unknown> = {};
        for (const [k, n] of entries) set[k] = eb(eb.ref(`async_stats.${k}`), "+", n);
        return set;
      }),
    )
    .execute();
}
