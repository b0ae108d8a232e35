/**
 * The change feed: when several servers share one PostgreSQL, a change made
 * through one server (function code or configuration, an alias, a
 * reservation) must reach the caches of every other. Local change events are
 * published with `pg_notify`; events from other servers are replayed into the
 * local emitters, so every cache invalidates the same way it does for local
 * changes. SQLite needs none of it (one server owns the store).
 *
 * Notifications sent while the LISTEN connection is down (PostgreSQL
 * restarted, the network dropped) are lost: after every reconnect the feed
 * calls `resync`, whose job is to bring every cache back in line with the
 * store (see `Platform.resync`).
 */
import { randomUUID } from "node:crypto";
import type { EventEmitter } from "node:events";
import { sql } from "kysely";
import { type Listener, listenPostgres } from "./notify.js";
import type { Store } from "./store.js";

const CHANNEL = "lambent_changes";

/** An emitter and the events of it that are shared between servers. */
export interface FeedSource {
  name: string;
  // biome-ignore lint/suspicious/noExplicitAny: any emitter, whatever its event map
  emitter: EventEmitter<any>;
  events: string[];
}

interface Message {
  origin: string;
  source: string;
  event: string;
  args: unknown[];
}

export class ChangeFeed {
  private readonly origin = randomUUID();
  private listener: Listener | null = null;
  /** Set while replaying another server's event, so it is not published again. */
  private replaying = false;

  constructor(
    private readonly store: Store,
    private readonly connectionString: string,
    private readonly sources: FeedSource[],
    private readonly log: (message: string) => void,
    /** After a reconnect: reload what the missed notifications would have invalidated. */
    private readonly resync: () => Promise<void>,
  ) {}

  async start(): Promise<void> {
    for (const { name, emitter, events } of this.sources) {
      for (const event of events) {
        emitter.on(event, (...args: unknown[]) => {
          if (!this.replaying) void this.publish({ origin: this.origin, source: name, event, args });
        });
      }
    }
    let first = true;
    this.listener = await listenPostgres(this.connectionString, {
      channel: CHANNEL,
      onMessage: (payload) => this.replay(payload),
      onConnect: () => {
        if (!first) this.resyncNow();
        first = false;
      },
      onError: (err) => this.log(`change feed: ${err instanceof Error ? err.message : String(err)}`),
    });
  }

  private resyncNow(): void {
    this.log("change feed: reconnected; resynchronising caches with the store");
    this.resync().catch((err: unknown) => {
      this.log(
        `change feed: resync failed (again in 1 s): ${err instanceof Error ? err.message : String(err)}`,
      );
      if (!this.listener) return;
      setTimeout(() => {
        if (this.listener) this.resyncNow();
      }, 1000).unref();
    });
  }

  private async publish(message: Message): Promise<void> {
    try {
      await sql`select pg_notify(${CHANNEL}, ${JSON.stringify(message)})`.execute(this.store.db);
    } catch (err) {
      this.log(`change feed: could not publish ${message.source}.${message.event}: ${String(err)}`);
    }
  }

  private replay(payload: string): void {
    let m: Message;
    try {
      m = JSON.parse(payload) as Message;
    } catch {
      return;
    }
    if (m.origin === this.origin) return;
    const source = this.sources.find((s) => s.name === m.source);
    if (!source?.events.includes(m.event)) return;
    this.replaying = true;
    try {
      source.emitter.emit(m.event, ...m.args);
    } finally {
      this.replaying = false;
    }
  }

  async close(): Promise<void> {
    await this.listener?.close();
    this.listener = null;
  }
}
