/**
 * AWS Signature Version 4, implemented once: the verifier (api/auth.ts) and
 * our own clients (the lambent CLI, Code.Location presigning) use the same
 * canonicalisation. Tests check it against the AWS SDK's own signer.
 *
 * The canonical request follows the SigV4 spec as the SDKs build it for
 * non-S3 services: the path as sent is URI-escaped once more ("double
 * encoding"), empty and "." segments dropped and ".." resolved; query
 * parameters decoded, re-escaped (RFC 3986) and sorted; header values
 * trimmed with inner runs of spaces collapsed.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const ALGORITHM = "AWS4-HMAC-SHA256";
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

/** RFC 3986 escaping as the SDKs do it (encodeURIComponent plus !'()*). */
export function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The canonical URI of a path as it was sent (still percent-encoded once). */
export function canonicalPath(rawPath: string): string {
  const segments: string[] = [];
  for (const seg of rawPath.split("/")) {
    if (seg.length === 0 || seg === ".") continue;
    if (seg === "..") segments.pop();
    else segments.push(seg);
  }
  const joined = `${rawPath.startsWith("/") ? "/" : ""}${segments.join("/")}${
    segments.length > 0 && rawPath.endsWith("/") ? "/" : ""
  }`;
  return escapeUri(joined).replace(/%2F/g, "/");
}

/** Query pairs from a raw query string, decoded. */
export function parseQuery(rawQuery: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (!rawQuery) return out;
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? "" : part.slice(eq + 1);
    out.push([safeDecode(k), safeDecode(v)]);
  }
  return out;
}

export function canonicalQuery(pairs: Array<[string, string]>, omit?: string): string {
  return pairs
    .filter(([k]) => k !== omit)
    .map(([k, v]) => [escapeUri(k), escapeUri(v)] as [string, string])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/** A header value as SigV4 canonicalises it. */
export function canonicalHeaderValue(values: string[]): string {
  return values.map((v) => v.trim().replace(/\s+/g, " ")).join(",");
}

export interface CanonicalInput {
  method: string;
  /** Path as sent, percent-encoded once. */
  rawPath: string;
  query: Array<[string, string]>;
  /** Lower-case header name → values in the order received. */
  headers: Map<string, string[]>;
  signedHeaders: string[];
  payloadHash: string;
  /** A query parameter left out of the canonical query (X-Amz-Signature when presigned). */
  omitQuery?: string;
}

export function canonicalRequest(c: CanonicalInput): string {
  const headerLines = c.signedHeaders.map((h) => `${h}:${canonicalHeaderValue(c.headers.get(h) ?? [])}\n`);
  return [
    c.method.toUpperCase(),
    canonicalPath(c.rawPath),
    canonicalQuery(c.query, c.omitQuery),
    headerLines.join(""),
    c.signedHeaders.join(";"),
    c.payloadHash,
  ].join("\n");
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
}

/** Signing keys per secret/date/region/service: four HMACs saved on every repeat request. */
const keyCache = new Map<string, Buffer>();
const KEY_CACHE_MAX = 1024;

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const cacheKey = `${date}\0${region}\0${service}\0${secret}`;
  const hit = keyCache.get(cacheKey);
  if (hit) return hit;
  const k = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), "aws4_request");
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value as string);
  keyCache.set(cacheKey, k);
  return k;
}

export function signature(key: Buffer, toSign: string): string {
  return createHmac("sha256", key).update(toSign, "utf8").digest("hex");
}

/** Constant-time comparison of two hex signatures (or any strings). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, "utf8");
  const bb = Buffer.from(b, "utf8");
  if (ab.length !== bb.length) {
    // Compare anyway so the time does not tell the length apart from the content.
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** `20261201T150000Z` for a time. */
export function amzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

/** Parse `YYYYMMDDTHHMMSSZ` (or an RFC 7231 Date header) to epoch ms; NaN when malformed. */
export function parseAmzDate(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m) return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  if (/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(s)) return Date.parse(s);
  return Number.NaN;
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignInput {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer | string;
  region: string;
  service?: string;
  credentials: Credentials;
  now?: number;
}

/** Sign a request (Authorization header form). Returns the headers to send. */
export function signRequest(input: SignInput): Record<string, string> {
  const now = input.now ?? Date.now();
  const service = input.service ?? "lambda";
  const date = amzDate(now);
  const body = input.body ?? "";
  const payloadHash = sha256Hex(body);
  const headers: Record<string, string> = { ...(input.headers ?? {}) };
  headers.host = input.url.host;
  headers["x-amz-date"] = date;
  headers["x-amz-content-sha256"] = payloadHash;
  if (input.credentials.sessionToken) headers["x-amz-security-token"] = input.credentials.sessionToken;
  const map = new Map<string, string[]>();
  for (const [k, v] of Object.entries(headers)) map.set(k.toLowerCase(), [v]);
  const signed = [...map.keys()].sort();
  const scope = `${date.slice(0, 8)}/${input.region}/${service}/aws4_request`;
  const canonical = canonicalRequest({
    method: input.method,
    rawPath: input.url.pathname,
    query: parseQuery(input.url.search.slice(1)),
    headers: map,
    signedHeaders: signed,
    payloadHash,
  });
  const sig = signature(
    signingKey(input.credentials.secretAccessKey, date.slice(0, 8), input.region, service),
    stringToSign(date, scope, canonical),
  );
  headers.authorization = `${ALGORITHM} Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${sig}`;
  delete headers.host;
  return headers;
}

/** A presigned GET URL (query-string form) valid for `expiresSeconds`. */
export function presignUrl(
  url: URL,
  opts: { region: string; service?: string; credentials: Credentials; expiresSeconds: number; now?: number },
): string {
  const now = opts.now ?? Date.now();
  const service = opts.service ?? "lambda";
  const date = amzDate(now);
  const scope = `${date.slice(0, 8)}/${opts.region}/${service}/aws4_request`;
  const u = new URL(url.toString());
  u.searchParams.set("X-Amz-Algorithm", ALGORITHM);
  u.searchParams.set("X-Amz-Credential", `${opts.credentials.accessKeyId}/${scope}`);
  u.searchParams.set("X-Amz-Date", date);
  u.searchParams.set("X-Amz-Expires", String(opts.expiresSeconds));
  u.searchParams.set("X-Amz-SignedHeaders", "host");
  if (opts.credentials.sessionToken)
    u.searchParams.set("X-Amz-Security-Token", opts.credentials.sessionToken);
  const query = [...u.searchParams.entries()] as Array<[string, string]>;
  const canonical = canonicalRequest({
    method: "GET",
    rawPath: u.pathname,
    query,
    headers: new Map([["host", [u.host]]]),
    signedHeaders: ["host"],
    payloadHash: UNSIGNED_PAYLOAD,
  });
  const sig = signature(
    signingKey(opts.credentials.secretAccessKey, date.slice(0, 8), opts.region, service),
    stringToSign(date, scope, canonical),
  );
  // Rebuild the query with RFC 3986 escaping so what we signed is what is sent.
  const qs = query.map(([k, v]) => `${escapeUri(k)}=${escapeUri(v)}`).join("&");
  return `${u.origin}${u.pathname}?${qs}&X-Amz-Signature=${sig}`;
}
