/**
 * CloudWatch Logs filter patterns (FilterLogEvents, TestMetricFilter), as AWS documents them
 * ("Filter pattern syntax for metric filters, subscription filters, filter log events"):
 *
 * - empty (or only spaces / `""`): every event;
 * - unstructured terms, case-sensitive, matched anywhere in the message: `ERROR Exception` needs
 *   both; `"quoted phrase"` is one term (needed for non-alphanumeric characters); `-term` excludes
 *   (`ERROR -Exiting`); `?term` makes the `?` terms alternatives (`?ERROR ?WARN`), and a message matches
 *   when any of them appears (while every plain term and no excluded term does);
 * - `%regex%`: a regular expression over the message, compiled as JavaScript's, without the
 *   constructs that can backtrack without end (back-references, lookarounds, a repeated group that
 *   holds a quantifier or alternatives): the server runs it over every event it examines;
 * - JSON patterns `{ <selector> <op> <value> }` over a message that is a JSON object:
 *   selectors `$.a.b`, `$.list[0]` (not `$.*`); `=` / `!=` with strings (quoted or bare,
 *   `*` a wildcard) or `%regex%`; `=`, `!=`, `<`, `>`, `<=`, `>=` with numbers; `IS TRUE`, `IS FALSE`,
 *   `IS NULL`, `EXISTS`, `NOT EXISTS`; conditions joined by `&&` and `||` (`&&` binds tighter),
 *   grouped with parentheses;
 * - space-delimited patterns `[ip, user, ..., status = 4*, bytes > 1000]`: the message's fields
 *   (separated by spaces; `"…"` and `[…]` keep spaces inside one field), each named field optionally
 *   compared (`=`, `!=` with wildcards; numeric comparisons), `...` standing for any number of fields,
 *   `&&` / `||` inside one field's condition.
 * Wildcards and `...` are matched in linear / polynomial time, never by unbounded backtracking.
 *
 * A pattern that does not parse is an InvalidParameterException "Invalid filter pattern" (thrown by
 * the caller from a FilterPatternError).
 */

export class FilterPatternError extends Error {}

export type Matcher = (message: string) => boolean;

/** Parse a pattern once; the returned function tests one message. */
export function compileFilterPattern(pattern: string | undefined): Matcher {
  const text = (pattern ?? "").trim();
  if (text === "" || text === '""') return () => true;
  if (text.startsWith("{")) return compileJson(text);
  if (text.startsWith("[")) return compileSpaceDelimited(text);
  return compileTerms(text);
}

// ---------- unstructured terms ----------

interface Term {
  kind: "all" | "any" | "not";
  test: (message: string) => boolean;
}

function regexTerm(body: string): (m: string) => boolean {
  const re = regexFor(body);
  return (m) => re.test(m);
}

