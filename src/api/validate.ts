/**
 * Model validation: the request checks AWS's front end makes from the API
 * model before Lambda's own code runs — required members, string lengths,
 * patterns, enums, number ranges, list lengths, map sizes and JSON types —
 * answered with AWS's ValidationException text. The shapes come from the
 * generated model (src/api/generated/lambda-model.ts); nothing here is
 * specific to one operation.
 *
 * AWS's wording, as real responses quote it:
 * - "1 validation error detected: Value 'arn:aws:lambda:us-east-1:REDACTED:function:CfnAcmCertificate' at
 *   'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: …"
 *   (github.com/ryansb/acm-certs-cloudformation/issues/4)
 * - member paths are lowerCamel member names, nested with dots, first letter only lowered:
 *   "Value '…' at 'kMSKeyArn' failed to satisfy constraint: …" (github.com/highsource/bitcoin-a-day/issues/1),
 *   "at 'code.s3Bucket'" (github.com/awslabs/aws-transit-vpc/issues/32)
 * - list members report the element's whole constraint set at the list:
 *   "Value '[]' at 'layers' failed to satisfy constraint: Member must satisfy constraint: [Member must have
 *   length less than or equal to 2048, Member must have length greater than or equal to 1, Member must satisfy
 *   regular expression pattern: …, Member must not be null]" (github.com/appleboy/lambda-action/issues/83)
 * - a missing member: "Value null at 'tags.1.member.value' failed to satisfy constraint: Member must not be
 *   null" (github.com/serverless/serverless/issues/2036)
 * - several: "N validation errors detected: <first>; <second>" (the same prefix, errors joined by "; ").
 */
import { InvalidRequestContent, Serialization, ValidationError } from "../errors.js";
import { type OperationModel, SHAPES, type ShapeModel } from "./generated/lambda-model.js";

/**
 * Shapes whose pattern and enum Lambda itself checks with a more specific
 * answer than ValidationException (lengths are still checked here).
 */
const SERVICE_CHECKED = new Set<string>([
  // Runtime: Lambda answers InvalidParameterValueException "… or be a valid ARN" (checked in function-config).
  "Runtime",
  // Tag resource ARNs: Lambda answers InvalidParameterValueException for ARNs it cannot tag (routes/tags.ts).
  "TaggableResource",
]);

/**
 * Lambent's documented extensions of the model: these ARN members also take
 * the URIs of the targets Lambent supports beyond AWS (http(s) destinations,
 * broker URIs as event sources and destinations). The service checks them.
 */
const URI_EXTENSION_SHAPES = new Set(["Arn", "DestinationArn", "ResourceArn"]);
const EXTENSION_URI_RE = /^[a-z][a-z0-9+.-]*:\/\//i;

/** One service's request shapes, and the shapes whose pattern/enum its own code checks instead. */
export interface ShapeTable {
  shapes: Record<string, ShapeModel>;
  serviceChecked: ReadonlySet<string>;
  uriExtensions: ReadonlySet<string>;
}

export const LAMBDA_SHAPES: ShapeTable = {
  shapes: SHAPES,
  serviceChecked: SERVICE_CHECKED,
  uriExtensions: URI_EXTENSION_SHAPES,
};

/** The request as the model's members see it. */
export interface ModelRequest {
  /** Path placeholders by model member location name. */
  params: Record<string, string>;
  query: Record<string, unknown>;
  headers: Record<string, unknown>;
  /** The parsed JSON body (undefined when the operation takes none or it is a raw payload). */
  body: Record<string, unknown> | undefined;
  /** Whether the request carries a body (for operations whose payload member is the raw body). */
  hasBody?: boolean;
}

const lowerFirst = (s: string) => (s.length === 0 ? s : s[0]!.toLowerCase() + s.slice(1));

