import { sql } from "kysely";
import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/**
 * Concurrency budget shares of a cluster's frontends (PostgreSQL only in use;
 * created on both engines so the schema stays one): each frontend holds some
 * slots of a pool (`account` or `function:<name>`) under a lease it renews
 * with `now()`; a share whose lease ran out counts for nobody.
 */
export const m0014ConcurrencyLeases = (engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("concurrency_leases")
      .addColumn("pool", "text", (c) => c.notNull())
      /** The frontend (or poller) node holding the share. */
      .addColumn("holder", "text", (c) => c.notNull())
      .addColumn("slots", "integer", (c) => c.notNull())
      .addColumn("lease_until", engine === "postgres" ? sql`timestamptz` : "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("concurrency_leases_pk", ["pool", "holder"])
      .execute();
  },
});
