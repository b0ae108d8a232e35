/**
 * `GET /metrics`: the Prometheus text exposition of `metrics/prometheus.ts`. Authenticated like the
 * rest of the API (SigV4, action `lambent:GetMetrics` on `*`) or, for scrapers that cannot sign,
 * with the server's metrics bearer token (`Authorization: Bearer …`, checked in api/auth.ts).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Platform } from "../../platform.js";

export function isMetricsScrape(method: string, url: string): boolean {
  if (method !== "GET" && method !== "HEAD") return false;
  const path = url.split("?")[0];
  return path === "/metrics";
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), else undefined. */
export function bearerTokenOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^bearer +(\S+) *$/i.exec(header);
  return m ? (m[1] as string) : undefined;
}

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** Compared as digests: in constant time whatever the lengths. */
export function metricsTokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function registerPrometheusRoutes(app: FastifyInstance, platform: Platform): void {
  app.get("/metrics", async (_req, reply) => {
    const text = await platform.prometheus.scrape();
    reply.header("content-type", platform.prometheus.contentType);
    reply.header("cache-control", "no-store");
    return text;
  });
}
