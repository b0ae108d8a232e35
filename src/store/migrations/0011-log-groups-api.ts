import { sql } from "kysely";
import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/**
 * The CloudWatch Logs API's view of groups and streams: every group has a row (groups that only had
 * streams get one), groups carry tags, streams their first event and last ingestion time; an index
 * for reading one stream in time order.
 */
export const m0011LogGroupsApi = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema.alterTable("log_groups").addColumn("tags", "text").execute();
    await db.schema.alterTable("log_streams").addColumn("first_event_at", "bigint").execute();
    await db.schema.alterTable("log_streams").addColumn("last_ingestion_at", "bigint").execute();
    await sql`update log_streams set first_event_at = created_at, last_ingestion_at = last_event_at`.execute(
      db,
    );
    await sql`insert into log_groups (group_name, retention_days, created_at)
      select group_name, null, min(created_at) from log_streams group by group_name
      on conflict (group_name) do nothing`.execute(db);
    await db.schema
      .createIndex("log_events_stream_time")
      .on("log_events")
      .columns(["group_name", "stream_name", "timestamp"])
      .execute();
  },
});