function compileTerms(text: string): Matcher {
  const terms: Term[] = [];
  let i = 0;
  while (i < text.length) {
    while (text[i] === " " || text[i] === "\t") i++;
    if (i >= text.length) break;
    let kind: Term["kind"] = "all";
    if (text[i] === "?") {
      kind = "any";
      i++;
    } else if (text[i] === "-" && i + 1 < text.length && text[i + 1] !== " ") {
      kind = "not";
      i++;
    }
    let test: (m: string) => boolean;
    if (text[i] === '"') {
      const end = closingQuote(text, i);
      const phrase = unquote(text.slice(i + 1, end));
      i = end + 1;
      test = (m) => m.includes(phrase);
    } else if (text[i] === "%") {
      const end = text.indexOf("%", i + 1);
      if (end < 0) throw new FilterPatternError("Unterminated regular expression");
      test = regexTerm(text.slice(i + 1, end));
      i = end + 1;
    } else {
      let end = i;
      while (end < text.length && text[end] !== " " && text[end] !== "\t") end++;
      const word = text.slice(i, end);
      i = end;
      if (!/^[\w.:/@#*-]+$/u.test(word)) {
        throw new FilterPatternError(`Terms with non-alphanumeric characters must be quoted: ${word}`);
      }
      test = (m) => m.includes(word);
    }
    terms.push({ kind, test });
  }
  const all = terms.filter((t) => t.kind === "all");
  const any = terms.filter((t) => t.kind === "any");
  const not = terms.filter((t) => t.kind === "not");
  return (m) =>
    all.every((t) => t.test(m)) &&
    (any.length === 0 || any.some((t) => t.test(m))) &&
    !not.some((t) => t.test(m));
}

function closingQuote(text: string, open: number): number {
  for (let j = open + 1; j < text.length; j++) {
    if (text[j] === "\\") j++;
    else if (text[j] === '"') return j;
  }
  throw new FilterPatternError("Unterminated quoted term");
}

const unquote = (s: string) => s.replace(/\\(.)/g, "$1");

// ---------- JSON patterns ----------

type Token =
  | { t: "sel"; v: string }
  | { t: "op"; v: string }
  | { t: "str"; v: string; quoted: boolean }
  | { t: "num"; v: number; raw: string }
  | { t: "re"; v: string }
  | { t: "kw"; v: string }
  | { t: "("; v: "(" }
  | { t: ")"; v: ")" }
  | { t: "&&" | "||"; v: string };

function tokenizeJson(body: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i] as string;
    if (c === " " || c === "\t" || c === "\n") {
      i++;
    } else if (c === "(" || c === ")") {
      out.push({ t: c, v: c } as Token);
      i++;
    } else if (body.startsWith("&&", i) || body.startsWith("||", i)) {
      out.push({ t: body.slice(i, i + 2) as "&&" | "||", v: body.slice(i, i + 2) });
      i += 2;
    } else if (c === "$") {
      let end = i + 1;
      while (end < body.length && /[\w.[\]$-]/.test(body[end] as string)) end++;
      out.push({ t: "sel", v: body.slice(i, end) });
      i = end;
    } else if (/[=!<>]/.test(c)) {
      const two = body.slice(i, i + 2);
      const op = ["!=", "<=", ">=", "=="].includes(two) ? two : c;
      if (op === "!") throw new FilterPatternError("Unexpected '!'");
      out.push({ t: "op", v: op === "==" ? "=" : op });
      i += op.length;
    } else if (c === '"') {
      const end = closingQuote(body, i);
      out.push({ t: "str", v: unquote(body.slice(i + 1, end)), quoted: true });
      i = end + 1;
    } else if (c === "%") {
      const end = body.indexOf("%", i + 1);
      if (end < 0) throw new FilterPatternError("Unterminated regular expression");
      out.push({ t: "re", v: body.slice(i + 1, end) });
      i = end + 1;
    } else {
      let end = i;
      while (end < body.length && !/[\s()&|=!<>]/.test(body[end] as string)) end++;
      const word = body.slice(i, end);
      i = end;
      if (/^(IS|NOT|EXISTS|TRUE|FALSE|NULL)$/.test(word)) out.push({ t: "kw", v: word });
      else if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(word))
        out.push({ t: "num", v: Number(word), raw: word });
      else out.push({ t: "str", v: word, quoted: false });
    }
  }
  return out;
}

type Cond = (doc: unknown) => boolean;

/** `$.a.b[0].c` → path segments; undefined when the selector is not one Lambent reads. */
function parseSelector(sel: string): Array<string | number> {
  if (sel === "$") return [];
  if (!sel.startsWith("$.") && !sel.startsWith("$["))
    throw new FilterPatternError(`Invalid selector: ${sel}`);
  const out: Array<string | number> = [];
  const re = /\.([^.[\]]+)|\[(\d+)\]/g;
  let at = 1;
  for (let m = re.exec(sel); m; m = re.exec(sel)) {
    if (m.index !== at) throw new FilterPatternError(`Invalid selector: ${sel}`);
    out.push(m[1] !== undefined ? m[1] : Number(m[2]));
    at = re.lastIndex;
  }
  if (at !== sel.length) throw new FilterPatternError(`Invalid selector: ${sel}`);
  return out;
}

const MISSING = Symbol("missing");

function select(doc: unknown, path: Array<string | number>): unknown {
  let v: unknown = doc;
  for (const p of path) {
    if (v === null || typeof v !== "object") return MISSING;
    if (typeof p === "number") {
      if (!Array.isArray(v) || p >= v.length) return MISSING;
      v = v[p];
    } else {
      if (Array.isArray(v) || !Object.hasOwn(v, p)) return MISSING;
      v = (v as Record<string, unknown>)[p];
    }
  }
  return v;
}

/**
 * `*` matches any run of characters. Matched piece by piece (each piece at its first place after
 * the previous one, the last at the end): linear time, however many stars.
 */
