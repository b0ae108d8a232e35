/** Helpers every route uses: the request's region, its JSON body, query values. */
import type { FastifyRequest } from "fastify";
import { parseFunctionRef } from "../control/arn.js";
import {
  constraintViolation,
  InvalidParameterValue,
  InvalidRequestContent,
  Serialization,
} from "../errors.js";

const SCOPE_RE = /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\/[a-z0-9-]+\/aws4_request/;

/** The region of the request's SigV4 scope, else the server's. */
export function requestRegion(req: FastifyRequest, fallback: string): string {
  const auth = req.headers.authorization;
  if (typeof auth === "string") {
    const m = SCOPE_RE.exec(auth);
    if (m?.[1]) return m[1];
  }
  return fallback;
}

/** A JSON-protocol body (CloudWatch, CloudWatch Logs) as an object ({} when empty); else a SerializationException. */
export function jsonProtocolBody(req: FastifyRequest): Record<string, unknown> {
  const raw = req.body as Buffer | undefined;
  if (!raw || raw.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    throw Serialization("The request body is not valid JSON.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw Serialization("The request body must be a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

/** The body parsed as a JSON object ({} when empty). */
export function jsonBody(req: FastifyRequest): Record<string, unknown> {
  const raw = req.body as Buffer | undefined;
  if (!raw || raw.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString("utf8"));
  } catch {
    throw InvalidRequestContent(
      "Could not parse request body into json: Unexpected character in request body.",
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw InvalidRequestContent("Could not parse request body into json: expected a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

export function queryString(req: FastifyRequest, key: string): string | undefined {
  const v = (req.query as Record<string, unknown>)[key];
  if (Array.isArray(v)) return typeof v[0] === "string" ? v[0] : undefined;
  return typeof v === "string" ? v : undefined;
}

export function queryList(req: FastifyRequest, key: string): string[] {
  const v = (req.query as Record<string, unknown>)[key];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
  return typeof v === "string" ? [v] : [];
}

export function pathParam(req: FastifyRequest, key: string): string {
  return (req.params as Record<string, string>)[key] ?? "";
}

/**
 * Where a stored package can be downloaded (`Code.Location`, a layer's `Content.Location`): always
 * under the server's configured URL (`--public-url`, else the address it listens on), never the
 * request's `Host` header, which the client controls.
 */
export function packageLocation(publicUrl: string, kind: "code" | "layers", sha256: string): string {
  return `${publicUrl}/_lambent/${kind}/${sha256}.zip`;
}

/** The path's FunctionName, for operations that take no qualifier (a name, partial ARN or ARN). */
export function unqualifiedFunctionName(req: FastifyRequest): string {
  const ref = parseFunctionRef(pathParam(req, "FunctionName"));
  if (ref.qualifier !== undefined) {
    throw InvalidParameterValue("This operation does not accept a qualified function name.");
  }
  return ref.name;
}

/**
 * `MaxItems` from the query, `fallback` when absent. The model's range for the operation (1–50 or
 * 1–10000) is checked before the route runs (api/validate.ts); a value that is no integer at all is
 * left to this reader, and refused the same way.
 */
export function maxItemsParam(req: FastifyRequest, fallback = 50): number {
  const raw = queryString(req, "MaxItems");
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw constraintViolation("maxItems", raw, "Member must have value greater than or equal to 1");
  return n;
}
