/**
 * Layers: PublishLayerVersion, Get/GetByArn/List/ListVersions/Delete, the
 * check of a function's `Layers`, and the merged `/opt` directory of a layer
 * list (each layer extracted once per content hash, then merged in order into
 * one read-only directory per distinct list, cached in the data dir).
 */
import { createHash, randomUUID } from "node:crypto";
import { link, lstat, mkdir, readdir, readlink, rename, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import type { MergedLayers } from "../artifacts/artifact-store.js";
import { ACCOUNT_ID, DEFAULT_LIMITS, type Limits } from "../config.js";
import {
  constraintViolation,
  InvalidParameterValue,
  RequestEntityTooLarge,
  ResourceNotFound,
} from "../errors.js";
import { stringListColumn } from "../store/columns.js";
import type { LayerVersionsTable } from "../store/schema.js";
import type { Store } from "../store/store.js";
import { exists, extractPackage, inspectPackage, sweepInterrupted } from "./code.js";
import { lambdaTimestamp, RUNTIMES } from "./function-config.js";
import { decodeMarker, encodeMarker } from "./marker.js";

const LAYER_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;
const LAYER_ARN_RE = /^arn:[a-zA-Z0-9-]+:lambda:([a-zA-Z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]+)$/;
const LAYER_VERSION_ARN_RE =
  /^arn:[a-zA-Z0-9-]+:lambda:([a-zA-Z0-9-]+):(\d{12}):layer:([a-zA-Z0-9_-]+):(\d+)$/;
const ARCHITECTURES = ["x86_64", "arm64"];
/** Lambda's limit of layers per function. */
export const MAX_LAYERS = 5;

export function layerArn(region: string, name: string): string {
  return `arn:aws:lambda:${region}:${ACCOUNT_ID}:layer:${name}`;
}

/** A layer version as the worker needs it. */
export interface ResolvedLayer {
  arn: string;
  sha256: string;
  codeSize: number;
  unzippedSize: number;
}

/** LayerName in a path: a name or a layer ARN. */
export function parseLayerName(input: string): string {
  if (input.length < 1 || input.length > 140) {
    throw constraintViolation("layerName", input, "Member must have length less than or equal to 140");
  }
  const arn = LAYER_ARN_RE.exec(input);
  const name = arn ? (arn[3] as string) : input;
  if (!LAYER_NAME_RE.test(name)) {
    throw constraintViolation(
      "layerName",
      input,
      "Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+",
    );
  }
  return name;
}

export function parseVersionNumber(raw: string): number {
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(n)) {
    throw constraintViolation("versionNumber", raw, "Member must be a number");
  }
  // Versions start at 1; Lambda answers 0 and negative numbers with this text (as LocalStack's
  // parity-tested provider reproduces it) rather than a not-found.
  if (n < 1) throw InvalidParameterValue("Layer Version Cannot be less than 1");
  return n;
}

function stringList(member: string, v: unknown, allowed: readonly string[], max: number): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw constraintViolation(member, v, "Member must be a list of strings");
  }
  if (v.length > max) {
    throw constraintViolation(member, v, `Member must have length less than or equal to ${max}`);
  }
  for (const x of v as string[]) {
    if (!allowed.includes(x)) {
      throw constraintViolation(member, v, `Member must satisfy enum value set: [${allowed.join(", ")}]`);
    }
  }
  return v as string[];
}

export class LayerService {
  constructor(
    private readonly store: Store,
    private readonly limits: Limits,
  ) {}

  private get db() {
    return this.store.db;
  }

