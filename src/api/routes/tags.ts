/** TagResource, UntagResource, ListTags on function ARNs. */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { parseFunctionArn } from "../../control/arn.js";
import { InvalidParameterValue } from "../../errors.js";
import type { Platform } from "../../platform.js";
import { jsonBody, pathParam, queryList, requestRegion } from "../request.js";

export function registerTagRoutes(app: FastifyInstance, platform: Platform): void {
  const fns = platform.functions;
  const region = (req: FastifyRequest) => requestRegion(req, platform.options.region);
  const resource = (req: FastifyRequest) => {
    const ref = parseFunctionArn(pathParam(req, "ARN"));
    if (ref.qualifier !== undefined)
      throw InvalidParameterValue("Tags are supported only on unqualified function ARNs.");
    return ref.name;
  };

  app.get("/2017-03-31/tags/:ARN", async (req) => ({ Tags: await fns.tags(resource(req), region(req)) }));

  app.post("/2017-03-31/tags/:ARN", async (req, reply) => {
    const body = jsonBody(req);
    if (body.Tags === undefined) throw InvalidParameterValue("Tags must be provided.");
    if (typeof body.Tags === "object" && body.Tags !== null && Object.keys(body.Tags).length === 0) {
      // Lambda's text (localstack's Lambda provider, kept in step with responses recorded on AWS).
      throw InvalidParameterValue("An error occurred and the request cannot be processed.");
    }
    await fns.tag(resource(req), region(req), body.Tags);
    reply.code(204);
    return "";
  });

  app.delete("/2017-03-31/tags/:ARN", async (req, reply) => {
    const keys = queryList(req, "tagKeys");
    if (keys.length === 0) throw InvalidParameterValue("tagKeys must be provided.");
    await fns.untag(resource(req), region(req), keys);
    reply.code(204);
    return "";
  });
}
