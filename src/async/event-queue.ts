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
import { type Kysely, type SelectQueryBuilder, sql, type Transaction } from "kysely";
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

/** Functions per statement of a fair claim (SQLite takes at most 500 terms in a compound select). */
const FAIR_ARMS = 100;

/** A query selecting event ids. */
// biome-ignore lint/suspicious/noExplicitAny: any tables (a union over derived tables of the queue)
type SelectQuery = SelectQueryBuilder<any, any, { id: string }>;

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
   * Lease up to `limit` due events, fairly between functions: one function's backlog does not hold
   * back another's events (as each Lambda function has its own async queue). The claim rides in
   * the next group commit, with the enqueues and completions that arrive meanwhile.
   */
  async claim(limit: number): Promise<QueuedEvent[]> {
    if (limit <= 0) return [];
    return new Promise((resolve, reject) => {
      this.pendingClaims.push({ limit, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** Where the next claim's scan of functions starts when more functions have due events than a claim takes. */
  private fairCursor: string | null = null;

  /**
   * The fair claim: the functions with queued due events (at most `limit`, found by a skip scan
   * of the (state, function_name, next_run_at) index, so a backlog costs one index probe per
   * function, not a scan of its rows) each get an equal share of `limit`, oldest due first within
   * each, in one statement; what functions with fewer due events than their share leave over is
   * shared again between the others; then expired leases (their server died) fill what is left.
   * Returned in turns: each function's oldest, then each one's second, … so a poller's ready list
   * interleaves them too.
   */
  private async claimIn(tx: Transaction<Database>, limit: number): Promise<QueuedEvent[]> {
    const now = Date.now();
    let fns = await this.dueFunctions(tx, now, limit);
    const rows: QueuedEvent[] = [];
    while (fns.length > 0 && rows.length < limit) {
      // Shares that add up to exactly what is left (the first functions in turn get one more).
      const rest = limit - rows.length;
      const base = Math.floor(rest / fns.length);
      const shares = fns
        .map((fn, j): [string, number] => [fn, base + (j < rest % fns.length ? 1 : 0)])
        .filter(([, n]) => n > 0);
      const got = await this.leaseShares(tx, now, shares);
      rows.push(...got);
      // Only a function that filled its share may have more due.
      const n = new Map<string, number>();
      for (const r of got) n.set(r.function_name, (n.get(r.function_name) ?? 0) + 1);
      fns = shares.filter(([fn, share]) => (n.get(fn) ?? 0) >= share).map(([fn]) => fn);
    }
    if (rows.length < limit) {
      const expired = tx
        .selectFrom("async_events")
        .select("id")
        .where("state", "=", "running")
        .where("lease_expires_at", "<", now)
        .where("next_run_at", "<=", now)
        .orderBy("next_run_at")
        .limit(limit - rows.length);
      rows.push(
        ...(await this.lease(
          tx,
          now,
          this.store.engine === "postgres" ? expired.forUpdate().skipLocked() : expired,
        )),
      );
    }
    for (const r of rows) r.payload = Buffer.from(r.payload);
    return inTurns(rows);
  }

  /**
   * Lease up to `n` queued due events of each function in `shares`, oldest due first within
   * each: one statement per FAIR_ARMS functions (rows locked elsewhere skipped).
   */
  private async leaseShares(
    tx: Transaction<Database>,
    now: number,
    shares: Array<[string, number]>,
  ): Promise<QueuedEvent[]> {
    const out: QueuedEvent[] = [];
    for (let i = 0; i < shares.length; i += FAIR_ARMS) {
      const arms = shares.slice(i, i + FAIR_ARMS).map(([fn, n], j) => {
        const q = tx
          .selectFrom("async_events")
          .select("id")
          .where("state", "=", "queued")
          .where("function_name", "=", fn)
          .where("next_run_at", "<=", now)
          .orderBy("next_run_at")
          .limit(n);
        return tx
          .selectFrom((this.store.engine === "postgres" ? q.forUpdate().skipLocked() : q).as(`t${j}`))
          .select("id");
      });
      const [first, ...rest] = arms;
      if (!first) break;
      let union = first;
      for (const a of rest) union = union.unionAll(a);
      out.push(...(await this.lease(tx, now, union)));
    }
    return out;
  }

  /** Lease the rows `ids` selects (they are due: the caller's query says so). */
  private async lease(tx: Transaction<Database>, now: number, ids: SelectQuery): Promise<QueuedEvent[]> {
    return tx
      .updateTable("async_events")
      .set({ state: "running", lease_owner: this.owner, lease_expires_at: now + this.leaseMs })
      .where("id", "in", ids)
      .returningAll()
      .execute();
  }

  /**
   * Up to `limit` names of functions with queued due events, in name order from the cursor on
   * (wrapping round), so that when more functions wait than a claim takes, the next claim starts
   * after the last one served.
   */
  private async dueFunctions(tx: Transaction<Database>, now: number, limit: number): Promise<string[]> {
    const after = this.fairCursor;
    const names = await this.scanFunctions(tx, now, limit, after);
    if (after !== null && names.length < limit) {
      // From the first name again, up to where the first scan began (the store's collation decides).
      const seen = new Set(names);
      for (const n of await this.scanFunctions(tx, now, limit - names.length, null))
        if (!seen.has(n)) names.push(n);
    }
    // The cursor matters only while more functions wait than a claim takes.
    this.fairCursor = names.length < limit ? null : (names[names.length - 1] as string);
    return names;
  }

  /** A skip scan: each step is one index probe for the next function name with a queued due event. */
  private async scanFunctions(
    tx: Transaction<Database>,
    now: number,
    limit: number,
    after: string | null,
  ): Promise<string[]> {
    const next = (above: ReturnType<typeof sql>) => sql`(select function_name from async_events
      where state = 'queued' and next_run_at <= ${now} ${above}
      order by function_name limit 1)`;
    const res = await sql<{ name: string }>`with recursive fns(name, n) as (
        select ${next(after === null ? sql`` : sql`and function_name > ${after}`)}, 1
        union all
        select ${next(sql`and function_name > fns.name`)}, n + 1
        from fns where fns.name is not null and n < ${limit}
      )
      select name from fns where name is not null`.execute(tx);
    return res.rows.map((r) => r.name);
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

/** Oldest due first within each function, in turns between functions (each one's first, then each one's second, …). */
function inTurns(rows: QueuedEvent[]): QueuedEvent[] {
  const byDue = [...rows].sort((a, b) => Number(a.next_run_at) - Number(b.next_run_at));
  const turn = new Map<string, number>();
  const ranked = byDue.map((r, i) => {
    const t = turn.get(r.function_name) ?? 0;
    turn.set(r.function_name, t + 1);
    return { r, t, i };
  });
  return ranked.sort((a, b) => a.t - b.t || a.i - b.i).map((x) => x.r);
}

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
