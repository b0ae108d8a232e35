/** Function management: Create/Get/List/Update/Delete, versions, code download. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isAliasQualifier } from "../../control/aliases.js";
import { functionArn, parseFunctionRef } from "../../control/arn.js";
import { functionConfiguration } from "../../control/function-config.js";
import type { FunctionVersion } from "../../control/functions.js";
import { constraintViolation, InvalidParameterValue, ResourceNotFound } from "../../errors.js";
import type { Platform } from "../../platform.js";
import { deprecationWarning } from "../../runtimes/policy.js";
import { stringMapColumn } from "../../store/columns.js";
import {
  jsonBody,
  maxItemsParam,
  packageLocation,
  pathParam,
  queryString,
  requestRegion,
  unqualifiedFunctionName,
} from "../request.js";

/** Lambda has no field for it: a deprecated runtime's warning travels as an HTTP Warning header (RFC 7234). */
function warnDeprecated(reply: FastifyReply, fn: FunctionVersion): void {
  const warning = deprecationWarning(fn.config.Runtime);
  if (warning) reply.header("warning", `299 lambent "${warning}"`);
}

export function registerFunctionRoutes(app: FastifyInstance, platform: Platform): void {
  const fns = platform.functions;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);
  /** FunctionConfiguration; `arnQualifier` overrides the ARN's qualifier ("" = unqualified). */
  const show = (v: FunctionVersion, req: FastifyRequest, arnQualifier?: string) => {
    const out = functionConfiguration(v.name, v.row, region(req));
    if (arnQualifier !== undefined)
      out.FunctionArn = functionArn(region(req), v.name, arnQualifier || undefined);
    return out;
  };
  /**
   * The version a read names: a version number, $LATEST, or an alias (its
   * main version). The ARN shown carries the qualifier as the caller gave it.
   */
  const resolveRead = async (req: FastifyRequest) => {
    const r = ref(req);
    if (isAliasQualifier(r.qualifier)) {
      let target: string;
      try {
        target = (await platform.aliases.get(r.name, r.qualifier, region(req))).functionVersion;
      } catch (err) {
        if ((err as { type?: string }).type === "ResourceNotFoundException") {
          throw ResourceNotFound(`Function not found: ${functionArn(region(req), r.name, r.qualifier)}`);
        }
        throw err;
      }
      return { r, v: await fns.getVersion({ name: r.name, qualifier: target }, region(req)) };
    }
    return { r, v: await fns.getVersion(r, region(req)) };
  };
  const ref = (req: FastifyRequest) =>
    parseFunctionRef(pathParam(req, "FunctionName"), queryString(req, "Qualifier"));
  const unqualified = unqualifiedFunctionName;

  app.post("/2015-03-31/functions", async (req, reply) => {
    const body = jsonBody(req);
    const csc = typeof body.CodeSigningConfigArn === "string" ? body.CodeSigningConfigArn : undefined;
    if (csc) await platform.settings.checkCodeSigningConfig(csc, region(req));
    const created = await fns.create(body, region(req));
    if (csc) await platform.settings.attachOnCreate(created.name, csc, region(req));
    warnDeprecated(reply, created);
    reply.code(201);
    // With Publish, Lambda answers the published version's configuration under the unqualified ARN.
    return show(created, req, "");
  });

  const list = async (req: FastifyRequest) => {
    const maxItems = maxItemsParam(req);
    const version = queryString(req, "FunctionVersion");
    if (version !== undefined && version !== "ALL") {
      throw constraintViolation("functionVersion", version, "Member must satisfy enum value set: [ALL]");
    }
    const masterRegion = queryString(req, "MasterRegion");
    if (masterRegion !== undefined) {
      // The model: "If specified, you must set FunctionVersion to ALL." Lambent has no Lambda@Edge
      // replicas, so no function is replicated from any master region.
      if (version !== "ALL") {
        throw InvalidParameterValue("MasterRegion can only be specified with FunctionVersion=ALL.");
      }
      return { Functions: [] };
    }
    // "ListFunctions returns a maximum of 50 items in each response, even if you set the number higher."
    const page = await fns.list(queryString(req, "Marker"), Math.min(maxItems, 50), version === "ALL");
    const out: Record<string, unknown> = { Functions: page.items.map((v) => show(v, req)) };
    if (page.nextMarker) out.NextMarker = page.nextMarker;
    return out;
  };
  app.get("/2015-03-31/functions", list);
  app.get("/2015-03-31/functions/", list);

  app.get("/2015-03-31/functions/:FunctionName", async (req) => {
    const { r, v } = await resolveRead(req);
    const fn = await fns.getFunctionRow(r.name, region(req));
    const out: Record<string, unknown> = {
      Configuration: show(v, req, r.qualifier ?? ""),
      Code: {
        RepositoryType: "S3",
        // A presigned link that works for 10 minutes without other credentials, as Lambda's S3 links.
        Location: platform.auth.presign(
          packageLocation(platform.publicUrl, "code", v.codeSha256),
          region(req),
        ),
      },
      Tags: stringMapColumn("functions", "tags", fn.tags),
    };
    if (fn.reserved_concurrency !== null)
      out.Concurrency = { ReservedConcurrentExecutions: fn.reserved_concurrency };
    return out;
  });

  app.get("/2015-03-31/functions/:FunctionName/configuration", async (req) => {
    const { r, v } = await resolveRead(req);
    return show(v, req, r.qualifier ?? "");
  });

  app.put("/2015-03-31/functions/:FunctionName/configuration", async (req, reply) => {
    const body = jsonBody(req);
    const updated = await fns.updateConfiguration(unqualified(req), body, region(req));
    if (body.Runtime !== undefined) warnDeprecated(reply, updated);
    return show(updated, req);
  });

  app.put("/2015-03-31/functions/:FunctionName/code", async (req) =>
    show(await fns.updateCode(unqualified(req), jsonBody(req), region(req)), req),
  );

  app.delete("/2015-03-31/functions/:FunctionName", async (req, reply: FastifyReply) => {
    await fns.delete(ref(req), region(req));
    reply.code(204);
    return "";
  });

  app.post("/2015-03-31/functions/:FunctionName/versions", async (req, reply) => {
    const v = await fns.publishVersion(unqualified(req), region(req), jsonBody(req));
    reply.code(201);
    return show(v, req);
  });

  app.get("/2015-03-31/functions/:FunctionName/versions", async (req) => {
    const page = await fns.listVersions(
      unqualified(req),
      region(req),
      queryString(req, "Marker"),
      maxItemsParam(req),
    );
    // $LATEST is listed under its qualified ARN (…:$LATEST), as Lambda lists it.
    const out: Record<string, unknown> = {
      Versions: page.items.map((v) => show(v, req, v.version)),
    };
    if (page.nextMarker) out.NextMarker = page.nextMarker;
    return out;
  });

  // Code.Location: the zip of any stored package, by content address.
  app.get("/_lambent/code/:file", async (req, reply) => {
    const m = /^([0-9a-f]{64})\.zip$/.exec(pathParam(req, "file"));
    if (!m?.[1]) throw ResourceNotFound("Code package not found");
    const zip = await fns.loadZip(m[1]);
    reply.header("content-type", "application/zip");
    return zip;
  });
}