  async publish(name: string, input: Record<string, unknown>): Promise<LayerVersionsTable> {
    const content = input.Content as { ZipFile?: unknown; S3Bucket?: unknown } | undefined;
    if (!content || typeof content !== "object")
      throw constraintViolation("content", "null", "Member must not be null");
    if (content.S3Bucket !== undefined)
      throw InvalidParameterValue("Lambent accepts layer content only as Content.ZipFile.");
    if (typeof content.ZipFile !== "string")
      throw InvalidParameterValue("Please provide a source for the layer content.");
    const zip = Buffer.from(content.ZipFile, "base64");
    if (zip.length > this.limits.zipBytes) {
      throw RequestEntityTooLarge(
        `Request must be smaller than ${Math.ceil((this.limits.zipBytes * 4) / 3)} bytes for the PublishLayerVersion operation`,
      );
    }
    const description = input.Description === undefined ? "" : input.Description;
    if (typeof description !== "string" || description.length > 256)
      throw constraintViolation(
        "description",
        description,
        "Member must have length less than or equal to 256",
      );
    const license = input.LicenseInfo;
    if (license !== undefined && (typeof license !== "string" || license.length > 512))
      throw constraintViolation("licenseInfo", license, "Member must have length less than or equal to 512");
    const runtimes = stringList("compatibleRuntimes", input.CompatibleRuntimes, RUNTIMES, 15);
    const archs = stringList("compatibleArchitectures", input.CompatibleArchitectures, ARCHITECTURES, 2);
    const pkg = await inspectPackage(zip, this.limits);
    // The next number follows every version ever published under the name, deleted ones included.
    for (let attempt = 0; ; attempt++) {
      const top = await this.db
        .selectFrom("layer_versions")
        .select((eb) => eb.fn.max("version").as("v"))
        .where("layer_name", "=", name)
        .executeTakeFirst();
      const row: LayerVersionsTable = {
        layer_name: name,
        version: Number(top?.v ?? 0) + 1,
        description,
        license_info: license === undefined ? null : (license as string),
        compatible_runtimes: JSON.stringify(runtimes),
        compatible_architectures: JSON.stringify(archs),
        code_sha256: pkg.sha256,
        code_size: pkg.size,
        unzipped_size: pkg.unzippedSize,
        data: zip,
        created_at: Date.now(),
        deleted: 0,
      };
      try {
        await this.db.insertInto("layer_versions").values(row).execute();
        return row;
      } catch (err) {
        const code = (err as { code?: string }).code ?? "";
        if (attempt < 5 && (code === "23505" || code.startsWith("SQLITE_CONSTRAINT"))) continue;
        throw err;
      }
    }
  }

  async get(name: string, version: number): Promise<LayerVersionsTable> {
    const row = await this.db
      .selectFrom("layer_versions")
      .selectAll()
      .where("layer_name", "=", name)
      .where("version", "=", version)
      .where("deleted", "=", 0)
      .executeTakeFirst();
    if (!row) throw ResourceNotFound("The resource you requested does not exist.");
    return row;
  }

  async getByArn(arn: string | undefined): Promise<LayerVersionsTable> {
    const m = arn === undefined ? null : LAYER_VERSION_ARN_RE.exec(arn);
    if (!m) {
      throw constraintViolation(
        "arn",
        arn ?? "null",
        "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+",
      );
    }
    return this.get(m[3] as string, Number(m[4]));
  }

  /** Versions of a layer, newest first (optionally only those compatible with a runtime / architecture). */
  async listVersions(
    name: string,
    filter: { runtime?: string; architecture?: string },
    marker: string | undefined,
    maxItems: number,
  ): Promise<{ items: LayerVersionsTable[]; nextMarker?: string }> {
    let rows = await this.db
      .selectFrom("layer_versions")
      .selectAll()
      .where("layer_name", "=", name)
      .where("deleted", "=", 0)
      .orderBy("version", "desc")
      .execute();
    rows = rows.filter((r) => compatible(r, filter));
    if (marker !== undefined) {
      const after = Number(decodeMarker(marker));
      if (!Number.isInteger(after)) throw InvalidParameterValue("Invalid Marker");
      rows = rows.filter((r) => r.version < after);
    }
    const page = rows.slice(0, maxItems);
    const last = page[page.length - 1];
    return rows.length > maxItems && last
      ? { items: page, nextMarker: encodeMarker(String(last.version)) }
      : { items: page };
  }

  /** Every layer with its latest (matching) version, by name. */
  async list(
    filter: { runtime?: string; architecture?: string },
    marker: string | undefined,
    maxItems: number,
  ): Promise<{ items: LayerVersionsTable[]; nextMarker?: string }> {
    const rows = await this.db
      .selectFrom("layer_versions")
      .selectAll()
      .where("deleted", "=", 0)
      .orderBy("layer_name")
      .orderBy("version", "desc")
      .execute();
    const latest = new Map<string, LayerVersionsTable>();
    for (const r of rows) if (!latest.has(r.layer_name) && compatible(r, filter)) latest.set(r.layer_name, r);
    let items = [...latest.values()].sort((a, b) => (a.layer_name < b.layer_name ? -1 : 1));
    if (marker !== undefined) {
      const after = decodeMarker(marker);
      items = items.filter((r) => r.layer_name > after);
    }
    const page = items.slice(0, maxItems);
    const last = page[page.length - 1];
    return items.length > maxItems && last
      ? { items: page, nextMarker: encodeMarker(last.layer_name) }
      : { items: page };
  }

