/**
 * Resource-based policies: AddPermission / RemovePermission / GetPolicy on
 * functions, versions and aliases, and the layer-version equivalents. One
 * policy document per resource (function + qualifier, or layer version),
 * in AWS's JSON shape, with a RevisionId that changes on every write.
 *
 * A policy belongs to one incarnation of its resource: the row records the
 * resource's creation time, and a policy left from a deleted function (or
 * layer version) of the same name is treated as absent and replaced.
 */
import { randomUUID } from "node:crypto";
import { type PolicyDocument, parsePolicy } from "../auth/policy.js";
import { ACCOUNT_ID } from "../config.js";
import {
  constraintViolation,
  InvalidParameterValue,
  LambdaError,
  PreconditionFailed,
  ResourceConflict,
  ResourceNotFound,
} from "../errors.js";
import type { Store } from "../store/store.js";
import type { AliasService } from "./aliases.js";
import { functionArn, parseFunctionRef } from "./arn.js";
import type { FunctionService } from "./functions.js";
import type { LayerService } from "./layers.js";

const POLICY_LIMIT = 20_480;

export type PolicyKind = "function" | "layer";

interface Stored {
  doc: PolicyDocument;
  revisionId: string;
}

const NO_POLICY = () => ResourceNotFound("The resource you requested does not exist.");
const REVISION_MISMATCH = () =>
  PreconditionFailed(
    "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id",
  );

function str(
  v: unknown,
  member: string,
  opts: { required?: boolean; pattern?: RegExp; patternText?: string; max?: number; min?: number } = {},
): string | undefined {
  if (v === undefined || v === null) {
    if (opts.required) throw constraintViolation(member, "null", "Member must not be null");
    return undefined;
  }
  if (typeof v !== "string") throw InvalidParameterValue(`${member} must be a string.`);
  if (opts.min !== undefined && v.length < opts.min) {
    throw constraintViolation(member, v, `Member must have length greater than or equal to ${opts.min}`);
  }
  if (opts.max !== undefined && v.length > opts.max) {
    throw constraintViolation(member, v, `Member must have length less than or equal to ${opts.max}`);
  }
  if (opts.pattern && !opts.pattern.test(v)) {
    throw constraintViolation(
      member,
      v,
      `Member must satisfy regular expression pattern: ${opts.patternText}`,
    );
  }
  return v;
}

const STATEMENT_ID = { pattern: /^[a-zA-Z0-9_-]+$/, patternText: "([a-zA-Z0-9-_]+)", min: 1, max: 100 };

/**
 * The policy with one more statement: a duplicate sid is a conflict, the result must be a policy our
 * evaluator reads back exactly, and it must fit Lambda's size limit.
 */
function withStatement(current: PolicyDocument | undefined, sid: string, statement: unknown): PolicyDocument {
  const doc: PolicyDocument = current ?? { Version: "2012-10-17", Id: "default", Statement: [] };
  if (doc.Statement.some((s) => s.Sid === sid)) {
    throw ResourceConflict(
      "The statement id (sid) provided already exists. Please provide a new statement id, or remove the existing statement.",
    );
  }
  const next = { ...doc, Statement: [...doc.Statement, statement] } as unknown as PolicyDocument;
  parsePolicy(JSON.stringify(next), "resource");
  const size = JSON.stringify(next).length;
  if (size > POLICY_LIMIT) {
    throw new LambdaError(
      "PolicyLengthExceededException",
      400,
      `The final policy size (${size}) is bigger than the limit (${POLICY_LIMIT}).`,
    );
  }
  return next;
}

/** The policy without one statement (null once empty); a stale RevisionId or an unknown sid is refused. */
function withoutStatement(
  current: { doc: PolicyDocument; revisionId: string } | null,
  revision: string | undefined,
  statementId: string,
): PolicyDocument | null {
  if (!current) throw ResourceNotFound("No policy is associated with the given resource.");
  if (revision !== undefined && revision !== current.revisionId) throw REVISION_MISMATCH();
  const rest = current.doc.Statement.filter((s) => s.Sid !== statementId);
  if (rest.length === current.doc.Statement.length) {
    throw ResourceNotFound(`Statement ${statementId} is not found in resource policy.`);
  }
  return rest.length > 0 ? { ...current.doc, Statement: rest } : null;
}

export class PermissionService {
  private readonly cache = new Map<string, { at: number; doc: PolicyDocument | null }>();

  constructor(
    private readonly store: Store,
    private readonly functions: FunctionService,
    private readonly aliases: AliasService,
    private readonly layers: LayerService,
  ) {}

