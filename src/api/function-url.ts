/**
 * The front door of function URLs. A request reaches a URL by its host
 * (`<url-id>.lambda-url.<region>.<anything>[:port]`, e.g. `….localhost:9000`, which browsers and curl
 * resolve to loopback) or, without DNS, by the path form `/_lambent/urls/<url-id>/<path>`. It is
 * authorized as Lambda does (AuthType NONE: the function's resource policy must allow
 * `lambda:InvokeFunctionUrl` to `*` with `lambda:FunctionUrlAuthType`; AWS_IAM: a SigV4 request whose
 * principal an identity or resource policy allows), becomes an API Gateway payload format 2.0 event,
 * goes through the one invoke path (frontend/invoke.ts: concurrency, throttles, START/END/REPORT), and
 * the function's answer becomes the HTTP response (Lambda's inference rules for answers without a
 * `statusCode`; `cookies` as Set-Cookie; `isBase64Encoded`). RESPONSE_STREAM URLs write each piece to
 * the client as the function writes it, after the `HttpResponseStream` prelude when there is one.
 *
 * Requests here bypass fastify (and the API's SigV4 hook): they are claimed in the HTTP server's request
 * listener, so the front door's connection cap and timeouts still apply.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Principal } from "../auth/keys.js";
import { ACCOUNT_ID } from "../config.js";
import { functionArn } from "../control/arn.js";
import { type Cors, URL_ID_RE } from "../control/function-urls.js";
import { LATEST } from "../control/functions.js";
import { LambdaError } from "../errors.js";
import type { InvokeResponse } from "../frontend/invoke.js";
import type { Platform } from "../platform.js";
import { sandboxOriginOf } from "../worker/platform-api.js";
import { assertOwnCredentials } from "./auth.js";
import { drained } from "./routes/invoke.js";

const HOST_RE = /^([a-z0-9]{32})\.lambda-url\.([a-z0-9-]+)\.[^:]*(?::\d+)?$/i;
const PATH_PREFIX = "/_lambent/urls/";
const PRELUDE_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response";
const DELIMITER = Buffer.alloc(8);

interface Target {
  urlId: string;
  region: string | undefined;
  /** The path the function sees (the path form's prefix removed). */
  rawPath: string;
  rawQueryString: string;
  domainName: string;
}

/** Which URL a request is addressed to, if any. */
export function functionUrlTarget(req: IncomingMessage): Target | null {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  const rawQueryString = q < 0 ? "" : url.slice(q + 1);
  const host = req.headers.host ?? "";
  const m = HOST_RE.exec(host);
  if (m) {
    const urlId = (m[1] as string).toLowerCase();
    return { urlId, region: m[2], rawPath: path, rawQueryString, domainName: host.replace(/:\d+$/, "") };
  }
  if (path.startsWith(PATH_PREFIX)) {
    const rest = path.slice(PATH_PREFIX.length);
    const slash = rest.indexOf("/");
    const urlId = slash < 0 ? rest : rest.slice(0, slash);
    if (!URL_ID_RE.test(urlId)) return null;
    return {
      urlId,
      region: undefined,
      rawPath: slash < 0 ? "/" : rest.slice(slash),
      rawQueryString,
      domainName: host.replace(/:\d+$/, ""),
    };
  }
  return null;
}

/** The request listener's hook: answers a function URL request and returns true, else false. */
export function functionUrlDoor(platform: Platform): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const target = functionUrlTarget(req);
    if (!target) return false;
    serve(platform, req, res, target).catch((err) => {
      if (!platform.options.quiet) console.error("lambent: function URL request failed:", err);
      if (!res.headersSent) message(res, 500, "Internal Server Error");
      else res.destroy();
    });
    return true;
  };
}

function message(
  res: ServerResponse,
  status: number,
  text: string,
  extra: Record<string, string> = {},
): void {
  const body = JSON.stringify({ Message: text });
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...extra,
  });
  res.end(body);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      else chunks.push(c);
    });
    req.on("end", () => resolve(over ? null : Buffer.concat(chunks, size)));
    req.on("error", reject);
  });
}

