/**
 * Concurrency budget shares in PostgreSQL: how the frontends of a cluster
 * split each limit so that together they never admit more than it.
 *
 * A pool is the account's unreserved pool (`account`: the account limit less
 * every reservation) or one function's reservation (`function:<name>`). Each
 * frontend holds some slots of a pool in `concurrency_leases` under a lease
 * that runs out `LEASE_MS` after its last renewal by the database's clock.
 * A claim runs in one transaction under the pool's advisory lock: it deletes
 * the pool's expired shares, reads the limit from the functions table (never
 * from a cache), and grants what the other shares leave. Giving slots back or
 * renewing needs no lock (it never grows a share). A frontend that asks for
 * slots it cannot get announces it on `lambent_concurrency`, and the others
 * hand back what they hold unused at once.
 */
import { sql, type Transaction } from "kysely";
import type { Database } from "../store/schema.js";
import type { Store } from "../store/store.js";
import { LEASE_MS } from "./registry.js";

export const CONCURRENCY_CHANNEL = "lambent_concurrency";
/** The account's unreserved pool. */
export const ACCOUNT_POOL = "account";

export function functionPool(name: string): string {
  return `function:${name}`;
}

const LEASE = `${LEASE_MS} milliseconds`;

export class ConcurrencyLeases {
  constructor(
    private readonly store: Store,
    /** This node's id: the holder of its shares. */
    readonly holder: string,
    private readonly accountConcurrency: number,
  ) {
    if (store.engine !== "postgres") throw new Error("a cluster needs PostgreSQL (--database postgres://…)");
  }

  /**
   * Set this node's share of `pool` to `want` slots, or to what the other
   * shares leave when that is less; returns the slots held now.
   */
  claim(pool: string, want: number): Promise<number> {
    return this.store.db.transaction().execute(async (tx) => {
      await sql`select pg_advisory_xact_lock(hashtextextended(${pool}, 19))`.execute(tx);
      await sql`delete from concurrency_leases where pool = ${pool} and lease_until < now()`.execute(tx);
      const limit = await this.limit(tx, pool);
      const others = await sql<{ n: string | null }>`
        select sum(slots) as n from concurrency_leases where pool = ${pool} and holder <> ${this.holder}`.execute(
        tx,
      );
      const granted = Math.max(0, Math.min(want, limit - Number(others.rows[0]?.n ?? 0)));
      if (granted === 0) {
        await sql`delete from concurrency_leases where pool = ${pool} and holder = ${this.holder}`.execute(
          tx,
        );
      } else {
        await sql`
          insert into concurrency_leases (pool, holder, slots, lease_until)
          values (${pool}, ${this.holder}, ${granted}, now() + ${LEASE}::interval)
          on conflict (pool, holder) do update set slots = excluded.slots, lease_until = excluded.lease_until`.execute(
          tx,
        );
      }
      return granted;
    });
  }

  /** The pool's limit as the functions table has it now. */
  private async limit(tx: Transaction<Database>, pool: string): Promise<number> {
    if (pool === ACCOUNT_POOL) {
      const r = await sql<{ n: string | null }>`
        select sum(reserved_concurrency) as n from functions where reserved_concurrency is not null`.execute(
        tx,
      );
      return this.accountConcurrency - Number(r.rows[0]?.n ?? 0);
    }
    const name = pool.slice("function:".length);
    const r = await sql<{ n: number | null }>`
      select reserved_concurrency as n from functions where name = ${name}`.execute(tx);
    // No reservation (any more): the pool is gone and grants nothing; the caller's view catches up.
    return r.rows[0]?.n ?? 0;
  }

  /**
   * Renew this node's shares, each set to the given slots (never more than it
   * holds: a renewal only keeps or gives back), 0 deleting it. Returns the
   * pools whose share was no longer there (it ran out and another node's claim
   * removed it): those must be claimed again.
   */
  async renew(shares: ReadonlyMap<string, number>): Promise<Set<string>> {
    const keep = [...shares].filter(([, n]) => n > 0);
    const drop = [...shares].filter(([, n]) => n <= 0).map(([p]) => p);
    if (drop.length > 0) {
      await sql`delete from concurrency_leases where holder = ${this.holder} and pool = any(${drop}::text[])`.execute(
        this.store.db,
      );
    }
    const missing = new Set(keep.map(([p]) => p));
    if (keep.length === 0) return missing;
    const r = await sql<{ pool: string }>`
      update concurrency_leases c set slots = least(c.slots, v.slots), lease_until = now() + ${LEASE}::interval
      from unnest(${keep.map(([p]) => p)}::text[], ${keep.map(([, n]) => n)}::int[]) as v(pool, slots)
      where c.holder = ${this.holder} and c.pool = v.pool
      returning c.pool`.execute(this.store.db);
    for (const row of r.rows) missing.delete(row.pool);
    return missing;
  }

  /** Give every share of this node back (a stopping node). */
  async releaseAll(): Promise<void> {
    await sql`delete from concurrency_leases where holder = ${this.holder}`.execute(this.store.db);
  }

  /** Ask the other nodes to hand back the slots of `pool` they hold unused. */
  async askBack(pool: string): Promise<void> {
    await sql`select pg_notify(${CONCURRENCY_CHANNEL}, ${`${this.holder} ${pool}`})`.execute(this.store.db);
  }
}
