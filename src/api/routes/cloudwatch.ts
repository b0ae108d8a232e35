/**
 * CloudWatch's metric API (2010-08-01) on the same port as Lambda's, signed for the service
 * `monitoring`, in the three protocols its model lists and clients speak:
 *  - JSON 1.0 (the AWS SDK v3 in use here, 3.116x): `POST /` with
 *    `X-Amz-Target: GraniteServiceVersion20100801.<Op>` and JSON bodies, timestamps as epoch seconds;
 *  - smithy RPC v2 CBOR (the model's first protocol, newer SDKs):
 *    `POST /service/GraniteServiceVersion20100801/operation/<Op>` with `smithy-protocol: rpc-v2-cbor`
 *    and CBOR bodies, timestamps as tag 1;
 *    errors of both carry `__type` in the body and, the service being query-compatible,
 *    `x-amzn-query-error: <Code>;Sender`;
 *  - the query protocol (the AWS CLI v2 up to 2.2x, botocore): `POST /` with a form-encoded body
 *    `Action=<Op>&Version=2010-08-01&…`, lists as `X.member.N`, answers and errors in XML.
 * Both decode into one input object (timestamps as epoch seconds) checked against the model
 * (generated/cloudwatch-model.ts) before metrics/cloudwatch.ts runs the operation.
 */
import { cbor, dateToTag } from "@smithy/core/cbor";
import type { FastifyReply, FastifyRequest } from "fastify";
import { LambdaError, Serialization } from "../../errors.js";
import { InvalidParameterValue } from "../../metrics/query.js";
import type { Platform } from "../../platform.js";
import {
  CLOUDWATCH_API_VERSION,
  CLOUDWATCH_ERRORS,
  CLOUDWATCH_OPERATIONS,
  CLOUDWATCH_SHAPES,
  CLOUDWATCH_TARGET_PREFIX,
  CLOUDWATCH_XML_NAMESPACE,
} from "../generated/cloudwatch-model.js";
import { jsonProtocolBody } from "../request.js";
import { checkJsonInput, type ShapeTable } from "../validate.js";

const TABLE: ShapeTable = { shapes: CLOUDWATCH_SHAPES, serviceChecked: new Set(), uriExtensions: new Set() };
export const CBOR_PATH_PREFIX = `/service/${CLOUDWATCH_TARGET_PREFIX}/operation/`;

type Input = Record<string, unknown>;
/** Members a query-protocol list may have (the largest CloudWatch allows is 500). */
const MAX_QUERY_LIST = 1000;
export type CloudWatchProtocol = "json" | "cbor" | "query";
const JSON_TARGET = `${CLOUDWATCH_TARGET_PREFIX}.`;
const JSON_CONTENT_TYPE = "application/x-amz-json-1.0";

/** Which CloudWatch protocol a request speaks, or undefined when it is not a CloudWatch request. */
export function cloudWatchProtocolOf(req: FastifyRequest): CloudWatchProtocol | undefined {
  if (req.method !== "POST") return undefined;
  const url = req.raw.url ?? "";
  if (url.startsWith(CBOR_PATH_PREFIX)) return "cbor";
  if (url !== "/" && !url.startsWith("/?")) return undefined;
  const target = req.headers["x-amz-target"];
  if (typeof target === "string" && target.startsWith(JSON_TARGET)) return "json";
  if (target === undefined) {
    const type = req.headers["content-type"];
    if (typeof type === "string" && type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      return "query";
    }
  }
  return undefined;
}

/** The operation a CloudWatch request names (path for CBOR, `Action` for query), if any. */
export function cloudWatchOperationOf(req: FastifyRequest): string | undefined {
  const protocol = cloudWatchProtocolOf(req);
  if (protocol === "cbor") {
    return (req.raw.url ?? "").slice(CBOR_PATH_PREFIX.length).split("?")[0];
  }
  if (protocol === "json") return (req.headers["x-amz-target"] as string).slice(JSON_TARGET.length);
  if (protocol === "query") {
    const body = req.body as Buffer | undefined;
    return new URLSearchParams(body?.toString("utf8") ?? "").get("Action") ?? undefined;
  }
  return undefined;
}

// ---- CBOR ----

/** Timestamps (CBOR tag 1) become epoch seconds; anything else that is not plain data is refused. */
function fromCbor(value: unknown, depth = 0): unknown {
  if (depth > 32) throw Serialization("The request body nests too deeply.");
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => fromCbor(v, depth + 1));
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  const tagged = value as { tag?: unknown; value?: unknown };
  if (Object.getOwnPropertySymbols(value).length > 0 && typeof tagged.tag === "number") {
    if (tagged.tag === 1 && typeof tagged.value === "number") return tagged.value;
    throw Serialization(`CBOR tag ${tagged.tag} is not accepted here.`);
  }
  const out: Input = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === "__proto__") continue;
    out[k] = fromCbor(v, depth + 1);
  }
  return out;
}

