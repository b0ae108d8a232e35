/**
 * Log groups and streams (`/aws/lambda/<fn>`, one stream per execution
 * environment). Lines are buffered and written to the store in batches off the
 * invoke path; followers get each line as it is accepted.
 */
import { EventEmitter } from "node:events";
import { sql } from "kysely";
import type { Store } from "../store/store.js";

export interface LogEvent {
  group: string;
  stream: string;
  timestamp: number;
  message: string;
}

const MAX_BATCH = 500;
/** Lines wait at most this long before they are written (keeps store writes off the invoke path). */
const FLUSH_DELAY_MS = 100;
/** A buffer this large is written at once. */
const FLUSH_LINES = 5000;
/**
 * Message bytes per insert and per transaction: SQLite writes on the event loop, so one flush of a
 * flood must not hold it for long; transactions are separated by a turn of the event loop.
 */
const TRANSACTION_BYTES = 1024 * 1024;

/** How fast one function (log group) may produce output, read or stored (a token bucket). */
export interface LogRate {
  bytesPerSecond: number;
  burstBytes: number;
}

export const DEFAULT_LOG_RATE: LogRate = { bytesPerSecond: 4 * 1024 * 1024, burstBytes: 8 * 1024 * 1024 };

/** A token bucket in bytes; the debt of a read past it is how long the reader must pause. */
class Bucket {
  private tokens: number;
  private at = performance.now();

  constructor(private readonly rate: LogRate) {
    this.tokens = rate.burstBytes;
  }

  /** Takes `bytes`; returns the ms to wait until the bucket is out of debt (0: none). */
  take(bytes: number): number {
    const now = performance.now();
    this.tokens = Math.min(
      this.rate.burstBytes,
      this.tokens + ((now - this.at) * this.rate.bytesPerSecond) / 1000,
    );
    this.at = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate.bytesPerSecond);
  }
}

