/** Invoke (RequestResponse, Event, DryRun) and the legacy InvokeAsync. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseLineage } from "../../async/lineage.js";
import { parseFunctionRef } from "../../control/arn.js";
import { constraintViolation } from "../../errors.js";
import type { InvocationType, InvokeRequest } from "../../frontend/invoke.js";
import type { Platform } from "../../platform.js";
import { pathParam, queryString, requestRegion } from "../request.js";

const INVOKE_ROUTE = "/2015-03-31/functions/:FunctionName/invocations";
const INVOKE_ASYNC_ROUTE = "/2014-11-13/functions/:FunctionName/invoke-async/";

const TYPES: ReadonlySet<string> = new Set(["RequestResponse", "Event", "DryRun"]);

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function registerInvokeRoutes(app: FastifyInstance, platform: Platform): void {
  const { limits } = platform.options;
  const bodyLimit = Math.max(limits.syncPayloadBytes, limits.asyncPayloadBytes) * 2;

  const request = (req: FastifyRequest, maxPayloadBytes: number): InvokeRequest => {
    const clientContext = header(req, "x-amz-client-context");
    const lineage = parseLineage(header(req, "x-amzn-trace-id"));
    return {
      ...(Object.keys(lineage).length > 0 ? { lineage } : {}),
      ref: parseFunctionRef(pathParam(req, "FunctionName"), queryString(req, "Qualifier")),
      payload: (req.body as Buffer | undefined) ?? Buffer.alloc(0),
      region: requestRegion(req, platform.options.region),
      tail: header(req, "x-amz-log-type") === "Tail",
      maxPayloadBytes,
      ...(clientContext !== undefined ? { clientContextBase64: clientContext } : {}),
    };
  };

  app.post(INVOKE_ROUTE, { bodyLimit }, async (req, reply: FastifyReply) => {
    const type = (header(req, "x-amz-invocation-type") ?? "RequestResponse") as InvocationType;
    if (!TYPES.has(type)) {
      throw constraintViolation(
        "invocationType",
        type,
        "Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
      );
    }
    if (type === "DryRun") {
      await platform.frontend.admit(request(req, limits.syncPayloadBytes));
      reply.code(204);
      return "";
    }
    if (type === "Event") {
      const { requestId } = await platform.invokeAsync(request(req, limits.asyncPayloadBytes));
      reply.code(202).header("x-amzn-RequestId", requestId);
      return "";
    }
    const res = await platform.frontend.invoke(request(req, limits.syncPayloadBytes));
    reply.header("x-amzn-RequestId", res.requestId);
    reply.header("x-amz-executed-version", res.executedVersion);
    reply.header("content-type", "application/json");
    if (res.functionError) reply.header("x-amz-function-error", res.functionError);
    if (res.logResult !== undefined) reply.header("x-amz-log-result", res.logResult);
    return reply.code(200).send(res.payload);
  });

  // The legacy InvokeAsync, with and without the trailing slash clients send.
  const invokeAsync = async (req: FastifyRequest, reply: FastifyReply) => {
    await platform.invokeAsync(request(req, limits.asyncPayloadBytes));
    reply.code(202).header("content-type", "application/json");
    return JSON.stringify({ Status: 202 });
  };
  app.post(INVOKE_ASYNC_ROUTE, { bodyLimit }, invokeAsync);
  app.post(INVOKE_ASYNC_ROUTE.slice(0, -1), { bodyLimit }, invokeAsync);
}
