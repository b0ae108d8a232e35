/**
 * Function URLs (Create/Get/Update/Delete/ListFunctionUrlConfig(s)): one URL per function ($LATEST)
 * or alias, never a numbered version. Each has a random 32-character id that names it in its host
 * (`<id>.lambda-url.<region>.localhost:<port>`) and in the path form (`/_lambent/urls/<id>/…`); the
 * front door (api/function-url.ts) finds it by that id. A URL goes with its function or alias.
 */
import { randomBytes } from "node:crypto";
import { InvalidParameterValue, ResourceConflict, ResourceNotFound } from "../errors.js";
import { objectColumn } from "../store/columns.js";
import type { FunctionUrlsTable } from "../store/schema.js";
import type { Store } from "../store/store.js";
import type { AliasService } from "./aliases.js";
import { type FunctionRef, functionArn } from "./arn.js";
import { type FunctionService, LATEST } from "./functions.js";
import { pageAfter } from "./marker.js";

export type FunctionUrlAuthType = "NONE" | "AWS_IAM";
export type InvokeMode = "BUFFERED" | "RESPONSE_STREAM";

export interface Cors {
  AllowCredentials?: boolean;
  AllowHeaders?: string[];
  AllowMethods?: string[];
  AllowOrigins?: string[];
  ExposeHeaders?: string[];
  MaxAge?: number;
}

/** A URL as the front door needs it. */
export interface FunctionUrl {
  urlId: string;
  functionName: string;
  /** "$LATEST" or an alias. */
  qualifier: string;
  authType: FunctionUrlAuthType;
  cors?: Cors;
  invokeMode: InvokeMode;
}

export interface FunctionUrlInput {
  AuthType?: unknown;
  Cors?: unknown;
  InvokeMode?: unknown;
}

