/**
 * The worker registry in PostgreSQL, the cluster's system of record: a worker
 * registers with its zone, address and capacity and renews a lease with the
 * database's own clock (`now()`), so no two nodes' clocks are compared; a row
 * whose lease ran out is deleted by whichever node sees it first, and every
 * change is announced on `lambent_workers` (LISTEN/NOTIFY) so frontends
 * update their view at once rather than at their next poll.
 */
import { sql } from "kysely";
import type { Store } from "../store/store.js";

export const WORKERS_CHANNEL = "lambent_workers";
/** A worker renews its lease this often… */
export const HEARTBEAT_MS = 1000;
/** …and is removed this long after its last renewal. */
export const LEASE_MS = 5000;

export interface WorkerRecord {
  id: string;
  zone: string;
  /** host:port of its node server. */
  address: string;
  memoryMb: number;
  maxEnvironments: number;
  usedMemoryMb: number;
  environments: number;
  draining: boolean;
}

interface Row {
  worker_id: string;
  zone: string;
  address: string;
  memory_mb: number;
  max_environments: number;
  used_memory_mb: number;
  environments: number;
  draining: number;
}

function record(r: Row): WorkerRecord {
  return {
    id: r.worker_id,
    zone: r.zone,
    address: r.address,
    memoryMb: Number(r.memory_mb),
    maxEnvironments: Number(r.max_environments),
    usedMemoryMb: Number(r.used_memory_mb),
    environments: Number(r.environments),
    draining: Number(r.draining) !== 0,
  };
}

export class WorkerRegistry {
  constructor(private readonly store: Store) {
    if (store.engine !== "postgres") throw new Error("a cluster needs PostgreSQL (--database postgres://…)");
  }

  private notify(what: string): Promise<unknown> {
    return sql`select pg_notify(${WORKERS_CHANNEL}, ${what})`.execute(this.store.db);
  }

  async register(w: Omit<WorkerRecord, "usedMemoryMb" | "environments" | "draining">): Promise<void> {
    await sql`
      insert into cluster_workers (worker_id, zone, address, memory_mb, max_environments, used_memory_mb,
        environments, draining, lease_until, started_at)
      values (${w.id}, ${w.zone}, ${w.address}, ${w.memoryMb}, ${w.maxEnvironments}, 0, 0, 0,
        now() + ${`${LEASE_MS} milliseconds`}::interval, ${Date.now()})
      on conflict (worker_id) do update set zone = excluded.zone, address = excluded.address,
        memory_mb = excluded.memory_mb, max_environments = excluded.max_environments, draining = 0,
        lease_until = excluded.lease_until`.execute(this.store.db);
    await this.notify(`up ${w.id}`);
  }

  /** Renew the lease with current usage; false when the row is gone (the lease ran out: register again). */
  async heartbeat(id: string, usage: { usedMemoryMb: number; environments: number }): Promise<boolean> {
    const r = await sql`
      update cluster_workers set lease_until = now() + ${`${LEASE_MS} milliseconds`}::interval,
        used_memory_mb = ${usage.usedMemoryMb}, environments = ${usage.environments}
      where worker_id = ${id}`.execute(this.store.db);
    return Number(r.numAffectedRows ?? 0) > 0;
  }

  /** Take no new environments: frontends stop placing here; invokes in flight finish. */
  async drain(id: string): Promise<void> {
    await sql`update cluster_workers set draining = 1 where worker_id = ${id}`.execute(this.store.db);
    await this.notify(`drain ${id}`);
  }

  async deregister(id: string): Promise<void> {
    await sql`delete from cluster_workers where worker_id = ${id}`.execute(this.store.db);
    await this.notify(`down ${id}`);
  }

  /** Delete the workers whose lease ran out (and say so); returns their ids. */
  async expire(): Promise<string[]> {
    const r = await sql<{ worker_id: string }>`
      delete from cluster_workers where lease_until < now() returning worker_id`.execute(this.store.db);
    const ids = r.rows.map((x) => x.worker_id);
    for (const id of ids) await this.notify(`down ${id}`);
    return ids;
  }

  /** The workers holding a lease now. */
  async live(): Promise<WorkerRecord[]> {
    const r = await sql<Row>`
      select worker_id, zone, address, memory_mb, max_environments, used_memory_mb, environments, draining
      from cluster_workers where lease_until >= now() order by worker_id`.execute(this.store.db);
    return r.rows.map(record);
  }
}