  /** Idempotent, as Lambda's. Functions that use the version keep it. */
  async delete(name: string, version: number): Promise<void> {
    await this.db
      .updateTable("layer_versions")
      .set({ deleted: 1 })
      .where("layer_name", "=", name)
      .where("version", "=", version)
      .execute();
  }

  /**
   * The check of a function's `Layers` (Create / UpdateFunctionConfiguration):
   * each must exist (deleted versions a function already uses stay usable),
   * at most 5, one version per layer. Returns them resolved, in order.
   */
  async resolve(arns: string[], alreadyUsed: readonly string[] = []): Promise<ResolvedLayer[]> {
    if (arns.length > MAX_LAYERS) throw InvalidParameterValue("Cannot reference more than 5 layers.");
    const seen = new Set<string>();
    const out: ResolvedLayer[] = [];
    for (const arn of arns) {
      const m = LAYER_VERSION_ARN_RE.exec(arn);
      if (!m) throw InvalidParameterValue(`Layer version ${arn} does not exist.`);
      const name = m[3] as string;
      if (seen.has(name)) {
        throw InvalidParameterValue(
          "Two different versions of the same layer are not allowed to be referenced in the same function. " +
            `Layer ${layerArn(m[1] as string, name)} is referenced more than once.`,
        );
      }
      seen.add(name);
      const row = await this.db
        .selectFrom("layer_versions")
        .select(["code_sha256", "code_size", "unzipped_size", "deleted"])
        .where("layer_name", "=", name)
        .where("version", "=", Number(m[4]))
        .executeTakeFirst();
      if (!row || (row.deleted && !alreadyUsed.includes(arn))) {
        throw InvalidParameterValue(`Layer version ${arn} does not exist.`);
      }
      out.push({
        arn,
        sha256: row.code_sha256,
        codeSize: Number(row.code_size),
        unzippedSize: Number(row.unzipped_size),
      });
    }
    return out;
  }

  /** Total unzipped size of the layers; throws Lambda's error when code + layers exceed the limit. */
  checkTotalSize(layers: ResolvedLayer[], codeUnzipped: number): void {
    const total = layers.reduce((n, l) => n + l.unzippedSize, codeUnzipped);
    if (total > this.limits.unzippedBytes) {
      throw InvalidParameterValue(
        `Function code combined with layers exceeds the maximum allowed size of ${this.limits.unzippedBytes} bytes. The actual size is ${total} bytes.`,
      );
    }
  }

  async loadZip(sha256: string): Promise<Buffer> {
    const row = await this.db
      .selectFrom("layer_versions")
      .select("data")
      .where("code_sha256", "=", sha256)
      .limit(1)
      .executeTakeFirst();
    if (!row) throw ResourceNotFound(`Layer content ${sha256} not found`);
    return Buffer.from(row.data);
  }
}

function compatible(r: LayerVersionsTable, f: { runtime?: string; architecture?: string }): boolean {
  if (
    f.runtime !== undefined &&
    !stringListColumn("layer_versions", "compatible_runtimes", r.compatible_runtimes).includes(f.runtime)
  )
    return false;
  if (
    f.architecture !== undefined &&
    !stringListColumn("layer_versions", "compatible_architectures", r.compatible_architectures).includes(
      f.architecture,
    )
  )
    return false;
  return true;
}

/** GetLayerVersion / PublishLayerVersion's answer (`location`: where the layer's zip is downloaded). */
export function layerVersionShape(
  r: LayerVersionsTable,
  region: string,
  location: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    Content: {
      Location: location,
      CodeSha256: Buffer.from(r.code_sha256, "hex").toString("base64"),
      CodeSize: Number(r.code_size),
    },
    LayerArn: layerArn(region, r.layer_name),
    ...layerVersionListItem(r, region),
  };
  return out;
}

