/**
 * Cross-server wake-ups on PostgreSQL: every enqueue runs
 * `pg_notify('lambent_async')` in its transaction (delivered at commit), and
 * each server LISTENs on a dedicated connection. In-process enqueues wake the
 * local poller directly; SQLite needs nothing more (one server owns it).
 */
import pg from "pg";
import { NOTIFY_CHANNEL } from "./queue.js";

export interface QueueListener {
  close(): Promise<void>;
}

export async function listenPostgres(
  connectionString: string,
  onWake: () => void,
  onError: (err: unknown) => void,
): Promise<QueueListener> {
  let closed = false;
  let client: pg.Client | null = null;
  let retry: NodeJS.Timeout | null = null;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString });
    c.on("notification", () => onWake());
    c.on("error", (err) => {
      onError(err);
      reconnect(c);
    });
    c.on("end", () => reconnect(c));
    await c.connect();
    await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    // Events may have been enqueued while we were not listening.
    onWake();
  };

  const scheduleConnect = () => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = null;
      connect().catch((err) => {
        onError(err);
        scheduleConnect();
      });
    }, 1000);
    retry.unref();
  };

  const reconnect = (c: pg.Client) => {
    if (closed || client !== c) return;
    client = null;
    void c.end().catch(() => {});
    scheduleConnect();
  };

  await connect();
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      const c = client;
      client = null;
      await c?.end().catch(() => {});
    },
  };
}
