/** Function URL configs: Create/Get/Update/Delete/ListFunctionUrlConfig(s). */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { parseFunctionRef } from "../../control/arn.js";
import type { FunctionUrlInput } from "../../control/function-urls.js";
import type { Platform } from "../../platform.js";
import { jsonBody, maxItemsParam, pathParam, queryString, requestRegion } from "../request.js";

const ROUTE = "/2021-10-31/functions/:FunctionName/url";

export function registerFunctionUrlRoutes(app: FastifyInstance, platform: Platform): void {
  const urls = () => platform.functionUrls;
  const ref = (req: FastifyRequest) =>
    parseFunctionRef(pathParam(req, "FunctionName"), queryString(req, "Qualifier"));
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);

  app.post(ROUTE, async (req, reply) => {
    const out = await urls().create(ref(req), region(req), jsonBody(req) as FunctionUrlInput);
    reply.code(201);
    return out;
  });
  app.get(ROUTE, async (req) => urls().get(ref(req), region(req)));
  app.put(ROUTE, async (req) => urls().update(ref(req), region(req), jsonBody(req) as FunctionUrlInput));
  app.delete(ROUTE, async (req, reply) => {
    await urls().delete(ref(req), region(req));
    reply.code(204);
    return "";
  });
  app.get(`${ROUTE}s`, async (req) => {
    const { name } = parseFunctionRef(pathParam(req, "FunctionName"));
    return urls().list(name, region(req), queryString(req, "Marker"), maxItemsParam(req));
  });
}
