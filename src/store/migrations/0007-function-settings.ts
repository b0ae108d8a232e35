import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/**
 * Code signing configurations, and per-function settings that are neither
 * code nor configuration of a version: the attached code signing config,
 * recursive-loop handling, runtime management and scaling, as JSON by kind.
 */
export const m0007FunctionSettings = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("code_signing_configs")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("description", "text", (c) => c.notNull().defaultTo(""))
      /** JSON array of signing profile version ARNs. */
      .addColumn("allowed_publishers", "text", (c) => c.notNull())
      .addColumn("untrusted_artifact_on_deployment", "text", (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("function_settings")
      .addColumn("function_name", "text", (c) => c.notNull())
      /** "" for the function as a whole, else the version or alias it applies to. */
      .addColumn("qualifier", "text", (c) => c.notNull())
      /** code-signing | recursion | runtime-management | scaling */
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("value", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("function_settings_pk", ["function_name", "qualifier", "kind"])
      .execute();
    await db.schema
      .createIndex("function_settings_kind_value")
      .on("function_settings")
      .columns(["kind", "value"])
      .execute();
  },
});