/** Java's toString of a value, as AWS's messages show them. */
function show(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  if (typeof value === "object") {
    return `{${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${k}=${show(v)}`)
      .join(", ")}}`;
  }
  return String(value);
}

function valuePart(value: unknown, sensitive: boolean): string {
  if (sensitive) return "Value";
  if (value === null || value === undefined) return "Value null";
  return `Value '${show(value)}'`;
}

/**
 * A model pattern as a JavaScript RegExp matching the whole value (Java's
 * matches()). Unicode mode where it compiles (needed for \p{L} classes),
 * else plain mode (Java accepts classes like [a-zA-Z0-9-_] that Unicode mode refuses).
 */
export function compilePattern(pattern: string): RegExp {
  try {
    return new RegExp(`^(?:${pattern})$`, "u");
  } catch {
    return new RegExp(`^(?:${pattern})$`);
  }
}

const regexCache = new Map<string, RegExp>();
function fullMatch(pattern: string, s: string): boolean {
  let re = regexCache.get(pattern);
  if (!re) {
    re = compilePattern(pattern);
    regexCache.set(pattern, re);
  }
  return re.test(s);
}

/** Every constraint of a scalar shape, in AWS's order (as the list-member message lists them). */
function allConstraints(shape: ShapeModel): string[] {
  const out: string[] = [];
  if (shape.type === "string" || shape.type === "blob") {
    if (shape.max !== undefined) out.push(`Member must have length less than or equal to ${shape.max}`);
    if (shape.min !== undefined) out.push(`Member must have length greater than or equal to ${shape.min}`);
    if (shape.pattern !== undefined)
      out.push(`Member must satisfy regular expression pattern: ${shape.pattern}`);
    if (shape.enum) out.push(`Member must satisfy enum value set: [${shape.enum.join(", ")}]`);
  } else if (shape.type === "integer" || shape.type === "long" || shape.type === "double") {
    if (shape.max !== undefined) out.push(`Member must have value less than or equal to ${shape.max}`);
    if (shape.min !== undefined) out.push(`Member must have value greater than or equal to ${shape.min}`);
  }
  return out;
}

class TypeMismatch extends Error {}

function typeError(member: string, expected: string, value: unknown): never {
  const got = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  throw new TypeMismatch(
    `Could not parse request body into json: Could not parse payload into json: Cannot deserialize value of type \`${expected}\` from ${got} value (member '${member}')`,
  );
}

/** The constraints a scalar value breaks (empty: none). */
function scalarViolations(
  t: ShapeTable,
  shapeName: string,
  shape: ShapeModel,
  value: unknown,
  member: string,
): string[] {
  const out: string[] = [];
  switch (shape.type) {
    case "string": {
      if (typeof value !== "string") typeError(member, "java.lang.String", value);
      const len = [...value].length;
      if (shape.max !== undefined && len > shape.max)
        out.push(`Member must have length less than or equal to ${shape.max}`);
      if (shape.min !== undefined && len < shape.min)
        out.push(`Member must have length greater than or equal to ${shape.min}`);
      if (
        shape.pattern !== undefined &&
        !t.serviceChecked.has(shapeName) &&
        !fullMatch(shape.pattern, value) &&
        !(t.uriExtensions.has(shapeName) && EXTENSION_URI_RE.test(value))
      )
        out.push(`Member must satisfy regular expression pattern: ${shape.pattern}`);
      if (shape.enum && !t.serviceChecked.has(shapeName) && !shape.enum.includes(value))
        out.push(`Member must satisfy enum value set: [${shape.enum.join(", ")}]`);
      break;
    }
    case "integer":
    case "long":
    case "double": {
      if (typeof value !== "number" || (shape.type !== "double" && !Number.isInteger(value)))
        typeError(member, shape.type === "double" ? "double" : "int", value);
      if (shape.max !== undefined && value > shape.max)
        out.push(`Member must have value less than or equal to ${shape.max}`);
      if (shape.min !== undefined && value < shape.min)
        out.push(`Member must have value greater than or equal to ${shape.min}`);
      break;
    }
    case "boolean":
      if (typeof value !== "boolean") typeError(member, "boolean", value);
      break;
    case "blob":
      if (typeof value !== "string") typeError(member, "byte[]", value);
      break;
    case "timestamp":
      if (typeof value !== "string" && typeof value !== "number") typeError(member, "java.util.Date", value);
      break;
  }
  return out;
}

/**
 * Validate `value` against shape `shapeName` at member path `path`, pushing
 * "Value … at '…' failed to satisfy constraint: …" texts onto `errors`.
 */
