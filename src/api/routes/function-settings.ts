/**
 * Code signing configs (Create/Get/Update/Delete/List, ListFunctionsByCodeSigningConfig),
 * Put/Get/DeleteFunctionCodeSigningConfig, Get/PutFunctionRecursionConfig,
 * Get/PutRuntimeManagementConfig and Get/PutFunctionScalingConfig. The model
 * validation (src/api/operations.ts) has checked every member's constraints.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Platform } from "../../platform.js";
import {
  jsonBody,
  maxItemsParam,
  pathParam,
  queryString,
  requestRegion,
  unqualifiedFunctionName,
} from "../request.js";

export function registerFunctionSettingsRoutes(app: FastifyInstance, platform: Platform): void {
  const svc = () => platform.settings;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);
  const fn = unqualifiedFunctionName;
  const csc = "/2020-04-22/code-signing-configs";

  app.post(csc, async (req, reply) => {
    const out = await svc().createCodeSigningConfig(jsonBody(req), region(req));
    reply.code(201);
    return out;
  });
  app.get(csc, async (req) =>
    svc().listCodeSigningConfigs(queryString(req, "Marker"), maxItemsParam(req), region(req)),
  );
  app.get(`${csc}/:CodeSigningConfigArn`, async (req) =>
    svc().getCodeSigningConfig(pathParam(req, "CodeSigningConfigArn"), region(req)),
  );
  app.put(`${csc}/:CodeSigningConfigArn`, async (req) =>
    svc().updateCodeSigningConfig(pathParam(req, "CodeSigningConfigArn"), jsonBody(req), region(req)),
  );
  app.delete(`${csc}/:CodeSigningConfigArn`, async (req, reply) => {
    await svc().deleteCodeSigningConfig(pathParam(req, "CodeSigningConfigArn"), region(req));
    reply.code(204);
    return "";
  });
  app.get(`${csc}/:CodeSigningConfigArn/functions`, async (req) =>
    svc().listFunctionsByCodeSigningConfig(
      pathParam(req, "CodeSigningConfigArn"),
      queryString(req, "Marker"),
      maxItemsParam(req),
      region(req),
    ),
  );

  const fcsc = "/2020-06-30/functions/:FunctionName/code-signing-config";
  app.put(fcsc, async (req) =>
    svc().putFunctionCodeSigningConfig(fn(req), String(jsonBody(req).CodeSigningConfigArn), region(req)),
  );
  app.get(fcsc, async (req) => svc().getFunctionCodeSigningConfig(fn(req), region(req)));
  app.delete(fcsc, async (req, reply) => {
    await svc().deleteFunctionCodeSigningConfig(fn(req), region(req));
    reply.code(204);
    return "";
  });

  const recursion = "/2024-08-31/functions/:FunctionName/recursion-config";
  app.get(recursion, async (req) => svc().getRecursionConfig(fn(req), region(req)));
  app.put(recursion, async (req) =>
    svc().putRecursionConfig(fn(req), String(jsonBody(req).RecursiveLoop), region(req)),
  );

  const runtime = "/2021-07-20/functions/:FunctionName/runtime-management-config";
  app.get(runtime, async (req) =>
    svc().getRuntimeManagementConfig(fn(req), queryString(req, "Qualifier"), region(req)),
  );
  app.put(runtime, async (req) =>
    svc().putRuntimeManagementConfig(fn(req), queryString(req, "Qualifier"), jsonBody(req), region(req)),
  );

  const scaling = "/2025-11-30/functions/:FunctionName/function-scaling-config";
  app.get(scaling, async (req) =>
    svc().getScalingConfig(fn(req), queryString(req, "Qualifier") as string, region(req)),
  );
  app.put(scaling, async (req, reply) => {
    const out = await svc().putScalingConfig(
      fn(req),
      queryString(req, "Qualifier") as string,
      jsonBody(req).FunctionScalingConfig,
      region(req),
    );
    reply.code(202);
    return out;
  });
}
