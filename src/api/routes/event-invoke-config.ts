/**
 * Event invoke configs (Put/Update/Get/Delete/ListFunctionEventInvokeConfig(s))
 * and the Lambent queue status endpoint (`GET /_lambent/queue`).
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { parseFunctionRef } from "../../control/arn.js";
import type { EventInvokeConfigInput } from "../../control/event-invoke-config.js";
import type { Platform } from "../../platform.js";
import { jsonBody, maxItemsParam, pathParam, queryString, requestRegion } from "../request.js";

const ROUTE = "/2019-09-25/functions/:FunctionName/event-invoke-config";

export function registerEventInvokeConfigRoutes(app: FastifyInstance, platform: Platform): void {
  const configs = () => platform.eventInvokeConfigs;
  const ref = (req: FastifyRequest) =>
    parseFunctionRef(pathParam(req, "FunctionName"), queryString(req, "Qualifier"));
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);

  app.put(ROUTE, async (req) =>
    configs().put(ref(req), region(req), jsonBody(req) as EventInvokeConfigInput),
  );
  app.post(ROUTE, async (req) =>
    configs().update(ref(req), region(req), jsonBody(req) as EventInvokeConfigInput),
  );
  app.get(ROUTE, async (req) => configs().get(ref(req), region(req)));
  app.delete(ROUTE, async (req, reply) => {
    await configs().delete(ref(req), region(req));
    reply.code(204);
    return "";
  });
  app.get(`${ROUTE}/list`, async (req) => {
    const { name } = parseFunctionRef(pathParam(req, "FunctionName"));
    return configs().list(name, region(req), queryString(req, "Marker"), maxItemsParam(req));
  });

  app.get("/_lambent/queue", async () => ({
    ...(await platform.asyncInvoke.status()),
    thisServer: platform.asyncInvoke.counters.snapshot(),
  }));
}
