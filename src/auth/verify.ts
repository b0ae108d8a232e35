/**
 * SigV4 verification of an incoming request, in two steps: `begin` reads the
 * Authorization header (or the presigned query), checks the date and finds
 * the key — before the body is read, so an unauthenticated client cannot
 * make the server buffer a large body — and `finish` checks the signature
 * over the body's hash (decoding `aws-chunked` bodies chunk by chunk).
 *
 * Error types and texts are AWS's (seen from Lambda and API Gateway answers):
 * - no credentials: MissingAuthenticationTokenException "Missing Authentication Token"
 * - a header that is not SigV4: IncompleteSignatureException "Authorization header requires
 *   'Credential' parameter. … Authorization=<header>" (aws/chalice#828, amplify-flutter#1539)
 * - an unknown access key: UnrecognizedClientException "The security token included in the
 *   request is invalid."
 * - a wrong signature: InvalidSignatureException "The request signature we calculated does not
 *   match the signature you provided. Check your AWS Secret Access Key and signing method.
 *   Consult the service documentation for details." (mhart/aws4fetch#73)
 * - a date outside ±15 minutes: InvalidSignatureException "Signature expired: 20140325T143453Z
 *   is now earlier than 20140325T143751Z (20140325T145251Z - 15 min.)" (aws/aws-sdk-js#254), and
 *   "Signature not yet current: … is still later than … (… + 15 min.)" for the future.
 * - an expired session token: ExpiredTokenException "The security token included in the request
 *   is expired".
 * All are 403, as Lambda answers them.
 */
import { LambdaError } from "../errors.js";
import { type KeyStore, type Principal, ROOT_ARN } from "./keys.js";
import {
  ALGORITHM,
  amzDate,
  canonicalRequest,
  EMPTY_SHA256,
  parseAmzDate,
  parseQuery,
  STREAMING_PAYLOAD,
  safeEqual,
  sha256Hex,
  signature,
  signingKey,
  stringToSign,
  UNSIGNED_PAYLOAD,
} from "./sigv4.js";

export const MissingAuthenticationToken = () =>
  new LambdaError("MissingAuthenticationTokenException", 403, "Missing Authentication Token");
export const IncompleteSignature = (m: string) => new LambdaError("IncompleteSignatureException", 403, m);
export const UnrecognizedClient = () =>
  new LambdaError(
    "UnrecognizedClientException",
    403,
    "The security token included in the request is invalid.",
  );
export const InvalidSignature = (
  m = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
) => new LambdaError("InvalidSignatureException", 403, m);

/** How far X-Amz-Date may be from the server's clock. */
export const MAX_SKEW_MS = 15 * 60 * 1000;
/** The longest presigned URL SigV4 allows (7 days). */
const MAX_PRESIGN_SECONDS = 604_800;

export interface IncomingRequest {
  method: string;
  /** Path and query as sent. */
  rawUrl: string;
  /** Node's rawHeaders: name, value, name, value, … */
  rawHeaders: string[];
}

export interface PendingAuth {
  principal: Principal;
  /** The credential scope's service: `lambda`, `logs` (CloudWatch Logs' JSON requests), `monitoring` (CloudWatch) or `scheduler`. */
  service: string;
  secret: string;
  presigned: boolean;
  amzDate: string;
  scope: string;
  region: string;
  signedHeaders: string[];
  providedSignature: string;
  method: string;
  rawPath: string;
  query: Array<[string, string]>;
  headers: Map<string, string[]>;
  contentSha256: string | undefined;
  expiresAt?: number;
}

export interface VerifierOptions {
  /** Accept `test`/`test` as the account's root (loopback-only servers). */
  devCredentials: boolean;
  now?: () => number;
}

export const DEV_ACCESS_KEY = "test";
export const DEV_SECRET_KEY = "test";

function headerMap(raw: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = (raw[i] as string).toLowerCase();
    const list = m.get(k);
    if (list) list.push(raw[i + 1] as string);
    else m.set(k, [raw[i + 1] as string]);
  }
  return m;
}

function first(h: Map<string, string[]>, name: string): string | undefined {
  return h.get(name)?.[0];
}

/** The JSON-protocol target prefix of CloudWatch Logs (its requests are signed for `logs`). */
export const LOGS_TARGET_PREFIX = "Logs_20140328.";

