/**
 * The control-plane API driven by the real AWS SDK v3 against a real server,
 * on SQLite and on PostgreSQL: every function-management operation of the
 * Foundation issue, ARNs and name forms, states, revisions, tags, versions.
 */
import {
  DeleteFunctionCommand,
  GetAccountSettingsCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  type LambdaClient,
  ListFunctionsCommand,
  ListTagsCommand,
  ListVersionsByFunctionCommand,
  PreconditionFailedException,
  PublishLayerVersionCommand,
  PublishVersionCommand,
  ResourceConflictException,
  ResourceNotFoundException,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  allFunctionNames,
  createFn,
  expectError,
  rejection,
  sha256B64,
  sha256Hex,
  smallZip,
  snapshot,
} from "./helpers/control-plane.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { lambdaClient, ROLE, startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

const ACCOUNT = "000000000000";
const arn = (name: string, region = "us-east-1") => `arn:aws:lambda:${region}:${ACCOUNT}:function:${name}`;
const WAIT = { maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 } as const;

describe.each(["sqlite", "postgres"] as const)("control plane on %s", (engine) => {
  let server: TestServer;
  let lambda: LambdaClient;
  let pg: TestDatabase | undefined;

  beforeAll(async () => {
    if (engine === "postgres") pg = await createTestDatabase();
    server = await startServer(pg ? { database: pg.url } : {});
    lambda = server.lambda;
    expect(server.platform.store.engine).toBe(engine);
  });

  afterAll(async () => {
    await server?.stop();
    await pg?.drop();
  });

  it("CreateFunction returns the configuration, Pending, then the function becomes Active", async () => {
    const zip = await smallZip("create");
    const created = await createFn(lambda, "create-fn", zip, {
      Description: "made by a test",
      MemorySize: 256,
      Timeout: 10,
      Environment: { Variables: { GREETING: "hello" } },
    });
    expect(created.$metadata.httpStatusCode).toBe(201);
    expect(created).toMatchObject({
      FunctionName: "create-fn",
      FunctionArn: arn("create-fn"),
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Description: "made by a test",
      MemorySize: 256,
      Timeout: 10,
      Environment: { Variables: { GREETING: "hello" } },
      CodeSize: zip.length,
      CodeSha256: sha256B64(zip),
      Version: "$LATEST",
      PackageType: "Zip",
      Architectures: ["x86_64"],
      EphemeralStorage: { Size: 512 },
      TracingConfig: { Mode: "PassThrough" },
      State: "Pending",
      StateReasonCode: "Creating",
    });
    expect(created.RevisionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.LastModified).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);

    const waited = await waitUntilFunctionActiveV2(
      { client: lambda, ...WAIT },
      { FunctionName: "create-fn" },
    );
    expect(waited.state).toBe("SUCCESS");
    const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "create-fn" }));
    expect(cfg.State).toBe("Active");
    expect(cfg.LastUpdateStatus).toBe("Successful");
    expect(cfg.StateReason).toBeUndefined();
    expect(cfg.StateReasonCode).toBeUndefined();
  });

  it("CreateFunction twice with one name is a ResourceConflictException and changes nothing", async () => {
    await createFn(lambda, "dup-fn", await smallZip("dup-1"));
    const before = await snapshot(server);
    const err = await rejection(() => createFn(lambda, "dup-fn", smallZipSync()));
    expectError(err, ResourceConflictException, 409, `Function already exist: dup-fn`);
    expect(await snapshot(server)).toEqual(before);
  });

  it("GetFunction returns Configuration, Code.Location serving the same zip, and Tags", async () => {
    const zip = await smallZip("get");
    await createFn(lambda, "get-fn", zip, { Tags: { team: "core" } });
    const got = await lambda.send(new GetFunctionCommand({ FunctionName: "get-fn" }));
    const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "get-fn" }));
    const { $metadata: _a, ...cfgBody } = cfg;
    expect(got.Configuration).toEqual(cfgBody);
    expect(got.Tags).toEqual({ team: "core" });
    expect(got.Code?.RepositoryType).toBe("S3");
    expect(got.Code?.Location).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    const res = await fetch(got.Code?.Location as string);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/zip");
    const served = Buffer.from(await res.arrayBuffer());
    expect(served.equals(zip)).toBe(true);
  });

  it("every operation takes a name, a partial ARN or a full ARN", async () => {
    const zip = await smallZip("names");
    await createFn(lambda, "named-fn", zip);
    for (const FunctionName of ["named-fn", `${ACCOUNT}:function:named-fn`, arn("named-fn")]) {
      const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName }));
      expect(cfg.FunctionArn).toBe(arn("named-fn"));
      const got = await lambda.send(new GetFunctionCommand({ FunctionName }));
      expect(got.Configuration?.FunctionName).toBe("named-fn");
      const upd = await lambda.send(
        new UpdateFunctionConfigurationCommand({ FunctionName, Description: FunctionName }),
      );
      expect(upd.Description).toBe(FunctionName);
      await waitUntilFunctionUpdatedV2({ client: lambda, ...WAIT }, { FunctionName });
      const code = await lambda.send(new UpdateFunctionCodeCommand({ FunctionName, ZipFile: zip }));
      expect(code.FunctionName).toBe("named-fn");
      const versions = await lambda.send(new ListVersionsByFunctionCommand({ FunctionName }));
      expect(versions.Versions?.[0]?.Version).toBe("$LATEST");
      const published = await lambda.send(new PublishVersionCommand({ FunctionName }));
      expect(published.FunctionArn).toBe(`${arn("named-fn")}:${published.Version}`);
    }
    // A qualifier carried in the name: name:1, partial ARN and full ARN with :1.
    for (const FunctionName of ["named-fn:1", `${ACCOUNT}:function:named-fn:1`, `${arn("named-fn")}:1`]) {
      const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName }));
      expect(cfg.Version).toBe("1");
      expect(cfg.FunctionArn).toBe(`${arn("named-fn")}:1`);
    }
    await lambda.send(new DeleteFunctionCommand({ FunctionName: `${ACCOUNT}:function:named-fn` }));
    const err = await rejection(() => lambda.send(new GetFunctionCommand({ FunctionName: arn("named-fn") })));
    expectError(err, ResourceNotFoundException, 404, `Function not found: ${arn("named-fn")}`);

    // CreateFunction takes an ARN too.
    const created = await createFn(lambda, arn("arn-created"), zip);
    expect(created.FunctionName).toBe("arn-created");
    await lambda.send(new DeleteFunctionCommand({ FunctionName: arn("arn-created") }));
  });

  it("ARNs carry the region of the request's signature", async () => {
    const eu = lambdaClient(server.url, "eu-west-1");
    try {
      const created = await createFn(eu, "eu-fn", await smallZip("eu"));
      expect(created.FunctionArn).toBe(arn("eu-fn", "eu-west-1"));
      const got = await eu.send(new GetFunctionCommand({ FunctionName: "eu-fn" }));
      expect(got.Configuration?.FunctionArn).toBe(arn("eu-fn", "eu-west-1"));
      const listed = await eu.send(new ListFunctionsCommand({}));
      for (const f of listed.Functions ?? [])
        expect(f.FunctionArn).toBe(arn(f.FunctionName as string, "eu-west-1"));
      const missing = await rejection(() => eu.send(new GetFunctionCommand({ FunctionName: "nope-fn" })));
      expect(missing.message).toBe(`Function not found: ${arn("nope-fn", "eu-west-1")}`);
      // The same function seen from us-east-1.
      const us = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "eu-fn" }));
      expect(us.FunctionArn).toBe(arn("eu-fn"));
    } finally {
      eu.destroy();
    }
  });

  it("ListFunctions pages with Marker/MaxItems, in name order, without gaps or repeats", async () => {
    const zip = await smallZip("list");
    const names = ["list-a", "list-b", "list-c", "list-d", "list-e", "LIST-F", "list_g", "List9"];
    for (const n of names) await createFn(lambda, n, zip);
    const all = await allFunctionNames(lambda);
    expect(all).toEqual([...all].sort());
    for (const n of names) expect(all).toContain(n);

    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await lambda.send(
        new ListFunctionsCommand({ MaxItems: 2, ...(marker ? { Marker: marker } : {}) }),
      );
      pages++;
      expect(page.Functions?.length).toBeLessThanOrEqual(2);
      for (const f of page.Functions ?? []) seen.push(f.FunctionName as string);
      marker = page.NextMarker;
      if (marker) expect(page.Functions?.length).toBe(2);
    } while (marker);
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 2));

    // ListFunctions shows $LATEST only, unless FunctionVersion=ALL.
    await lambda.send(new PublishVersionCommand({ FunctionName: "list-c" }));
    const latest = await allFunctionNames(lambda);
    expect(latest).toEqual(all);
    const everything: string[] = [];
    let m: string | undefined;
    do {
      const page = await lambda.send(
        new ListFunctionsCommand({ FunctionVersion: "ALL", MaxItems: 3, ...(m ? { Marker: m } : {}) }),
      );
      for (const f of page.Functions ?? []) everything.push(`${f.FunctionName}@${f.Version}`);
      m = page.NextMarker;
    } while (m);
    expect(everything).toContain("list-c@$LATEST");
    expect(everything).toContain("list-c@1");
    expect(everything.filter((e) => e.startsWith("list-c@"))).toEqual(["list-c@$LATEST", "list-c@1"]);
    expect(new Set(everything).size).toBe(everything.length);
  });

  it("UpdateFunctionCode stores the new zip, changes CodeSha256 and RevisionId, and reports the update", async () => {
    const zip1 = await smallZip("code-1");
    const zip2 = await smallZip("code-2");
    const created = await createFn(lambda, "code-fn", zip1);
    await waitUntilFunctionActiveV2({ client: lambda, ...WAIT }, { FunctionName: "code-fn" });
    const updated = await lambda.send(
      new UpdateFunctionCodeCommand({ FunctionName: "code-fn", ZipFile: zip2 }),
    );
    expect(updated.$metadata.httpStatusCode).toBe(200);
    expect(updated.CodeSha256).toBe(sha256B64(zip2));
    expect(updated.CodeSize).toBe(zip2.length);
    expect(updated.RevisionId).not.toBe(created.RevisionId);
    expect(updated.State).toBe("Active");
    expect(updated.LastUpdateStatus).toBe("InProgress");
    expect(updated.LastUpdateStatusReasonCode).toBe("Updating");
    await waitUntilFunctionUpdatedV2({ client: lambda, ...WAIT }, { FunctionName: "code-fn" });
    const got = await lambda.send(new GetFunctionCommand({ FunctionName: "code-fn" }));
    expect(got.Configuration?.LastUpdateStatus).toBe("Successful");
    expect(got.Configuration?.CodeSha256).toBe(sha256B64(zip2));
    const served = Buffer.from(await (await fetch(got.Code?.Location as string)).arrayBuffer());
    expect(served.equals(zip2)).toBe(true);
    // The old package is referenced by nothing any more: collected.
    const blobs = (await snapshot(server)).blobs;
    expect(blobs).toContain(sha256Hex(zip2));
    expect(blobs).not.toContain(sha256Hex(zip1));
  });

  it("UpdateFunctionConfiguration changes each setting and keeps the others", async () => {
    await createFn(lambda, "conf-fn", await smallZip("conf"), { Environment: { Variables: { AA: "1" } } });
    const published = await lambda.send(
      new PublishLayerVersionCommand({
        LayerName: "shared",
        Content: { ZipFile: await zipEntries([{ name: "python/shared.py", content: "X = 1\n" }]) },
      }),
    );
    const layer = published.LayerVersionArn as string;
    expect(layer).toBe(`arn:aws:lambda:us-east-1:${ACCOUNT}:layer:shared:1`);
    const before = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "conf-fn" }));
    const updated = await lambda.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: "conf-fn",
        MemorySize: 1024,
        Timeout: 900,
        Environment: { Variables: { BB: "2", C_3: "three" } },
        Handler: "lib/util.main",
        Runtime: "python3.13",
        Description: "reconfigured",
        EphemeralStorage: { Size: 10240 },
        Layers: [layer],
      }),
    );
    expect(updated.RevisionId).not.toBe(before.RevisionId);
    expect(updated.LastUpdateStatus).toBe("InProgress");
    await waitUntilFunctionUpdatedV2({ client: lambda, ...WAIT }, { FunctionName: "conf-fn" });
    const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "conf-fn" }));
    expect(cfg).toMatchObject({
      MemorySize: 1024,
      Timeout: 900,
      Environment: { Variables: { BB: "2", C_3: "three" } },
      Handler: "lib/util.main",
      Runtime: "python3.13",
      Description: "reconfigured",
      EphemeralStorage: { Size: 10240 },
      Layers: [{ Arn: layer }],
      LastUpdateStatus: "Successful",
      State: "Active",
      CodeSha256: before.CodeSha256,
      Role: ROLE,
    });
    expect(cfg.RevisionId).toBe(updated.RevisionId);

    // Only the members sent change; an empty Environment clears the variables.
    const second = await lambda.send(
      new UpdateFunctionConfigurationCommand({ FunctionName: "conf-fn", Environment: { Variables: {} } }),
    );
    expect(second.MemorySize).toBe(1024);
    expect(second.Environment).toBeUndefined();
    expect(second.RevisionId).not.toBe(updated.RevisionId);
    const cleared = await lambda.send(
      new UpdateFunctionConfigurationCommand({ FunctionName: "conf-fn", Layers: [] }),
    );
    expect(cleared.Layers).toBeUndefined();
  });

  it("a stale RevisionId is a PreconditionFailedException (412) and changes nothing", async () => {
    const zip = await smallZip("rev");
    await createFn(lambda, "rev-fn", zip);
    // Lambda gives the function a new RevisionId when it turns Active, so the current one is read
    // after the create (the create response's is already stale by then).
    const stale = (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "rev-fn" })))
      .RevisionId as string;
    const u1 = await lambda.send(
      new UpdateFunctionConfigurationCommand({ FunctionName: "rev-fn", Timeout: 5, RevisionId: stale }),
    );
    expect(u1.RevisionId).not.toBe(stale);
    const before = await snapshot(server);
    const message =
      "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id";
    for (const send of [
      () =>
        lambda.send(
          new UpdateFunctionConfigurationCommand({ FunctionName: "rev-fn", Timeout: 6, RevisionId: stale }),
        ),
      () =>
        lambda.send(
          new UpdateFunctionCodeCommand({ FunctionName: "rev-fn", ZipFile: zip, RevisionId: stale }),
        ),
      () => lambda.send(new PublishVersionCommand({ FunctionName: "rev-fn", RevisionId: stale })),
    ]) {
      expectError(await rejection(send), PreconditionFailedException, 412, message);
    }
    expect(await snapshot(server)).toEqual(before);
    const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "rev-fn" }));
    expect(cfg.Timeout).toBe(5);
    // The current one is accepted; every update yields a new one.
    const u2 = await lambda.send(
      new UpdateFunctionCodeCommand({ FunctionName: "rev-fn", ZipFile: zip, RevisionId: u1.RevisionId }),
    );
    expect(u2.RevisionId).not.toBe(u1.RevisionId);
    await waitUntilFunctionUpdatedV2({ client: lambda, ...WAIT }, { FunctionName: "rev-fn" });
    const now = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "rev-fn" }));
    const v = await lambda.send(
      new PublishVersionCommand({ FunctionName: "rev-fn", RevisionId: now.RevisionId }),
    );
    expect(v.Version).toBe("1");
  });

  it("PublishVersion freezes $LATEST as 1, 2, … and ListVersionsByFunction lists them", async () => {
    const zip1 = await smallZip("pub-1");
    await createFn(lambda, "pub-fn", zip1, { Description: "first" });
    const v1 = await lambda.send(new PublishVersionCommand({ FunctionName: "pub-fn", Description: "v1" }));
    expect(v1.$metadata.httpStatusCode).toBe(201);
    expect(v1).toMatchObject({
      Version: "1",
      Description: "v1",
      FunctionArn: `${arn("pub-fn")}:1`,
      State: "Active",
    });
    // Nothing changed: publishing again returns the same version.
    const again = await lambda.send(new PublishVersionCommand({ FunctionName: "pub-fn" }));
    expect(again.Version).toBe("1");
    const zip2 = await smallZip("pub-2");
    await lambda.send(new UpdateFunctionCodeCommand({ FunctionName: "pub-fn", ZipFile: zip2 }));
    await waitUntilFunctionUpdatedV2({ client: lambda, ...WAIT }, { FunctionName: "pub-fn" });
    const v2 = await lambda.send(new PublishVersionCommand({ FunctionName: "pub-fn" }));
    expect(v2.Version).toBe("2");
    expect(v2.CodeSha256).toBe(sha256B64(zip2));
    const listed = await lambda.send(new ListVersionsByFunctionCommand({ FunctionName: "pub-fn" }));
    expect(listed.Versions?.map((v) => v.Version)).toEqual(["$LATEST", "1", "2"]);
    expect(listed.Versions?.[1]?.CodeSha256).toBe(sha256B64(zip1));
    const paged = await lambda.send(
      new ListVersionsByFunctionCommand({ FunctionName: "pub-fn", MaxItems: 2 }),
    );
    expect(paged.Versions?.map((v) => v.Version)).toEqual(["$LATEST", "1"]);
    const rest = await lambda.send(
      new ListVersionsByFunctionCommand({ FunctionName: "pub-fn", Marker: paged.NextMarker as string }),
    );
    expect(rest.Versions?.map((v) => v.Version)).toEqual(["2"]);
    expect(rest.NextMarker).toBeUndefined();
    // A version's code stays served while a version holds it.
    const old = await lambda.send(new GetFunctionCommand({ FunctionName: "pub-fn", Qualifier: "1" }));
    expect(old.Configuration?.Version).toBe("1");
    const served = Buffer.from(await (await fetch(old.Code?.Location as string)).arrayBuffer());
    expect(served.equals(zip1)).toBe(true);
    // Deleting version 1 leaves $LATEST and 2; deleting the function removes all and collects the blobs.
    await lambda.send(new DeleteFunctionCommand({ FunctionName: "pub-fn", Qualifier: "1" }));
    const after = await lambda.send(new ListVersionsByFunctionCommand({ FunctionName: "pub-fn" }));
    expect(after.Versions?.map((v) => v.Version)).toEqual(["$LATEST", "2"]);
    expect((await snapshot(server)).blobs).not.toContain(sha256Hex(zip1));
    await lambda.send(new DeleteFunctionCommand({ FunctionName: "pub-fn" }));
    expect((await snapshot(server)).blobs).not.toContain(sha256Hex(zip2));
  });

  it("CreateFunction and UpdateFunctionCode with Publish answer with the published version", async () => {
    const created = await createFn(lambda, "autopub-fn", await smallZip("autopub-1"), { Publish: true });
    // AWS answers the published version under the unqualified ARN (FunctionArn without ":1").
    expect(created).toMatchObject({ Version: "1", FunctionArn: arn("autopub-fn"), State: "Active" });
    const zip2 = await smallZip("autopub-2");
    const updated = await lambda.send(
      new UpdateFunctionCodeCommand({ FunctionName: "autopub-fn", ZipFile: zip2, Publish: true }),
    );
    expect(updated).toMatchObject({ Version: "2", CodeSha256: sha256B64(zip2) });
    const listed = await lambda.send(new ListVersionsByFunctionCommand({ FunctionName: "autopub-fn" }));
    expect(listed.Versions?.map((v) => v.Version)).toEqual(["$LATEST", "1", "2"]);
    await lambda.send(new DeleteFunctionCommand({ FunctionName: "autopub-fn" }));
  });

  it("DeleteFunction removes the function, its versions and its unreferenced code", async () => {
    const zip = await smallZip("delete");
    await createFn(lambda, "del-fn", zip);
    await lambda.send(new PublishVersionCommand({ FunctionName: "del-fn" }));
    const deleted = await lambda.send(new DeleteFunctionCommand({ FunctionName: "del-fn" }));
    expect(deleted.$metadata.httpStatusCode).toBe(204);
    const snap = await snapshot(server);
    expect(snap.functions).not.toContain("del-fn");
    expect(snap.versions.filter((v) => v.startsWith("del-fn:"))).toEqual([]);
    expect(snap.blobs).not.toContain(sha256Hex(zip));
    expect(await allFunctionNames(lambda)).not.toContain("del-fn");
    const err = await rejection(() => lambda.send(new DeleteFunctionCommand({ FunctionName: "del-fn" })));
    expectError(err, ResourceNotFoundException, 404, `Function not found: ${arn("del-fn")}`);
    // The name is free again.
    await createFn(lambda, "del-fn", zip);
    await lambda.send(new DeleteFunctionCommand({ FunctionName: "del-fn" }));
  });

  it("one zip used by two functions is stored once and kept until the last user is gone", async () => {
    const zip = await smallZip("shared");
    await createFn(lambda, "share-1", zip);
    await createFn(lambda, "share-2", zip);
    const hex = sha256Hex(zip);
    expect((await snapshot(server)).blobs.filter((b) => b === hex)).toHaveLength(1);
    await lambda.send(new DeleteFunctionCommand({ FunctionName: "share-1" }));
    expect((await snapshot(server)).blobs).toContain(hex);
    const got = await lambda.send(new GetFunctionCommand({ FunctionName: "share-2" }));
    expect(Buffer.from(await (await fetch(got.Code?.Location as string)).arrayBuffer()).equals(zip)).toBe(
      true,
    );
    await lambda.send(new DeleteFunctionCommand({ FunctionName: "share-2" }));
    expect((await snapshot(server)).blobs).not.toContain(hex);
  });

  it("GetAccountSettings reports limits and usage", async () => {
    const settings = await lambda.send(new GetAccountSettingsCommand({}));
    const names = await allFunctionNames(lambda);
    expect(settings.AccountUsage?.FunctionCount).toBe(names.length);
    const sizes = await server.platform.store.db
      .selectFrom("function_versions")
      .select("code_size")
      .execute();
    expect(settings.AccountUsage?.TotalCodeSize).toBe(sizes.reduce((s, r) => s + Number(r.code_size), 0));
    expect(settings.AccountLimit).toEqual({
      TotalCodeSize: 80530636800,
      CodeSizeUnzipped: 262144000,
      CodeSizeZipped: 52428800,
      ConcurrentExecutions: 1000,
      UnreservedConcurrentExecutions: 1000,
    });
  });

  it("TagResource, UntagResource and ListTags work on the function ARN", async () => {
    await createFn(lambda, "tag-fn", await smallZip("tags"), { Tags: { env: "test" } });
    const resource = arn("tag-fn");
    expect((await lambda.send(new ListTagsCommand({ Resource: resource }))).Tags).toEqual({ env: "test" });
    const tagged = await lambda.send(
      new TagResourceCommand({ Resource: resource, Tags: { team: "a", cost: "1" } }),
    );
    expect(tagged.$metadata.httpStatusCode).toBe(204);
    expect((await lambda.send(new ListTagsCommand({ Resource: resource }))).Tags).toEqual({
      env: "test",
      team: "a",
      cost: "1",
    });
    const untagged = await lambda.send(
      new UntagResourceCommand({ Resource: resource, TagKeys: ["env", "cost"] }),
    );
    expect(untagged.$metadata.httpStatusCode).toBe(204);
    expect((await lambda.send(new ListTagsCommand({ Resource: resource }))).Tags).toEqual({ team: "a" });
    expect((await lambda.send(new GetFunctionCommand({ FunctionName: "tag-fn" }))).Tags).toEqual({
      team: "a",
    });
    // Tagging changes neither the configuration nor its RevisionId.
    const missing = await rejection(() => lambda.send(new ListTagsCommand({ Resource: arn("no-such-fn") })));
    expectError(missing, ResourceNotFoundException, 404, `Function not found: ${arn("no-such-fn")}`);
  });
});

let syncZipCache: Buffer | undefined;
/** A valid zip for requests that are rejected before their code matters. */
function smallZipSync(): Buffer {
  if (!syncZipCache) throw new Error("call primeZip() first");
  return syncZipCache;
}
beforeAll(async () => {
  syncZipCache = await smallZip("other");
});
