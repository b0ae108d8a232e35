/**
 * Functions and their versions: create, read, update, delete, publish, tag.
 * Validation and state transitions live here; persistence goes through the store.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { type Kysely, sql, type Transaction } from "kysely";
import type { Limits } from "../config.js";
import {
  constraintViolation,
  InvalidParameterValue,
  PreconditionFailed,
  RequestEntityTooLarge,
  ResourceConflict,
  ResourceNotFound,
} from "../errors.js";
import { numberMapColumn, stringMapColumn } from "../store/columns.js";
import type { Database, FunctionVersionsTable } from "../store/schema.js";
import type { Store } from "../store/store.js";
import { type FunctionRef, functionArn, parseFunctionRef } from "./arn.js";
import { type CodeCache, type CodePackage, inspectPackage, isPackageError } from "./code.js";
import {
  applyConfig,
  type ConfigInput,
  DEFAULTS,
  type Runtime,
  type StoredConfig,
  storedConfigColumn,
} from "./function-config.js";
import { decodeMarker, encodeMarker } from "./marker.js";

export const LATEST = "$LATEST";

/** A resolved function version, as the invoke path needs it. */
export interface FunctionVersion {
  name: string;
  version: string;
  config: StoredConfig;
  codeSha256: string;
  revisionId: string;
  state: string;
  row: FunctionVersionsTable;
}

export interface FunctionChange {
  name: string;
  /** The version whose code or configuration changed; undefined = the whole function (deleted). */
  version?: string;
}

export interface CreateFunctionInput extends ConfigInput {
  FunctionName?: unknown;
  Code?: { ZipFile?: unknown; S3Bucket?: unknown; ImageUri?: unknown };
  Publish?: unknown;
  Tags?: unknown;
  PackageType?: unknown;
}

const MAX_TAGS = 50;

/** Decode Code.ZipFile / ZipFile, refusing packages over the direct-upload limit as Lambda does. */
function decodeZip(zipFile: unknown, limits: Limits, operation: string): Buffer {
  if (typeof zipFile !== "string") throw InvalidParameterValue("Please provide a source for function code.");
  const zip = Buffer.from(zipFile, "base64");
  if (zip.length > limits.zipBytes) {
    throw RequestEntityTooLarge(
      `Request must be smaller than ${Math.ceil((limits.zipBytes * 4) / 3)} bytes for the ${operation} operation`,
    );
  }
  return zip;
}

function notFound(region: string, name: string, qualifier?: string): Error {
  return ResourceNotFound(`Function not found: ${functionArn(region, name, qualifier)}`);
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e?.code === "23505" ||
    e?.code === "SQLITE_CONSTRAINT_PRIMARYKEY" ||
    e?.code === "SQLITE_CONSTRAINT_UNIQUE"
  );
}

export class FunctionService {
  /** Emits "change" with a FunctionChange whenever code or configuration changes. */
  readonly events = new EventEmitter<{ change: [FunctionChange] }>();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Set by the platform: checks a function's Layers (they exist, code + layers fit the unzipped limit). */
  layerCheck: ((layers: string[], previous: string[], codeUnzippedBytes: number) => Promise<void>) | null =
    null;
  /** Set by the platform: refuses a runtime this server cannot run (not installed, blocked as deprecated). */
  runtimeCheck: ((runtime: Runtime) => void) | null = null;
  /** Set by the platform: refuses a dead-letter target the egress policy would never deliver to. */
  deadLetterCheck: ((target: string) => Promise<void>) | null = null;
  /** Refuses a CapacityProviderArn that names no capacity provider of this account. */
  capacityProviderCheck: ((arn: string) => Promise<void>) | null = null;

  constructor(
    private readonly store: Store,
    private readonly code: CodeCache,
    private readonly limits: Limits,
  ) {}

  private get db(): Kysely<Database> {
    return this.store.db;
  }

