/**
 * IAM policy documents: the JSON grammar (Version, Statement, Sid, Effect,
 * Action/NotAction, Resource/NotResource, Principal/NotPrincipal, Condition)
 * parsed strictly, and evaluated as IAM does within one account: an explicit
 * Deny anywhere wins, else an Allow in the identity policy or in the
 * resource's policy allows, else the request is implicitly denied.
 *
 * Conditions support the string, ARN and Bool operator families (with
 * IfExists); other operators are refused when a policy is stored, so a
 * policy never means something different from what its author wrote.
 */
import { LambdaError } from "../errors.js";

export type Effect = "Allow" | "Deny";

export type PrincipalSpec = { AWS?: string[]; Service?: string[] } | "*";
export type ConditionBlock = Record<string, Record<string, string[]>>;

export interface Statement {
  Sid?: string;
  Effect: Effect;
  Action?: string[];
  NotAction?: string[];
  Resource?: string[];
  NotResource?: string[];
  /** Resource policies: principal ARNs/accounts ("*" = anyone), and service principals. */
  Principal?: PrincipalSpec;
  NotPrincipal?: PrincipalSpec;
  Condition?: ConditionBlock;
}

export interface PolicyDocument {
  Version?: string;
  Id?: string;
  Statement: Statement[];
}

export const MalformedPolicy = (message: string) =>
  new LambdaError("MalformedPolicyDocumentException", 400, message);

const CONDITION_OPERATORS = new Set([
  "StringEquals",
  "StringNotEquals",
  "StringEqualsIgnoreCase",
  "StringNotEqualsIgnoreCase",
  "StringLike",
  "StringNotLike",
  "ArnEquals",
  "ArnLike",
  "ArnNotEquals",
  "ArnNotLike",
  "Bool",
]);

const MAX_POLICY_BYTES = 20_480;

function stringList(v: unknown, field: string): string[] {
  const list = typeof v === "string" ? [v] : v;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.some((x) => typeof x !== "string" || x.length === 0)
  ) {
    throw MalformedPolicy(
      `Syntax error: ${field} must be a non-empty string or a list of non-empty strings.`,
    );
  }
  return list as string[];
}

function principalOf(v: unknown, field: string): PrincipalSpec {
  if (v === "*") return "*";
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw MalformedPolicy(
      `Syntax error: ${field} must be "*" or an object such as {"AWS": "arn:aws:iam::…"}.`,
    );
  }
  const out: { AWS?: string[]; Service?: string[] } = {};
  for (const [k, val] of Object.entries(v)) {
    if (k === "AWS") out.AWS = stringList(val, `${field}.AWS`);
    else if (k === "Service") out.Service = stringList(val, `${field}.Service`);
    else throw MalformedPolicy(`Invalid principal in policy: "${k}"`);
  }
  if (!out.AWS && !out.Service) throw MalformedPolicy(`Invalid principal in policy: ${field} is empty`);
  return out;
}

function validateAction(a: string): void {
  if (a === "*") return;
  if (!/^[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+$/.test(a)) {
    throw MalformedPolicy(`Action vendor must be followed by a colon and an action name: "${a}"`);
  }
}

function validateResource(r: string): void {
  if (r === "*") return;
  if (!/^arn:[^:]*:[^:]*:[^:]*:[^:]*:.+$/.test(r)) {
    throw MalformedPolicy(`Resource ${r} must be in ARN format or "*".`);
  }
}

/**
 * Parse and validate a policy document (text or object). `kind` is "identity"
 * (no Principal allowed; Resource required) or "resource" (Principal required).
 */
export function parsePolicy(input: unknown, kind: "identity" | "resource"): PolicyDocument {
  let doc: unknown = input;
  if (typeof input === "string") {
    if (Buffer.byteLength(input) > MAX_POLICY_BYTES) {
      throw new LambdaError(
        "PolicyLengthExceededException",
        400,
        `The policy document is larger than ${MAX_POLICY_BYTES} bytes.`,
      );
    }
    try {
      doc = JSON.parse(input);
    } catch {
      throw MalformedPolicy("Syntax errors in policy.");
    }
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw MalformedPolicy("Syntax errors in policy: the document must be a JSON object.");
  }
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) {
    if (!["Version", "Id", "Statement"].includes(k))
      throw MalformedPolicy(`Syntax errors in policy: unknown field ${k}.`);
  }
  if (d.Version !== undefined && d.Version !== "2012-10-17" && d.Version !== "2008-10-17") {
    throw MalformedPolicy("The policy must contain a valid version string");
  }
  if (d.Id !== undefined && typeof d.Id !== "string")
    throw MalformedPolicy("Syntax errors in policy: Id must be a string.");
  const raw = Array.isArray(d.Statement) ? d.Statement : d.Statement !== undefined ? [d.Statement] : null;
  if (!raw || raw.length === 0) throw MalformedPolicy("Missing required field Statement");
  const statements = raw.map((s, i) => parseStatement(s, i, kind));
  const sids = new Set<string>();
  for (const s of statements) {
    if (s.Sid === undefined) continue;
    if (sids.has(s.Sid))
      throw MalformedPolicy(`Statement IDs (SID) in a single policy must be unique: ${s.Sid}`);
    sids.add(s.Sid);
  }
  const out: PolicyDocument = { Statement: statements };
  if (typeof d.Version === "string") out.Version = d.Version;
  if (typeof d.Id === "string") out.Id = d.Id;
  return out;
}

