/**
 * CloudFormation's intrinsic functions and condition functions, evaluated
 * against parameters, pseudo parameters, mappings, conditions and what the
 * deploy knows of each resource (its Ref and attributes). A value not known
 * until a resource is deployed (a published version's ARN) is an UNKNOWN
 * token: the plan shows it, and anything built from it counts as changed.
 */
import { DeployError } from "./template.js";

/** What `AWS::NoValue` evaluates to: the property is removed. */
export const NO_VALUE = Symbol("AWS::NoValue");

/** The text standing for a value known only after a resource is deployed. */
export function unknown(logicalId: string, attribute: string): string {
  return `<known after deploy: ${logicalId}.${attribute}>`;
}

/** Whether a value is (or contains) an unknown() token. */
export function isUnknown(v: unknown): boolean {
  return typeof v === "string" && v.includes("<known after deploy: ");
}

export interface EvalContext {
  /** Parameters and pseudo parameters by name. */
  params: Record<string, unknown>;
  mappings: Record<string, unknown>;
  conditions: Record<string, boolean>;
  /** Ref of a resource; throws DeployError when there is none. */
  ref(logicalId: string, at: string): unknown;
  getAtt(logicalId: string, attribute: string, at: string): unknown;
}

const MAX_EVAL_DEPTH = 128;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The single key of an intrinsic (`Ref`, `Fn::…`, `Condition` inside conditions), if v is one. */
export function intrinsicName(v: unknown): string | undefined {
  if (!isObject(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length !== 1) return undefined;
  const k = keys[0] as string;
  return k === "Ref" || k.startsWith("Fn::") ? k : undefined;
}

function str(v: unknown, at: string, what: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new DeployError(`${at}: ${what} must be a string`);
}

function list(v: unknown, at: string, what: string, length?: number): unknown[] {
  if (!Array.isArray(v) || (length !== undefined && v.length !== length)) {
    throw new DeployError(`${at}: ${what} takes a list${length !== undefined ? ` of ${length}` : ""}`);
  }
  return v;
}

/** Evaluate a condition expression (Fn::Equals/Not/And/Or, Condition). */
export function evalCondition(expr: unknown, ctx: EvalContext, at: string, depth = 0): boolean {
  if (depth > MAX_EVAL_DEPTH) throw new DeployError(`${at}: conditions nested too deeply`);
  if (isObject(expr) && Object.keys(expr).length === 1 && typeof expr.Condition === "string") {
    const c = ctx.conditions[expr.Condition];
    if (c === undefined) throw new DeployError(`${at}: no condition named ${expr.Condition}`);
    return c;
  }
  const fn = intrinsicName(expr);
  const args = fn ? (expr as Record<string, unknown>)[fn] : undefined;
  switch (fn) {
    case "Fn::Equals": {
      const [a, b] = list(args, at, "Fn::Equals", 2).map((x) => evaluate(x, ctx, at, depth + 1));
      return JSON.stringify(a) === JSON.stringify(b) || String(a) === String(b);
    }
    case "Fn::Not":
      return !evalCondition(list(args, at, "Fn::Not", 1)[0], ctx, at, depth + 1);
    case "Fn::And": {
      const xs = list(args, at, "Fn::And");
      if (xs.length < 2 || xs.length > 10) throw new DeployError(`${at}: Fn::And takes 2 to 10 conditions`);
      return xs.every((x) => evalCondition(x, ctx, at, depth + 1));
    }
    case "Fn::Or": {
      const xs = list(args, at, "Fn::Or");
      if (xs.length < 2 || xs.length > 10) throw new DeployError(`${at}: Fn::Or takes 2 to 10 conditions`);
      return xs.some((x) => evalCondition(x, ctx, at, depth + 1));
    }
    default: {
      const v = evaluate(expr, ctx, at, depth + 1);
      if (v === true || v === "true") return true;
      if (v === false || v === "false") return false;
      throw new DeployError(`${at}: not a condition (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition)`);
    }
  }
}

/** Evaluate every intrinsic in `value`; `AWS::NoValue` members and items are dropped. */
export function evaluate(value: unknown, ctx: EvalContext, at: string, depth = 0): unknown {
  if (depth > MAX_EVAL_DEPTH) throw new DeployError(`${at}: nested too deeply`);
  if (Array.isArray(value)) {
    return value.map((v, i) => evaluate(v, ctx, `${at}[${i}]`, depth + 1)).filter((v) => v !== NO_VALUE);
  }
  if (!isObject(value)) return value;
  const fn = intrinsicName(value);
  if (fn === undefined) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const e = evaluate(v, ctx, at === "" ? k : `${at}.${k}`, depth + 1);
      if (e !== NO_VALUE) out[k] = e;
    }
    return out;
  }
  const args = value[fn];
  const here = `${at} (${fn})`;
  const ev = (v: unknown) => evaluate(v, ctx, here, depth + 1);
  switch (fn) {
    case "Ref": {
      const name = str(args, here, "Ref");
      if (name === "AWS::NoValue") return NO_VALUE;
      if (name in ctx.params) return ctx.params[name];
      return ctx.ref(name, here);
    }
    case "Fn::GetAtt": {
      const parts =
        typeof args === "string" ? args.split(/\.(.*)/s, 2) : list(ev(args), here, "Fn::GetAtt", 2);
      const [id, attr] = parts.map((p) => str(p, here, "Fn::GetAtt's parts"));
      return ctx.getAtt(id as string, attr as string, here);
    }
    case "Fn::Sub": {
      let text: string;
      let vars: Record<string, unknown> = {};
      if (typeof args === "string") text = args;
      else {
        const [t, m] = list(args, here, "Fn::Sub", 2);
        text = str(t, here, "Fn::Sub's text");
        const evm = ev(m);
        if (!isObject(evm)) throw new DeployError(`${here}: Fn::Sub's variables must be a map`);
        vars = evm;
      }
      return text.replace(/\$\{(!?)([^}]*)\}/g, (whole, bang: string, name: string) => {
        if (bang) return `\${${name}}`;
        const n = name.trim();
        if (n in vars) return str(vars[n], here, `\${${n}}`);
        if (n in ctx.params) return str(ctx.params[n], here, `\${${n}}`);
        const dot = n.indexOf(".");
        if (dot > 0) return str(ctx.getAtt(n.slice(0, dot), n.slice(dot + 1), here), here, whole);
        return str(ctx.ref(n, here), here, whole);
      });
    }
    case "Fn::Join": {
      const [sep, items] = list(args, here, "Fn::Join", 2);
      const xs = ev(items);
      if (!Array.isArray(xs)) throw new DeployError(`${here}: Fn::Join's second item must be a list`);
      return xs.map((x) => str(x, here, "each joined value")).join(str(sep, here, "the delimiter"));
    }
    case "Fn::Select": {
      const [i, items] = list(args, here, "Fn::Select", 2);
      const xs = ev(items);
      const n = Number(ev(i));
      if (!Array.isArray(xs)) throw new DeployError(`${here}: Fn::Select's second item must be a list`);
      if (!Number.isInteger(n) || n < 0 || n >= xs.length)
        throw new DeployError(`${here}: index ${String(ev(i))} is out of range (${xs.length} items)`);
      return xs[n];
    }
    case "Fn::Split": {
      const [sep, text] = list(args, here, "Fn::Split", 2);
      const d = str(sep, here, "the delimiter");
      if (d === "") throw new DeployError(`${here}: the delimiter must not be empty`);
      return str(ev(text), here, "Fn::Split's text").split(d);
    }
    case "Fn::If": {
      const [name, yes, no] = list(args, here, "Fn::If", 3);
      const c = ctx.conditions[str(name, here, "the condition name")];
      if (c === undefined) throw new DeployError(`${here}: no condition named ${String(name)}`);
      return ev(c ? yes : no);
    }
    case "Fn::FindInMap": {
      const [m, k1, k2] = list(args, here, "Fn::FindInMap", 3).map((x) => str(ev(x), here, "its keys"));
      const map = ctx.mappings[m as string];
      const top = isObject(map) ? map[k1 as string] : undefined;
      const v = isObject(top) ? top[k2 as string] : undefined;
      if (v === undefined) throw new DeployError(`${here}: Mappings has no ${m}.${k1}.${k2}`);
      return v;
    }
    case "Fn::Base64":
      return Buffer.from(str(ev(args), here, "Fn::Base64's text")).toString("base64");
    case "Fn::Equals":
    case "Fn::Not":
    case "Fn::And":
    case "Fn::Or":
      return evalCondition(value, ctx, at, depth + 1);
    case "Fn::GetAZs": {
      const region = String(ctx.params["AWS::Region"]);
      return ["a", "b", "c"].map((z) => `${region}${z}`);
    }
    case "Fn::Length": {
      const xs = ev(args);
      if (!Array.isArray(xs)) throw new DeployError(`${here}: Fn::Length takes a list`);
      return xs.length;
    }
    case "Fn::ToJsonString":
      return JSON.stringify(ev(args));
    default:
      throw new DeployError(`${here}: ${fn} is not supported by lambent deploy`);
  }
}