  /** Serialise mutations of one function within this server. */
  private async exclusive<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.locks.set(name, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(name) === tail) this.locks.delete(name);
    }
  }

  async create(input: CreateFunctionInput, region: string): Promise<FunctionVersion> {
    // CreateFunction takes a name, a partial ARN or a full ARN, never a qualifier.
    const ref = parseFunctionRef(input.FunctionName, undefined, "functionName", 140);
    if (ref.qualifier !== undefined) {
      throw InvalidParameterValue(
        "Unsupported function name: a qualifier cannot be used to create a function.",
      );
    }
    const name = ref.name;
    if (input.PackageType !== undefined && input.PackageType !== "Zip") {
      throw InvalidParameterValue("Lambent supports only the Zip package type.");
    }
    if (input.Role === undefined) throw constraintViolation("role", "null", "Member must not be null");
    if (input.Runtime === undefined)
      throw InvalidParameterValue("Runtime is required for .zip file deployment packages.");
    if (input.Handler === undefined)
      throw InvalidParameterValue("Handler is required for .zip file deployment packages.");
    const code = input.Code;
    if (!code || typeof code !== "object")
      throw constraintViolation("code", "null", "Member must not be null");
    if (code.S3Bucket !== undefined || code.ImageUri !== undefined) {
      throw InvalidParameterValue(
        "Lambent accepts code only as Code.ZipFile (S3 and container images are not supported).",
      );
    }
    const tags = validateTags(input.Tags ?? {});
    const base: StoredConfig = {
      Runtime: "nodejs20.x",
      Handler: "",
      Role: "",
      Description: DEFAULTS.Description,
      Timeout: DEFAULTS.Timeout,
      MemorySize: DEFAULTS.MemorySize,
      Environment: {},
      EphemeralStorageSize: DEFAULTS.EphemeralStorageSize,
      Layers: [],
      Architectures: ["x86_64"],
      TracingMode: "PassThrough",
      LogFormat: "Text",
    };
    const config = applyConfig(base, input, this.limits);
    this.runtimeCheck?.(config.Runtime);
    if (config.DeadLetterTargetArn) await this.deadLetterCheck?.(config.DeadLetterTargetArn);
    if (config.CapacityProvider)
      await this.capacityProviderCheck?.(config.CapacityProvider.CapacityProviderArn);
    const zip = decodeZip(code.ZipFile, this.limits, "CreateFunction");
    const pkg = await inspectPackage(zip, this.limits);
    if (config.Layers.length > 0) await this.layerCheck?.(config.Layers, [], pkg.unzippedSize);

    return this.exclusive(name, async () => {
      const now = Date.now();
      const row: FunctionVersionsTable = {
        function_name: name,
        version: LATEST,
        config: JSON.stringify(config),
        code_sha256: pkg.sha256,
        code_size: pkg.size,
        revision_id: randomUUID(),
        last_modified: now,
        state: "Pending",
        state_reason: "The function is being created.",
        state_reason_code: "Creating",
        last_update_status: "InProgress",
        last_update_status_reason: "The function is being created.",
        last_update_status_reason_code: "Creating",
      };
      try {
        await this.db.transaction().execute(async (tx) => {
          await putBlob(tx, pkg, zip);
          await tx
            .insertInto("functions")
            .values({
              name,
              created_at: now,
              tags: JSON.stringify(tags),
              last_version: 0,
              reserved_concurrency: null,
            })
            .execute();
          await tx.insertInto("function_versions").values(row).execute();
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw ResourceConflict(`Function already exist: ${name}`);
        throw err;
      }
      const created = toVersion(row);
      // Pending → Active once the package is extracted; the response shows the state at creation.
      await this.activate(name, LATEST, pkg.sha256, "create");
      // With Publish, Lambda answers with the version it published.
      if (input.Publish === true) return this.publishLocked(name, region, {});
      return created;
    });
  }

  /**
   * Extract the code and record the outcome of a create or code update. Never throws for the
   * package: one that cannot be extracted marks the version Failed (InvalidZipFileException when the
   * package itself is at fault, e.g. one stored before today's checks; InternalError otherwise).
   */
  private async activate(
    name: string,
    version: string,
    sha256: string,
    kind: "create" | "update",
  ): Promise<void> {
    let ok = true;
    let reason: string | null = null;
    let code: string | null = null;
    try {
      await this.code.ensure(sha256);
    } catch (err) {
      ok = false;
      reason = `Lambent could not extract the deployment package: ${err instanceof Error ? err.message : String(err)}`;
      code = isPackageError(err) ? "InvalidZipFileException" : "InternalError";
    }
    const set =
      kind === "create" || code === "InvalidZipFileException"
        ? {
            // The code this version runs cannot exist: the function cannot run until new code is uploaded.
            // Lambda gives the version a new RevisionId when the state changes (Pending → Active).
            revision_id: randomUUID(),
            state: ok ? "Active" : "Failed",
            state_reason: reason,
            state_reason_code: code,
            last_update_status: ok ? "Successful" : "Failed",
            last_update_status_reason: reason,
            last_update_status_reason_code: code,
          }
        : {
            revision_id: randomUUID(),
            last_update_status: ok ? "Successful" : "Failed",
            last_update_status_reason: reason,
            last_update_status_reason_code: code,
          };
    await this.db
      .updateTable("function_versions")
      .set(set)
      .where("function_name", "=", name)
      .where("version", "=", version)
      .execute();
    if (ok && kind === "update") {
      // New code that extracts heals a version an unextractable package had failed.
      await this.db
        .updateTable("function_versions")
        .set({ state: "Active", state_reason: null, state_reason_code: null })
        .where("function_name", "=", name)
        .where("version", "=", version)
        .where("state", "=", "Failed")
        .where("state_reason_code", "=", "InvalidZipFileException")
        .execute();
    }
    this.events.emit("change", { name, version });
  }

  /** The current RevisionId of one version (undefined when it no longer exists). */
  async revisionId(name: string, version: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("function_versions")
      .select("revision_id")
      .where("function_name", "=", name)
      .where("version", "=", version)
      .executeTakeFirst();
    return row?.revision_id;
  }

  async getVersion(ref: FunctionRef, region: string): Promise<FunctionVersion> {
    const version = ref.qualifier ?? LATEST;
    const row = await this.db
      .selectFrom("function_versions")
      .selectAll()
      .where("function_name", "=", ref.name)
      .where("version", "=", version)
      .executeTakeFirst();
    if (!row) throw notFound(region, ref.name, ref.qualifier);
    return toVersion(row);
  }

  async getFunctionRow(name: string, region: string) {
    const row = await this.db.selectFrom("functions").selectAll().where("name", "=", name).executeTakeFirst();
    if (!row) throw notFound(region, name);
    return row;
  }

  /**
   * ListFunctions: $LATEST of every function in name order, or with `all`
   * (FunctionVersion=ALL) every version, $LATEST first then by number.
   */
  async list(
    marker: string | undefined,
    maxItems: number,
    all = false,
  ): Promise<{ items: FunctionVersion[]; nextMarker?: string }> {
    const after = marker === undefined ? undefined : decodeListMarker(marker);
    // Byte order on both engines (PostgreSQL's default collation may be locale-aware), so pages
    // are the same everywhere and the marker comparison agrees with the sort.
    const name =
      this.store.engine === "postgres" ? sql<string>`function_name collate "C"` : sql<string>`function_name`;
    const versionNumber = sql<number>`(case when version = ${LATEST} then -1 else cast(version as integer) end)`;
    let q = this.db
      .selectFrom("function_versions")
      .selectAll()
      .orderBy(name)
      .orderBy(versionNumber)
      .limit(maxItems + 1);
    if (!all) q = q.where("version", "=", LATEST);
    if (after) {
      const afterVersion = after.version === undefined ? undefined : versionOrder(after.version);
      q = q.where((eb) =>
        afterVersion === undefined
          ? eb(name, ">", after.name)
          : eb.or([
              eb(name, ">", after.name),
              eb.and([eb(name, "=", after.name), eb(versionNumber, ">", afterVersion)]),
            ]),
      );
    }
    const rows = (await q.execute()).map(toVersion);
    const page = rows.slice(0, maxItems);
    const last = page[page.length - 1];
    return rows.length > maxItems && last
      ? { items: page, nextMarker: encodeListMarker(last.name, all ? last.version : undefined) }
      : { items: page };
  }

  async listVersions(name: string, region: string, marker: string | undefined, maxItems: number) {
    await this.getFunctionRow(name, region);
    const rows = await this.db
      .selectFrom("function_versions")
      .selectAll()
      .where("function_name", "=", name)
      .execute();
    // $LATEST first, then published versions in numeric order.
    rows.sort((a, b) => versionOrder(a.version) - versionOrder(b.version));
    // The marker is the last version shown, so versions published or deleted between pages shift nothing.
    let rest = rows;
    if (marker !== undefined) {
      const after = decodeMarker(marker);
      if (!/^(\$LATEST|\d+)$/.test(after)) throw InvalidParameterValue("Invalid Marker");
      rest = rows.filter((r) => versionOrder(r.version) > versionOrder(after));
    }
    const page = rest.slice(0, maxItems).map(toVersion);
    const last = page[page.length - 1];
    return rest.length > maxItems && last
      ? { items: page, nextMarker: encodeMarker(last.version) }
      : { items: page };
  }

  /**
   * Finish what a crash interrupted: a version left Pending (create) or with an
   * update InProgress would otherwise refuse every later update. Every create
   * and update completes within its request, so on a server that shares its
   * store with nobody (SQLite), anything still in progress at start is stale.
   * Call once at startup, before serving requests.
   */
  async recover(): Promise<number> {
    const stuck = await this.db
      .selectFrom("function_versions")
      .select(["function_name", "version", "code_sha256", "state"])
      .where((eb) => eb.or([eb("state", "=", "Pending"), eb("last_update_status", "=", "InProgress")]))
      .execute();
    for (const row of stuck) {
      await this.exclusive(row.function_name, () =>
        this.activate(
          row.function_name,
          row.version,
          row.code_sha256,
          row.state === "Pending" ? "create" : "update",
        ),
      );
    }
    return stuck.length;
  }

  async updateCode(
    name: string,
    input: {
      ZipFile?: unknown;
      S3Bucket?: unknown;
      ImageUri?: unknown;
      RevisionId?: unknown;
      Publish?: unknown;
      DryRun?: unknown;
      Architectures?: unknown;
    },
    region: string,
  ): Promise<FunctionVersion> {
    if (input.S3Bucket !== undefined || input.ImageUri !== undefined) {
      throw InvalidParameterValue(
        "Lambent accepts code only as ZipFile (S3 and container images are not supported).",
      );
    }
    const zip = decodeZip(input.ZipFile, this.limits, "UpdateFunctionCode");
    const pkg = await inspectPackage(zip, this.limits);
    return this.exclusive(name, async () => {
      const current = await this.getVersion({ name }, region);
      checkRevision(input.RevisionId, current.revisionId);
      checkUpdatable(current, region);
      const config =
        input.Architectures !== undefined
          ? applyConfig(current.config, { Architectures: input.Architectures }, this.limits)
          : current.config;
      if (config.Layers.length > 0) await this.layerCheck?.(config.Layers, config.Layers, pkg.unzippedSize);
      if (input.DryRun === true) return { ...current, codeSha256: pkg.sha256 };
      const row: FunctionVersionsTable = {
        ...current.row,
        config: JSON.stringify(config),
        code_sha256: pkg.sha256,
        code_size: pkg.size,
        revision_id: randomUUID(),
        last_modified: Date.now(),
        last_update_status: "InProgress",
        last_update_status_reason: "The function is being updated.",
        last_update_status_reason_code: "Updating",
      };
      await this.db.transaction().execute(async (tx) => {
        await putBlob(tx, pkg, zip);
        await this.writeLatest(tx, row, current.revisionId);
      });
      await this.activate(name, LATEST, pkg.sha256, "update");
      await this.collectBlob(current.codeSha256);
      if (input.Publish === true) return this.publishLocked(name, region, {});
      return toVersion(row);
    });
  }

  async updateConfiguration(
    name: string,
    input: ConfigInput & { RevisionId?: unknown },
    region: string,
  ): Promise<FunctionVersion> {
    return this.exclusive(name, async () => {
      const current = await this.getVersion({ name }, region);
      checkRevision(input.RevisionId, current.revisionId);
      checkUpdatable(current, region);
      const config = applyConfig(current.config, input, this.limits);
      if (input.Runtime !== undefined) this.runtimeCheck?.(config.Runtime);
      if (input.DeadLetterConfig !== undefined && config.DeadLetterTargetArn)
        await this.deadLetterCheck?.(config.DeadLetterTargetArn);
      if (input.CapacityProviderConfig !== undefined && config.CapacityProvider)
        await this.capacityProviderCheck?.(config.CapacityProvider.CapacityProviderArn);
      if (input.Layers !== undefined && config.Layers.length > 0) {
        const code = await inspectPackage(await this.loadZip(current.codeSha256), this.limits);
        await this.layerCheck?.(config.Layers, current.config.Layers, code.unzippedSize);
      }
      const row: FunctionVersionsTable = {
        ...current.row,
        config: JSON.stringify(config),
        revision_id: randomUUID(),
        last_modified: Date.now(),
        last_update_status: "InProgress",
        last_update_status_reason: "The function is being updated.",
        last_update_status_reason_code: "Updating",
      };
      await this.db.transaction().execute((tx) => this.writeLatest(tx, row, current.revisionId));
      await this.db
        .updateTable("function_versions")
        .set({
          last_update_status: "Successful",
          last_update_status_reason: null,
          last_update_status_reason_code: null,
        })
        .where("function_name", "=", name)
        .where("version", "=", LATEST)
        .execute();
      this.events.emit("change", { name, version: LATEST });
      return toVersion(row);
    });
  }

  /** Write $LATEST only if nobody changed it since we read it (another server may share the store). */
  private async writeLatest(
    tx: Transaction<Database>,
    row: FunctionVersionsTable,
    expectedRevision: string,
  ): Promise<void> {
    const { function_name, version, ...set } = row;
    const res = await tx
      .updateTable("function_versions")
      .set(set)
      .where("function_name", "=", function_name)
      .where("version", "=", version)
      .where("revision_id", "=", expectedRevision)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) {
      throw PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
      );
    }
  }

  async publishVersion(
    name: string,
    region: string,
    input: { CodeSha256?: unknown; RevisionId?: unknown; Description?: unknown },
  ): Promise<FunctionVersion> {
    return this.exclusive(name, () => this.publishLocked(name, region, input));
  }

  private async publishLocked(
    name: string,
    region: string,
    input: { CodeSha256?: unknown; RevisionId?: unknown; Description?: unknown },
  ): Promise<FunctionVersion> {
    const latest = await this.getVersion({ name }, region);
    checkRevision(input.RevisionId, latest.revisionId);
    const latestB64 = Buffer.from(latest.codeSha256, "hex").toString("base64");
    if (input.CodeSha256 !== undefined && input.CodeSha256 !== latestB64) {
      throw InvalidParameterValue(
        `CodeSHA256 (${String(input.CodeSha256)}) is different from current CodeSHA256 in $LATEST (${latestB64}). Please try again with the current CodeSHA256.`,
      );
    }
    if (latest.state !== "Active" || latest.row.last_update_status !== "Successful") {
      throw ResourceConflict(
        `The operation cannot be performed at this time. An update is in progress for resource: ${functionArn(region, name)}`,
      );
    }
    const description =
      input.Description === undefined ? latest.config.Description : String(input.Description);
    // Publishing an unchanged $LATEST again returns the version that already holds it.
    const newest = await this.db
      .selectFrom("function_versions")
      .selectAll()
      .where("function_name", "=", name)
      .where("version", "!=", LATEST)
      .execute();
    newest.sort((a, b) => versionOrder(b.version) - versionOrder(a.version));
    const top = newest[0];
    if (top && unchangedSince(top, latest.row)) return toVersion(top);
    return this.db.transaction().execute(async (tx) => {
      const fn = await tx
        .updateTable("functions")
        .set((eb) => ({ last_version: eb("last_version", "+", 1) }))
        .where("name", "=", name)
        .returning("last_version")
        .executeTakeFirst();
      if (!fn) throw notFound(region, name);
      // Publishing gives $LATEST a new RevisionId (as Lambda does); the version records it, so
      // publishing again with nothing changed still finds this version.
      const latestRevision = randomUUID();
      const moved = await tx
        .updateTable("function_versions")
        .set({ revision_id: latestRevision })
        .where("function_name", "=", name)
        .where("version", "=", LATEST)
        .where("revision_id", "=", latest.revisionId)
        .executeTakeFirst();
      if (Number(moved.numUpdatedRows) !== 1) {
        throw PreconditionFailed(
          "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        );
      }
      const config: StoredConfig = {
        ...latest.config,
        Description: description,
        PublishedFromRevisionId: latestRevision,
      };
      const row: FunctionVersionsTable = {
        ...latest.row,
        version: String(fn.last_version),
        config: JSON.stringify(config),
        revision_id: randomUUID(),
        last_modified: Date.now(),
      };
      await tx.insertInto("function_versions").values(row).execute();
      return toVersion(row);
    });
  }

  async delete(ref: FunctionRef, region: string): Promise<void> {
    await this.exclusive(ref.name, async () => {
      if (ref.qualifier === LATEST) {
        throw InvalidParameterValue("$LATEST version cannot be deleted without deleting the function.");
      }
      const rows = await this.db
        .selectFrom("function_versions")
        .select(["version", "code_sha256"])
        .where("function_name", "=", ref.name)
        .$if(ref.qualifier !== undefined, (q) => q.where("version", "=", ref.qualifier as string))
        .execute();
      if (rows.length === 0) {
        // A version that does not exist (or no longer exists) of an existing function: nothing to do,
        // and Lambda answers 204 as for a deleted one.
        if (ref.qualifier !== undefined && /^\d+$/.test(ref.qualifier)) {
          await this.getFunctionRow(ref.name, region);
          return;
        }
        throw notFound(region, ref.name, ref.qualifier);
      }
      if (ref.qualifier === undefined) {
        await this.db.transaction().execute(async (tx) => {
          // Versions first (they reference the function), explicitly on both engines.
          await tx.deleteFrom("function_versions").where("function_name", "=", ref.name).execute();
          await tx.deleteFrom("aliases").where("function_name", "=", ref.name).execute();
          await tx.deleteFrom("provisioned_concurrency").where("function_name", "=", ref.name).execute();
          await tx.deleteFrom("function_settings").where("function_name", "=", ref.name).execute();
          await tx.deleteFrom("functions").where("name", "=", ref.name).execute();
        });
      } else {
        const version = ref.qualifier;
        const aliases = await this.db
          .selectFrom("aliases")
          .select(["name", "function_version", "weights"])
          .where("function_name", "=", ref.name)
          .execute();
        const using = aliases
          .filter(
            (a) =>
              a.function_version === version || version in numberMapColumn("aliases", "weights", a.weights),
          )
          .map((a) => a.name);
        if (using.length > 0) {
          throw ResourceConflict(
            `Unable to delete version because the following aliases reference it: [${using.join(", ")}]`,
          );
        }
        await this.db.transaction().execute(async (tx) => {
          await tx
            .deleteFrom("function_versions")
            .where("function_name", "=", ref.name)
            .where("version", "=", version)
            .execute();
          await tx
            .deleteFrom("provisioned_concurrency")
            .where("function_name", "=", ref.name)
            .where("qualifier", "=", version)
            .execute();
          await tx
            .deleteFrom("function_settings")
            .where("function_name", "=", ref.name)
            .where("qualifier", "=", version)
            .execute();
        });
      }
      for (const sha of new Set(rows.map((r) => r.code_sha256))) await this.collectBlob(sha);
      this.events.emit(
        "change",
        ref.qualifier === undefined ? { name: ref.name } : { name: ref.name, version: ref.qualifier },
      );
    });
  }

  /**
   * Drop a code blob nothing references any more. The blob row is locked first
   * (PostgreSQL; SQLite has one writer), and putBlob locks it too, so a
   * concurrent create or update that reuses the same package on another
   * server either commits its reference before we look, or re-inserts the
   * blob after we delete it: a referenced blob is never lost.
   */
  private async collectBlob(sha256: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const blob = await tx
        .selectFrom("code_blobs")
        .select("sha256")
        .where("sha256", "=", sha256)
        .$if(this.store.engine === "postgres", (q) => q.forUpdate())
        .executeTakeFirst();
      if (!blob) return;
      const used = await tx
        .selectFrom("function_versions")
        .select("function_name")
        .where("code_sha256", "=", sha256)
        .limit(1)
        .executeTakeFirst();
      if (!used) await tx.deleteFrom("code_blobs").where("sha256", "=", sha256).execute();
    });
  }

  async loadZip(sha256: string): Promise<Buffer> {
    const row = await this.db
      .selectFrom("code_blobs")
      .select("data")
      .where("sha256", "=", sha256)
      .executeTakeFirst();
    if (!row) throw ResourceNotFound(`Code package ${sha256} not found`);
    return Buffer.from(row.data);
  }

  async tags(name: string, region: string): Promise<Record<string, string>> {
    const row = await this.getFunctionRow(name, region);
    return stringMapColumn("functions", "tags", row.tags);
  }

  async tag(name: string, region: string, add: unknown): Promise<void> {
    const more = validateTags(add);
    await this.exclusive(name, async () => {
      const tags = { ...(await this.tags(name, region)), ...more };
      if (Object.keys(tags).length > MAX_TAGS)
        throw InvalidParameterValue(`A resource can have at most ${MAX_TAGS} tags.`);
      await this.db
        .updateTable("functions")
        .set({ tags: JSON.stringify(tags) })
        .where("name", "=", name)
        .execute();
    });
  }

  async untag(name: string, region: string, keys: string[]): Promise<void> {
    await this.exclusive(name, async () => {
      const tags = await this.tags(name, region);
      for (const k of keys) delete tags[k];
      await this.db
        .updateTable("functions")
        .set({ tags: JSON.stringify(tags) })
        .where("name", "=", name)
        .execute();
    });
  }

  async countFunctions(): Promise<{ count: number; codeSize: number }> {
    const r = await this.db
      .selectFrom("function_versions")
      .select((eb) => [eb.fn.countAll<number>().as("count"), eb.fn.sum<number>("code_size").as("size")])
      .executeTakeFirstOrThrow();
    const fns = await this.db
      .selectFrom("functions")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return { count: Number(fns.n), codeSize: Number(r.size ?? 0) };
  }
}

