/**
 * The HTTP server under fastify, hardened against slow and greedy clients:
 * header and whole-request timeouts (slow-loris), an idle timeout, a cap on
 * open connections per client address; and AWS-shaped answers for every error
 * the HTTP layer or the router produces before a route runs (malformed
 * requests, oversized headers, bad URL encoding, over-long path parameters).
 */
import http from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { HttpOptions } from "../config.js";
import { InvalidRequestContent, LambdaError, TooManyRequests, ValidationError } from "../errors.js";

/** The one shape of an error answer: `x-amzn-ErrorType` and a JSON body, as AWS sends them. */
export function errorHeaders(e: LambdaError): Record<string, string> {
  return { "x-amzn-ErrorType": e.type, "content-type": "application/json", ...e.headers };
}

export function errorBody(e: LambdaError): string {
  return JSON.stringify({ Type: e.faultType, Message: e.message, message: e.message, ...e.fields });
}

export function sendError(reply: FastifyReply, e: LambdaError): void {
  reply.code(e.statusCode).headers(errorHeaders(e)).send(errorBody(e));
}

/**
 * An error in AWS's JSON 1.1 protocol (CloudWatch Logs): the type in `x-amzn-ErrorType` and the
 * body's `__type`, the text in `message`.
 */
export function sendJsonProtocolError(reply: FastifyReply, e: LambdaError): void {
  reply
    .code(e.statusCode)
    .headers({ ...e.headers, "x-amzn-ErrorType": e.type, "content-type": "application/x-amz-json-1.1" })
    .send(JSON.stringify({ __type: e.type, message: e.message, ...e.fields }));
}

/** The same answer as raw HTTP/1.1, for sockets fastify never sees a request on. The connection closes. */
export function rawErrorResponse(e: LambdaError): string {
  const body = errorBody(e);
  const headers = Object.entries(errorHeaders(e))
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  return (
    `HTTP/1.1 ${e.statusCode} ${http.STATUS_CODES[e.statusCode] ?? "Error"}\r\n${headers}` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

/** Answer and close a socket without reading what it sends (discarded, so the answer is not reset). */
function answerAndClose(socket: Socket, e: LambdaError): void {
  socket.on("error", () => {});
  socket.resume();
  if (socket.writable) socket.end(rawErrorResponse(e));
  socket.setTimeout(5_000, () => socket.destroy());
}

const shorten = (s: string) => (s.length > 200 ? `${s.slice(0, 200)}…` : s);

/** fastify's `clientErrorHandler`: what Node's HTTP parser refuses (bad syntax, big headers, too slow). */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  let e: LambdaError;
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
    e = new LambdaError("RequestTimeoutException", 408, "The request was not received in time.");
  } else if (err.code === "HPE_HEADER_OVERFLOW") {
    e = new LambdaError(
      "InvalidRequestContentException",
      431,
      `The request's headers are larger than ${http.maxHeaderSize} bytes.`,
    );
  } else {
    e = InvalidRequestContent("The request is not valid HTTP/1.1.");
  }
  answerAndClose(socket, e);
}

/** fastify's `frameworkErrors`: what the router refuses before any route or hook runs. */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  reply.header("x-amzn-RequestId", req.id);
  const path = shorten((req.raw.url ?? "").split("?")[0] ?? "");
  if (err.code === "FST_ERR_MAX_PARAM_LENGTH") {
    return sendError(reply, ValidationError(`A path parameter of ${path} is too long.`));
  }
  if (err.code === "FST_ERR_BAD_URL") {
    return sendError(reply, InvalidRequestContent(`The request URL is not valid: ${path}`));
  }
  sendError(reply, InvalidRequestContent(err.message));
}

/**
 * fastify's `serverFactory`: Node's HTTP server with the front door's timeouts
 * and the per-client connection cap.
 */
export function createHttpServer(opts: HttpOptions) {
  return (handler: http.RequestListener): http.Server => {
    const requestTimeout = opts.requestTimeoutMs;
    // Node refuses a header timeout above the request timeout.
    const headersTimeout =
      requestTimeout > 0 ? Math.min(opts.headersTimeoutMs, requestTimeout) : opts.headersTimeoutMs;
    const shortest = Math.min(...[headersTimeout, requestTimeout].filter((t) => t > 0), 120_000);
    const server = http.createServer(
      {
        headersTimeout,
        requestTimeout,
        keepAliveTimeout: opts.keepAliveTimeoutMs,
        // How often Node looks for requests over their timeouts (its default is 30 s).
        connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(shortest / 4))),
      },
      handler,
    );
    server.headersTimeout = headersTimeout;
    server.requestTimeout = requestTimeout;
    server.keepAliveTimeout = opts.keepAliveTimeoutMs;
    server.setTimeout(opts.connectionTimeoutMs);
    limitConnectionsPerClient(server, opts.maxConnectionsPerClient);
    return server;
  };
}

/**
 * At most `max` open connections per client address: one more is answered
 * 429 TooManyRequestsException and closed (before Node's HTTP code sees it).
 */
function limitConnectionsPerClient(server: http.Server, max: number): void {
  const open = new Map<string, number>();
  const httpListeners = server.listeners("connection") as ((socket: Socket) => void)[];
  server.removeAllListeners("connection");
  server.on("connection", (socket: Socket) => {
    const who = socket.remoteAddress ?? "";
    const n = open.get(who) ?? 0;
    if (n >= max) {
      answerAndClose(
        socket,
        TooManyRequests(
          `Too many open connections from ${who}: at most ${max} are allowed. Close idle connections and retry.`,
          { Reason: "ConnectionLimitExceeded" },
          { "Retry-After": "1" },
        ),
      );
      return;
    }
    open.set(who, n + 1);
    socket.once("close", () => {
      const left = (open.get(who) ?? 1) - 1;
      if (left > 0) open.set(who, left);
      else open.delete(who);
    });
    for (const listener of httpListeners) listener.call(server, socket);
  });
}
