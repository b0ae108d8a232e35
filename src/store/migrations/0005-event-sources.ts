import type { MigrationDb } from "./index.js";

/** Event source mappings: one row per mapping; settings as JSON, state in columns. */
export const m0005EventSources = () => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("event_source_mappings")
      .addColumn("uuid", "text", (c) => c.primaryKey())
      .addColumn("function_name", "text", (c) => c.notNull())
      /** The qualifier named in FunctionName; null = unqualified. */
      .addColumn("qualifier", "text")
      .addColumn("region", "text", (c) => c.notNull())
      /** The broker URI as given (credentials included; never returned by the API). */
      .addColumn("event_source", "text", (c) => c.notNull())
      /** "rabbitmq", "nats" or "redis". */
      .addColumn("kind", "text", (c) => c.notNull())
      /** JSON of the mapping's settings (see control/event-sources.ts MappingSettings). */
      .addColumn("settings", "text", (c) => c.notNull())
      .addColumn("state", "text", (c) => c.notNull())
      .addColumn("state_transition_reason", "text", (c) => c.notNull())
      .addColumn("last_processing_result", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex("event_source_mappings_function")
      .on("event_source_mappings")
      .columns(["function_name"])
      .execute();
  },
});
