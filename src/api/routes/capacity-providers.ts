/** Capacity providers (Lambda Managed Instances): control/capacity-providers.ts. */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Platform } from "../../platform.js";
import { jsonBody, maxItemsParam, pathParam, queryString, requestRegion } from "../request.js";

export function registerCapacityProviderRoutes(app: FastifyInstance, platform: Platform): void {
  const svc = platform.capacityProviders;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);
  const base = "/2025-11-30/capacity-providers";
  const one = `${base}/:CapacityProviderName`;
  const name = (req: FastifyRequest) => pathParam(req, "CapacityProviderName");
  const marker = (req: FastifyRequest) => {
    const m = queryString(req, "Marker");
    return m === undefined ? {} : { marker: m };
  };

  app.post(base, async (req, reply) => {
    reply.code(202);
    return { CapacityProvider: await svc.create(jsonBody(req), region(req)) };
  });
  app.get(base, async (req) => {
    const state = queryString(req, "State");
    return svc.list(region(req), {
      ...(state !== undefined ? { state } : {}),
      ...marker(req),
      maxItems: maxItemsParam(req),
    });
  });
  app.get(one, async (req) => ({ CapacityProvider: await svc.get(name(req), region(req)) }));
  app.put(one, async (req, reply) => {
    reply.code(202);
    return { CapacityProvider: await svc.update(name(req), jsonBody(req), region(req)) };
  });
  app.delete(one, async (req, reply) => {
    reply.code(202);
    return { CapacityProvider: await svc.delete(name(req), region(req)) };
  });
  app.get(`${one}/function-versions`, async (req) =>
    svc.listFunctionVersions(name(req), region(req), { ...marker(req), maxItems: maxItemsParam(req) }),
  );
}
