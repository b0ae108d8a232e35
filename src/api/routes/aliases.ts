/** CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases. */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { aliasConfiguration } from "../../control/aliases.js";
import type { Platform } from "../../platform.js";
import {
  jsonBody,
  maxItemsParam,
  pathParam,
  queryString,
  requestRegion,
  unqualifiedFunctionName,
} from "../request.js";

export function registerAliasRoutes(app: FastifyInstance, platform: Platform): void {
  const aliases = platform.aliases;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);
  const fn = unqualifiedFunctionName;
  const base = "/2015-03-31/functions/:FunctionName/aliases";

  app.post(base, async (req, reply) => {
    const a = await aliases.create(fn(req), jsonBody(req), region(req));
    reply.code(201);
    return aliasConfiguration(a, region(req));
  });

  app.get(base, async (req) => {
    const maxItems = maxItemsParam(req);
    const page = await aliases.list(
      fn(req),
      region(req),
      queryString(req, "FunctionVersion"),
      queryString(req, "Marker"),
      maxItems,
    );
    const out: Record<string, unknown> = {
      Aliases: page.items.map((a) => aliasConfiguration(a, region(req))),
    };
    if (page.nextMarker) out.NextMarker = page.nextMarker;
    return out;
  });

  app.get(`${base}/:Name`, async (req) =>
    aliasConfiguration(await aliases.get(fn(req), pathParam(req, "Name"), region(req)), region(req)),
  );

  app.put(`${base}/:Name`, async (req) =>
    aliasConfiguration(
      await aliases.update(fn(req), pathParam(req, "Name"), jsonBody(req), region(req)),
      region(req),
    ),
  );

  app.delete(`${base}/:Name`, async (req, reply) => {
    await aliases.delete(fn(req), pathParam(req, "Name"), region(req));
    reply.code(204);
    return "";
  });
}