  private key(kind: PolicyKind, name: string, qualifier: string) {
    return `${kind}\0${name}\0${qualifier}`;
  }

  /** When the resource was created (identifies its incarnation); throws ResourceNotFound. */
  private async functionOwner(name: string, qualifier: string | undefined, region: string): Promise<number> {
    const fn = await this.functions.getFunctionRow(name, region);
    if (qualifier !== undefined) {
      if (/^(\$LATEST|\d+)$/.test(qualifier)) await this.functions.getVersion({ name, qualifier }, region);
      else await this.aliases.get(name, qualifier, region);
    }
    return fn.created_at;
  }

  private async load(
    kind: PolicyKind,
    name: string,
    qualifier: string,
    owner: number,
  ): Promise<Stored | null> {
    const row = await this.store.db
      .selectFrom("resource_policies")
      .selectAll()
      .where("kind", "=", kind)
      .where("name", "=", name)
      .where("qualifier", "=", qualifier)
      .executeTakeFirst();
    if (!row || row.owner_created_at !== owner) return null;
    return { doc: JSON.parse(row.policy) as PolicyDocument, revisionId: row.revision_id };
  }

  private async save(
    kind: PolicyKind,
    name: string,
    qualifier: string,
    owner: number,
    doc: PolicyDocument | null,
  ): Promise<string> {
    const revisionId = randomUUID();
    const db = this.store.db;
    await db.transaction().execute(async (tx) => {
      await tx
        .deleteFrom("resource_policies")
        .where("kind", "=", kind)
        .where("name", "=", name)
        .where("qualifier", "=", qualifier)
        .execute();
      if (doc) {
        await tx
          .insertInto("resource_policies")
          .values({
            kind,
            name,
            qualifier,
            policy: JSON.stringify(doc),
            revision_id: revisionId,
            owner_created_at: owner,
            updated_at: Date.now(),
          })
          .execute();
      }
    });
    this.cache.delete(this.key(kind, name, qualifier));
    return revisionId;
  }

