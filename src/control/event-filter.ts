/**
 * Lambda's event-filtering pattern syntax (FilterCriteria.Filters[].Pattern):
 * a JSON object whose keys name fields of the record (nested objects for
 * nested fields) and whose leaves are arrays of allowed values. Keys are ANDed,
 * the values of one array ORed, and a record passes when any filter matches.
 *
 * Leaf values: literals (string, number, boolean, null: exact match; `""`
 * matches the empty string), and objects with one operator:
 * `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`,
 * `{"anything-but": v | [v…] | {"prefix": s} | {"suffix": s} | {"equals-ignore-case": s}}`,
 * `{"numeric": ["=", n]}` or ranges `{"numeric": [">", a, "<=", b]}`,
 * `{"exists": true|false}`. `"$or": [pattern, …]` ORs sub-patterns.
 * When a record's field is an array, the leaf matches if any element does.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const NUMERIC_OPS = new Set(["=", "<", "<=", ">", ">="]);
const STRING_OPS = new Set(["prefix", "suffix", "equals-ignore-case"]);

/** Why the pattern is invalid, or null when it is valid. */
export function validatePattern(pattern: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(pattern);
  } catch {
    return "The pattern is not valid JSON.";
  }
  if (!isObject(parsed)) return "The pattern must be a JSON object.";
  return checkObject(parsed, "");
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkObject(o: Record<string, unknown>, path: string): string | null {
  for (const [k, v] of Object.entries(o)) {
    const at = path ? `${path}.${k}` : k;
    if (k === "$or") {
      if (!Array.isArray(v) || v.length < 2 || !v.every(isObject)) {
        return `"$or" at ${at} must be a list of at least two patterns.`;
      }
      for (const sub of v) {
        const p = checkObject(sub as Record<string, unknown>, path);
        if (p) return p;
      }
    } else if (Array.isArray(v)) {
      if (v.length === 0) return `Empty match list at ${at}.`;
      for (const m of v) {
        const p = checkMatcher(m, at);
        if (p) return p;
      }
    } else if (isObject(v)) {
      const p = checkObject(v, at);
      if (p) return p;
    } else {
      return `Match value at ${at} must be a list or an object.`;
    }
  }
  return null;
}

function checkMatcher(m: unknown, at: string): string | null {
  if (m === null || typeof m === "string" || typeof m === "number" || typeof m === "boolean") return null;
  if (!isObject(m)) return `Unsupported match value at ${at}.`;
  const keys = Object.keys(m);
  if (keys.length !== 1) return `A match operator at ${at} must have exactly one key.`;
  const op = keys[0] as string;
  const arg = m[op];
  if (STRING_OPS.has(op)) return typeof arg === "string" ? null : `"${op}" at ${at} takes a string.`;
  switch (op) {
    case "exists":
      return typeof arg === "boolean" ? null : `"exists" at ${at} takes true or false.`;
    case "numeric":
      return checkNumeric(arg, at);
    case "anything-but": {
      if (Array.isArray(arg)) {
        return arg.every((x) => typeof x === "string" || typeof x === "number")
          ? null
          : `"anything-but" at ${at} takes strings or numbers.`;
      }
      if (typeof arg === "string" || typeof arg === "number") return null;
      if (isObject(arg)) {
        const [k] = Object.keys(arg);
        return Object.keys(arg).length === 1 &&
          k !== undefined &&
          STRING_OPS.has(k) &&
          typeof arg[k] === "string"
          ? null
          : `Unsupported "anything-but" operator at ${at}.`;
      }
      return `Unsupported "anything-but" value at ${at}.`;
    }
    default:
      return `Unsupported operator "${op}" at ${at}.`;
  }
}

