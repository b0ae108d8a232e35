/**
 * Logs over HTTP (a Lambent endpoint): `GET /_lambent/logs/<function>` with
 * `since` (epoch ms), `after` (event id, for following), `limit`, `stream`.
 */
import type { FastifyInstance } from "fastify";
import { parseFunctionRef } from "../../control/arn.js";
import { constraintViolation } from "../../errors.js";
import type { Platform } from "../../platform.js";
import { pathParam, queryString } from "../request.js";

function optionalInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw constraintViolation(name, raw, "Member must be a non-negative integer");
  return n;
}

export function registerLogRoutes(app: FastifyInstance, platform: Platform): void {
  app.get("/_lambent/logs/:FunctionName", async (req) => {
    const { name } = parseFunctionRef(pathParam(req, "FunctionName"));
    const since = optionalInt("since", queryString(req, "since"));
    const afterId = optionalInt("after", queryString(req, "after"));
    const limit = optionalInt("limit", queryString(req, "limit"));
    const stream = queryString(req, "stream");
    await platform.logs.flush();
    const rows = await platform.logs.query({
      group: `/aws/lambda/${name}`,
      ...(since !== undefined ? { since } : {}),
      ...(afterId !== undefined ? { afterId } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(stream !== undefined ? { stream } : {}),
    });
    return {
      logGroupName: `/aws/lambda/${name}`,
      events: rows.map((r) => ({
        id: r.id,
        logStreamName: r.stream_name,
        timestamp: r.timestamp,
        message: r.message,
      })),
    };
  });
}
