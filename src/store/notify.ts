/**
 * Messages between servers sharing one PostgreSQL: a writer runs
 * `pg_notify(channel, payload)` (in its transaction: delivered at commit), and
 * each server LISTENs on a dedicated connection that reconnects with backoff.
 * Used by the async queue (wake-ups) and the change feed (cache invalidation).
 */
import pg from "pg";

export interface Listener {
  close(): Promise<void>;
}

export interface ListenOptions {
  channel: string;
  onMessage: (payload: string) => void;
  /** After every (re)connect: messages sent while not listening were missed. */
  onConnect?: () => void;
  onError: (err: unknown) => void;
}

export async function listenPostgres(connectionString: string, opts: ListenOptions): Promise<Listener> {
  const { channel, onMessage, onConnect, onError } = opts;
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`bad channel name ${channel}`);
  let closed = false;
  let client: pg.Client | null = null;
  let retry: NodeJS.Timeout | null = null;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString });
    c.on("notification", (n) => onMessage(n.payload ?? ""));
    c.on("error", (err) => {
      onError(err);
      reconnect(c);
    });
    c.on("end", () => reconnect(c));
    await c.connect();
    await c.query(`LISTEN ${channel}`);
    if (closed) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
    onConnect?.();
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