/** CloudWatch's smithy RPC v2 CBOR paths (signed for `monitoring`, as its query-protocol `POST /`). */
const CLOUDWATCH_CBOR_PREFIX = "/service/GraniteServiceVersion20100801/";
/** CloudWatch's JSON 1.0 target prefix. */
const CLOUDWATCH_JSON_TARGET = "GraniteServiceVersion20100801.";

/**
 * Which service a request is for: CloudWatch Logs (`POST /` with its `X-Amz-Target`), CloudWatch
 * (its `X-Amz-Target`, its CBOR paths, or a form-encoded `POST /`), EventBridge Scheduler (`/schedules…`, `/schedule-groups…`, `/tags/…`), else Lambda.
 */
function serviceOf(method: string, rawPath: string, headers: Map<string, string[]>): string {
  const target = first(headers, "x-amz-target");
  const logs = method === "POST" && rawPath === "/" && target?.startsWith(LOGS_TARGET_PREFIX);
  if (logs) return "logs";
  if (method === "POST" && rawPath.startsWith(CLOUDWATCH_CBOR_PREFIX)) return "monitoring";
  if (method === "POST" && rawPath === "/" && target?.startsWith(CLOUDWATCH_JSON_TARGET)) return "monitoring";
  const form = first(headers, "content-type")?.toLowerCase().startsWith("application/x-www-form-urlencoded");
  if (method === "POST" && rawPath === "/" && target === undefined && form) return "monitoring";
  return SCHEDULER_PATH_RE.test(rawPath) ? "scheduler" : "lambda";
}

/** EventBridge Scheduler's REST paths (signed for `scheduler`); Lambda's all start with a dated segment. */
const SCHEDULER_PATH_RE = /^\/(?:schedules|schedule-groups|tags)(?:\/|$)/;

function fmt(ms: number): string {
  return amzDate(ms);
}

export class Verifier {
  private readonly now: () => number;

  constructor(
    private readonly keys: KeyStore,
    private readonly opts: VerifierOptions,
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** Parse the credentials, check the date, find the key. Throws an AWS-shaped error. */
  async begin(req: IncomingRequest): Promise<PendingAuth> {
    const q = req.rawUrl.indexOf("?");
    const rawPath = q < 0 ? req.rawUrl : req.rawUrl.slice(0, q);
    const query = parseQuery(q < 0 ? "" : req.rawUrl.slice(q + 1));
    const headers = headerMap(req.rawHeaders);
    const auth = first(headers, "authorization");
    const qp = new Map(query);
    const presigned = auth === undefined && qp.has("X-Amz-Credential");
    let credential: string;
    let signedHeaders: string[];
    let providedSignature: string;
    let date: string | undefined;
    let token: string | undefined;
    let expiresAt: number | undefined;
    if (auth !== undefined) {
      const parsed = parseAuthorization(auth, headers);
      credential = parsed.credential;
      signedHeaders = parsed.signedHeaders;
      providedSignature = parsed.signature;
      date = first(headers, "x-amz-date") ?? first(headers, "date");
      token = first(headers, "x-amz-security-token");
    } else if (presigned) {
      const algorithm = qp.get("X-Amz-Algorithm");
      const missing = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
      ]
        .filter((k) => !qp.get(k))
        .map((k) => `AWS query-string parameters must include '${k}'.`);
      if (missing.length > 0)
        throw IncompleteSignature(`${missing.join(" ")} Re-examine the query-string parameters.`);
      if (algorithm !== ALGORITHM) throw IncompleteSignature(`Unsupported AWS 'algorithm': '${algorithm}'`);
      credential = qp.get("X-Amz-Credential") as string;
      signedHeaders = (qp.get("X-Amz-SignedHeaders") as string).split(";");
      providedSignature = qp.get("X-Amz-Signature") as string;
      date = qp.get("X-Amz-Date");
      token = qp.get("X-Amz-Security-Token");
      const expires = Number(qp.get("X-Amz-Expires") ?? "");
      if (!Number.isInteger(expires) || expires < 1 || expires > MAX_PRESIGN_SECONDS) {
        throw IncompleteSignature(
          `X-Amz-Expires must be a whole number of seconds from 1 to ${MAX_PRESIGN_SECONDS}.`,
        );
      }
      expiresAt = parseAmzDate(date as string) + expires * 1000;
    } else {
      throw MissingAuthenticationToken();
    }
    const parts = credential.split("/");
    if (parts.length !== 5 || parts[4] !== "aws4_request" || !parts[0]) {
      throw IncompleteSignature(
        `Credential should be scoped to a valid region, not '${parts[2] ?? ""}'. Credential should be scoped with a valid terminator: 'aws4_request', not '${parts[4] ?? ""}'. Authorization=${credential}`,
      );
    }
    const [accessKeyId, scopeDate, region, service] = parts as [string, string, string, string, string];
    const expected = serviceOf(req.method, rawPath, headers);
    if (service !== expected) {
      throw InvalidSignature(`Credential should be scoped to correct service: '${expected}'. `);
    }
    if (!/^[a-z0-9-]{1,32}$/.test(region)) {
      throw InvalidSignature(`Credential should be scoped to a valid region, not '${region}'. `);
    }
    if (date === undefined) {
      throw IncompleteSignature(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
      );
    }
    const at = parseAmzDate(date);
    if (Number.isNaN(at)) {
      throw IncompleteSignature(
        `Date must be in ISO-8601 'basic format'. Got '${date}'. See http://en.wikipedia.org/wiki/ISO_8601`,
      );
    }
    const iso = amzDate(at);
    if (scopeDate !== iso.slice(0, 8)) {
      throw InvalidSignature(
        `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${iso.slice(0, 8)}', from '${date}'.`,
      );
    }
    const now = this.now();
    if (expiresAt !== undefined) {
      if (now > expiresAt) {
        throw InvalidSignature(`Signature expired: ${fmt(expiresAt)} is now earlier than ${fmt(now)}`);
      }
      if (at > now + MAX_SKEW_MS) {
        throw InvalidSignature(
          `Signature not yet current: ${iso} is still later than ${fmt(now + MAX_SKEW_MS)} (${fmt(now)} + 15 min.)`,
        );
      }
    } else if (at < now - MAX_SKEW_MS) {
      throw InvalidSignature(
        `Signature expired: ${iso} is now earlier than ${fmt(now - MAX_SKEW_MS)} (${fmt(now)} - 15 min.)`,
      );
    } else if (at > now + MAX_SKEW_MS) {
      throw InvalidSignature(
        `Signature not yet current: ${iso} is still later than ${fmt(now + MAX_SKEW_MS)} (${fmt(now)} + 15 min.)`,
      );
    }
    if (!signedHeaders.includes("host")) {
      throw InvalidSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
    }
    for (const h of signedHeaders) {
      if (!headers.has(h)) throw InvalidSignature();
    }
    const key = await this.findKey(accessKeyId, token);
    return {
      principal: key.principal,
      service,
      secret: key.secret,
      presigned,
      amzDate: iso === date ? date : date,
      scope: `${scopeDate}/${region}/${service}/aws4_request`,
      region,
      signedHeaders,
      providedSignature,
      method: req.method,
      rawPath,
      query,
      headers,
      contentSha256: first(headers, "x-amz-content-sha256"),
      ...(expiresAt !== undefined ? { expiresAt } : {}),
    };
  }

