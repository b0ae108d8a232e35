/** PublishLayerVersion, GetLayerVersion(ByArn), ListLayers, ListLayerVersions, DeleteLayerVersion. */
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  layerArn,
  layerVersionListItem,
  layerVersionShape,
  parseLayerName,
  parseVersionNumber,
} from "../../control/layers.js";
import { ResourceNotFound } from "../../errors.js";
import type { Platform } from "../../platform.js";
import type { LayerVersionsTable } from "../../store/schema.js";
import {
  jsonBody,
  maxItemsParam,
  packageLocation,
  pathParam,
  queryString,
  requestRegion,
} from "../request.js";

export function registerLayerRoutes(app: FastifyInstance, platform: Platform): void {
  const layers = platform.layers;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);
  const name = (req: FastifyRequest) => parseLayerName(pathParam(req, "LayerName"));
  const version = (req: FastifyRequest) => parseVersionNumber(pathParam(req, "VersionNumber"));
  const filter = (req: FastifyRequest) => {
    const runtime = queryString(req, "CompatibleRuntime");
    const architecture = queryString(req, "CompatibleArchitecture");
    return {
      ...(runtime !== undefined ? { runtime } : {}),
      ...(architecture !== undefined ? { architecture } : {}),
    };
  };
  const base = "/2018-10-31/layers";
  // Content.Location as a presigned link (10 minutes), as Lambda's S3 links.
  const where = (row: LayerVersionsTable, req: FastifyRequest) =>
    platform.auth.presign(packageLocation(platform.publicUrl, "layers", row.code_sha256), region(req));
  const shape = (row: LayerVersionsTable, req: FastifyRequest) =>
    layerVersionShape(row, region(req), where(row, req));

  app.post(`${base}/:LayerName/versions`, async (req, reply) => {
    const row = await layers.publish(name(req), jsonBody(req));
    reply.code(201);
    return shape(row, req);
  });

  app.get(`${base}/:LayerName/versions/:VersionNumber`, async (req) =>
    shape(await layers.get(name(req), version(req)), req),
  );

  app.delete(`${base}/:LayerName/versions/:VersionNumber`, async (req, reply) => {
    await layers.delete(name(req), version(req));
    reply.code(204);
    return "";
  });

  app.get(`${base}/:LayerName/versions`, async (req) => {
    const page = await layers.listVersions(
      name(req),
      filter(req),
      queryString(req, "Marker"),
      maxItemsParam(req),
    );
    const out: Record<string, unknown> = {
      LayerVersions: page.items.map((r) => layerVersionListItem(r, region(req))),
    };
    if (page.nextMarker) out.NextMarker = page.nextMarker;
    return out;
  });

  // ListLayers, and GetLayerVersionByArn (`?find=LayerVersion&Arn=…`) on the same path.
  app.get(base, async (req) => {
    if (queryString(req, "find") === "LayerVersion") {
      return shape(await layers.getByArn(queryString(req, "Arn")), req);
    }
    const page = await layers.list(filter(req), queryString(req, "Marker"), maxItemsParam(req));
    const out: Record<string, unknown> = {
      Layers: page.items.map((r) => ({
        LayerName: r.layer_name,
        LayerArn: layerArn(region(req), r.layer_name),
        LatestMatchingVersion: layerVersionListItem(r, region(req)),
      })),
    };
    if (page.nextMarker) out.NextMarker = page.nextMarker;
    return out;
  });

  // Content.Location: the zip of a layer version, by content address.
  app.get("/_lambent/layers/:file", async (req, reply) => {
    const m = /^([0-9a-f]{64})\.zip$/.exec(pathParam(req, "file"));
    if (!m?.[1]) throw ResourceNotFound("Layer content not found");
    reply.header("content-type", "application/zip");
    return layers.loadZip(m[1]);
  });
}