function checkNumeric(arg: unknown, at: string): string | null {
  if (!Array.isArray(arg) || arg.length === 0 || arg.length % 2 !== 0 || arg.length > 4) {
    return `"numeric" at ${at} takes [op, n] or [op, n, op, n].`;
  }
  for (let i = 0; i < arg.length; i += 2) {
    if (typeof arg[i] !== "string" || !NUMERIC_OPS.has(arg[i] as string) || typeof arg[i + 1] !== "number") {
      return `"numeric" at ${at} takes [op, n] or [op, n, op, n] with op one of = < <= > >=.`;
    }
  }
  if (arg.length === 4 && (arg[0] === "=" || arg[2] === "=")) return `"numeric" "=" at ${at} stands alone.`;
  return null;
}

/** A compiled set of filters; `matches` is true when any filter matches (or there are none). */
export class RecordFilter {
  private readonly patterns: Record<string, unknown>[];

  constructor(patterns: string[]) {
    this.patterns = patterns.map((p) => JSON.parse(p) as Record<string, unknown>);
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  matches(record: unknown): boolean {
    if (this.patterns.length === 0) return true;
    return this.patterns.some((p) => matchObject(p, record));
  }
}

export function matchPattern(pattern: string, record: unknown): boolean {
  return matchObject(JSON.parse(pattern) as Record<string, unknown>, record);
}

function matchObject(pattern: Record<string, unknown>, value: unknown): boolean {
  for (const [k, p] of Object.entries(pattern)) {
    if (k === "$or") {
      if (!(p as Record<string, unknown>[]).some((sub) => matchObject(sub, value))) return false;
      continue;
    }
    const present = isObject(value) && Object.hasOwn(value, k);
    const field = present ? (value as Record<string, unknown>)[k] : undefined;
    if (Array.isArray(p)) {
      if (!p.some((m) => matchLeaf(m as Json, present, field))) return false;
    } else if (isObject(p)) {
      if (!present) return false;
      const candidates = Array.isArray(field) ? field : [field];
      if (!candidates.some((c) => matchObject(p, c))) return false;
    }
  }
  return true;
}

function matchLeaf(m: Json, present: boolean, field: unknown): boolean {
  if (isObject(m) && "exists" in m) {
    const exists = present && field !== undefined && !isObject(field);
    return m.exists === true ? exists : !present;
  }
  if (!present) return false;
  const values = Array.isArray(field) ? field : [field];
  return values.some((v) => matchValue(m, v));
}

function matchValue(m: Json, v: unknown): boolean {
  if (m === null) return v === null;
  if (typeof m !== "object") return m === v;
  const [op] = Object.keys(m as object);
  const arg = (m as Record<string, Json>)[op as string];
  switch (op) {
    case "prefix":
      return typeof v === "string" && v.startsWith(arg as string);
    case "suffix":
      return typeof v === "string" && v.endsWith(arg as string);
    case "equals-ignore-case":
      return typeof v === "string" && v.toLowerCase() === (arg as string).toLowerCase();
    case "numeric":
      return typeof v === "number" && numeric(arg as Json[], v);
    case "anything-but": {
      if (v === null || v === undefined || isObject(v)) return false;
      if (Array.isArray(arg)) return !arg.includes(v as Json);
      if (isObject(arg)) return typeof v === "string" && !matchValue(arg, v);
      return arg !== v;
    }
    default:
      return false;
  }
}

function numeric(ops: Json[], v: number): boolean {
  for (let i = 0; i < ops.length; i += 2) {
    const n = ops[i + 1] as number;
    switch (ops[i]) {
      case "=":
        if (!(v === n)) return false;
        break;
      case "<":
        if (!(v < n)) return false;
        break;
      case "<=":
        if (!(v <= n)) return false;
        break;
      case ">":
        if (!(v > n)) return false;
        break;
      case ">=":
        if (!(v >= n)) return false;
        break;
    }
  }
  return true;
}

/** A record's payload as filters see it: parsed JSON when the bytes are JSON, else undefined. */
export function parsedData(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString("utf8"));
  } catch {
    return undefined;
  }
}
