import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/** EventBridge Scheduler: schedule groups (with `default`) and schedules with their next fire time. */
export const m0012Schedules = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("schedule_groups")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .addColumn("tags", "text", (c) => c.notNull())
      .execute();
    const now = Date.now();
    await db
      .insertInto("schedule_groups")
      .values({ name: "default", created_at: now, last_modified: now, tags: "{}" })
      .execute();
    await db.schema
      .createTable("schedules")
      .addColumn("group_name", "text", (c) => c.notNull())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("region", "text", (c) => c.notNull())
      .addColumn("expression", "text", (c) => c.notNull())
      .addColumn("timezone", "text", (c) => c.notNull())
      .addColumn("description", "text")
      .addColumn("state", "text", (c) => c.notNull())
      .addColumn("start_date", "bigint")
      .addColumn("end_date", "bigint")
      .addColumn("flexible_time_window", "text", (c) => c.notNull())
      .addColumn("action_after_completion", "text", (c) => c.notNull())
      .addColumn("target", "text", (c) => c.notNull())
      .addColumn("kms_key_arn", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .addColumn("next_tick_at", "bigint")
      .addColumn("next_fire_at", "bigint")
      .addColumn("fired", "bigint", (c) => c.notNull().defaultTo(0))
      .addColumn("dropped", "bigint", (c) => c.notNull().defaultTo(0))
      .addPrimaryKeyConstraint("schedules_pk", ["group_name", "name"])
      .execute();
    await db.schema.createIndex("schedules_due").on("schedules").column("next_fire_at").execute();
  },
});