function parseCborBody(req: FastifyRequest): Input {
  const raw = req.body as Buffer | undefined;
  if (!raw || raw.length === 0) return {};
  let decoded: unknown;
  try {
    decoded = cbor.deserialize(new Uint8Array(raw.buffer, raw.byteOffset, raw.length));
  } catch (err) {
    if (err instanceof LambdaError) throw err;
    throw Serialization("The request body is not valid CBOR.");
  }
  const input = fromCbor(decoded);
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw Serialization("The request body must be a CBOR map.");
  }
  return input as Input;
}

function toCbor(value: unknown): unknown {
  if (value instanceof Date) return dateToTag(value);
  if (Array.isArray(value)) return value.map(toCbor);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, toCbor(v)]));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toCbor(v)]));
  }
  return value;
}

// ---- JSON 1.0 ----

function toJson(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(toJson);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, toJson(v)]));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value;
}

// ---- query protocol ----

/** Decode `prefix`'s members of shape `shapeName` from form parameters (lists as `.member.N`). */
function decodeQuery(params: Map<string, string>, shapeName: string, prefix: string, depth = 0): unknown {
  const shape = CLOUDWATCH_SHAPES[shapeName];
  if (!shape || depth > 16) return undefined;
  switch (shape.type) {
    case "structure": {
      const out: Input = {};
      let any = false;
      for (const [name, member] of Object.entries(shape.members ?? {})) {
        const key = member.locationName ?? name;
        const v = decodeQuery(params, member.shape, prefix ? `${prefix}.${key}` : key, depth + 1);
        if (v !== undefined) {
          out[name] = v;
          any = true;
        }
      }
      return any || !prefix ? out : undefined;
    }
    case "list": {
      const items: unknown[] = [];
      const empty = params.get(prefix) === "";
      for (let i = 1; ; i++) {
        if (i > MAX_QUERY_LIST) {
          throw InvalidParameterValue(`The collection ${prefix} has more than ${MAX_QUERY_LIST} members.`);
        }
        const v = decodeQuery(params, shape.member as string, `${prefix}.member.${i}`, depth + 1);
        if (v === undefined) break;
        items.push(v);
      }
      return items.length > 0 || empty ? items : undefined;
    }
    case "map": {
      const out: Input = {};
      for (let i = 1; ; i++) {
        const k = params.get(`${prefix}.entry.${i}.key`);
        if (k === undefined) break;
        out[k] = decodeQuery(params, shape.value as string, `${prefix}.entry.${i}.value`, depth + 1);
      }
      return Object.keys(out).length > 0 ? out : undefined;
    }
    default: {
      const raw = params.get(prefix);
      if (raw === undefined) return undefined;
      switch (shape.type) {
        case "integer":
        case "long":
        case "double": {
          const n = Number(raw);
          if (raw.trim() === "" || !Number.isFinite(n)) {
            throw InvalidParameterValue(
              `The value ${raw.slice(0, 64)} for parameter ${prefix} is not a number.`,
            );
          }
          return n;
        }
        case "boolean":
          if (raw !== "true" && raw !== "false") {
            throw InvalidParameterValue(
              `The value ${raw.slice(0, 64)} for parameter ${prefix} is not a boolean.`,
            );
          }
          return raw === "true";
        case "timestamp": {
          const ms = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) * 1000 : Date.parse(raw);
          if (!Number.isFinite(ms)) {
            throw InvalidParameterValue(
              `The value ${raw.slice(0, 64)} for parameter ${prefix} is not a timestamp.`,
            );
          }
          return ms / 1000;
        }
        default:
          return raw;
      }
    }
  }
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function toXml(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => `<member>${toXml(v)}</member>`).join("");
  if (value instanceof Map) {
    return [...value]
      .map(([k, v]) => `<entry><key>${xmlEscape(String(k))}</key><value>${toXml(v)}</value></entry>`)
      .join("");
  }
  if (value !== null && typeof value === "object") {
    return Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<${k}>${toXml(v)}</${k}>`)
      .join("");
  }
  return xmlEscape(String(value));
}

// ---- errors, in each protocol ----

/** A LambdaError as CloudWatch names it: its query code and whether the sender is at fault. */
function queryError(e: LambdaError): { code: string; sender: boolean } {
  const known = CLOUDWATCH_ERRORS[e.type];
  if (known) return { code: known[0], sender: known[1] };
  return { code: e.type.replace(/Exception$/, ""), sender: e.statusCode < 500 };
}

export function sendCloudWatchError(
  reply: FastifyReply,
  protocol: CloudWatchProtocol,
  e: LambdaError,
  requestId: string,
): void {
  const { code, sender } = queryError(e);
  if (protocol === "json") {
    reply
      .code(e.statusCode)
      .headers({
        ...e.headers,
        "content-type": JSON_CONTENT_TYPE,
        "x-amzn-query-error": `${code};${sender ? "Sender" : "Receiver"}`,
      })
      .send(JSON.stringify({ __type: `com.amazonaws.cloudwatch#${e.type}`, message: e.message }));
    return;
  }
  if (protocol === "cbor") {
    reply
      .code(e.statusCode)
      .headers({
        ...e.headers,
        "smithy-protocol": "rpc-v2-cbor",
        "content-type": "application/cbor",
        "x-amzn-query-error": `${code};${sender ? "Sender" : "Receiver"}`,
      })
      .send(
        Buffer.from(cbor.serialize({ __type: `com.amazonaws.cloudwatch#${e.type}`, message: e.message })),
      );
    return;
  }
  reply
    .code(e.statusCode)
    .headers({ ...e.headers, "content-type": "text/xml" })
    .send(
      `<ErrorResponse xmlns="${CLOUDWATCH_XML_NAMESPACE}"><Error><Type>${sender ? "Sender" : "Receiver"}</Type>` +
        `<Code>${xmlEscape(code)}</Code><Message>${xmlEscape(e.message)}</Message></Error>` +
        `<RequestId>${xmlEscape(requestId)}</RequestId></ErrorResponse>`,
    );
}

