/**
 * The store: one schema on two engines through Kysely. SQLite (WAL) in the
 * data dir is the embedded default; PostgreSQL is used when several servers
 * share state.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import SQLite from "better-sqlite3";
import {
  Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  PostgresDialect,
  SqliteDialect,
} from "kysely";
import pg from "pg";
import type { Engine } from "./engine.js";
import { migrations } from "./migrations/index.js";
import type { Database } from "./schema.js";

// PostgreSQL returns int8 as strings by default; every bigint we store is a JS-safe number.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/** Prepared statements kept per SQL text (the hot queries repeat; preparing costs more than running). */
const STATEMENT_CACHE = 256;

/**
 * The database as Kysely sees it, with prepared statements reused: Kysely asks for
 * `prepare(sql)` on every query, and better-sqlite3 statements can be run again and again.
 */
function withStatementCache(db: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => db.close(),
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement) {
        // Most recently used last: the first entry is the one to drop.
        cache.delete(sql);
      } else {
        statement = db.prepare(sql);
        if (cache.size >= STATEMENT_CACHE) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}

export interface StoreOptions {
  /** PostgreSQL connection string; SQLite at `<dataDir>/lambent.db` when absent. */
  database?: string;
  dataDir: string;
}

export class Store {
  private constructor(
    readonly db: Kysely<Database>,
    readonly engine: Engine,
  ) {}

  static async open(opts: StoreOptions): Promise<Store> {
    const store = opts.database ? Store.postgres(opts.database) : Store.sqlite(opts.dataDir);
    try {
      await store.migrate();
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  private static sqlite(dataDir: string): Store {
    mkdirSync(dataDir, { recursive: true });
    const database = new SQLite(join(dataDir, "lambent.db"));
    database.pragma("journal_mode = WAL");
    // NORMAL in WAL mode survives a process crash (kill -9); only an OS crash can lose the last commits.
    database.pragma("synchronous = NORMAL");
    database.pragma("foreign_keys = ON");
    database.pragma("busy_timeout = 5000");
    // Statement journals and the temporary tables of RETURNING and sorts stay in memory: on disk each
    // was a file in /var/tmp opened, written, unlinked and closed (several per flush of the queue).
    database.pragma("temp_store = MEMORY");
    return new Store(
      new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(database) }) }),
      "sqlite",
    );
  }

  private static postgres(connectionString: string): Store {
    const pool = new pg.Pool({ connectionString, max: 10 });
    // A connection's error (server restart, pg_terminate_backend) must never crash the process. The
    // pool listens only on idle clients and replaces them; a checked-out client between two queries
    // of a transaction has no listener of the pool's, so each client gets one of its own. Its next
    // query fails, and the pool drops it when it is released.
    pool.on("error", () => {});
    pool.on("connect", (client) => client.on("error", () => {}));
    return new Store(new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), "postgres");
  }

  async migrate(): Promise<void> {
    const engine = this.engine;
    const provider: MigrationProvider = {
      async getMigrations() {
        const out: Record<string, Migration> = {};
        for (const [name, make] of Object.entries(migrations)) out[name] = make(engine);
        return out;
      },
    };
    const { error, results } = await new Migrator({ db: this.db, provider }).migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
      throw new Error(
        `store migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
