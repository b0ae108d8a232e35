/**
 * SigV4 in the browser with WebCrypto: the console signs every API call with the access key the
 * user logged in with, exactly as the AWS SDKs do for non-S3 services (the server's verifier is
 * src/auth/sigv4.ts; the canonical path is the path as sent, escaped once more; query pairs
 * escaped per RFC 3986 and sorted). No SDK bundle: a few HMACs.
 */

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const encoder = new TextEncoder();

function hex(buf: ArrayBuffer): string {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(data: Uint8Array): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", data as BufferSource));
}

async function hmac(key: Uint8Array | ArrayBuffer, data: string): Promise<ArrayBuffer> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as BufferSource,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return crypto.subtle.sign("HMAC", k, encoder.encode(data));
}

/** RFC 3986 escaping as the SDKs do it. */
export function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(search: URLSearchParams): string {
  return [...search.entries()]
    .map(([k, v]) => [escapeUri(k), escapeUri(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, "");
}

export interface SignInput {
  method: string;
  url: URL;
  service: string;
  region: string;
  headers: Record<string, string>;
  body: Uint8Array;
  credentials: Credentials;
  now?: number;
}

/** The headers to send (host is the browser's own and is signed, not set). */
export async function sign(input: SignInput): Promise<Record<string, string>> {
  const date = amzDate(input.now ?? Date.now());
  const payloadHash = await sha256Hex(input.body);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v;
  headers["x-amz-date"] = date;
  headers["x-amz-content-sha256"] = payloadHash;
  if (input.credentials.sessionToken) headers["x-amz-security-token"] = input.credentials.sessionToken;
  const all: Record<string, string> = { ...headers, host: input.url.host };
  const signed = Object.keys(all).sort();
  // The path as the browser sends it (already percent-encoded once), escaped once more.
  const path = escapeUri(input.url.pathname).replace(/%2F/g, "/");
  const canonical = [
    input.method,
    path,
    canonicalQuery(input.url.searchParams),
    signed.map((h) => `${h}:${(all[h] ?? "").trim().replace(/\s+/g, " ")}\n`).join(""),
    signed.join(";"),
    payloadHash,
  ].join("\n");
  const scope = `${date.slice(0, 8)}/${input.region}/${input.service}/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${await sha256Hex(encoder.encode(canonical))}`;
  let key = await hmac(encoder.encode(`AWS4${input.credentials.secretAccessKey}`), date.slice(0, 8));
  key = await hmac(key, input.region);
  key = await hmac(key, input.service);
  key = await hmac(key, "aws4_request");
  const signature = hex(await hmac(key, toSign));
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${signature}`;
  return headers;
}