function wildcard(pattern: string): (s: string) => boolean {
  if (!pattern.includes("*")) return (s) => s === pattern;
  const pieces = pattern.split("*");
  const head = pieces[0] as string;
  const tail = pieces[pieces.length - 1] as string;
  const middle = pieces.slice(1, -1);
  return (s) => {
    if (s.length < head.length + tail.length || !s.startsWith(head) || !s.endsWith(tail)) return false;
    let at = head.length;
    const end = s.length - tail.length;
    for (const piece of middle) {
      const found = s.indexOf(piece, at);
      if (found < 0 || found + piece.length > end) return false;
      at = found + piece.length;
    }
    return true;
  };
}

function compare(op: string, a: number, b: number): boolean {
  switch (op) {
    case "=":
      return a === b;
    case "!=":
      return a !== b;
    case "<":
      return a < b;
    case ">":
      return a > b;
    case "<=":
      return a <= b;
    default:
      return a >= b;
  }
}

class JsonParser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Cond {
    const c = this.or();
    if (this.i !== this.tokens.length) throw new FilterPatternError("Unexpected text in JSON pattern");
    return c;
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private next(): Token {
    const t = this.tokens[this.i++];
    if (!t) throw new FilterPatternError("Unexpected end of JSON pattern");
    return t;
  }

  private or(): Cond {
    const parts = [this.and()];
    while (this.peek()?.t === "||") {
      this.i++;
      parts.push(this.and());
    }
    return parts.length === 1 ? (parts[0] as Cond) : (d) => parts.some((p) => p(d));
  }

  private and(): Cond {
    const parts = [this.primary()];
    while (this.peek()?.t === "&&") {
      this.i++;
      parts.push(this.primary());
    }
    return parts.length === 1 ? (parts[0] as Cond) : (d) => parts.every((p) => p(d));
  }

  private primary(): Cond {
    const t = this.next();
    if (t.t === "(") {
      const c = this.or();
      if (this.next().t !== ")") throw new FilterPatternError("Expected ')'");
      return c;
    }
    if (t.t !== "sel") throw new FilterPatternError("Expected a selector such as $.field");
    const path = parseSelector(t.v);
    const op = this.next();
    if (op.t === "kw") {
      const words = [op.v];
      while (this.peek()?.t === "kw") words.push(String(this.next().v));
      const phrase = words.join(" ");
      switch (phrase) {
        case "IS TRUE":
          return (d) => select(d, path) === true;
        case "IS FALSE":
          return (d) => select(d, path) === false;
        case "IS NULL":
          return (d) => select(d, path) === null;
        case "EXISTS":
          return (d) => select(d, path) !== MISSING;
        case "NOT EXISTS":
          return (d) => select(d, path) === MISSING;
        default:
          throw new FilterPatternError(`Unknown condition: ${phrase}`);
      }
    }
    if (op.t !== "op") throw new FilterPatternError("Expected an operator (=, !=, <, >, <=, >=)");
    const value = this.next();
    if (value.t === "num") {
      return (d) => {
        const v = select(d, path);
        if (typeof v === "number") return compare(op.v, v, value.v);
        // A string field compared with = / != to a number compares as text.
        if (typeof v === "string" && (op.v === "=" || op.v === "!="))
          return (v === value.raw) === (op.v === "=");
        return false;
      };
    }
    if (op.v !== "=" && op.v !== "!=") throw new FilterPatternError(`${op.v} compares numbers only`);
    const eq = op.v === "=";
    if (value.t === "re") {
      const re = regexFor(value.v);
      return (d) => {
        const v = select(d, path);
        return typeof v === "string" && re.test(v) === eq;
      };
    }
    if (value.t === "str") {
      const match = wildcard(value.v);
      return (d) => {
        const v = select(d, path);
        if (typeof v === "string") return match(v) === eq;
        if (typeof v === "number" || typeof v === "boolean") return match(String(v)) === eq;
        return false;
      };
    }
    throw new FilterPatternError("Expected a value");
  }
}

/** A repeated group that holds a quantifier or alternatives (`(a+)+`, `(a|aa)*`): exponential backtracking. */
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*(?:[*+|]|\{\d+,?\d*\})(?:[^()\\]|\\.)*\)(?:[*+]|\{\d+,?\d*\})/;

/**
 * A `%regex%` body, compiled as JavaScript's. The pattern runs on the server over every examined
 * event, so the constructs that make backtracking explode are refused: back-references,
 * lookarounds and nested quantifiers (AWS's own regex subset has none of them).
 */
