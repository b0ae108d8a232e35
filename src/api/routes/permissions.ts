/**
 * AddPermission, RemovePermission, GetPolicy (functions, versions, aliases) and
 * AddLayerVersionPermission, RemoveLayerVersionPermission, GetLayerVersionPolicy.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { parseLayerName, parseVersionNumber } from "../../control/layers.js";
import type { Platform } from "../../platform.js";
import { jsonBody, pathParam, queryString, requestRegion } from "../request.js";

export function registerPermissionRoutes(app: FastifyInstance, platform: Platform): void {
  const perms = platform.permissions;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);
  const fn = "/2015-03-31/functions/:FunctionName/policy";
  const layer = "/2018-10-31/layers/:LayerName/versions/:VersionNumber/policy";
  const layerName = (req: FastifyRequest) => parseLayerName(pathParam(req, "LayerName"));
  const version = (req: FastifyRequest) => parseVersionNumber(pathParam(req, "VersionNumber"));

  app.post(fn, async (req, reply) => {
    const out = await perms.addPermission(
      pathParam(req, "FunctionName"),
      queryString(req, "Qualifier"),
      jsonBody(req),
      region(req),
    );
    reply.code(201);
    return out;
  });

  app.get(fn, async (req) =>
    perms.getPolicy(pathParam(req, "FunctionName"), queryString(req, "Qualifier"), region(req)),
  );

  app.delete(`${fn}/:StatementId`, async (req, reply) => {
    await perms.removePermission(
      pathParam(req, "FunctionName"),
      pathParam(req, "StatementId"),
      queryString(req, "Qualifier"),
      queryString(req, "RevisionId"),
      region(req),
    );
    reply.code(204);
    return "";
  });

  app.post(layer, async (req, reply) => {
    const out = await perms.addLayerVersionPermission(
      layerName(req),
      version(req),
      jsonBody(req),
      queryString(req, "RevisionId"),
      region(req),
    );
    reply.code(201);
    return out;
  });

  app.get(layer, async (req) => perms.getLayerVersionPolicy(layerName(req), version(req), region(req)));

  app.delete(`${layer}/:StatementId`, async (req, reply) => {
    await perms.removeLayerVersionPermission(
      layerName(req),
      version(req),
      pathParam(req, "StatementId"),
      queryString(req, "RevisionId"),
      region(req),
    );
    reply.code(204);
    return "";
  });
}
