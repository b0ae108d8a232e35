import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/** Stacks `lambent deploy` made: their status and the resources they hold (one JSON document). */
export const m0015Stacks = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("stacks")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("stack_id", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("status_reason", "text")
      .addColumn("revision", "bigint", (c) => c.notNull())
      .addColumn("document", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .execute();
  },
});