function regexFor(body: string): RegExp {
  if (/\\[1-9k]|\(\?<?[=!]/.test(body) || NESTED_QUANTIFIER.test(body)) {
    throw new FilterPatternError(
      `Unsupported regular expression: %${body}% (no back-references, lookarounds, or repeated groups holding quantifiers or alternatives)`,
    );
  }
  try {
    return new RegExp(body);
  } catch {
    throw new FilterPatternError(`Invalid regular expression: %${body}%`);
  }
}

function compileJson(text: string): Matcher {
  if (!text.endsWith("}")) throw new FilterPatternError("A JSON pattern ends with '}'");
  const cond = new JsonParser(tokenizeJson(text.slice(1, -1))).parse();
  return (m) => {
    const s = m.trimStart();
    if (!s.startsWith("{") && !s.startsWith("[")) return false;
    let doc: unknown;
    try {
      doc = JSON.parse(s);
    } catch {
      return false;
    }
    return cond(doc);
  };
}

// ---------- space-delimited patterns ----------

interface Field {
  /** `...`: any number of fields. */
  ellipsis: boolean;
  test?: (value: string) => boolean;
}

function fieldCondition(expr: string): (value: string) => boolean {
  const ors = expr.split("||").map((alt) =>
    alt.split("&&").map((one) => {
      const m = /^\s*[\w-]+\s*(!=|<=|>=|=|<|>)\s*(.+?)\s*$/.exec(one);
      if (!m) throw new FilterPatternError(`Invalid field condition: ${one.trim()}`);
      const op = m[1] as string;
      let raw = m[2] as string;
      if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) raw = unquote(raw.slice(1, -1));
      if (op === "=" || op === "!=") {
        const n = Number(raw);
        const numeric = raw.trim() !== "" && !Number.isNaN(n) && !raw.includes("*");
        const match = wildcard(raw);
        return (v: string) =>
          (numeric && !Number.isNaN(Number(v)) ? Number(v) === n : match(v)) === (op === "=");
      }
      const n = Number(raw);
      if (Number.isNaN(n)) throw new FilterPatternError(`${op} compares numbers only`);
      return (v: string) => {
        const x = Number(v);
        return v.trim() !== "" && !Number.isNaN(x) && compare(op, x, n);
      };
    }),
  );
  return (v) => ors.some((ands) => ands.every((c) => c(v)));
}

function compileSpaceDelimited(text: string): Matcher {
  if (!text.endsWith("]")) throw new FilterPatternError("A space-delimited pattern ends with ']'");
  const inner = text.slice(1, -1).trim();
  const fields: Field[] =
    inner === ""
      ? []
      : splitTopLevel(inner, ",").map((f) => {
          const s = f.trim();
          if (s === "...") return { ellipsis: true };
          if (/^[\w-]+$/.test(s)) return { ellipsis: false };
          return { ellipsis: false, test: fieldCondition(s) };
        });
  return (m) => matchFields(fields, 0, splitMessage(m), 0, new Set());
}

/** Fields from `fi` on against values from `vi` on; `failed` remembers (fi, vi) pairs that did not match. */
function matchFields(
  fields: Field[],
  fi: number,
  values: string[],
  vi: number,
  failed: Set<number>,
): boolean {
  if (fi === fields.length) return vi === values.length;
  const key = fi * (values.length + 1) + vi;
  if (failed.has(key)) return false;
  const f = fields[fi] as Field;
  let ok = false;
  if (f.ellipsis) {
    for (let k = vi; k <= values.length && !ok; k++) ok = matchFields(fields, fi + 1, values, k, failed);
  } else if (vi < values.length && (!f.test || f.test(values[vi] as string))) {
    ok = matchFields(fields, fi + 1, values, vi + 1, failed);
  }
  if (!ok) failed.add(key);
  return ok;
}

function splitTopLevel(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"' && s[i - 1] !== "\\") quoted = !quoted;
    else if (!quoted && (c === "(" || c === "[")) depth++;
    else if (!quoted && (c === ")" || c === "]")) depth--;
    else if (!quoted && depth === 0 && c === sep) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

/** A message's space-separated fields; `"…"` and `[…]` enclose one field (without the enclosing marks). */
function splitMessage(m: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < m.length) {
    while (i < m.length && /\s/.test(m[i] as string)) i++;
    if (i >= m.length) break;
    const open = m[i];
    const close = open === '"' ? '"' : open === "[" ? "]" : undefined;
    if (close) {
      const end = m.indexOf(close, i + 1);
      if (end >= 0) {
        out.push(m.slice(i + 1, end));
        i = end + 1;
        continue;
      }
    }
    let end = i;
    while (end < m.length && !/\s/.test(m[end] as string)) end++;
    out.push(m.slice(i, end));
    i = end;
  }
  return out;
}