  /** Writes to one resource's policy run one at a time in this process. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => {});
    this.chains.set(key, settled);
    void settled.then(() => {
      if (this.chains.get(key) === settled) this.chains.delete(key);
    });
    return next;
  }

  // ---- functions --------------------------------------------------------

  async addPermission(
    functionName: string,
    queryQualifier: string | undefined,
    input: Record<string, unknown>,
    region: string,
  ): Promise<{ Statement: string }> {
    const ref = parseFunctionRef(functionName, queryQualifier);
    const sid = str(input.StatementId, "statementId", { required: true, ...STATEMENT_ID }) as string;
    const action = str(input.Action, "action", {
      required: true,
      pattern: /^(lambda:[*]|lambda:[a-zA-Z]+|[*])$/,
      patternText: "(lambda:[*]|lambda:[a-zA-Z]+|[*])",
      max: 10000,
    }) as string;
    const principal = str(input.Principal, "principal", {
      required: true,
      pattern: /^[^\s]+$/,
      patternText: "[^\\s]+",
      max: 2048,
    }) as string;
    const sourceArn = str(input.SourceArn, "sourceArn", {
      pattern:
        /^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)$/,
      patternText:
        "arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)",
      max: 10000,
    });
    const sourceAccount = str(input.SourceAccount, "sourceAccount", {
      pattern: /^\d{12}$/,
      patternText: "\\d{12}",
      max: 12,
    });
    const orgId = str(input.PrincipalOrgID, "principalOrgID", {
      pattern: /^o-[a-z0-9]{10,32}$/,
      patternText: "o-[a-z0-9]{10,32}",
      min: 12,
      max: 34,
    });
    const token = str(input.EventSourceToken, "eventSourceToken", {
      pattern: /^[a-zA-Z0-9._-]+$/,
      patternText: "[a-zA-Z0-9._\\-]+",
      max: 256,
    });
    const urlAuth = str(input.FunctionUrlAuthType, "functionUrlAuthType");
    if (urlAuth !== undefined && urlAuth !== "NONE" && urlAuth !== "AWS_IAM") {
      throw constraintViolation(
        "functionUrlAuthType",
        urlAuth,
        "Member must satisfy enum value set: [NONE, AWS_IAM]",
      );
    }
    const viaUrl = input.InvokedViaFunctionUrl;
    if (viaUrl !== undefined && viaUrl !== null && typeof viaUrl !== "boolean") {
      throw InvalidParameterValue("InvokedViaFunctionUrl must be a boolean.");
    }
    const revision = str(input.RevisionId, "revisionId");
    for (const k of Object.keys(input)) {
      if (
        ![
          "StatementId",
          "Action",
          "Principal",
          "SourceArn",
          "SourceAccount",
          "PrincipalOrgID",
          "EventSourceToken",
          "FunctionUrlAuthType",
          "InvokedViaFunctionUrl",
          "RevisionId",
        ].includes(k)
      ) {
        throw InvalidParameterValue(`Unknown parameter in input: "${k}"`);
      }
    }
    const statement: Record<string, unknown> = {
      Sid: sid,
      Effect: "Allow",
      Principal: lambdaPrincipal(principal),
      Action: action,
      Resource: functionArn(region, ref.name, ref.qualifier),
    };
    const cond: Record<string, Record<string, string>> = {};
    const put = (op: string, k: string, v: string) => {
      cond[op] = { ...(cond[op] ?? {}), [k]: v };
    };
    if (sourceAccount !== undefined) put("StringEquals", "AWS:SourceAccount", sourceAccount);
    if (orgId !== undefined) put("StringEquals", "aws:PrincipalOrgID", orgId);
    if (token !== undefined) put("StringEquals", "lambda:EventSourceToken", token);
    if (urlAuth !== undefined) put("StringEquals", "lambda:FunctionUrlAuthType", urlAuth);
    if (viaUrl === true) put("Bool", "lambda:InvokedViaFunctionUrl", "true");
    if (sourceArn !== undefined) put("ArnLike", "AWS:SourceArn", sourceArn);
    if (Object.keys(cond).length > 0) statement.Condition = cond;
    const qualifier = ref.qualifier ?? "";
    return this.exclusive(this.key("function", ref.name, qualifier), async () => {
      const owner = await this.functionOwner(ref.name, ref.qualifier, region);
      const current = await this.load("function", ref.name, qualifier, owner);
      if (revision !== undefined && revision !== (current?.revisionId ?? "")) throw REVISION_MISMATCH();
      const next = withStatement(current?.doc, sid, statement);
      await this.save("function", ref.name, qualifier, owner, next);
      return { Statement: JSON.stringify(statement) };
    });
  }

  async removePermission(
    functionName: string,
    statementId: string,
    queryQualifier: string | undefined,
    revision: string | undefined,
    region: string,
  ): Promise<void> {
    const ref = parseFunctionRef(functionName, queryQualifier);
    str(statementId, "statementId", {
      required: true,
      pattern: /^[a-zA-Z0-9_.-]+$/,
      patternText: "([a-zA-Z0-9-_.]+)",
      min: 1,
      max: 100,
    });
    const qualifier = ref.qualifier ?? "";
    await this.exclusive(this.key("function", ref.name, qualifier), async () => {
      const owner = await this.functionOwner(ref.name, ref.qualifier, region);
      const current = await this.load("function", ref.name, qualifier, owner);
      await this.save(
        "function",
        ref.name,
        qualifier,
        owner,
        withoutStatement(current, revision, statementId),
      );
    });
  }

  async getPolicy(functionName: string, queryQualifier: string | undefined, region: string) {
    const ref = parseFunctionRef(functionName, queryQualifier);
    const owner = await this.functionOwner(ref.name, ref.qualifier, region);
    const current = await this.load("function", ref.name, ref.qualifier ?? "", owner);
    if (!current) throw NO_POLICY();
    return { Policy: JSON.stringify(current.doc), RevisionId: current.revisionId };
  }

  // ---- layer versions ----------------------------------------------------

  async addLayerVersionPermission(
    layerName: string,
    version: number,
    input: Record<string, unknown>,
    revision: string | undefined,
    region: string,
  ): Promise<{ Statement: string; RevisionId: string }> {
    const sid = str(input.StatementId, "statementId", { required: true, ...STATEMENT_ID }) as string;
    const action = str(input.Action, "action", { required: true, max: 22 }) as string;
    if (action !== "lambda:GetLayerVersion") {
      throw constraintViolation(
        "action",
        action,
        "Member must satisfy regular expression pattern: lambda:GetLayerVersion",
      );
    }
    const principal = str(input.Principal, "principal", {
      required: true,
      pattern: /^(\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root)$/,
      patternText: "\\d{12}|\\*|arn:(aws[a-zA-Z-]*):iam::\\d{12}:root",
      max: 10000,
    }) as string;
    const orgId = str(input.OrganizationId, "organizationId", {
      pattern: /^o-[a-z0-9]{10,32}$/,
      patternText: "o-[a-z0-9]{10,32}",
      max: 34,
    });
    if (orgId !== undefined && principal !== "*") {
      throw InvalidParameterValue("OrganizationId can only be specified when Principal is '*'.");
    }
    for (const k of Object.keys(input)) {
      if (!["StatementId", "Action", "Principal", "OrganizationId"].includes(k)) {
        throw InvalidParameterValue(`Unknown parameter in input: "${k}"`);
      }
    }
    const statement: Record<string, unknown> = {
      Sid: sid,
      Effect: "Allow",
      Principal:
        principal === "*"
          ? "*"
          : { AWS: /^\d{12}$/.test(principal) ? `arn:aws:iam::${principal}:root` : principal },
      Action: "lambda:GetLayerVersion",
      Resource: `arn:aws:lambda:${region}:${ACCOUNT_ID}:layer:${layerName}:${version}`,
    };
    if (orgId !== undefined) statement.Condition = { StringEquals: { "aws:PrincipalOrgID": orgId } };
    const qualifier = String(version);
    return this.exclusive(this.key("layer", layerName, qualifier), async () => {
      const owner = (await this.layerOwner(layerName, version, region)).created_at;
      const current = await this.load("layer", layerName, qualifier, owner);
      if (revision !== undefined && revision !== (current?.revisionId ?? "")) throw REVISION_MISMATCH();
      const next = withStatement(current?.doc, sid, statement);
      const revisionId = await this.save("layer", layerName, qualifier, owner, next);
      return { Statement: JSON.stringify(statement), RevisionId: revisionId };
    });
  }

  async removeLayerVersionPermission(
    layerName: string,
    version: number,
    statementId: string,
    revision: string | undefined,
    region: string,
  ): Promise<void> {
    str(statementId, "statementId", { required: true, ...STATEMENT_ID });
    const qualifier = String(version);
    await this.exclusive(this.key("layer", layerName, qualifier), async () => {
      const owner = (await this.layerOwner(layerName, version, region)).created_at;
      const current = await this.load("layer", layerName, qualifier, owner);
      await this.save("layer", layerName, qualifier, owner, withoutStatement(current, revision, statementId));
    });
  }

  async getLayerVersionPolicy(layerName: string, version: number, region: string) {
    const owner = (await this.layerOwner(layerName, version, region)).created_at;
    const current = await this.load("layer", layerName, String(version), owner);
    if (!current) throw NO_POLICY();
    return { Policy: JSON.stringify(current.doc), RevisionId: current.revisionId };
  }

  private async layerOwner(name: string, version: number, region: string) {
    try {
      return await this.layers.get(name, version);
    } catch (err) {
      if (err instanceof LambdaError && err.statusCode === 404) {
        throw ResourceNotFound(
          `Layer version arn:aws:lambda:${region}:${ACCOUNT_ID}:layer:${name}:${version} does not exist.`,
        );
      }
      throw err;
    }
  }

  // ---- enforcement --------------------------------------------------------

  /**
   * The resource policy that governs a request (cached briefly; our own writes
   * drop the cache at once). Null when there is none, or the resource is gone.
   */
  async policyFor(kind: PolicyKind, name: string, qualifier: string): Promise<PolicyDocument | null> {
    const key = this.key(kind, name, qualifier);
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < 2000) return hit.doc;
    let doc: PolicyDocument | null = null;
    const row = await this.store.db
      .selectFrom("resource_policies")
      .select(["policy", "owner_created_at"])
      .where("kind", "=", kind)
      .where("name", "=", name)
      .where("qualifier", "=", qualifier)
      .executeTakeFirst();
    if (row) {
      const owner =
        kind === "function"
          ? (
              await this.store.db
                .selectFrom("functions")
                .select("created_at")
                .where("name", "=", name)
                .executeTakeFirst()
            )?.created_at
          : (
              await this.store.db
                .selectFrom("layer_versions")
                .select("created_at")
                .where("layer_name", "=", name)
                .where("version", "=", Number(qualifier))
                .where("deleted", "=", 0)
                .executeTakeFirst()
            )?.created_at;
      if (owner === row.owner_created_at) doc = parsePolicy(row.policy, "resource");
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { at: now, doc });
    return doc;
  }
}

/** AddPermission's Principal as Lambda writes it into the statement. */
function lambdaPrincipal(p: string): unknown {
  if (p === "*") return "*";
  if (/^\d{12}$/.test(p)) return { AWS: `arn:aws:iam::${p}:root` };
  if (/^arn:aws[a-zA-Z-]*:(iam|sts)::\d{12}:/.test(p)) return { AWS: p };
  if (/^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$/.test(p) || /^[a-z0-9.-]+\.lambent\.local$/.test(p))
    return { Service: p };
  throw InvalidParameterValue(
    "The provided principal was invalid. Please check the principal and try again.",
  );
}
