import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/** Access keys (secrets sealed with the server key), role policies, resource-based policies. */
export const m0008Auth = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("access_keys")
      .addColumn("access_key_id", "text", (c) => c.primaryKey())
      .addColumn("user_name", "text", (c) => c.notNull())
      .addColumn("secret", "text", (c) => c.notNull())
      .addColumn("policy", "text")
      .addColumn("created_at", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("role_policies")
      .addColumn("role_name", "text", (c) => c.primaryKey())
      .addColumn("policy", "text", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("resource_policies")
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("qualifier", "text", (c) => c.notNull())
      .addColumn("policy", "text", (c) => c.notNull())
      .addColumn("revision_id", "text", (c) => c.notNull())
      .addColumn("owner_created_at", "bigint", (c) => c.notNull())
      .addColumn("updated_at", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("resource_policies_pk", ["kind", "name", "qualifier"])
      .execute();
  },
});
