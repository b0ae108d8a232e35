/**
 * Aliases: a name that points at a published version, optionally splitting
 * traffic with one more version (RoutingConfig.AdditionalVersionWeights).
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import {
  constraintViolation,
  InvalidParameterValue,
  PreconditionFailed,
  ResourceConflict,
  ResourceNotFound,
} from "../errors.js";
import { numberMapColumn } from "../store/columns.js";
import type { AliasesTable } from "../store/schema.js";
import type { Store } from "../store/store.js";
import { functionArn } from "./arn.js";
import { LATEST } from "./functions.js";
import { decodeMarker, encodeMarker } from "./marker.js";

const ALIAS_NAME_RE = /^(?!^[0-9]+$)([a-zA-Z0-9-_]+)$/;
const VERSION_RE = /^(\$LATEST|[0-9]+)$/;

export interface Alias {
  functionName: string;
  name: string;
  functionVersion: string;
  description: string;
  /** Additional version → weight (0–1). */
  weights: Record<string, number>;
  revisionId: string;
}

export interface AliasInput {
  Name?: unknown;
  FunctionVersion?: unknown;
  Description?: unknown;
  RoutingConfig?: unknown;
  RevisionId?: unknown;
}

/** A qualifier that names an alias rather than a version. */
export function isAliasQualifier(qualifier: string | undefined): qualifier is string {
  return qualifier !== undefined && !VERSION_RE.test(qualifier);
}

function toAlias(row: AliasesTable): Alias {
  return {
    functionName: row.function_name,
    name: row.name,
    functionVersion: row.function_version,
    description: row.description,
    weights: numberMapColumn("aliases", "weights", row.weights),
    revisionId: row.revision_id,
  };
}

export function aliasConfiguration(a: Alias, region: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    AliasArn: functionArn(region, a.functionName, a.name),
    Name: a.name,
    FunctionVersion: a.functionVersion,
    Description: a.description,
    RevisionId: a.revisionId,
  };
  if (Object.keys(a.weights).length > 0) out.RoutingConfig = { AdditionalVersionWeights: a.weights };
  return out;
}

export class AliasService {
  /** Emits "change" with the function name whenever one of its aliases changes. */
  readonly events = new EventEmitter<{ change: [string] }>();

  constructor(private readonly store: Store) {}

  private async versionExists(fn: string, version: string): Promise<boolean> {
    const row = await this.store.db
      .selectFrom("function_versions")
      .select("version")
      .where("function_name", "=", fn)
      .where("version", "=", version)
      .executeTakeFirst();
    return row !== undefined;
  }

  private async requireFunction(fn: string, region: string): Promise<void> {
    if (!(await this.versionExists(fn, LATEST)))
      throw ResourceNotFound(`Function not found: ${functionArn(region, fn)}`);
  }

  private async validateTarget(
    fn: string,
    version: string,
    weights: Record<string, number>,
    region: string,
  ): Promise<void> {
    if (!VERSION_RE.test(version)) {
      throw constraintViolation(
        "functionVersion",
        version,
        "Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)",
      );
    }
    if (!(await this.versionExists(fn, version))) {
      throw ResourceNotFound(`Function not found: ${functionArn(region, fn, version)}`);
    }
    const extra = Object.keys(weights);
    if (extra.length === 0) return;
    if (version === LATEST) {
      throw InvalidParameterValue("$LATEST is not supported for an alias pointing to more than 1 version");
    }
    for (const v of extra) {
      if (v === version) {
        throw InvalidParameterValue(`Alias with weights can not point to the same version: ${v}`);
      }
      if (v === LATEST) {
        throw InvalidParameterValue(
          `Version ${v} of function ${functionArn(region, fn)} does not exist or is $LATEST`,
        );
      }
      // A weight on a version that does not exist: 404, as for the alias's main version.
      if (!(await this.versionExists(fn, v))) {
        throw ResourceNotFound(`Function not found: ${functionArn(region, fn, v)}`);
      }
    }
  }

