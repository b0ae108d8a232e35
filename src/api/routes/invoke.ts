/** Invoke (RequestResponse, Event, DryRun) and the legacy InvokeAsync. */
import type { ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseLineage } from "../../async/lineage.js";
import { parseFunctionRef } from "../../control/arn.js";
import { constraintViolation } from "../../errors.js";
import type { InvocationType, InvokeRequest, InvokeResponse } from "../../frontend/invoke.js";
import type { Platform } from "../../platform.js";
import { eventMessage } from "../event-stream.js";
import { pathParam, queryString, requestRegion } from "../request.js";

const INVOKE_ROUTE = "/2015-03-31/functions/:FunctionName/invocations";
const INVOKE_ASYNC_ROUTE = "/2014-11-13/functions/:FunctionName/invoke-async/";

const STREAM_ROUTE = "/2021-11-15/functions/:FunctionName/response-streaming-invocations";

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

  app.post(STREAM_ROUTE, { bodyLimit }, async (req, reply: FastifyReply) => {
    const type = header(req, "x-amz-invocation-type") ?? "RequestResponse";
    if (type !== "RequestResponse" && type !== "DryRun") {
      throw constraintViolation(
        "invocationType",
        type,
        "Member must satisfy enum value set: [RequestResponse, DryRun]",
      );
    }
    const invokeRequest = request(req, limits.syncPayloadBytes);
    if (type === "DryRun") {
      await platform.frontend.admit(invokeRequest);
      reply.code(204);
      return "";
    }
    await invokeWithResponseStream(platform, invokeRequest, reply, req.id);
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

/**
 * InvokeWithResponseStream: the answer's head goes out as soon as the function starts streaming (or,
 * for a function that does not stream, once it has answered), then one `PayloadChunk` event per piece
 * the function wrote, then `InvokeComplete` (with `ErrorCode`/`ErrorDetails` when the function failed,
 * and `LogResult` when the tail was asked for). A failure before the head is an ordinary AWS error.
 */
async function invokeWithResponseStream(
  platform: Platform,
  invokeRequest: InvokeRequest,
  reply: FastifyReply,
  fallbackRequestId: string,
): Promise<void> {
  const raw = reply.raw;
  let started = false;
  const begin = (contentType: string, executedVersion: string, requestId: string) => {
    if (started) return;
    started = true;
    reply.hijack();
    raw.writeHead(200, {
      "content-type": contentType,
      "x-amz-executed-version": executedVersion,
      "x-amzn-RequestId": requestId,
    });
  };
  const chunk = (bytes: Buffer): Promise<void> | undefined => {
    if (bytes.length === 0 || raw.destroyed) return undefined;
    return raw.write(eventMessage("PayloadChunk", OCTETS, bytes)) ? undefined : drained(raw);
  };
  let res: InvokeResponse;
  try {
    res = await platform.frontend.invoke({
      ...invokeRequest,
      stream: {
        start: (h) => begin(h.contentType, h.executedVersion, h.requestId),
        chunk,
      },
    });
  } catch (err) {
    if (!started) throw err;
    raw.end(complete({ ErrorCode: "ServiceException", ErrorDetails: "An internal error occurred." }));
    return;
  }
  begin("application/json", res.executedVersion, res.requestId || fallbackRequestId);
  const done: Record<string, string> = {};
  if (res.functionError) {
    const { errorType, errorMessage } = parseErrorPayload(res.payload);
    done.ErrorCode = res.errorType ?? errorType ?? "Unhandled";
    done.ErrorDetails = errorMessage ?? res.payload.toString("utf8");
  } else if (!res.streamed) {
    // A function that does not stream: its whole answer, in pieces of at most 64 KB.
    for (let at = 0; at < res.payload.length; at += STREAM_PIECE) {
      chunk(res.payload.subarray(at, at + STREAM_PIECE));
    }
  }
  if (res.logResult !== undefined) done.LogResult = res.logResult;
  raw.end(complete(done));
}

const OCTETS = "application/octet-stream";

/** Settles when the client has taken what was written (or is gone). */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
const STREAM_PIECE = 64 * 1024;

function complete(fields: Record<string, string>): Buffer {
  return eventMessage("InvokeComplete", "application/json", Buffer.from(JSON.stringify(fields)));
}

function parseErrorPayload(payload: Buffer): { errorType?: string; errorMessage?: string } {
  try {
    const p = JSON.parse(payload.toString("utf8")) as { errorType?: unknown; errorMessage?: unknown };
    return {
      ...(typeof p.errorType === "string" ? { errorType: p.errorType } : {}),
      ...(typeof p.errorMessage === "string" ? { errorMessage: p.errorMessage } : {}),
    };
  } catch {
    return {};
  }
}
