/**
 * Which server polls a mapping. On SQLite one server owns everything. When
 * servers share PostgreSQL, a mapping is polled by the one server holding its
 * session-level advisory lock (a stream's consumer must not be split, and a
 * queue's prefetch and retry counts stay in one place); when that server dies
 * its session ends, the lock is free, and another server takes the mapping
 * over on its next look.
 */
import pg from "pg";

export interface MappingOwnership {
  /** True when this server may poll the mapping (now holds it, or just took it). */
  acquire(uuid: string): Promise<boolean>;
  release(uuid: string): Promise<void>;
  close(): Promise<void>;
}

/** SQLite: this server owns every mapping. */
export const soleOwner: MappingOwnership = {
  acquire: async () => true,
  release: async () => {},
  close: async () => {},
};

export class AdvisoryLockOwnership implements MappingOwnership {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private readonly held = new Set<string>();

  constructor(
    private readonly connectionString: string,
    /** Called when the locks were lost with the connection: every poller must stop. */
    private readonly onLost: () => void,
  ) {}

  private connect(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= (async () => {
      const c = new pg.Client({ connectionString: this.connectionString });
      const lost = () => {
        if (this.client !== c) return;
        this.client = null;
        this.held.clear();
        void c.end().catch(() => {});
        this.onLost();
      };
      c.on("error", lost);
      c.on("end", lost);
      await c.connect();
      this.client = c;
      return c;
    })().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  async acquire(uuid: string): Promise<boolean> {
    if (this.held.has(uuid)) return true;
    const c = await this.connect();
    const r = await c.query<{ ok: boolean }>("select pg_try_advisory_lock(hashtextextended($1, 7)) as ok", [
      `lambent-esm:${uuid}`,
    ]);
    const ok = r.rows[0]?.ok === true;
    if (ok) this.held.add(uuid);
    return ok;
  }

  async release(uuid: string): Promise<void> {
    if (!this.held.delete(uuid) || !this.client) return;
    await this.client
      .query("select pg_advisory_unlock(hashtextextended($1, 7))", [`lambent-esm:${uuid}`])
      .catch(() => {});
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    this.held.clear();
    await c?.end().catch(() => {});
  }
}
