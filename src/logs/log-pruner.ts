/**
 * Log retention: events older than their group's retention (its own `log_groups.retention_days`,
 * else the server's `--log-retention-days`; 0 keeps them forever) are deleted in bounded batches,
 * a turn of the event loop apart, so the store is never write-locked for long. Streams with no
 * event left inside the retention go too.
 */
import type { Store } from "../store/store.js";

const DAY_MS = 24 * 60 * 60 * 1000;

export interface LogPrunerOptions {
  /** Retention of groups without their own, in days; 0 = keep forever. */
  defaultDays: number;
  /** Events deleted per statement. */
  batch?: number;
  /** How often a pass runs. */
  intervalMs?: number;
  /** The clock (tests drive time with it). */
  now?: () => number;
}

export class LogPruner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private stopped = false;
  private readonly batch: number;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly options: LogPrunerOptions,
  ) {
    this.batch = options.batch ?? 1000;
    this.now = options.now ?? Date.now;
  }

  /** Runs a pass soon after start, then every `intervalMs`. */
  start(): void {
    const every = this.options.intervalMs ?? 10 * 60 * 1000;
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.prune()
          .catch((err: unknown) => console.error("lambent: log retention pass failed:", err))
          .finally(() => {
            if (!this.stopped) tick();
          });
      }, every);
      this.timer.unref();
    };
    this.timer = setTimeout(() => {
      void this.prune()
        .catch((err: unknown) => console.error("lambent: log retention pass failed:", err))
        .finally(() => {
          if (!this.stopped) tick();
        });
    }, 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running?.catch(() => 0);
  }

  /** One pass over every group; returns how many events it deleted. */
  prune(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const db = this.store.db;
    const own = new Map<string, number | null>();
    for (const row of await db.selectFrom("log_groups").select(["group_name", "retention_days"]).execute()) {
      own.set(row.group_name, row.retention_days);
    }
    const groups = await db.selectFrom("log_streams").select("group_name").distinct().execute();
    const names = new Set([...groups.map((g) => g.group_name), ...own.keys()]);
    let deleted = 0;
    for (const group of names) {
      if (this.stopped) break;
      const days = own.get(group) ?? this.options.defaultDays;
      if (!days || days <= 0) continue;
      const cutoff = this.now() - days * DAY_MS;
      for (;;) {
        const result = await db
          .deleteFrom("log_events")
          .where("id", "in", (eb) =>
            eb
              .selectFrom("log_events")
              .select("id")
              .where("group_name", "=", group)
              .where("timestamp", "<", cutoff)
              .limit(this.batch),
          )
          .executeTakeFirst();
        const n = Number(result.numDeletedRows);
        deleted += n;
        if (n < this.batch || this.stopped) break;
        // Let invokes and other writers in between batches.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await db
        .deleteFrom("log_streams")
        .where("group_name", "=", group)
        .where("last_event_at", "<", cutoff)
        .execute();
    }
    return deleted;
  }
}
