/**
 * `GET /_lambent/environments` (a Lambent endpoint, action `lambent:GetEnvironmentStatus`): the
 * execution environments per function version on this server's worker — alive and idle — for
 * `lambent top` and anyone watching. A cluster frontend runs no environments itself: it answers
 * the worker nodes' totals (`nodes`) and no per-function rows.
 */
import type { FastifyInstance } from "fastify";
import type { Platform } from "../../platform.js";

export function registerEnvironmentRoutes(app: FastifyInstance, platform: Platform): void {
  app.get("/_lambent/environments", async () =>
    platform.cluster
      ? { functions: [], nodes: platform.cluster.workers() }
      : { functions: platform.worker.functionStats() },
  );
}
