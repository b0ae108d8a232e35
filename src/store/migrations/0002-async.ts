import type { Engine } from "../engine.js";
import { binaryType } from "../engine.js";
import type { MigrationDb } from "./index.js";

/** The async invoke queue, its outcome counters, and event invoke configs. */
export const m0002Async = (engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("async_events")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("request_id", "text", (c) => c.notNull())
      .addColumn("function_name", "text", (c) => c.notNull())
      .addColumn("qualifier", "text")
      .addColumn("region", "text", (c) => c.notNull())
      .addColumn("payload", binaryType(engine), (c) => c.notNull())
      .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("backoffs", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("next_run_at", "bigint", (c) => c.notNull())
      .addColumn("lease_owner", "text")
      .addColumn("lease_expires_at", "bigint")
      .addColumn("enqueued_at", "bigint", (c) => c.notNull())
      .addColumn("state", "text", (c) => c.notNull())
      .addColumn("target", "text")
      .addColumn("meta", "text")
      .execute();
    await db.schema.createIndex("async_events_due").on("async_events").columns(["next_run_at"]).execute();
    await db.schema
      .createIndex("async_events_owner")
      .on("async_events")
      .columns(["lease_owner", "state"])
      .execute();
    await db.schema
      .createTable("async_stats")
      .addColumn("function_name", "text", (c) => c.primaryKey())
      .addColumn("succeeded", "bigint", (c) => c.notNull().defaultTo(0))
      .addColumn("failed", "bigint", (c) => c.notNull().defaultTo(0))
      .addColumn("expired", "bigint", (c) => c.notNull().defaultTo(0))
      .addColumn("dropped", "bigint", (c) => c.notNull().defaultTo(0))
      .addColumn("retries", "bigint", (c) => c.notNull().defaultTo(0))
      .addColumn("throttles", "bigint", (c) => c.notNull().defaultTo(0))
      .addColumn("delivered", "bigint", (c) => c.notNull().defaultTo(0))
      .addColumn("delivery_failures", "bigint", (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createTable("event_invoke_configs")
      .addColumn("function_name", "text", (c) => c.notNull())
      .addColumn("qualifier", "text", (c) => c.notNull())
      .addColumn("maximum_retry_attempts", "integer")
      .addColumn("maximum_event_age_seconds", "integer")
      .addColumn("on_success", "text")
      .addColumn("on_failure", "text")
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("event_invoke_configs_pk", ["function_name", "qualifier"])
      .execute();
  },
});