function check(
  t: ShapeTable,
  shapeName: string,
  value: unknown,
  path: string,
  member: string,
  errors: string[],
): void {
  const shape = t.shapes[shapeName];
  if (!shape || value === undefined || value === null || value === UNPARSED) return;
  const sensitive = shape.sensitive === true;
  const fail = (constraint: string) =>
    errors.push(`${valuePart(value, sensitive)} at '${path}' failed to satisfy constraint: ${constraint}`);
  switch (shape.type) {
    case "structure": {
      if (typeof value !== "object" || Array.isArray(value)) typeError(member, shapeName, value);
      checkStructure(t, shapeName, value as Record<string, unknown>, path, errors);
      return;
    }
    case "list": {
      if (!Array.isArray(value)) typeError(member, "java.util.List", value);
      if (shape.max !== undefined && value.length > shape.max)
        fail(`Member must have length less than or equal to ${shape.max}`);
      if (shape.min !== undefined && value.length < shape.min)
        fail(`Member must have length greater than or equal to ${shape.min}`);
      const itemName = shape.member as string;
      const item = t.shapes[itemName];
      if (!item) return;
      if (item.type === "structure" || item.type === "list" || item.type === "map") {
        value.forEach((v, i) => {
          check(t, itemName, v, `${path}.${i + 1}.member`, member, errors);
        });
        return;
      }
      const broken = value.some(
        (v) => v === null || scalarViolations(t, itemName, item, v, member).length > 0,
      );
      if (broken)
        fail(
          `Member must satisfy constraint: [${[...allConstraints(item), "Member must not be null"].join(", ")}]`,
        );
      return;
    }
    case "map": {
      if (typeof value !== "object" || Array.isArray(value)) typeError(member, "java.util.Map", value);
      const entries = Object.entries(value as Record<string, unknown>);
      if (shape.max !== undefined && entries.length > shape.max)
        fail(`Member must have length less than or equal to ${shape.max}`);
      if (shape.min !== undefined && entries.length < shape.min)
        fail(`Member must have length greater than or equal to ${shape.min}`);
      const keyName = shape.key as string;
      const valName = shape.value as string;
      const keyShape = t.shapes[keyName];
      const valShape = t.shapes[valName];
      if (keyShape && entries.some(([k]) => scalarViolations(t, keyName, keyShape, k, member).length > 0)) {
        fail(`Map keys must satisfy constraint: [${allConstraints(keyShape).join(", ")}]`);
      }
      if (valShape && valShape.type !== "structure" && valShape.type !== "list" && valShape.type !== "map") {
        if (
          entries.some(([, v]) => v === null || scalarViolations(t, valName, valShape, v, member).length > 0)
        ) {
          fail(
            `Map value must satisfy constraint: [${[...allConstraints(valShape), "Member must not be null"].join(", ")}]`,
          );
        }
      } else if (valShape) {
        for (const [k, v] of entries) check(t, valName, v, `${path}.${k}`, member, errors);
      }
      return;
    }
    default:
      for (const c of scalarViolations(t, shapeName, shape, value, member)) fail(c);
  }
}

function checkStructure(
  t: ShapeTable,
  shapeName: string,
  value: Record<string, unknown>,
  path: string,
  errors: string[],
) {
  const shape = t.shapes[shapeName];
  if (!shape?.members) return;
  for (const m of membersOf(shape)) {
    const v = value[m.name];
    if (v === undefined || v === null) {
      // An absent member is only ever checked for being required.
      if (m.required)
        errors.push(
          `Value null at '${path ? `${path}.${m.key}` : m.key}' failed to satisfy constraint: Member must not be null`,
        );
      continue;
    }
    check(t, m.shape, v, path ? `${path}.${m.key}` : m.key, m.name, errors);
  }
}

interface PreparedMember {
  name: string;
  /** The member's name as it appears in a constraint's path. */
  key: string;
  shape: string;
  required: boolean;
}

/** A structure's members as the checks walk them: worked out once per shape. */
const MEMBERS = new WeakMap<ShapeModel, PreparedMember[]>();

function membersOf(shape: ShapeModel): PreparedMember[] {
  let list = MEMBERS.get(shape);
  if (list === undefined) {
    const required = new Set(shape.required ?? []);
    list = Object.entries(shape.members ?? {}).map(([name, m]) => ({
      name,
      key: lowerFirst(name),
      shape: m.shape,
      required: required.has(name),
    }));
    MEMBERS.set(shape, list);
  }
  return list;
}