function parseStatement(raw: unknown, i: number, kind: "identity" | "resource"): Statement {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw MalformedPolicy(`Syntax errors in policy: statement ${i + 1} must be an object.`);
  }
  const s = raw as Record<string, unknown>;
  const known = [
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
  ];
  for (const k of Object.keys(s)) {
    if (!known.includes(k)) throw MalformedPolicy(`Syntax errors in policy: unknown field ${k}.`);
  }
  if (s.Effect !== "Allow" && s.Effect !== "Deny") throw MalformedPolicy("Missing required field Effect");
  const out: Statement = { Effect: s.Effect };
  if (s.Sid !== undefined) {
    if (typeof s.Sid !== "string" || !/^[a-zA-Z0-9_-]*$/.test(s.Sid)) {
      throw MalformedPolicy("Statement IDs (SID) must be alpha-numeric.");
    }
    out.Sid = s.Sid;
  }
  if ((s.Action === undefined) === (s.NotAction === undefined)) {
    throw MalformedPolicy("Policy statement must contain actions (exactly one of Action or NotAction).");
  }
  if (s.Action !== undefined) out.Action = stringList(s.Action, "Action");
  if (s.NotAction !== undefined) out.NotAction = stringList(s.NotAction, "NotAction");
  for (const a of out.Action ?? out.NotAction ?? []) validateAction(a);
  if (s.Resource !== undefined && s.NotResource !== undefined) {
    throw MalformedPolicy("Policy statement must contain exactly one of Resource or NotResource.");
  }
  if (s.Resource === undefined && s.NotResource === undefined) {
    throw MalformedPolicy("Policy statement must contain resources.");
  }
  if (s.Resource !== undefined) out.Resource = stringList(s.Resource, "Resource");
  if (s.NotResource !== undefined) out.NotResource = stringList(s.NotResource, "NotResource");
  for (const r of out.Resource ?? out.NotResource ?? []) validateResource(r);
  if (kind === "identity") {
    if (s.Principal !== undefined || s.NotPrincipal !== undefined) {
      throw MalformedPolicy("Policy document should not specify a principal.");
    }
  } else {
    if ((s.Principal === undefined) === (s.NotPrincipal === undefined)) {
      throw MalformedPolicy("Policy statement must contain exactly one of Principal or NotPrincipal.");
    }
    if (s.Principal !== undefined) out.Principal = principalOf(s.Principal, "Principal");
    if (s.NotPrincipal !== undefined) out.NotPrincipal = principalOf(s.NotPrincipal, "NotPrincipal");
  }
  if (s.Condition !== undefined) out.Condition = parseCondition(s.Condition);
  return out;
}

function parseCondition(raw: unknown): ConditionBlock {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw MalformedPolicy("Syntax errors in policy: Condition must be an object.");
  }
  const out: Record<string, Record<string, string[]>> = {};
  for (const [op, block] of Object.entries(raw)) {
    const base = op.endsWith("IfExists") ? op.slice(0, -"IfExists".length) : op;
    if (!CONDITION_OPERATORS.has(base)) {
      throw MalformedPolicy(
        `Invalid Condition type : ${op} (Lambent supports the String*, Arn* and Bool operators).`,
      );
    }
    if (typeof block !== "object" || block === null || Array.isArray(block)) {
      throw MalformedPolicy(`Syntax errors in policy: Condition ${op} must be an object.`);
    }
    const keys: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(block)) {
      const list = typeof v === "string" || typeof v === "boolean" ? [String(v)] : v;
      if (!Array.isArray(list) || list.some((x) => typeof x !== "string" && typeof x !== "boolean")) {
        throw MalformedPolicy(`Syntax errors in policy: Condition ${op}.${k} must be a string or a list.`);
      }
      keys[k] = list.map(String);
    }
    out[op] = keys;
  }
  return out;
}

