/** Reserved concurrency (Put/Get/DeleteFunctionConcurrency) and provisioned concurrency configs. */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { provisionedConfiguration } from "../../control/concurrency.js";
import { decodeMarker, encodeMarker } from "../../control/marker.js";
import { InvalidParameterValue } from "../../errors.js";
import type { Platform } from "../../platform.js";
import { jsonBody, maxItemsParam, queryString, requestRegion, unqualifiedFunctionName } from "../request.js";

export function registerConcurrencyRoutes(app: FastifyInstance, platform: Platform): void {
  const svc = platform.concurrency;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);
  const fn = unqualifiedFunctionName;

  app.put("/2017-10-31/functions/:FunctionName/concurrency", async (req) => {
    const value = await svc.putReserved(fn(req), jsonBody(req).ReservedConcurrentExecutions, region(req));
    return { ReservedConcurrentExecutions: value };
  });
  app.get("/2019-09-30/functions/:FunctionName/concurrency", async (req) => {
    const value = await svc.getReserved(fn(req), region(req));
    return value === null ? {} : { ReservedConcurrentExecutions: value };
  });
  app.delete("/2017-10-31/functions/:FunctionName/concurrency", async (req, reply) => {
    await svc.deleteReserved(fn(req), region(req));
    reply.code(204);
    return "";
  });

  const pc = "/2019-09-30/functions/:FunctionName/provisioned-concurrency";
  app.put(pc, async (req, reply) => {
    const c = await svc.putProvisioned(
      fn(req),
      queryString(req, "Qualifier"),
      jsonBody(req).ProvisionedConcurrentExecutions,
      region(req),
    );
    reply.code(202);
    return provisionedConfiguration(c, region(req), false);
  });
  app.get(pc, async (req) => {
    if (queryString(req, "List") === "ALL") {
      const all = (await svc.listProvisioned(fn(req), region(req))).sort((a, b) =>
        a.qualifier < b.qualifier ? -1 : a.qualifier > b.qualifier ? 1 : 0,
      );
      // Marker: the last qualifier shown (opaque to clients); MaxItems 1–50 (model-validated).
      const marker = queryString(req, "Marker");
      const after = marker === undefined ? undefined : decodeMarker(marker);
      if (after === "") throw InvalidParameterValue("Invalid Marker");
      const rest = after === undefined ? all : all.filter((c) => c.qualifier > after);
      const max = maxItemsParam(req);
      const page = rest.slice(0, max);
      const out: Record<string, unknown> = {
        ProvisionedConcurrencyConfigs: page.map((c) => provisionedConfiguration(c, region(req), true)),
      };
      const last = page[page.length - 1];
      if (rest.length > max && last) out.NextMarker = encodeMarker(last.qualifier);
      return out;
    }
    return provisionedConfiguration(
      await svc.getProvisioned(fn(req), queryString(req, "Qualifier"), region(req)),
      region(req),
      false,
    );
  });
  app.delete(pc, async (req, reply) => {
    await svc.deleteProvisioned(fn(req), queryString(req, "Qualifier"), region(req));
    reply.code(204);
    return "";
  });
}