  private async findKey(
    accessKeyId: string,
    token: string | undefined,
  ): Promise<{ secret: string; principal: Principal }> {
    if (this.opts.devCredentials && accessKeyId === DEV_ACCESS_KEY) {
      return { secret: DEV_SECRET_KEY, principal: { arn: ROOT_ARN, kind: "root", policy: null } };
    }
    if (accessKeyId.startsWith("ASIA")) {
      if (!token) throw UnrecognizedClient();
      const s = await this.keys.openSession(accessKeyId, token);
      if (!s) throw UnrecognizedClient();
      return s;
    }
    const k = await this.keys.lookup(accessKeyId);
    if (!k) throw UnrecognizedClient();
    return k;
  }

  /**
   * Check the signature over the body. Returns the body to hand to the route
   * (decoded when it was sent as signed aws-chunked data).
   */
  finish(p: PendingAuth, body: Buffer | undefined): Buffer | undefined {
    const bytes = body ?? Buffer.alloc(0);
    const declared = p.contentSha256;
    const candidates: string[] = [];
    if (declared !== undefined && p.signedHeaders.includes("x-amz-content-sha256")) {
      if (declared !== UNSIGNED_PAYLOAD && declared !== STREAMING_PAYLOAD) {
        if (!/^[0-9a-f]{64}$/.test(declared) || !safeEqual(declared, sha256Hex(bytes))) {
          throw InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
          );
        }
      }
      candidates.push(declared);
    } else {
      candidates.push(bytes.length === 0 ? EMPTY_SHA256 : sha256Hex(bytes));
      // Presigned URLs carry no body hash; S3-style presigners sign UNSIGNED-PAYLOAD.
      if (p.presigned) candidates.push(UNSIGNED_PAYLOAD);
    }
    const key = signingKey(p.secret, p.scope.slice(0, 8), p.region, p.service);
    let ok = false;
    for (const payloadHash of candidates) {
      const canonical = canonicalRequest({
        method: p.method,
        rawPath: p.rawPath,
        query: p.query,
        headers: p.headers,
        signedHeaders: p.signedHeaders,
        payloadHash,
        ...(p.presigned ? { omitQuery: "X-Amz-Signature" } : {}),
      });
      if (safeEqual(signature(key, stringToSign(p.amzDate, p.scope, canonical)), p.providedSignature)) {
        ok = true;
        break;
      }
    }
    if (!ok) throw InvalidSignature();
    if (declared === STREAMING_PAYLOAD && p.signedHeaders.includes("x-amz-content-sha256")) {
      return decodeChunked(bytes, key, p);
    }
    return body;
  }
}

