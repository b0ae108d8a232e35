import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/** Function URLs: one per function ($LATEST) or alias, found by their id from the Host or path. */
export const m0010FunctionUrls = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("function_urls")
      .addColumn("function_name", "text", (c) => c.notNull())
      /** "$LATEST" or an alias name. */
      .addColumn("qualifier", "text", (c) => c.notNull())
      .addColumn("url_id", "text", (c) => c.notNull().unique())
      .addColumn("auth_type", "text", (c) => c.notNull())
      /** JSON of the Cors structure, or null. */
      .addColumn("cors", "text")
      .addColumn("invoke_mode", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("function_urls_pk", ["function_name", "qualifier"])
      .execute();
  },
});
