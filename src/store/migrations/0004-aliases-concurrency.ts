import type { MigrationDb } from "./index.js";

export const m0004AliasesConcurrency = () => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("aliases")
      .addColumn("function_name", "text", (c) => c.notNull())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("function_version", "text", (c) => c.notNull())
      .addColumn("description", "text", (c) => c.notNull().defaultTo(""))
      /** JSON of AdditionalVersionWeights ({} when none). */
      .addColumn("weights", "text", (c) => c.notNull().defaultTo("{}"))
      .addColumn("revision_id", "text", (c) => c.notNull())
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("aliases_pk", ["function_name", "name"])
      .execute();
    await db.schema
      .createTable("provisioned_concurrency")
      .addColumn("function_name", "text", (c) => c.notNull())
      /** A version number or an alias name. */
      .addColumn("qualifier", "text", (c) => c.notNull())
      .addColumn("requested", "integer", (c) => c.notNull())
      .addColumn("allocated", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("available", "integer", (c) => c.notNull().defaultTo(0))
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("status_reason", "text")
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("provisioned_concurrency_pk", ["function_name", "qualifier"])
      .execute();
  },
});
