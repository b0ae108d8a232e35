/**
 * A PostgreSQL server of the test's own: `initdb` into a temp dir and
 * `pg_ctl start` on a free port, run as the `postgres` system user (initdb
 * refuses root). Tests that restart or stop PostgreSQL use it so the shared
 * server on 5432 (other tests' databases) is never disturbed. Trust auth, for
 * the listed addresses only.
 */
import { execFile } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const BIN = process.env.LAMBENT_TEST_PG_BIN ?? "/usr/local/bin";

export interface PrivatePostgres {
  /** postgres://postgres@<first host>:<port>/postgres */
  url: string;
  port: number;
  /** The same database reached at another of its listen addresses. */
  urlAt(host: string): string;
  /** `pg_ctl restart -m fast`: every connection is cut, the server comes back on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Whether this machine can run one (PostgreSQL's binaries and a `postgres` user; root to switch to it). */
export function canRunPrivatePostgres(): boolean {
  return process.getuid?.() === 0;
}

/**
 * `listen`: the addresses it listens on (the first one is `url`'s); `clients`: the CIDRs allowed to
 * connect (trust).
 */
export async function startPrivatePostgres(
  listen: string[] = ["127.0.0.1"],
  clients: string[] = ["127.0.0.1/32"],
): Promise<PrivatePostgres> {
  const host = listen[0] ?? "127.0.0.1";
  const dir = mkdtempSync(join(tmpdir(), "lambent-pg-"));
  const data = join(dir, "data");
  const { stdout } = await run("id", ["-u", "postgres"]);
  const uid = Number(stdout.trim());
  const { stdout: g } = await run("id", ["-g", "postgres"]);
  chownSync(dir, uid, Number(g.trim()));
  chmodSync(dir, 0o700);
  const asPostgres = (cmd: string, args: string[]) =>
    run("runuser", ["-u", "postgres", "--", join(BIN, cmd), ...args], { cwd: dir });
  await asPostgres("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  const port = await freePort(host);
  writeFileSync(
    join(data, "postgresql.auto.conf"),
    [
      `listen_addresses = '${listen.join(",")}'`,
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      "fsync = off",
      "max_connections = 200",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(data, "pg_hba.conf"),
    `${clients.map((cidr) => `host all all ${cidr} trust`).join("\n")}\n`,
  );
  const ctl = (args: string[]) =>
    asPostgres("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-t", "60", ...args]);
  await ctl(["start"]);
  const urlAt = (h: string) => `postgres://postgres@${h}:${port}/postgres`;
  return {
    url: urlAt(host),
    port,
    urlAt,
    restart: async () => {
      await ctl(["restart", "-m", "fast"]);
    },
    stop: async () => {
      await ctl(["stop", "-m", "immediate"]).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