/** Logical ids a value refers to (Ref, Fn::GetAtt, ${Id} / ${Id.Attr} in Fn::Sub), for ordering. */
export function references(value: unknown, out = new Set<string>(), depth = 0): Set<string> {
  if (depth > MAX_EVAL_DEPTH) throw new DeployError("a value is nested too deeply");
  if (Array.isArray(value)) {
    for (const v of value) references(v, out, depth + 1);
    return out;
  }
  if (!isObject(value)) return out;
  const fn = intrinsicName(value);
  const args = fn ? value[fn] : undefined;
  if (fn === "Ref" && typeof args === "string") out.add(args);
  else if (fn === "Fn::GetAtt") {
    if (typeof args === "string") out.add(args.split(".")[0] as string);
    else if (Array.isArray(args) && typeof args[0] === "string") out.add(args[0]);
  } else if (fn === "Fn::Sub") {
    const text = typeof args === "string" ? args : Array.isArray(args) ? args[0] : undefined;
    const vars = Array.isArray(args) && isObject(args[1]) ? args[1] : {};
    if (typeof text === "string") {
      for (const m of text.matchAll(/\$\{([^!}][^}]*)\}/g)) {
        const n = (m[1] as string).trim();
        if (!(n in vars)) out.add(n.split(".")[0] as string);
      }
    }
    if (Array.isArray(args)) references(args[1], out, depth + 1);
    return out;
  }
  for (const v of Object.values(value)) references(v, out, depth + 1);
  return out;
}