/**
 * An `aws-chunked` body: `<hex size>;chunk-signature=<sig>\r\n<data>\r\n`…, ending
 * with a zero-size chunk. Each chunk's signature chains from the previous one
 * (the seed is the request's signature).
 */
function decodeChunked(body: Buffer, key: Buffer, p: PendingAuth): Buffer {
  const out: Buffer[] = [];
  let previous = p.providedSignature;
  let at = 0;
  for (;;) {
    const eol = body.indexOf("\r\n", at);
    if (eol < 0) throw IncompleteSignature("The aws-chunked body ended before its final chunk.");
    const header = body.toString("latin1", at, eol);
    const m = /^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})$/.exec(header);
    if (!m) throw IncompleteSignature("Malformed aws-chunked chunk header.");
    const size = Number.parseInt(m[1] as string, 16);
    const start = eol + 2;
    const end = start + size;
    if (end + 2 > body.length || body.toString("latin1", end, end + 2) !== "\r\n") {
      throw IncompleteSignature("The aws-chunked chunk is shorter than its declared size.");
    }
    const data = body.subarray(start, end);
    const toSign = [
      "AWS4-HMAC-SHA256-PAYLOAD",
      p.amzDate,
      p.scope,
      previous,
      EMPTY_SHA256,
      sha256Hex(data),
    ].join("\n");
    const expected = signature(key, toSign);
    if (!safeEqual(expected, m[2] as string)) throw InvalidSignature();
    previous = expected;
    at = end + 2;
    if (size === 0) break;
    out.push(data);
  }
  if (at !== body.length) throw IncompleteSignature("Data after the final aws-chunked chunk.");
  const decoded = Buffer.concat(out);
  const declaredLength = first(p.headers, "x-amz-decoded-content-length");
  if (declaredLength !== undefined && Number(declaredLength) !== decoded.length) {
    throw IncompleteSignature("x-amz-decoded-content-length does not match the decoded body.");
  }
  return decoded;
}

function parseAuthorization(
  auth: string,
  headers: Map<string, string[]>,
): { credential: string; signedHeaders: string[]; signature: string } {
  const space = auth.indexOf(" ");
  const algorithm = space < 0 ? auth : auth.slice(0, space);
  const rest = space < 0 ? "" : auth.slice(space + 1);
  const fields = new Map<string, string>();
  const problems: string[] = [];
  if (algorithm === ALGORITHM) {
    for (const part of rest.split(",")) {
      const t = part.trim();
      if (t === "") continue;
      const eq = t.indexOf("=");
      if (eq < 0) {
        throw IncompleteSignature(
          `'${t}' not a valid key=value pair (missing equal-sign) in Authorization header: '${auth}'.`,
        );
      }
      fields.set(t.slice(0, eq), t.slice(eq + 1));
    }
  }
  if (!fields.get("Credential")) problems.push("Authorization header requires 'Credential' parameter.");
  if (!fields.get("Signature")) problems.push("Authorization header requires 'Signature' parameter.");
  if (!fields.get("SignedHeaders")) problems.push("Authorization header requires 'SignedHeaders' parameter.");
  if (!headers.has("x-amz-date") && !headers.has("date")) {
    problems.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  }
  if (problems.length > 0) throw IncompleteSignature(`${problems.join(" ")} Authorization=${auth}`);
  const signedHeaders = (fields.get("SignedHeaders") as string).split(";");
  if (signedHeaders.some((h) => h !== h.toLowerCase() || h === "")) throw InvalidSignature();
  return {
    credential: fields.get("Credential") as string,
    signedHeaders,
    signature: fields.get("Signature") as string,
  };
}
