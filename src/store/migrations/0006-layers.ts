import type { Engine } from "../engine.js";
import { binaryType } from "../engine.js";
import type { MigrationDb } from "./index.js";

/** Layer versions: immutable once published; a delete only hides them (functions keep using them). */
export const m0006Layers = (engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("layer_versions")
      .addColumn("layer_name", "text", (c) => c.notNull())
      .addColumn("version", "integer", (c) => c.notNull())
      .addColumn("description", "text", (c) => c.notNull().defaultTo(""))
      .addColumn("license_info", "text")
      /** JSON arrays. */
      .addColumn("compatible_runtimes", "text", (c) => c.notNull().defaultTo("[]"))
      .addColumn("compatible_architectures", "text", (c) => c.notNull().defaultTo("[]"))
      .addColumn("code_sha256", "text", (c) => c.notNull())
      .addColumn("code_size", "bigint", (c) => c.notNull())
      .addColumn("unzipped_size", "bigint", (c) => c.notNull())
      .addColumn("data", binaryType(engine), (c) => c.notNull())
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .addColumn("deleted", "integer", (c) => c.notNull().defaultTo(0))
      .addPrimaryKeyConstraint("layer_versions_pk", ["layer_name", "version"])
      .execute();
  },
});