// ---- dispatch ----

type Handler = (input: Input) => Promise<Input>;

export function cloudWatchHandler(platform: Platform) {
  const metrics = platform.cloudwatchMetrics;
  const ops: Record<string, Handler> = {
    GetMetricData: (i) => metrics.getMetricData(i),
    GetMetricStatistics: (i) => metrics.getMetricStatistics(i),
    ListMetrics: (i) => metrics.listMetrics(i),
  };
  return async (req: FastifyRequest, reply: FastifyReply, protocol: CloudWatchProtocol): Promise<unknown> => {
    let operation: string | undefined;
    let input: Input;
    if (protocol === "json") {
      operation = cloudWatchOperationOf(req);
      input = jsonProtocolBody(req);
    } else if (protocol === "cbor") {
      operation = cloudWatchOperationOf(req);
      const proto = req.headers["smithy-protocol"];
      if (proto !== "rpc-v2-cbor") {
        throw Serialization("The smithy-protocol header must be rpc-v2-cbor.");
      }
      input = parseCborBody(req);
    } else {
      const params = new Map(new URLSearchParams((req.body as Buffer | undefined)?.toString("utf8") ?? ""));
      operation = params.get("Action");
      if (operation === undefined) {
        throw new LambdaError("MissingAction", 400, "The request must contain the parameter Action.");
      }
      const version = params.get("Version");
      if (version !== undefined && version !== CLOUDWATCH_API_VERSION) {
        throw new LambdaError(
          "InvalidParameterValueException",
          400,
          `The API version ${version.slice(0, 32)} is not supported.`,
        );
      }
      const model = CLOUDWATCH_OPERATIONS[operation];
      input = model?.input ? ((decodeQuery(params, model.input, "") as Input) ?? {}) : {};
    }
    const model = operation !== undefined ? CLOUDWATCH_OPERATIONS[operation] : undefined;
    if (operation === undefined || !model) {
      throw new LambdaError(
        "InvalidAction",
        400,
        `The action ${String(operation).slice(0, 64)} is not valid for this web service.`,
      );
    }
    if (model.input) checkJsonInput(TABLE, model.input, input, InvalidParameterValue);
    const handler = ops[operation];
    if (!handler) {
      throw new LambdaError(
        "InvalidAction",
        400,
        `${operation} is not supported by Lambent yet (its CloudWatch API serves GetMetricData, GetMetricStatistics and ListMetrics).`,
      );
    }
    const out = await handler(input);
    if (protocol === "json") {
      reply.header("content-type", JSON_CONTENT_TYPE);
      return JSON.stringify(toJson(out));
    }
    if (protocol === "cbor") {
      reply.headers({ "smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor" });
      return Buffer.from(cbor.serialize(toCbor(out)));
    }
    reply.header("content-type", "text/xml");
    return (
      `<${operation}Response xmlns="${CLOUDWATCH_XML_NAMESPACE}"><${operation}Result>${toXml(out)}</${operation}Result>` +
      `<ResponseMetadata><RequestId>${xmlEscape(req.id)}</RequestId></ResponseMetadata></${operation}Response>`
    );
  };
}