// ---- evaluation -----------------------------------------------------------

const globCache = new Map<string, RegExp>();

/** IAM wildcard match: `*` any run, `?` one character. Actions compare case-insensitively. */
export function globMatch(pattern: string, value: string, ignoreCase = false): boolean {
  if (pattern === "*") return true;
  const key = `${ignoreCase ? "i" : "c"}${pattern}`;
  let re = globCache.get(key);
  if (!re) {
    const body = pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".");
    re = new RegExp(`^${body}$`, ignoreCase ? "is" : "s");
    if (globCache.size > 5000) globCache.clear();
    globCache.set(key, re);
  }
  return re.test(value);
}

export interface RequestContext {
  action: string;
  resource: string;
  principalArn: string;
  /** For sessions: the role ARN, which a resource policy may name. */
  roleArn?: string;
  /** Condition keys known for this request (lower-cased names). */
  keys: Record<string, string>;
}

function principalMatches(p: Statement["Principal"], ctx: RequestContext): boolean {
  if (p === undefined) return false;
  if (p === "*") return true;
  for (const a of p.AWS ?? []) {
    if (a === "*") return true;
    if (a === ctx.principalArn || (ctx.roleArn !== undefined && a === ctx.roleArn)) return true;
  }
  return false;
}

function conditionHolds(cond: Statement["Condition"], ctx: RequestContext): boolean {
  if (!cond) return true;
  for (const [op, block] of Object.entries(cond)) {
    const ifExists = op.endsWith("IfExists");
    const base = ifExists ? op.slice(0, -"IfExists".length) : op;
    for (const [key, values] of Object.entries(block)) {
      const actual = ctx.keys[key.toLowerCase()];
      if (actual === undefined) {
        if (ifExists) continue;
        // A negated operator on an absent key holds; a positive one does not (as IAM does).
        if (base.includes("Not")) continue;
        return false;
      }
      let ok: boolean;
      switch (base) {
        case "StringEquals":
        case "ArnEquals":
        case "Bool":
          ok = values.some((v) => v === actual);
          break;
        case "StringNotEquals":
        case "ArnNotEquals":
          ok = !values.some((v) => v === actual);
          break;
        case "StringEqualsIgnoreCase":
          ok = values.some((v) => v.toLowerCase() === actual.toLowerCase());
          break;
        case "StringNotEqualsIgnoreCase":
          ok = !values.some((v) => v.toLowerCase() === actual.toLowerCase());
          break;
        case "StringLike":
        case "ArnLike":
          ok = values.some((v) => globMatch(v, actual));
          break;
        case "StringNotLike":
        case "ArnNotLike":
          ok = !values.some((v) => globMatch(v, actual));
          break;
        default:
          ok = false;
      }
      if (!ok) return false;
    }
  }
  return true;
}

function statementApplies(s: Statement, ctx: RequestContext, withPrincipal: boolean): boolean {
  if (s.Action && !s.Action.some((a) => globMatch(a, ctx.action, true))) return false;
  if (s.NotAction?.some((a) => globMatch(a, ctx.action, true))) return false;
  if (s.Resource && !s.Resource.some((r) => globMatch(r, ctx.resource))) return false;
  if (s.NotResource?.some((r) => globMatch(r, ctx.resource))) return false;
  if (withPrincipal) {
    if (s.Principal !== undefined && !principalMatches(s.Principal, ctx)) return false;
    if (s.NotPrincipal !== undefined && principalMatches(s.NotPrincipal, ctx)) return false;
  }
  return conditionHolds(s.Condition, ctx);
}

export type Decision = "allow" | "deny" | "implicit";

/** What one policy says about a request. */
export function evaluate(
  policy: PolicyDocument | null,
  ctx: RequestContext,
  resourcePolicy: boolean,
): Decision {
  if (!policy) return "implicit";
  let allowed = false;
  for (const s of policy.Statement) {
    if (!statementApplies(s, ctx, resourcePolicy)) continue;
    if (s.Effect === "Deny") return "deny";
    allowed = true;
  }
  return allowed ? "allow" : "implicit";
}