/** The input structure's members gathered from path, query, headers and body. */
export function gatherInput(
  op: OperationModel,
  req: ModelRequest,
  shapes: Record<string, ShapeModel> = SHAPES,
): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  const shape = op.input ? shapes[op.input] : undefined;
  if (!shape?.members) return input;
  for (const { name, where, location, memberShape } of sourcesOf(shape, shapes)) {
    if (location === "uri") {
      if (req.params[where] !== undefined) input[name] = queryScalar(memberShape, req.params[where]);
    } else if (location === "querystring") {
      const raw = req.query[where];
      if (raw === undefined) continue;
      if (memberShape?.type === "list") input[name] = Array.isArray(raw) ? raw : [raw];
      else {
        const one = Array.isArray(raw) ? raw[0] : raw;
        input[name] = queryScalar(memberShape, one);
      }
    } else if (location === "header") {
      const raw = req.headers[where];
      if (raw !== undefined) input[name] = Array.isArray(raw) ? raw[0] : raw;
    } else if (location === "payload") {
      // The raw body (Invoke's Payload, InvokeAsync's InvokeArgs): present or not, never parsed here.
      if (req.hasBody) input[name] = UNPARSED;
    } else if (location === "body" && req.body) {
      if (name in req.body) input[name] = req.body[name];
    }
  }
  return input;
}

interface MemberSource {
  name: string;
  /** The path placeholder, query parameter or (lower-case) header the member comes from. */
  where: string;
  location: "uri" | "querystring" | "header" | "payload" | "body" | "other";
  memberShape: ShapeModel | undefined;
}

/** Where each member of an input shape comes from: worked out once per shape. */
const SOURCES = new WeakMap<ShapeModel, MemberSource[]>();

function sourcesOf(shape: ShapeModel, shapes: Record<string, ShapeModel>): MemberSource[] {
  let list = SOURCES.get(shape);
  if (list === undefined) {
    list = Object.entries(shape.members ?? {}).map(([name, m]) => {
      const where = m.locationName ?? name;
      const location =
        m.location === "uri" || m.location === "querystring"
          ? m.location
          : m.location === "header"
            ? "header"
            : shape.payload === name
              ? "payload"
              : m.location === undefined
                ? "body"
                : "other";
      return {
        name,
        where: location === "header" ? where.toLowerCase() : where,
        location,
        memberShape: shapes[m.shape],
      } satisfies MemberSource;
    });
    SOURCES.set(shape, list);
  }
  return list;
}

/** A path or query value that is not text of its type: left to the operation's own checks. */
const UNPARSED = Symbol("unparsed");

/** Query values arrive as text: numbers and booleans are converted when they parse. */
function queryScalar(shape: ShapeModel | undefined, raw: unknown): unknown {
  if (typeof raw !== "string" || !shape) return raw;
  if (shape.type === "integer" || shape.type === "long") {
    const n = Number(raw);
    return raw.trim() !== "" && Number.isInteger(n) ? n : UNPARSED;
  }
  if (shape.type === "boolean") return raw === "true" ? true : raw === "false" ? false : UNPARSED;
  return raw;
}

/** Validate a request against its operation's input shape; throws AWS's ValidationException. */
export function validateRequest(op: OperationModel, req: ModelRequest, t: ShapeTable = LAMBDA_SHAPES): void {
  if (!op.input) return;
  const errors: string[] = [];
  try {
    checkStructure(t, op.input, gatherInput(op, req, t.shapes), "", errors);
  } catch (err) {
    if (err instanceof TypeMismatch) throw InvalidRequestContent(err.message);
    throw err;
  }
  if (errors.length === 0) return;
  const head =
    errors.length === 1 ? "1 validation error detected" : `${errors.length} validation errors detected`;
  throw ValidationError(`${head}: ${errors.join("; ")}`);
}

/**
 * Validate a JSON-protocol request body (CloudWatch, CloudWatch Logs) against its input shape: a
 * member of the wrong JSON type is a SerializationException with the deserializer's message; broken
 * constraints are `invalid("N validation error(s) detected: …")`, the error type the service uses.
 */
export function checkJsonInput(
  t: ShapeTable,
  inputShape: string,
  body: Record<string, unknown>,
  invalid: (message: string) => Error,
): void {
  const errors: string[] = [];
  try {
    checkStructure(t, inputShape, body, "", errors);
  } catch (err) {
    if (err instanceof TypeMismatch) throw Serialization(err.message);
    throw err;
  }
  if (errors.length === 0) return;
  const head =
    errors.length === 1 ? "1 validation error detected" : `${errors.length} validation errors detected`;
  throw invalid(`${head}: ${errors.join("; ")}`);
}
