/**
 * The web console's files at `/console` (index.html, app.js, app.css as `npm run build` bundles
 * them into dist/console from console/). They hold no data and are served without a signature;
 * the console itself is a client of the signed public APIs (console/src/api.ts), so every call it
 * makes is authenticated and authorized like any other. Each file is read once, gzipped once and
 * served with an ETag and a strict Content-Security-Policy: scripts, styles and connections only
 * from this origin, no inline script, Trusted Types enforced (no HTML sink can be fed a string),
 * no framing, no form posts, no referrer.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { UnknownOperation } from "../errors.js";

/** dist/console, from src/api (tests) and dist/api (the built server) alike. */
const DIR = fileURLToPath(new URL("../../dist/console/", import.meta.url));

const FILES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
};

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
  etag: string;
}

/** The console's paths are open (no signature): only GET/HEAD of these few static files. */
export function isConsoleAsset(method: string, url: string): boolean {
  if (method !== "GET" && method !== "HEAD") return false;
  const path = url.split("?")[0] ?? "";
  return path === "/console" || path.startsWith("/console/");
}

export function registerConsoleRoutes(app: FastifyInstance): void {
  const cache = new Map<string, Asset>();
  const load = (name: string): Asset | undefined => {
    if (!Object.hasOwn(FILES, name)) return undefined;
    const type = FILES[name] as string;
    const hit = cache.get(name);
    if (hit) return hit;
    let body: Buffer;
    try {
      body = readFileSync(`${DIR}${name}`);
    } catch {
      return undefined;
    }
    const asset = {
      type,
      body,
      gzip: gzipSync(body),
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
    };
    cache.set(name, asset);
    return asset;
  };

  const serve = (name: string, req: FastifyRequest, reply: FastifyReply) => {
    const asset = load(name);
    if (!asset) {
      if (name === "index.html") {
        reply.code(503).headers(SECURITY_HEADERS).type("text/plain; charset=utf-8");
        return "The console is not built: run `npm run build` (it bundles console/ into dist/console).\n";
      }
      throw UnknownOperation(`Unknown operation: ${req.method} ${req.url.split("?")[0]}`);
    }
    reply.headers(SECURITY_HEADERS).header("cache-control", "no-cache").header("etag", asset.etag);
    reply.header("vary", "accept-encoding").type(asset.type);
    if (req.headers["if-none-match"] === asset.etag) return reply.code(304).send();
    const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    if (gzip) reply.header("content-encoding", "gzip");
    return reply.send(gzip ? asset.gzip : asset.body);
  };

  app.get("/console", (req, reply) => serve("index.html", req, reply));
  app.get("/console/", (req, reply) => serve("index.html", req, reply));
  app.get("/console/:file", (req, reply) => serve((req.params as { file: string }).file, req, reply));
}
