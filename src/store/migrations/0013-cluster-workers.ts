import { sql } from "kysely";
import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/**
 * The workers of a cluster (PostgreSQL only in use; created on both engines so
 * the schema stays one): each holds a lease it renews with `now()`, and a row
 * whose lease ran out is removed by whichever node sees it first.
 */
export const m0013ClusterWorkers = (engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("cluster_workers")
      .addColumn("worker_id", "text", (c) => c.primaryKey())
      .addColumn("zone", "text", (c) => c.notNull())
      /** host:port of its node server (HTTP/2). */
      .addColumn("address", "text", (c) => c.notNull())
      .addColumn("memory_mb", "integer", (c) => c.notNull())
      .addColumn("max_environments", "integer", (c) => c.notNull())
      /** Memory of the environments it holds now (MB), as of its last heartbeat. */
      .addColumn("used_memory_mb", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("environments", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("draining", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("lease_until", engine === "postgres" ? sql`timestamptz` : "text", (c) => c.notNull())
      .addColumn("started_at", "bigint", (c) => c.notNull())
      .execute();
  },
});