async function serve(platform: Platform, req: IncomingMessage, res: ServerResponse, target: Target) {
  const requestId = randomUUID();
  res.setHeader("x-amzn-RequestId", requestId);
  const url = await platform.functionUrls.byUrlId(target.urlId);
  if (!url) {
    req.resume();
    return message(res, 403, "Forbidden");
  }
  const region = target.region ?? platform.options.region;
  const limit = platform.options.limits.syncPayloadBytes;
  const body = await readBody(req, limit);
  if (body === null) return message(res, 413, "Request Entity Too Large");
  const origin = header(req, "origin");
  if (url.cors && req.method === "OPTIONS" && origin && header(req, "access-control-request-method")) {
    return preflight(res, url.cors, origin, req);
  }
  const cors = url.cors && origin ? corsHeaders(url.cors, origin) : {};
  const qualifier = url.qualifier === LATEST ? undefined : url.qualifier;
  const arn = functionArn(region, url.functionName, qualifier);

  let principal: Principal | null = null;
  let accessKey: string | undefined;
  if (url.authType === "AWS_IAM") {
    try {
      const pending = await platform.auth.verifier.begin({
        method: req.method ?? "GET",
        rawUrl: req.url ?? "/",
        rawHeaders: req.rawHeaders,
      });
      // Through an environment's own channel only that function's session credentials exist (as for
      // the API): a function cannot present the development key or an operator's key to a URL.
      const origin = sandboxOriginOf(req.socket);
      if (origin) assertOwnCredentials(pending.principal, origin);
      platform.auth.verifier.finish(pending, body);
      principal = pending.principal;
      accessKey = /Credential=([^/]+)\//.exec(header(req, "authorization") ?? req.url ?? "")?.[1];
    } catch (err) {
      return message(res, 403, err instanceof LambdaError ? err.message : "Forbidden", cors);
    }
  }
  const fn = { name: url.functionName, arn, ...(qualifier ? { qualifier } : {}) };
  if (!(await platform.auth.authorizer.mayInvokeFunctionUrl(principal, fn, url.authType, region))) {
    return message(res, 403, "Forbidden", cors);
  }

  const event = payloadV2(req, target, body, requestId, principal, accessKey);
  const streaming = url.invokeMode === "RESPONSE_STREAM" ? new StreamedAnswer(req, res, cors) : null;
  let out: InvokeResponse;
  try {
    out = await platform.frontend.invoke({
      ref: { name: url.functionName, ...(qualifier ? { qualifier } : {}) },
      payload: Buffer.from(JSON.stringify(event)),
      payloadIsJson: true,
      region,
      maxPayloadBytes: limit,
      requestId,
      ...(streaming ? { stream: streaming } : {}),
    });
  } catch (err) {
    if (res.headersSent) return res.destroy();
    if (err instanceof LambdaError && err.statusCode === 429) {
      return message(res, 429, "Rate Exceeded.", cors);
    }
    if (err instanceof LambdaError && err.statusCode === 413) {
      return message(res, 413, "Request Entity Too Large", cors);
    }
    if (err instanceof LambdaError && err.statusCode === 404) return message(res, 403, "Forbidden", cors);
    if (err instanceof LambdaError && err.statusCode < 500) return message(res, 502, "Bad Gateway", cors);
    throw err;
  }
  if (streaming?.begun) return streaming.finish(out);
  if (out.functionError) return message(res, 502, "Internal Server Error", cors);
  const answer = mapResponse(out.payload);
  if (!answer) return message(res, 502, "Internal Server Error", cors);
  writeAnswer(req, res, answer, cors);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

// ---------------------------------------------------------------- the event

/** Content types whose bodies reach the function as text; any other body is base64. */
function isTextual(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const t = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  return (
    t.startsWith("text/") ||
    t === "application/json" ||
    t === "application/javascript" ||
    t === "application/xml" ||
    t === "application/x-www-form-urlencoded" ||
    t.endsWith("+json") ||
    t.endsWith("+xml")
  );
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `12/Mar/2020:19:03:58 +0000`, as requestContext.time is written. */
function clfTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function decodeQueryPart(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

/** An API Gateway HTTP API payload format 2.0 event, as Lambda builds it for a function URL. */
export function payloadV2(
  req: IncomingMessage,
  target: Target,
  body: Buffer,
  requestId: string,
  principal: Principal | null,
  accessKey: string | undefined,
): Record<string, unknown> {
  const headers: Record<string, string> = {};
  let cookies: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    if (name === "cookie") {
      cookies = cookies.concat(
        value
          .split(";")
          .map((c) => c.trim())
          .filter((c) => c.length > 0),
      );
      continue;
    }
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const sourceIp = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  headers["x-forwarded-proto"] ??= "http";
  headers["x-forwarded-port"] ??= String(req.socket.localPort ?? "");
  headers["x-forwarded-for"] ??= sourceIp;
  const query: Record<string, string> = {};
  for (const part of target.rawQueryString.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const k = decodeQueryPart(eq < 0 ? part : part.slice(0, eq));
    const v = decodeQueryPart(eq < 0 ? "" : part.slice(eq + 1));
    query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  }
  const now = new Date();
  const domainPrefix = target.urlId;
  const event: Record<string, unknown> = {
    version: "2.0",
    routeKey: "$default",
    rawPath: target.rawPath,
    rawQueryString: target.rawQueryString,
  };
  if (cookies.length > 0) event.cookies = cookies;
  event.headers = headers;
  if (Object.keys(query).length > 0) event.queryStringParameters = query;
  event.requestContext = {
    accountId: principal ? ACCOUNT_ID : "anonymous",
    apiId: target.urlId,
    ...(principal
      ? {
          authorizer: {
            iam: {
              accessKey: accessKey ?? null,
              accountId: ACCOUNT_ID,
              callerId: principal.arn.split("/").pop() ?? principal.arn,
              cognitoIdentity: null,
              principalOrgId: null,
              userArn: principal.arn,
              userId: principal.arn.split("/").pop() ?? principal.arn,
            },
          },
        }
      : {}),
    domainName: target.domainName,
    domainPrefix,
    http: {
      method: req.method ?? "GET",
      path: target.rawPath,
      protocol: `HTTP/${req.httpVersion}`,
      sourceIp,
      userAgent: header(req, "user-agent") ?? "",
    },
    requestId,
    routeKey: "$default",
    stage: "$default",
    time: clfTime(now),
    timeEpoch: now.getTime(),
  };
  if (body.length > 0) {
    const text = isTextual(header(req, "content-type"));
    event.body = text ? body.toString("utf8") : body.toString("base64");
    event.isBase64Encoded = !text;
  } else {
    event.isBase64Encoded = false;
  }
  return event;
}

// ---------------------------------------------------------------- the answer

interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  cookies: string[];
  body: Buffer;
}

function stringHeaders(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) return out;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === null || x === undefined) continue;
    out[k.toLowerCase()] = typeof x === "string" ? x : String(x);
  }
  return out;
}

