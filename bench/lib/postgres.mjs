/** A throwaway PostgreSQL database for the bench's PostgreSQL-backed server: created, then dropped at the end. */
import { randomBytes } from "node:crypto";
import pg from "pg";

async function admin(adminUrl, sql) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function createBenchDatabase(adminUrl) {
  const name = `lambent_bench_${randomBytes(6).toString("hex")}`;
  await admin(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => admin(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}
