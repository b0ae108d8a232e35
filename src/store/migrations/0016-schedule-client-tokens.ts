import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/** Scheduler's ClientToken: the token and request hash of a schedule's last create or update. */
export const m0016ScheduleClientTokens = (_engine: Engine) => ({
  async up(db: MigrationDb) {
    await db.schema.alterTable("schedules").addColumn("client_token", "text").execute();
    await db.schema.alterTable("schedules").addColumn("request_hash", "text").execute();
  },
});