/**
 * The function's answer as Lambda maps it: an object with `statusCode` is a response (headers,
 * cookies, body, isBase64Encoded); any other valid JSON is a 200 `application/json` body exactly as
 * the function answered it. Null when it cannot be mapped (a 502).
 */
export function mapResponse(payload: Buffer): Answer | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString("utf8"));
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed) || !("statusCode" in parsed)) {
    return { statusCode: 200, headers: { "content-type": "application/json" }, cookies: [], body: payload };
  }
  return structured(parsed as Record<string, unknown>);
}

function structured(r: Record<string, unknown>): Answer | null {
  const statusCode = Number(r.statusCode);
  if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 599) return null;
  const headers = stringHeaders(r.headers);
  headers["content-type"] ??= "application/json";
  const cookies = Array.isArray(r.cookies) ? r.cookies.filter((c): c is string => typeof c === "string") : [];
  let body: Buffer;
  if (r.body === undefined || r.body === null) body = Buffer.alloc(0);
  else if (typeof r.body === "string") {
    body = r.isBase64Encoded === true ? Buffer.from(r.body, "base64") : Buffer.from(r.body, "utf8");
  } else body = Buffer.from(JSON.stringify(r.body));
  return { statusCode, headers, cookies, body };
}

/** Headers the client must never get from a function (the connection's framing is ours). */
const HOP_BY_HOP = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade"]);

