/**
 * The store on both engines: migrations apply and re-apply as no-ops, and
 * FunctionService's functions, versions and content-addressed code blobs
 * behave the same on SQLite and PostgreSQL.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import Pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/helpers/postgres.js";
import { zipEntries } from "../../test/helpers/zip.js";
import { DEFAULT_LIMITS } from "../config.js";
import { CodeCache } from "../control/code.js";
import { FunctionService } from "../control/functions.js";
import { LambdaError } from "../errors.js";
import { migrations } from "./migrations/index.js";
import { Store } from "./store.js";

const ROLE = "arn:aws:iam::000000000000:role/lambda-role";
const REGION = "us-east-1";

const zip = (tag: string) =>
  zipEntries([{ name: "index.js", content: `exports.handler = async () => ${JSON.stringify(tag)};\n` }]);
const hex = (buf: Buffer) => createHash("sha256").update(buf).digest("hex");

function service(store: Store, dataDir: string): FunctionService {
  const cache: CodeCache = new CodeCache(join(dataDir, "code"), (sha) => fns.loadZip(sha));
  const fns = new FunctionService(store, cache, DEFAULT_LIMITS);
  return fns;
}

async function createInput(name: string, code: Buffer, extra: Record<string, unknown> = {}) {
  return {
    FunctionName: name,
    Runtime: "nodejs20.x",
    Handler: "index.handler",
    Role: ROLE,
    Code: { ZipFile: code.toString("base64") },
    ...extra,
  };
}

async function blobs(store: Store): Promise<string[]> {
  return (await store.db.selectFrom("code_blobs").select("sha256").orderBy("sha256").execute()).map(
    (r) => r.sha256,
  );
}

async function caught(p: Promise<unknown>): Promise<LambdaError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LambdaError);
    return err as LambdaError;
  }
  throw new Error("expected a rejection");
}

describe.each(["sqlite", "postgres"] as const)("store on %s", (engine) => {
  let dataDir: string;
  let pg: TestDatabase | undefined;
  let store: Store;
  let fns: FunctionService;

  const open = () => Store.open({ dataDir, ...(pg ? { database: pg.url } : {}) });

  beforeAll(async () => {
    if (engine === "postgres") pg = await createTestDatabase();
  });
  afterAll(async () => {
    await pg?.drop();
  });
  beforeEach(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "lambent-store-"));
    store = await open();
    fns = service(store, dataDir);
  });
  afterEach(async () => {
    // PostgreSQL is shared by the tests of this file: empty it for the next one.
    await store.db.deleteFrom("function_versions").execute();
    await store.db.deleteFrom("functions").execute();
    await store.db.deleteFrom("code_blobs").execute();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("applies every migration, and re-applying them is a no-op", async () => {
    expect(store.engine).toBe(engine);
    const applied = async (s: Store) =>
      (await sql<{ name: string }>`select name from kysely_migration order by name`.execute(s.db)).rows.map(
        (r) => r.name,
      );
    const names = Object.keys(migrations).sort();
    expect(await applied(store)).toEqual(names);
    await store.migrate();
    expect(await applied(store)).toEqual(names);
    // A second store on the same database (a restart, or another server) migrates nothing and sees the data.
    await fns.create(await createInput("kept-fn", await zip("kept")), REGION);
    const again = await open();
    try {
      expect(await applied(again)).toEqual(names);
      const rows = await again.db.selectFrom("functions").select("name").execute();
      expect(rows.map((r) => r.name)).toEqual(["kept-fn"]);
    } finally {
      await again.close();
    }
  });

  it("creates, reads, updates, publishes and deletes functions and versions", async () => {
    const code1 = await zip("one");
    const created = await fns.create(await createInput("crud-fn", code1, { Tags: { a: "b" } }), REGION);
    expect(created).toMatchObject({
      name: "crud-fn",
      version: "$LATEST",
      codeSha256: hex(code1),
      state: "Pending",
    });
    const latest = await fns.getVersion({ name: "crud-fn" }, REGION);
    expect(latest.state).toBe("Active");
    expect(latest.row.last_update_status).toBe("Successful");
    expect(latest.row.code_size).toBe(code1.length);
    expect(latest.config).toMatchObject({ Runtime: "nodejs20.x", Handler: "index.handler", MemorySize: 128 });
    expect(await fns.tags("crud-fn", REGION)).toEqual({ a: "b" });

    const updated = await fns.updateConfiguration("crud-fn", { MemorySize: 512, Timeout: 60 }, REGION);
    expect(updated.revisionId).not.toBe(latest.revisionId);
    expect((await fns.getVersion({ name: "crud-fn" }, REGION)).config).toMatchObject({
      MemorySize: 512,
      Timeout: 60,
    });

    const v1 = await fns.publishVersion("crud-fn", REGION, {});
    expect(v1.version).toBe("1");
    const code2 = await zip("two");
    await fns.updateCode("crud-fn", { ZipFile: code2.toString("base64") }, REGION);
    const v2 = await fns.publishVersion("crud-fn", REGION, {});
    expect(v2.version).toBe("2");
    expect(v2.codeSha256).toBe(hex(code2));
    expect((await fns.getVersion({ name: "crud-fn", qualifier: "1" }, REGION)).codeSha256).toBe(hex(code1));
    const versions = await fns.listVersions("crud-fn", REGION, undefined, 50);
    expect(versions.items.map((v) => v.version)).toEqual(["$LATEST", "1", "2"]);
    const all = await fns.list(undefined, 50, true);
    expect(all.items.map((v) => `${v.name}:${v.version}`)).toEqual([
      "crud-fn:$LATEST",
      "crud-fn:1",
      "crud-fn:2",
    ]);

    await fns.tag("crud-fn", REGION, { c: "d" });
    await fns.untag("crud-fn", REGION, ["a"]);
    expect(await fns.tags("crud-fn", REGION)).toEqual({ c: "d" });

    await fns.delete({ name: "crud-fn", qualifier: "1" }, REGION);
    expect((await fns.listVersions("crud-fn", REGION, undefined, 50)).items.map((v) => v.version)).toEqual([
      "$LATEST",
      "2",
    ]);
    await fns.delete({ name: "crud-fn" }, REGION);
    expect((await caught(fns.getVersion({ name: "crud-fn" }, REGION))).type).toBe(
      "ResourceNotFoundException",
    );
    expect(await store.db.selectFrom("function_versions").selectAll().execute()).toEqual([]);
    expect(await store.db.selectFrom("functions").selectAll().execute()).toEqual([]);
    expect(await blobs(store)).toEqual([]);
  });

  it("stores code content-addressed: the same zip twice is one blob", async () => {
    const code = await zip("same");
    await fns.create(await createInput("same-1", code), REGION);
    await fns.create(await createInput("same-2", code), REGION);
    await fns.updateCode("same-2", { ZipFile: code.toString("base64") }, REGION);
    expect(await blobs(store)).toEqual([hex(code)]);
    const row = await store.db.selectFrom("code_blobs").selectAll().executeTakeFirstOrThrow();
    expect(Buffer.from(row.data).equals(code)).toBe(true);
    expect(Number(row.size)).toBe(code.length);
    expect((await fns.loadZip(hex(code))).equals(code)).toBe(true);
  });

  it("collects a blob when nothing references it any more, and not before", async () => {
    const a = await zip("a");
    const b = await zip("b");
    await fns.create(await createInput("gc-1", a), REGION);
    await fns.create(await createInput("gc-2", a), REGION);
    await fns.publishVersion("gc-1", REGION, {});
    // gc-1 moves to b; a is still held by gc-1:1 and gc-2.
    await fns.updateCode("gc-1", { ZipFile: b.toString("base64") }, REGION);
    expect(await blobs(store)).toEqual([hex(a), hex(b)].sort());
    await fns.delete({ name: "gc-2" }, REGION);
    expect(await blobs(store)).toEqual([hex(a), hex(b)].sort());
    await fns.delete({ name: "gc-1", qualifier: "1" }, REGION);
    expect(await blobs(store)).toEqual([hex(b)]);
    await fns.delete({ name: "gc-1" }, REGION);
    expect(await blobs(store)).toEqual([]);
  });

  it("a rejected create leaves nothing behind, and a duplicate is a conflict even across servers", async () => {
    const code = await zip("dup");
    await fns.create(await createInput("dup-fn", code), REGION);
    const before = await blobs(store);
    const other = await zip("other");
    // A second FunctionService on the same store is what a second server sees.
    const second = service(store, dataDir);
    const results = await Promise.allSettled([
      fns.create(await createInput("dup-fn", other), REGION),
      second.create(await createInput("dup-fn", other), REGION),
    ]);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toMatchObject({ type: "ResourceConflictException" });
    }
    expect(await blobs(store)).toEqual(before);
    const bad = await caught(fns.create(await createInput("bad-fn", other, { MemorySize: 1 }), REGION));
    expect(bad.type).toBe("ValidationException");
    expect(await blobs(store)).toEqual(before);
    expect((await store.db.selectFrom("functions").select("name").execute()).map((r) => r.name)).toEqual([
      "dup-fn",
    ]);
  });

  it("concurrent creates of one new name on two servers: exactly one wins", async () => {
    const second = service(store, dataDir);
    const code = await zip("race");
    const results = await Promise.allSettled([
      fns.create(await createInput("race-fn", code), REGION),
      second.create(await createInput("race-fn", code), REGION),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ type: "ResourceConflictException", statusCode: 409 });
    expect(await blobs(store)).toEqual([hex(code)]);
  });

  it("a stale revision is refused even when another server changed the function", async () => {
    await fns.create(await createInput("rev-fn", await zip("rev")), REGION);
    const seen = await fns.getVersion({ name: "rev-fn" }, REGION);
    const second = service(store, dataDir);
    await second.updateConfiguration("rev-fn", { Timeout: 9 }, REGION);
    const err = await caught(
      fns.updateConfiguration("rev-fn", { Timeout: 10, RevisionId: seen.revisionId }, REGION),
    );
    expect(err).toMatchObject({ type: "PreconditionFailedException", statusCode: 412 });
    expect((await fns.getVersion({ name: "rev-fn" }, REGION)).config.Timeout).toBe(9);
  });

  it("recover() finishes creates and updates a crash left in progress", async () => {
    await fns.create(await createInput("crash-1", await zip("c1")), REGION);
    await fns.create(await createInput("crash-2", await zip("c2")), REGION);
    // What a crash between the write and the activation leaves behind.
    await store.db
      .updateTable("function_versions")
      .set({ state: "Pending", last_update_status: "InProgress", last_update_status_reason_code: "Creating" })
      .where("function_name", "=", "crash-1")
      .execute();
    await store.db
      .updateTable("function_versions")
      .set({ last_update_status: "InProgress", last_update_status_reason_code: "Updating" })
      .where("function_name", "=", "crash-2")
      .execute();
    const blocked = await caught(fns.updateConfiguration("crash-2", { Timeout: 4 }, REGION));
    expect(blocked.type).toBe("ResourceConflictException");
    expect(await fns.recover()).toBe(2);
    for (const name of ["crash-1", "crash-2"]) {
      const v = await fns.getVersion({ name }, REGION);
      expect([v.state, v.row.last_update_status, v.row.last_update_status_reason_code]).toEqual([
        "Active",
        "Successful",
        null,
      ]);
    }
    expect((await fns.updateConfiguration("crash-2", { Timeout: 4 }, REGION)).config.Timeout).toBe(4);
    expect(await fns.recover()).toBe(0);
  });

  it("ListVersionsByFunction pages by the last version shown", async () => {
    await fns.create(await createInput("page-fn", await zip("p0")), REGION);
    for (let i = 1; i <= 4; i++) {
      await fns.updateConfiguration("page-fn", { Timeout: 10 + i }, REGION);
      await fns.publishVersion("page-fn", REGION, {});
    }
    const first = await fns.listVersions("page-fn", REGION, undefined, 2);
    expect(first.items.map((v) => v.version)).toEqual(["$LATEST", "1"]);
    // Deleting a version already shown does not make the next page skip one.
    await fns.delete({ name: "page-fn", qualifier: "1" }, REGION);
    const second = await fns.listVersions("page-fn", REGION, first.nextMarker, 2);
    expect(second.items.map((v) => v.version)).toEqual(["2", "3"]);
    const third = await fns.listVersions("page-fn", REGION, second.nextMarker, 2);
    expect(third.items.map((v) => v.version)).toEqual(["4"]);
    expect(third.nextMarker).toBeUndefined();
    expect((await caught(fns.listVersions("page-fn", REGION, "bm9wZQ", 2))).type).toBe(
      "InvalidParameterValueException",
    );
  });

  it("PublishVersion publishes again only when $LATEST changed (its description included)", async () => {
    await fns.create(await createInput("pubd-fn", await zip("pd")), REGION);
    expect((await fns.publishVersion("pubd-fn", REGION, { Description: "first" })).version).toBe("1");
    expect((await fns.publishVersion("pubd-fn", REGION, {})).version).toBe("1");
    await fns.tag("pubd-fn", REGION, { t: "v" });
    expect((await fns.publishVersion("pubd-fn", REGION, {})).version).toBe("1");
    await fns.updateConfiguration("pubd-fn", { Description: "changed" }, REGION);
    const v2 = await fns.publishVersion("pubd-fn", REGION, {});
    expect(v2.version).toBe("2");
    expect(v2.config.Description).toBe("changed");
    expect((await fns.getVersion({ name: "pubd-fn", qualifier: "1" }, REGION)).config.Description).toBe(
      "first",
    );
  });
});

describe("store on postgres: a connection that dies", () => {
  let db: TestDatabase;
  let dataDir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = mkdtempSync(join(tmpdir(), "lambent-store-"));
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("between two queries of a transaction fails that transaction, not the process", async () => {
    const store = await Store.open({ dataDir, database: db.url });
    const admin = new Pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const gone = store.db.transaction().execute(async (trx) => {
        const pid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows[0]?.pid;
        // What a PostgreSQL restart does to every connection, while this one is checked out and idle.
        await admin.query("select pg_terminate_backend($1)", [pid]);
        for (;;) {
          const r = await admin.query("select 1 from pg_stat_activity where pid = $1", [pid]);
          if (r.rowCount === 0) break;
        }
        // The backend is gone; its goodbye reached this process's socket in the same poll.
        await new Promise((res) => setImmediate(res));
        await sql`select 1`.execute(trx);
      });
      await expect(gone).rejects.toThrow(/connection|terminat/i);
      // The pool drops the dead connection; the store carries on with a new one.
      expect((await sql<{ n: number }>`select 1 as n`.execute(store.db)).rows[0]?.n).toBe(1);
    } finally {
      await admin.end();
      await store.close();
    }
  });
});
