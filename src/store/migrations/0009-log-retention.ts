import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/** Log groups with their own retention (the server's --log-retention-days applies to the others). */
export const m0009LogRetention = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("log_groups")
      .addColumn("group_name", "text", (c) => c.primaryKey())
      /** Days; null = the server's default. */
      .addColumn("retention_days", "integer")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .execute();
  },
});