  async create(fn: string, input: AliasInput, region: string): Promise<Alias> {
    const name = input.Name;
    if (typeof name !== "string" || name.length < 1 || name.length > 128 || !ALIAS_NAME_RE.test(name)) {
      throw constraintViolation(
        "name",
        name ?? "null",
        "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
      );
    }
    if (typeof input.FunctionVersion !== "string") {
      throw constraintViolation(
        "functionVersion",
        input.FunctionVersion ?? "null",
        "Member must not be null",
      );
    }
    await this.requireFunction(fn, region);
    const weights = parseWeights(input.RoutingConfig);
    await this.validateTarget(fn, input.FunctionVersion, weights, region);
    const row: AliasesTable = {
      function_name: fn,
      name,
      function_version: input.FunctionVersion,
      description: description(input.Description) ?? "",
      weights: JSON.stringify(weights),
      revision_id: randomUUID(),
      last_modified: Date.now(),
    };
    try {
      await this.store.db.insertInto("aliases").values(row).execute();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "23505" || code?.startsWith("SQLITE_CONSTRAINT")) {
        throw ResourceConflict(`Alias already exists: ${functionArn(region, fn, name)}`);
      }
      throw err;
    }
    this.events.emit("change", fn);
    return toAlias(row);
  }

  async get(fn: string, name: string, region: string): Promise<Alias> {
    const row = await this.store.db
      .selectFrom("aliases")
      .selectAll()
      .where("function_name", "=", fn)
      .where("name", "=", name)
      .executeTakeFirst();
    if (!row) {
      await this.requireFunction(fn, region);
      throw ResourceNotFound(`Alias not found: ${functionArn(region, fn, name)}`);
    }
    return toAlias(row);
  }

  async list(
    fn: string,
    region: string,
    version: string | undefined,
    marker: string | undefined,
    maxItems: number,
  ) {
    await this.requireFunction(fn, region);
    let q = this.store.db
      .selectFrom("aliases")
      .selectAll()
      .where("function_name", "=", fn)
      .orderBy("name")
      .limit(maxItems + 1);
    if (version !== undefined) q = q.where("function_version", "=", version);
    if (marker !== undefined) q = q.where("name", ">", decodeMarker(marker));
    const rows = await q.execute();
    const items = rows.slice(0, maxItems).map(toAlias);
    const last = items[items.length - 1];
    return rows.length > maxItems && last ? { items, nextMarker: encodeMarker(last.name) } : { items };
  }

  async update(fn: string, name: string, input: AliasInput, region: string): Promise<Alias> {
    const current = await this.get(fn, name, region);
    if (input.RevisionId !== undefined && input.RevisionId !== current.revisionId) {
      throw PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
      );
    }
    const version =
      typeof input.FunctionVersion === "string" ? input.FunctionVersion : current.functionVersion;
    const weights = input.RoutingConfig !== undefined ? parseWeights(input.RoutingConfig) : current.weights;
    await this.validateTarget(fn, version, weights, region);
    const next = {
      function_version: version,
      description: description(input.Description) ?? current.description,
      weights: JSON.stringify(weights),
      revision_id: randomUUID(),
      last_modified: Date.now(),
    };
    const res = await this.store.db
      .updateTable("aliases")
      .set(next)
      .where("function_name", "=", fn)
      .where("name", "=", name)
      .where("revision_id", "=", current.revisionId)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) {
      throw PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
      );
    }
    this.events.emit("change", fn);
    return {
      ...current,
      functionVersion: version,
      description: next.description,
      weights,
      revisionId: next.revision_id,
    };
  }

  async delete(fn: string, name: string, region: string): Promise<void> {
    await this.requireFunction(fn, region);
    await this.store.db
      .deleteFrom("aliases")
      .where("function_name", "=", fn)
      .where("name", "=", name)
      .execute();
    await this.store.db
      .deleteFrom("provisioned_concurrency")
      .where("function_name", "=", fn)
      .where("qualifier", "=", name)
      .execute();
    this.events.emit("change", fn);
  }

  /** Aliases that route to a version (a version they name may not be deleted). */
  async referencing(fn: string, version: string): Promise<string[]> {
    const rows = await this.store.db
      .selectFrom("aliases")
      .selectAll()
      .where("function_name", "=", fn)
      .execute();
    return rows
      .filter(
        (r) => r.function_version === version || version in numberMapColumn("aliases", "weights", r.weights),
      )
      .map((r) => r.name);
  }
}

function description(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.length > 256) {
    throw constraintViolation("description", v, "Member must have length less than or equal to 256");
  }
  return v;
}

function parseWeights(routing: unknown): Record<string, number> {
  if (routing === undefined || routing === null) return {};
  const w = (routing as { AdditionalVersionWeights?: unknown }).AdditionalVersionWeights;
  if (w === undefined || w === null) return {};
  if (typeof w !== "object" || Array.isArray(w)) {
    throw constraintViolation("routingConfig.additionalVersionWeights", w, "Member must be a map");
  }
  const entries = Object.entries(w as Record<string, unknown>);
  if (entries.length > 1) {
    throw InvalidParameterValue("Number of items in AdditionalVersionWeights cannot be greater than 1");
  }
  const out: Record<string, number> = {};
  for (const [v, weight] of entries) {
    if (!/^[0-9]+$/.test(v)) {
      throw constraintViolation(
        "routingConfig.additionalVersionWeights",
        v,
        "Member must satisfy regular expression pattern: [0-9]+",
      );
    }
    if (typeof weight !== "number" || !(weight >= 0 && weight <= 1)) {
      throw constraintViolation(
        "routingConfig.additionalVersionWeights",
        weight,
        "Member must have value between 0.0 and 1.0",
      );
    }
    out[v] = weight;
  }
  return out;
}