const URL_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
/** What a URL id looks like (32 lower-case letters and digits, as Lambda's). */
export const URL_ID_RE = /^[a-z0-9]{32}$/;
const METHODS = new Set(["GET", "PUT", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS", "*"]);

function newUrlId(): string {
  const bytes = randomBytes(32);
  let id = "";
  for (const b of bytes) id += URL_ID_ALPHABET[b % URL_ID_ALPHABET.length];
  return id;
}

/** `http://<id>.lambda-url.<region>.<host>:<port>/`: `localhost` when the server's own host is an address. */
export function functionUrlOf(publicUrl: string, urlId: string, region: string): string {
  const u = new URL(publicUrl);
  const host = /^[\d.]+$|^\[|^localhost$/i.test(u.hostname) ? "localhost" : u.hostname;
  return `${u.protocol}//${urlId}.lambda-url.${region}.${host}${u.port ? `:${u.port}` : ""}/`;
}

function iso(ms: number): string {
  // Lambda's form: microseconds and a Z (2021-10-29T18:23:07.469651Z).
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function stringList(v: unknown, member: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
    throw InvalidParameterValue(`${member} must be a list of strings.`);
  }
  return v;
}

function parseCors(v: unknown): Cors | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw InvalidParameterValue("Cors must be an object.");
  const c = v as Record<string, unknown>;
  const out: Cors = {};
  if (c.AllowCredentials !== undefined && c.AllowCredentials !== null) {
    if (typeof c.AllowCredentials !== "boolean") {
      throw InvalidParameterValue("Cors.AllowCredentials must be a boolean.");
    }
    out.AllowCredentials = c.AllowCredentials;
  }
  for (const key of ["AllowHeaders", "AllowMethods", "AllowOrigins", "ExposeHeaders"] as const) {
    const list = stringList(c[key], `Cors.${key}`);
    if (list !== undefined) out[key] = list;
  }
  for (const m of out.AllowMethods ?? []) {
    if (!METHODS.has(m.toUpperCase())) {
      throw InvalidParameterValue(`${m} is not a valid HTTP method for Cors.AllowMethods.`);
    }
  }
  if (c.MaxAge !== undefined && c.MaxAge !== null) {
    if (typeof c.MaxAge !== "number" || !Number.isInteger(c.MaxAge)) {
      throw InvalidParameterValue("Cors.MaxAge must be an integer.");
    }
    out.MaxAge = c.MaxAge;
  }
  // An empty Cors removes the configuration (how tools such as Terraform drop a cors block).
  return Object.keys(out).length > 0 ? out : undefined;
}

function parseAuthType(v: unknown): FunctionUrlAuthType {
  if (v !== "NONE" && v !== "AWS_IAM") throw InvalidParameterValue("AuthType must be NONE or AWS_IAM.");
  return v;
}

function parseInvokeMode(v: unknown): InvokeMode {
  if (v !== "BUFFERED" && v !== "RESPONSE_STREAM") {
    throw InvalidParameterValue("InvokeMode must be BUFFERED or RESPONSE_STREAM.");
  }
  return v;
}

function toUrl(row: FunctionUrlsTable): FunctionUrl {
  return {
    urlId: row.url_id,
    functionName: row.function_name,
    qualifier: row.qualifier,
    authType: parseAuthType(row.auth_type),
    ...(row.cors ? { cors: objectColumn("function_urls", "cors", row.cors) as Cors } : {}),
    invokeMode: parseInvokeMode(row.invoke_mode),
  };
}

/** How long the front door trusts what it looked up (a change on another server shows after this). */
const LOOKUP_TTL_MS = 1000;

export class FunctionUrlService {
  private readonly byId = new Map<string, { at: number; url: FunctionUrl | null }>();

  constructor(
    private readonly store: Store,
    private readonly functions: FunctionService,
    aliases: AliasService,
    private readonly publicUrl: () => string,
  ) {
    functions.events.on("change", ({ name, version }) => {
      if (version === undefined) void this.dropIfGone(name).catch(() => {});
    });
    aliases.events.on("change", (name) => void this.dropIfGone(name).catch(() => {}));
  }

  /** A deleted function's URLs, and those of its deleted aliases, go with them. */
  private async dropIfGone(name: string): Promise<void> {
    const fn = await this.store.db
      .selectFrom("functions")
      .select("name")
      .where("name", "=", name)
      .executeTakeFirst();
    const aliases = fn
      ? (
          await this.store.db.selectFrom("aliases").select("name").where("function_name", "=", name).execute()
        ).map((a) => a.name)
      : [];
    await this.store.db
      .deleteFrom("function_urls")
      .where("function_name", "=", name)
      .$if(fn !== undefined, (d) => d.where("qualifier", "not in", [LATEST, ...aliases]))
      .execute();
    this.byId.clear();
  }

  /** The function and (for a qualifier) its alias must exist; the answer is the stored qualifier. */
  private async check(ref: FunctionRef, region: string): Promise<string> {
    await this.functions.getFunctionRow(ref.name, region);
    const qualifier = ref.qualifier ?? LATEST;
    if (qualifier === LATEST) return qualifier;
    if (/^\d+$/.test(qualifier)) {
      throw InvalidParameterValue("Function URLs are supported only on $LATEST or an alias.");
    }
    const alias = await this.store.db
      .selectFrom("aliases")
      .select("name")
      .where("function_name", "=", ref.name)
      .where("name", "=", qualifier)
      .executeTakeFirst();
    if (!alias) throw ResourceNotFound(`Function not found: ${functionArn(region, ref.name, qualifier)}`);
    return qualifier;
  }

  private row(name: string, qualifier: string): Promise<FunctionUrlsTable | undefined> {
    return this.store.db
      .selectFrom("function_urls")
      .selectAll()
      .where("function_name", "=", name)
      .where("qualifier", "=", qualifier)
      .executeTakeFirst();
  }

  private toApi(row: FunctionUrlsTable, region: string, withModified: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {
      FunctionUrl: functionUrlOf(this.publicUrl(), row.url_id, region),
      FunctionArn: functionArn(
        region,
        row.function_name,
        row.qualifier === LATEST ? undefined : row.qualifier,
      ),
      AuthType: row.auth_type,
      CreationTime: iso(Number(row.created_at)),
      InvokeMode: row.invoke_mode,
    };
    if (row.cors) out.Cors = objectColumn("function_urls", "cors", row.cors);
    if (withModified) out.LastModifiedTime = iso(Number(row.last_modified));
    return out;
  }

  async create(ref: FunctionRef, region: string, input: FunctionUrlInput) {
    const qualifier = await this.check(ref, region);
    const authType = parseAuthType(input.AuthType);
    const cors = parseCors(input.Cors);
    const invokeMode = input.InvokeMode === undefined ? "BUFFERED" : parseInvokeMode(input.InvokeMode);
    const now = Date.now();
    const row: FunctionUrlsTable = {
      function_name: ref.name,
      qualifier,
      url_id: newUrlId(),
      auth_type: authType,
      cors: cors ? JSON.stringify(cors) : null,
      invoke_mode: invokeMode,
      created_at: now,
      last_modified: now,
    };
    const conflict = () =>
      ResourceConflict(
        `Failed to create function url config for [functionArn = ${functionArn(region, ref.name, qualifier === LATEST ? undefined : qualifier)}]. Error message:  FunctionUrlConfig exists for this Lambda function`,
      );
    if (await this.row(ref.name, qualifier)) throw conflict();
    const res = await this.store.db
      .insertInto("function_urls")
      .values(row)
      .onConflict((oc) => oc.columns(["function_name", "qualifier"]).doNothing())
      .executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 1) === 0) throw conflict();
    this.byId.delete(row.url_id);
    return this.toApi(row, region, false);
  }

  private missing(): Error {
    return ResourceNotFound("The resource you requested does not exist.");
  }

  async get(ref: FunctionRef, region: string) {
    const qualifier = await this.check(ref, region);
    const row = await this.row(ref.name, qualifier);
    if (!row) throw this.missing();
    return this.toApi(row, region, true);
  }

  async update(ref: FunctionRef, region: string, input: FunctionUrlInput) {
    const qualifier = await this.check(ref, region);
    const current = await this.row(ref.name, qualifier);
    if (!current) throw this.missing();
    const next: FunctionUrlsTable = { ...current, last_modified: Date.now() };
    if (input.AuthType !== undefined) next.auth_type = parseAuthType(input.AuthType);
    if (input.Cors !== undefined) {
      const cors = parseCors(input.Cors);
      next.cors = cors ? JSON.stringify(cors) : null;
    }
    if (input.InvokeMode !== undefined) next.invoke_mode = parseInvokeMode(input.InvokeMode);
    await this.store.db
      .updateTable("function_urls")
      .set({
        auth_type: next.auth_type,
        cors: next.cors,
        invoke_mode: next.invoke_mode,
        last_modified: next.last_modified,
      })
      .where("function_name", "=", ref.name)
      .where("qualifier", "=", qualifier)
      .execute();
    this.byId.delete(current.url_id);
    return this.toApi(next, region, true);
  }

  async delete(ref: FunctionRef, region: string): Promise<void> {
    const qualifier = await this.check(ref, region);
    const current = await this.row(ref.name, qualifier);
    if (!current) throw this.missing();
    await this.store.db
      .deleteFrom("function_urls")
      .where("function_name", "=", ref.name)
      .where("qualifier", "=", qualifier)
      .execute();
    this.byId.delete(current.url_id);
  }

  async list(name: string, region: string, marker: string | undefined, maxItems: number) {
    await this.functions.getFunctionRow(name, region);
    const rows = await this.store.db
      .selectFrom("function_urls")
      .selectAll()
      .where("function_name", "=", name)
      .execute();
    const { page, nextMarker } = pageAfter(rows, (r) => r.qualifier, marker, maxItems);
    const configs = page.map((r) => this.toApi(r, region, true));
    return nextMarker
      ? { FunctionUrlConfigs: configs, NextMarker: nextMarker }
      : { FunctionUrlConfigs: configs };
  }

  /** The URL with this id, or null (cached briefly: the front door asks on every request). */
  async byUrlId(urlId: string): Promise<FunctionUrl | null> {
    if (!URL_ID_RE.test(urlId)) return null;
    const hit = this.byId.get(urlId);
    if (hit && Date.now() - hit.at < LOOKUP_TTL_MS) return hit.url;
    const row = await this.store.db
      .selectFrom("function_urls")
      .selectAll()
      .where("url_id", "=", urlId)
      .executeTakeFirst();
    const url = row ? toUrl(row) : null;
    if (this.byId.size > 10_000) this.byId.clear();
    this.byId.set(urlId, { at: Date.now(), url });
    return url;
  }
}
