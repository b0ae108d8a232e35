import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/**
 * The async queue's fair claim: queued events by function, oldest due first within each (the
 * skip scan over the functions with due events, and each function's oldest, read this index).
 */
export const m0019AsyncFair = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema
      .createIndex("async_events_fair")
      .on("async_events")
      .columns(["state", "function_name", "next_run_at"])
      .execute();
  },
});
