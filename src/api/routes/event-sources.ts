/**
 * Create/Get/Update/Delete/ListEventSourceMappings, and the Lambent stats
 * endpoint `GET /_lambent/event-source-mappings/stats` (lag, throughput,
 * counters per mapping) behind `lambent sources`.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Platform } from "../../platform.js";
import { jsonBody, maxItemsParam, pathParam, queryString, requestRegion } from "../request.js";

const BASE = "/2015-03-31/event-source-mappings";

export function registerEventSourceRoutes(app: FastifyInstance, platform: Platform): void {
  const mappings = () => platform.eventSourceMappings;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);

  for (const path of [BASE, `${BASE}/`]) {
    app.post(path, async (req, reply) => {
      const out = await mappings().create(jsonBody(req), region(req));
      reply.code(202);
      return out;
    });
    app.get(path, async (req) => {
      const maxItems = maxItemsParam(req, 100);
      const eventSourceArn = queryString(req, "EventSourceArn");
      const functionName = queryString(req, "FunctionName");
      return mappings().list(
        {
          ...(eventSourceArn !== undefined ? { eventSourceArn } : {}),
          ...(functionName !== undefined ? { functionName } : {}),
        },
        queryString(req, "Marker"),
        maxItems,
      );
    });
  }
  app.get(`${BASE}/:UUID`, async (req) => mappings().get(pathParam(req, "UUID")));
  app.put(`${BASE}/:UUID`, async (req, reply) => {
    const out = await mappings().update(pathParam(req, "UUID"), jsonBody(req), region(req));
    reply.code(202);
    return out;
  });
  app.delete(`${BASE}/:UUID`, async (req, reply) => {
    const out = await mappings().delete(pathParam(req, "UUID"));
    reply.code(202);
    return out;
  });

  app.get("/_lambent/event-source-mappings/stats", async () => ({
    mappings: await platform.eventSources.status(),
  }));
}