export class LogSink {
  /** Emits "event" for every accepted line (live tails). */
  readonly live = new EventEmitter<{ event: [LogEvent] }>();
  private buffer: LogEvent[] = [];
  /** Groups known to have their `log_groups` row. */
  private readonly groups = new Set<string>();
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  private bufferedBytes = 0;
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly store: Store,
    private readonly rate: LogRate = DEFAULT_LOG_RATE,
  ) {
    this.live.setMaxListeners(0);
  }

  /**
   * A function's environments read `bytes` of output for log group `group`: the ms their reader
   * must pause so the group stays within its rate (0: go on). Shared by every environment of the group.
   */
  admit(group: string, bytes: number): number {
    let bucket = this.buckets.get(group);
    if (!bucket) {
      bucket = new Bucket(this.rate);
      this.buckets.set(group, bucket);
    }
    return bucket.take(bytes);
  }

  write(group: string, stream: string, message: string, timestamp = Date.now()): void {
    const ev: LogEvent = { group, stream, timestamp, message };
    this.buffer.push(ev);
    this.bufferedBytes += message.length;
    if (this.live.listenerCount("event") > 0) this.live.emit("event", ev);
    if (this.buffer.length >= FLUSH_LINES || this.bufferedBytes >= TRANSACTION_BYTES) {
      void this.flush();
    } else if (!this.scheduled) {
      this.scheduled = true;
      setTimeout(() => {
        this.scheduled = false;
        void this.flush();
      }, FLUSH_DELAY_MS).unref();
    }
  }

  /** Write everything buffered so far. Resolves when it is in the store. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    this.bufferedBytes = 0;
    this.flushing = this.writeInTransactions(batch).finally(() => {
      this.flushing = null;
    });
    await this.flushing;
    if (this.buffer.length > 0) await this.flush();
  }

  /** Bounded transactions (at most TRANSACTION_BYTES of messages), a turn of the event loop apart. */
  private async writeInTransactions(batch: LogEvent[]): Promise<void> {
    let start = 0;
    while (start < batch.length) {
      let end = start;
      let bytes = 0;
      while (
        end < batch.length &&
        (end === start || bytes + (batch[end] as LogEvent).message.length <= TRANSACTION_BYTES)
      ) {
        bytes += (batch[end] as LogEvent).message.length;
        end++;
      }
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      await this.writeBatch(batch.slice(start, end));
      start = end;
    }
  }

  private async writeBatch(batch: LogEvent[]): Promise<void> {
    const now = Date.now();
    try {
      await this.store.db.transaction().execute(async (tx) => {
        for (let i = 0; i < batch.length; i += MAX_BATCH) {
          const rows = batch.slice(i, i + MAX_BATCH).map((e) => ({
            group_name: e.group,
            stream_name: e.stream,
            timestamp: e.timestamp,
            message: e.message,
            ingestion_time: now,
          }));
          await tx.insertInto("log_events").values(rows).execute();
        }
        for (const group of new Set(batch.map((e) => e.group))) {
          if (this.groups.has(group)) continue;
          await tx
            .insertInto("log_groups")
            .values({ group_name: group, retention_days: null, created_at: now, tags: null })
            .onConflict((oc) => oc.column("group_name").doNothing())
            .execute();
        }
        // One upsert per stream: a stream the pruner or DeleteLogGroup removed comes back.
        const streams = new Map<string, { e: LogEvent; first: number }>();
        for (const e of batch) {
          const key = `${e.group}\n${e.stream}`;
          const seen = streams.get(key);
          streams.set(key, { e, first: Math.min(seen?.first ?? e.timestamp, e.timestamp) });
        }
        for (const { e, first } of streams.values()) {
          await tx
            .insertInto("log_streams")
            .values({
              group_name: e.group,
              stream_name: e.stream,
              created_at: now,
              last_event_at: e.timestamp,
              first_event_at: first,
              last_ingestion_at: now,
            })
            .onConflict((oc) =>
              oc.columns(["group_name", "stream_name"]).doUpdateSet({
                last_event_at: e.timestamp,
                last_ingestion_at: now,
                first_event_at: sql<number>`coalesce(log_streams.first_event_at, ${first})`,
              }),
            )
            .execute();
        }
      });
      for (const e of batch) this.groups.add(e.group);
    } catch (err) {
      // Logs must never break invokes; report and drop this batch.
      console.error(`lambent: could not store ${batch.length} log lines:`, err);
    }
  }

  async query(opts: { group: string; since?: number; afterId?: number; limit?: number; stream?: string }) {
    let q = this.store.db
      .selectFrom("log_events")
      .select(["id", "stream_name", "timestamp", "message"])
      .where("group_name", "=", opts.group)
      .orderBy("id")
      .limit(Math.min(opts.limit ?? 1000, 10000));
    if (opts.since !== undefined) q = q.where("timestamp", ">=", opts.since);
    if (opts.afterId !== undefined) q = q.where("id", ">", opts.afterId);
    if (opts.stream !== undefined) q = q.where("stream_name", "=", opts.stream);
    return q.execute();
  }

  /** A log group's own retention in days (null: the server's default applies). */
  async setRetention(group: string, days: number | null): Promise<void> {
    await this.store.db
      .insertInto("log_groups")
      .values({ group_name: group, retention_days: days, created_at: Date.now(), tags: null })
      .onConflict((oc) => oc.column("group_name").doUpdateSet({ retention_days: days }))
      .execute();
  }

  async retention(group: string): Promise<number | null> {
    const row = await this.store.db
      .selectFrom("log_groups")
      .select("retention_days")
      .where("group_name", "=", group)
      .executeTakeFirst();
    return row?.retention_days ?? null;
  }

  /** Forget that a group's row exists (after DeleteLogGroup): its next line recreates it. */
  forget(group: string): void {
    this.groups.delete(group);
  }

  async listStreams(group: string) {
    return this.store.db
      .selectFrom("log_streams")
      .selectAll()
      .where("group_name", "=", group)
      .orderBy("last_event_at", "desc")
      .execute();
  }
}