/** A LayerVersionsListItem. */
export function layerVersionListItem(r: LayerVersionsTable, region: string): Record<string, unknown> {
  const runtimes = stringListColumn("layer_versions", "compatible_runtimes", r.compatible_runtimes);
  const archs = stringListColumn("layer_versions", "compatible_architectures", r.compatible_architectures);
  const out: Record<string, unknown> = {
    LayerVersionArn: `${layerArn(region, r.layer_name)}:${r.version}`,
    Version: r.version,
    Description: r.description,
    CreatedDate: lambdaTimestamp(Number(r.created_at)),
  };
  if (runtimes.length > 0) out.CompatibleRuntimes = runtimes;
  if (r.license_info !== null) out.LicenseInfo = r.license_info;
  if (archs.length > 0) out.CompatibleArchitectures = archs;
  return out;
}

export type { MergedLayers } from "../artifacts/artifact-store.js";

/**
 * Extraction and merge cache under `<root>`: `<root>/content/<sha>/` holds a
 * layer extracted once; `<root>/merged/<key>/` a layer list merged in order
 * (later layers win), hard-linked from the extractions. Neither is ever
 * changed once renamed into place.
 */
export class LayerCache {
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(
    readonly root: string,
    private readonly loadZip: (sha256: string) => Promise<Buffer>,
    private readonly limits: Limits = DEFAULT_LIMITS,
  ) {}

  /** Sweep extractions and merges a crash interrupted (at start). */
  async sweep(): Promise<number> {
    return (
      (await sweepInterrupted(join(this.root, "content"))) +
      (await sweepInterrupted(join(this.root, "merged")))
    );
  }

  private once<T>(key: string, job: () => Promise<T>): Promise<T> {
    const inFlight = this.pending.get(key) as Promise<T> | undefined;
    if (inFlight) return inFlight;
    const p = job().finally(() => this.pending.delete(key));
    this.pending.set(key, p);
    return p;
  }

  private async extracted(sha256: string): Promise<string> {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`bad layer hash ${sha256}`);
    const dest = join(this.root, "content", sha256);
    return this.once(`c:${sha256}`, async () => {
      if (await exists(dest)) return dest;
      const tmp = join(this.root, "content", `.tmp-${sha256}-${randomUUID()}`);
      try {
        await extractPackage(await this.loadZip(sha256), tmp, this.limits);
        await renameInto(tmp, dest);
        return dest;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    });
  }

  /** The merged directory of these layers (by content hash, in order). */
  async merged(shas: string[]): Promise<MergedLayers> {
    const key = createHash("sha256").update(shas.join("\n")).digest("hex");
    const dest = join(this.root, "merged", key);
    const dir = await this.once(`m:${key}`, async () => {
      if (await exists(dest)) return dest;
      const sources = [];
      for (const sha of shas) sources.push(await this.extracted(sha));
      const tmp = join(this.root, "merged", `.tmp-${key}-${randomUUID()}`);
      try {
        await mkdir(tmp, { recursive: true, mode: 0o755 });
        for (const src of sources) await mergeInto(src, tmp);
        await renameInto(tmp, dest);
        return dest;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    });
    return { dir, extensions: await executables(join(dir, "extensions")) };
  }
}

async function renameInto(tmp: string, dest: string): Promise<void> {
  await rename(tmp, dest).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
    await rm(tmp, { recursive: true, force: true });
  });
}

/** Copy `src` over `dest` as hard links: a later layer's file replaces an earlier one's. */
async function mergeInto(src: string, dest: string): Promise<void> {
  for (const e of await readdir(src, { withFileTypes: true })) {
    const from = join(src, e.name);
    const to = join(dest, e.name);
    const existing = await lstat(to).catch(() => undefined);
    if (e.isDirectory()) {
      if (existing && !existing.isDirectory()) await rm(to, { recursive: true, force: true });
      if (!existing?.isDirectory()) await mkdir(to, { mode: 0o755 });
      await mergeInto(from, to);
      continue;
    }
    if (existing) await rm(to, { recursive: true, force: true });
    if (e.isSymbolicLink()) await symlink(await readlink(from), to);
    else await link(from, to);
  }
}

/** Executable regular files of `dir` (never following a link: only the sandbox follows a package's links). */
async function executables(dir: string): Promise<string[]> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) return [];
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const f = await lstat(join(dir, e.name)).catch(() => undefined);
    if (f?.isFile() && f.mode & 0o111) out.push(e.name);
  }
  return out.sort();
}
