import type { Engine } from "../engine.js";
import { binaryType, serialType } from "../engine.js";
import type { MigrationDb } from "./index.js";

export const m0001Initial = (engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("functions")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("tags", "text", (c) => c.notNull().defaultTo("{}"))
      .addColumn("last_version", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("reserved_concurrency", "integer")
      .execute();
    await db.schema
      .createTable("function_versions")
      .addColumn("function_name", "text", (c) => c.notNull().references("functions.name").onDelete("cascade"))
      .addColumn("version", "text", (c) => c.notNull())
      .addColumn("config", "text", (c) => c.notNull())
      .addColumn("code_sha256", "text", (c) => c.notNull())
      .addColumn("code_size", "bigint", (c) => c.notNull())
      .addColumn("revision_id", "text", (c) => c.notNull())
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .addColumn("state", "text", (c) => c.notNull())
      .addColumn("state_reason", "text")
      .addColumn("state_reason_code", "text")
      .addColumn("last_update_status", "text", (c) => c.notNull())
      .addColumn("last_update_status_reason", "text")
      .addColumn("last_update_status_reason_code", "text")
      .addPrimaryKeyConstraint("function_versions_pk", ["function_name", "version"])
      .execute();
    await db.schema
      .createTable("code_blobs")
      .addColumn("sha256", "text", (c) => c.primaryKey())
      .addColumn("size", "bigint", (c) => c.notNull())
      .addColumn("data", binaryType(engine), (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("log_streams")
      .addColumn("group_name", "text", (c) => c.notNull())
      .addColumn("stream_name", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("last_event_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("log_streams_pk", ["group_name", "stream_name"])
      .execute();
    await db.schema
      .createTable("log_events")
      .addColumn("id", serialType(engine), (c) =>
        engine === "sqlite" ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn("group_name", "text", (c) => c.notNull())
      .addColumn("stream_name", "text", (c) => c.notNull())
      .addColumn("timestamp", "bigint", (c) => c.notNull())
      .addColumn("message", "text", (c) => c.notNull())
      .addColumn("ingestion_time", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex("log_events_group_time")
      .on("log_events")
      .columns(["group_name", "timestamp"])
      .execute();
  },
});
