/**
 * Dev mounts (`lambent dev`, control/dev-mounts.ts): `PUT /_lambent/dev-mounts/<function>` with
 * `{"Path": "/abs/folder"}` runs the function's `$LATEST` from that folder (under the server's
 * `--dev-root`) and restarts its environments — sent again after every edit; `DELETE` goes back
 * to the uploaded code. Both need `lambent:DevMount` on the function.
 */
import type { FastifyInstance } from "fastify";
import { parseFunctionRef } from "../../control/arn.js";
import { InvalidParameterValue } from "../../errors.js";
import type { Platform } from "../../platform.js";
import { jsonBody, pathParam } from "../request.js";

function unqualified(raw: string): string {
  const ref = parseFunctionRef(raw);
  if (ref.qualifier !== undefined && ref.qualifier !== "$LATEST")
    throw InvalidParameterValue("Dev mounts apply to $LATEST only.");
  return ref.name;
}

export function registerDevMountRoutes(app: FastifyInstance, platform: Platform): void {
  const region = platform.options.region;
  app.put("/_lambent/dev-mounts/:FunctionName", async (req) => {
    const name = unqualified(pathParam(req, "FunctionName"));
    return platform.devMounts.set(name, region, jsonBody(req).Path);
  });
  app.delete("/_lambent/dev-mounts/:FunctionName", async (req, reply) => {
    await platform.devMounts.remove(unqualified(pathParam(req, "FunctionName")), region);
    return reply.code(204).send();
  });
}
