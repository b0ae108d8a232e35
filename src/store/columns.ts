/**
 * JSON columns read back from the store, checked at the boundary: one parser
 * per column shape. A row that does not hold what the schema promises (edited
 * by hand, written by a newer server, truncated) fails here with the table and
 * column named, as a ServiceException, instead of travelling on as a wrong type.
 */
import { ServiceError } from "../errors.js";

/** A JSON column whose content is not what its table promises. */
export function corruptRow(table: string, column: string, why: string) {
  return ServiceError(`Corrupt store row: ${table}.${column} ${why}`);
}

function parse(table: string, column: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw corruptRow(table, column, "is not JSON");
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A JSON object (its members checked by the caller). */
export function objectColumn(table: string, column: string, text: string): Record<string, unknown> {
  const v = parse(table, column, text);
  if (!isRecord(v)) throw corruptRow(table, column, "is not a JSON object");
  return v;
}

/** A JSON array of strings (layer runtimes, architectures…). */
export function stringListColumn(table: string, column: string, text: string): string[] {
  const v = parse(table, column, text);
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
    throw corruptRow(table, column, "is not a JSON array of strings");
  }
  return v;
}

/** A JSON object of string values (tags). */
export function stringMapColumn(table: string, column: string, text: string): Record<string, string> {
  const v = objectColumn(table, column, text);
  for (const x of Object.values(v)) {
    if (typeof x !== "string") throw corruptRow(table, column, "has a member that is not a string");
  }
  return v as Record<string, string>;
}

/** A JSON object of numeric values (alias routing weights). */
export function numberMapColumn(table: string, column: string, text: string): Record<string, number> {
  const v = objectColumn(table, column, text);
  for (const x of Object.values(v)) {
    if (typeof x !== "number" || !Number.isFinite(x)) {
      throw corruptRow(table, column, "has a member that is not a number");
    }
  }
  return v as Record<string, number>;
}

type JsonType = "string" | "number" | "boolean" | "array" | "object";

/**
 * Checks that the named members of a parsed object have the given JSON types
 * (required unless marked `?`); from then on the object is a `T` to the compiler.
 */
export function requireMembers<T extends object>(
  table: string,
  column: string,
  v: Record<string, unknown>,
  members: Partial<Record<keyof T & string, JsonType | `${JsonType}?`>>,
): asserts v is Record<string, unknown> & T {
  for (const [name, spec] of Object.entries(members) as Array<[string, string]>) {
    const optional = spec.endsWith("?");
    const want = optional ? spec.slice(0, -1) : spec;
    const x = v[name];
    if (x === undefined && optional) continue;
    const got = Array.isArray(x) ? "array" : x === null ? "null" : typeof x;
    if (got !== want) throw corruptRow(table, column, `has ${name} of type ${got}, expected ${want}`);
  }
}