function responseHeaders(
  a: Omit<Answer, "body">,
  cors: Record<string, string>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(a.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
  if (a.cookies.length > 0) out["set-cookie"] = a.cookies;
  return { ...out, ...cors };
}

function writeAnswer(
  req: IncomingMessage,
  res: ServerResponse,
  a: Answer,
  cors: Record<string, string>,
): void {
  res.writeHead(a.statusCode, { ...responseHeaders(a, cors), "content-length": a.body.length });
  res.end(req.method === "HEAD" ? undefined : a.body);
}

// ---------------------------------------------------------------- CORS

function originAllowed(cors: Cors, origin: string): boolean {
  return (cors.AllowOrigins ?? []).some((o) => o === "*" || o.toLowerCase() === origin.toLowerCase());
}

/** The CORS headers of an actual (not preflight) response. */
function corsHeaders(cors: Cors, origin: string): Record<string, string> {
  if (!originAllowed(cors, origin)) return {};
  const out: Record<string, string> = {
    "access-control-allow-origin":
      (cors.AllowOrigins ?? []).includes("*") && !cors.AllowCredentials ? "*" : origin,
    vary: "Origin",
  };
  if (cors.AllowCredentials) out["access-control-allow-credentials"] = "true";
  if (cors.ExposeHeaders?.length) out["access-control-expose-headers"] = cors.ExposeHeaders.join(",");
  return out;
}

/** A preflight answered by the URL itself (the function is not invoked). */
function preflight(res: ServerResponse, cors: Cors, origin: string, req: IncomingMessage): void {
  const method = (header(req, "access-control-request-method") ?? "").toUpperCase();
  const methods = (cors.AllowMethods ?? []).map((m) => m.toUpperCase());
  const ok = originAllowed(cors, origin) && (methods.includes("*") || methods.includes(method));
  const headers: Record<string, string> = { vary: "Origin" };
  if (ok) {
    Object.assign(headers, corsHeaders(cors, origin));
    headers["access-control-allow-methods"] = methods.includes("*") ? method : methods.join(",");
    const asked = header(req, "access-control-request-headers");
    const allowed = cors.AllowHeaders ?? [];
    if (asked && allowed.length > 0) {
      headers["access-control-allow-headers"] = allowed.includes("*") ? asked : allowed.join(",");
    }
    if (cors.MaxAge !== undefined) headers["access-control-max-age"] = String(cors.MaxAge);
  }
  res.writeHead(200, { ...headers, "content-length": 0 });
  res.end();
}

// ---------------------------------------------------------------- streaming

/**
 * A RESPONSE_STREAM URL's answer: the head is written once known (at once for a plain stream; after
 * the prelude and its 8 NUL bytes for `HttpResponseStream`), then every piece as it arrives.
 */
class StreamedAnswer {
  begun = false;
  private prelude: Buffer[] | null = null;
  private preludeBytes = 0;
  private headWritten = false;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly cors: Record<string, string>,
  ) {}

  start(head: { contentType: string }): void {
    this.begun = true;
    if (head.contentType.split(";")[0]?.trim() === PRELUDE_CONTENT_TYPE) {
      this.prelude = [];
      return;
    }
    this.writeHead({ statusCode: 200, headers: { "content-type": head.contentType }, cookies: [] });
  }

  chunk(bytes: Buffer): Promise<void> | undefined {
    if (this.prelude) {
      this.prelude.push(bytes);
      this.preludeBytes += bytes.length;
      const all = Buffer.concat(this.prelude, this.preludeBytes);
      const at = all.indexOf(DELIMITER);
      if (at < 0) return undefined;
      this.prelude = null;
      const head = preludeHead(all.subarray(0, at));
      this.writeHead(head ?? { statusCode: 502, headers: {}, cookies: [] });
      if (!head) {
        this.res.end();
        return undefined;
      }
      bytes = all.subarray(at + DELIMITER.length);
    }
    if (bytes.length === 0 || this.req.method === "HEAD" || this.res.writableEnded || this.res.destroyed) {
      return undefined;
    }
    return this.res.write(bytes) ? undefined : drained(this.res);
  }

  private writeHead(a: Omit<Answer, "body">): void {
    this.headWritten = true;
    this.res.writeHead(a.statusCode, responseHeaders(a, this.cors));
    this.res.flushHeaders();
  }

  /** The function is done: end the response, or cut it if the function failed part-way. */
  finish(out: InvokeResponse): void {
    if (!this.headWritten) {
      // A prelude that never ended: answer what the prelude says, with no body.
      const head = this.prelude ? preludeHead(Buffer.concat(this.prelude, this.preludeBytes)) : null;
      if (out.functionError || !head) return message(this.res, 502, "Internal Server Error", this.cors);
      this.writeHead(head);
    }
    if (out.functionError) return void this.res.destroy();
    this.res.end();
  }
}

function preludeHead(bytes: Buffer): Omit<Answer, "body"> | null {
  try {
    const p = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
    const answer = structured({ statusCode: 200, ...p, body: undefined });
    return answer
      ? { statusCode: answer.statusCode, headers: answer.headers, cookies: answer.cookies }
      : null;
  } catch {
    return null;
  }
}
