import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/** Capacity providers (Lambda Managed Instances): what functions name in CapacityProviderConfig. */
export const m0018CapacityProviders = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createTable("capacity_providers")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("config", "text", (c) => c.notNull())
      .addColumn("tags", "text", (c) => c.notNull())
      .addColumn("last_modified", "bigint", (c) => c.notNull())
      .execute();
  },
});
