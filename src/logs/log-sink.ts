/**
 * Log groups and streams (`/aws/lambda/<fn>`, one stream per execution
 * environment). Lines are buffered and written to the store in batches off the
 * invoke path; followers get each line as it is accepted.
 */
import { EventEmitter } from "node:events";
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

export class LogSink {
  /** Emits "event" for every accepted line (live tails). */
  readonly live = new EventEmitter<{ event: [LogEvent] }>();
  private buffer: LogEvent[] = [];
  private readonly streams = new Map<string, number>();
  private flushing: Promise<void> | null = null;
  private scheduled = false;

  constructor(private readonly store: Store) {
    this.live.setMaxListeners(0);
  }

  write(group: string, stream: string, message: string, timestamp = Date.now()): void {
    const ev: LogEvent = { group, stream, timestamp, message };
    this.buffer.push(ev);
    if (this.live.listenerCount("event") > 0) this.live.emit("event", ev);
    if (this.buffer.length >= FLUSH_LINES) {
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
    this.flushing = this.writeBatch(batch).finally(() => {
      this.flushing = null;
    });
    await this.flushing;
    if (this.buffer.length > 0) await this.flush();
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
        const latest = new Map<string, LogEvent>();
        for (const e of batch) latest.set(`${e.group}\n${e.stream}`, e);
        for (const [key, e] of latest) {
          if (this.streams.has(key)) {
            await tx
              .updateTable("log_streams")
              .set({ last_event_at: e.timestamp })
              .where("group_name", "=", e.group)
              .where("stream_name", "=", e.stream)
              .execute();
          } else {
            await tx
              .insertInto("log_streams")
              .values({
                group_name: e.group,
                stream_name: e.stream,
                created_at: e.timestamp,
                last_event_at: e.timestamp,
              })
              .onConflict((oc) =>
                oc.columns(["group_name", "stream_name"]).doUpdateSet({ last_event_at: e.timestamp }),
              )
              .execute();
            this.streams.set(key, e.timestamp);
          }
        }
      });
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

  async listStreams(group: string) {
    return this.store.db
      .selectFrom("log_streams")
      .selectAll()
      .where("group_name", "=", group)
      .orderBy("last_event_at", "desc")
      .execute();
  }
}