async function putBlob(tx: Transaction<Database>, pkg: CodePackage, zip: Buffer): Promise<void> {
  await tx
    .insertInto("code_blobs")
    .values({ sha256: pkg.sha256, size: pkg.size, data: zip, created_at: Date.now() })
    // An update (not "do nothing") takes the row lock collectBlob waits for.
    .onConflict((oc) => oc.column("sha256").doUpdateSet((eb) => ({ size: eb.ref("excluded.size") })))
    .execute();
}

function toVersion(row: FunctionVersionsTable): FunctionVersion {
  return {
    name: row.function_name,
    version: row.version,
    config: storedConfigColumn(row.config),
    codeSha256: row.code_sha256,
    revisionId: row.revision_id,
    state: row.state,
    row,
  };
}

function checkRevision(given: unknown, current: string): void {
  if (given !== undefined && given !== current) {
    throw PreconditionFailed(
      "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    );
  }
}

function checkUpdatable(current: FunctionVersion, region: string): void {
  if (current.row.last_update_status === "InProgress") {
    throw ResourceConflict(
      `The operation cannot be performed at this time. An update is in progress for resource: ${functionArn(region, current.name)}`,
    );
  }
}

function versionOrder(v: string): number {
  return v === LATEST ? -1 : Number(v);
}

/**
 * Whether $LATEST is still what `version` was published from. Every change of
 * $LATEST's code or configuration (Description included) gives it a new
 * RevisionId, which the version records.
 */
function unchangedSince(version: FunctionVersionsTable, latest: FunctionVersionsTable): boolean {
  const from = storedConfigColumn(version.config).PublishedFromRevisionId;
  if (from !== undefined) return from === latest.revision_id;
  return version.code_sha256 === latest.code_sha256 && sameConfig(version.config, latest.config);
}

function sameConfig(a: string, b: string): boolean {
  const strip = (s: string) => {
    const { Description: _, ...rest } = storedConfigColumn(s);
    return JSON.stringify(rest);
  };
  return strip(a) === strip(b);
}

export function validateTags(input: unknown): Record<string, string> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw constraintViolation("tags", input, "Member must be a map of strings");
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(input)) {
    if (k.length < 1 || k.length > 128)
      throw InvalidParameterValue(`Tag key '${k}' must be 1 to 128 characters.`);
    if (k.toLowerCase().startsWith("aws:"))
      throw InvalidParameterValue("Tag keys prefixed with 'aws:' are reserved.");
    if (typeof v !== "string" || v.length > 256)
      throw InvalidParameterValue(`Tag value for '${k}' must be a string of at most 256 characters.`);
    out[k] = v;
  }
  if (Object.keys(out).length > MAX_TAGS)
    throw InvalidParameterValue(`A resource can have at most ${MAX_TAGS} tags.`);
  return out;
}

/** A ListFunctions marker: the last function (and version, for FunctionVersion=ALL) shown. */
function encodeListMarker(name: string, version?: string): string {
  return encodeMarker(version === undefined ? name : `${name}:${version}`);
}

function decodeListMarker(marker: string): { name: string; version?: string } {
  const raw = decodeMarker(marker);
  const [name, version] = raw.split(":");
  if (
    !name ||
    !/^[a-zA-Z0-9_-]{1,64}$/.test(name) ||
    (version !== undefined && !/^(\$LATEST|\d+)$/.test(version))
  ) {
    throw InvalidParameterValue("Invalid Marker");
  }
  return version === undefined ? { name } : { name, version };
}
