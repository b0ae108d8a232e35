/**
 * Every request is authenticated (SigV4) and authorized before its route
 * runs; only `GET /health` and the console's static files (`GET /console…`, no data: the console
 * signs its API calls like any client) are open. `GET /metrics` (Prometheus) also takes the
 * server's metrics bearer token when one is configured (scrapers cannot sign), never through an
 * execution environment's channel. The signature's key, date and form are
 * checked as soon as the headers arrive (onRequest), the body hash once the
 * body is read (preHandler), then the caller's policies (auth/authorize.ts).
 * A request that came through an execution environment's own channel (worker/platform-api.ts) is
 * recognised only with the session credentials issued to that environment's function: not the
 * development key, not an operator's key, not another function's session.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { cloudwatchPermission, logsPermission } from "../auth/actions.js";
import type { Principal } from "../auth/keys.js";
import { type PendingAuth, UnrecognizedClient } from "../auth/verify.js";
import type { Platform } from "../platform.js";
import { type SandboxOrigin, sandboxOriginOf } from "../worker/platform-api.js";
import { isConsoleAsset } from "./console.js";
import { cloudWatchOperationOf } from "./routes/cloudwatch.js";
import { logsOperationOf } from "./routes/cloudwatch-logs.js";
import { bearerTokenOf, isMetricsScrape, metricsTokenMatches } from "./routes/prometheus.js";

function lenientJson(body: Buffer | undefined): unknown {
  try {
    return body && body.length > 0 ? JSON.parse(body.toString("utf8")) : {};
  } catch {
    return {};
  }
}

const pending = new WeakMap<FastifyRequest, PendingAuth>();
const principals = new WeakMap<FastifyRequest, Principal>();

/** The authenticated caller of a request (after the preHandler hook). */
export function principalOf(req: FastifyRequest): Principal | undefined {
  return principals.get(req);
}

/** Through an environment's channel, only its own function's session credentials exist. */
export function assertOwnCredentials(principal: Principal, origin: SandboxOrigin): void {
  if (principal.kind !== "session" || !origin.functionName || principal.sessionName !== origin.functionName) {
    throw UnrecognizedClient();
  }
}

function isOpen(req: FastifyRequest): boolean {
  const url = req.raw.url ?? "";
  if (isConsoleAsset(req.method, url)) return true;
  return (req.method === "GET" || req.method === "HEAD") && (url === "/health" || url.startsWith("/health?"));
}

export function registerAuth(app: FastifyInstance, platform: Platform): void {
  const { verifier, authorizer } = platform.auth;
  const metricsToken = platform.options.metricsToken;
  app.addHook("onRequest", async (req) => {
    if (isOpen(req)) return;
    const bearer = bearerTokenOf(req.headers.authorization);
    if (bearer !== undefined && isMetricsScrape(req.method, req.raw.url ?? "")) {
      // A bearer token is the scrape's whole authentication: right token, else refused.
      if (
        metricsToken === undefined ||
        sandboxOriginOf(req.raw.socket) ||
        !metricsTokenMatches(bearer, metricsToken)
      ) {
        throw UnrecognizedClient();
      }
      return;
    }
    const p = await verifier.begin({
      method: req.method,
      rawUrl: req.raw.url ?? "/",
      rawHeaders: req.raw.rawHeaders,
    });
    const origin = sandboxOriginOf(req.raw.socket);
    if (origin) assertOwnCredentials(p.principal, origin);
    pending.set(req, p);
  });
  app.addHook("preHandler", async (req) => {
    const p = pending.get(req);
    if (!p) return;
    pending.delete(req);
    const body = verifier.finish(p, req.body as Buffer | undefined);
    if (body !== req.body) req.body = body;
    const logsOperation = logsOperationOf(req);
    const cloudwatchOperation = logsOperation === undefined ? cloudWatchOperationOf(req) : undefined;
    if (cloudwatchOperation !== undefined) {
      // CloudWatch's metric reads have no resource-level permissions: cloudwatch:<Operation> on *.
      await authorizer.checkPermission(p.principal, cloudwatchPermission(cloudwatchOperation), p.region);
    } else if (logsOperation !== undefined) {
      // CloudWatch Logs names its resources in the JSON body (unparseable: checked on no group).
      await authorizer.checkPermission(
        p.principal,
        logsPermission(logsOperation, lenientJson(body), p.region),
        p.region,
      );
    } else {
      await authorizer.check(p.principal, req.method, p.rawPath, p.query, p.region);
    }
    principals.set(req, p.principal);
  });
}
