/**
 * One execution environment's Runtime API (2018-06-01) endpoint. Each
 * environment gets its own listener (TCP port or Unix socket), so no
 * environment can take another's events.
 *
 * An environment serves `slots` events at once (1, or a Lambda Managed
 * Instances function's PerExecutionEnvironmentMaxConcurrency): up to that many
 * `next` calls may wait at once, each event is answered under its own request
 * id, and events beyond the waiting `next` calls queue in order.
 */
import { unlink } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import {
  type AddressInfo,
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
} from "node:net";
import {
  ApiError,
  type ApiErrorType,
  errorBody,
  FunctionError,
  RuntimeError,
  sendErrorResponse,
} from "../protocol/errors.js";
import type { ResponseStreamSink } from "../protocol/invoke.js";
import type { RuntimeApiEndpoint } from "../sandbox/driver.js";
import { neutralSocketName } from "./unix-listen.js";

export interface Invocation {
  requestId: string;
  payload: Buffer;
  deadlineMs: number;
  invokedFunctionArn: string;
  traceId: string;
  /** JSON text, as the caller's X-Amz-Client-Context decoded. */
  clientContext?: string;
  cognitoIdentity?: string;
  /** Where a streamed response's bytes go as they arrive (InvokeWithResponseStream, streaming URLs). */
  stream?: ResponseStreamSink;
}

export type { ResponseStreamSink } from "../protocol/invoke.js";

/** Lambda's limit on one streamed response (its 6 MB buffered limit does not apply to streams). */
export const MAX_STREAMED_RESPONSE_BYTES = 200 * 1024 * 1024;

export type RuntimeOutcome =
  /** `streamed`: the bytes went to the invocation's sink; `body` is empty. */
  | { kind: "response"; body: Buffer; streamed?: boolean }
  | { kind: "error"; body: Buffer; errorType: string; streamed?: boolean }
  /** The runtime's response was larger than the limit. */
  | { kind: "tooLarge"; size: number };

export interface RuntimeApiEvents {
  /** The runtime asked for the next event (Init is over, or the last invoke is done). */
  onNext(): void;
  /** The runtime reported an Init failure. */
  onInitError(errorType: string, body: Buffer): void;
}

/** A handler for paths beyond the Runtime API (the Extensions API mounts here). Returns true if it handled the request. */
export type ExtraRoute = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

const PREFIX = "/2018-06-01/runtime/";
const ACCEPTED = '{"status":"OK"}';

function sendJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function apiError(res: ServerResponse, status: number, errorType: ApiErrorType, errorMessage: string): void {
  sendErrorResponse(res, status, errorType, errorMessage);
}

/** An event handed to the runtime (or queued for it) and not yet answered. */
interface Pending {
  inv: Invocation;
  /** Null once the runtime's answer arrived (a second answer is refused). */
  settle: ((o: RuntimeOutcome) => void) | null;
  /** A streamed response being received (cut off if the invocation is abandoned). */
  streaming: IncomingMessage | null;
}

export class RuntimeApiServer {
  private readonly server: Server;
  /** `next` calls waiting for an event, oldest first (at most `slots`). */
  private readonly waitingNext: ServerResponse[] = [];
  private readonly queued: Invocation[] = [];
  /** Events delivered (or queued) and not yet answered, by request id. */
  private readonly pending = new Map<string, Pending>();
  /** Events the runtime may run at once. */
  private slots = 1;
  private initDone = false;
  private socketPath: string | null = null;
  private unixServer: Server | null = null;
  /** The TCP listener: admits a connection only once its client is known to be this environment's. */
  private gate: TcpServer | null = null;
  private admit: ((socket: Socket) => Promise<boolean>) | null = null;
  private admitSet: (() => void) | null = null;
  private readonly admitKnown = new Promise<void>((resolve) => {
    this.admitSet = resolve;
  });
  private closed = false;
  /** Connections refused because they came from another process (for tests and logs). */
  refused = 0;
  extraRoute: ExtraRoute | null = null;

  constructor(
    private events: RuntimeApiEvents,
    private readonly maxResponseBytes: number,
  ) {
    this.server = this.newServer();
  }

  private newServer(): Server {
    const server = createServer(
      { keepAlive: true, requestTimeout: 0, headersTimeout: 0, noDelay: true },
      (req, res) => this.route(req, res),
    );
    // A long-polled `next` may wait for hours between invokes.
    server.keepAliveTimeout = 0;
    server.timeout = 0;
    return server;
  }

  /** How many events the runtime runs at once (its concurrent `next` loops). */
  setSlots(n: number): void {
    this.slots = Math.max(1, n);
  }

  /** Route the runtime's signals elsewhere (a stem cell adopted by an environment). */
  setEvents(events: RuntimeApiEvents): void {
    this.events = events;
  }

  /** Listen on the endpoint; for TCP with port 0, the chosen port is returned in the result. */
  async listen(endpoint: RuntimeApiEndpoint): Promise<RuntimeApiEndpoint> {
    const on = (server: Server | TcpServer, listen: (done: () => void) => void) =>
      new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        listen(resolve);
      });
    if (endpoint.kind === "unix") {
      await on(this.server, (done) => this.server.listen(neutralSocketName(endpoint.path), done));
      this.socketPath = endpoint.path;
      return endpoint;
    }
    // TCP on the host's loopback is open to every process of the host: a connection reaches the HTTP
    // server only once `admitOnly`'s check says its client belongs to this environment.
    const gate = createTcpServer(
      { pauseOnConnect: true, noDelay: true },
      (socket) => void this.screen(socket),
    );
    this.gate = gate;
    await on(gate, (done) => gate.listen(endpoint.port, endpoint.host, done));
    const port = (gate.address() as AddressInfo).port;
    if (endpoint.socketPath === undefined) return { kind: "tcp", host: endpoint.host, port };
    // The same endpoint on a Unix socket as well (cheaper per request than loopback TCP).
    const second = this.newServer();
    const socketPath = endpoint.socketPath;
    await on(second, (done) => second.listen(neutralSocketName(socketPath), done));
    this.unixServer = second;
    this.socketPath = endpoint.socketPath;
    return { kind: "tcp", host: endpoint.host, port, socketPath: endpoint.socketPath };
  }

  /**
   * Admit a TCP connection only if `check` says its client is one of this environment's processes
   * (see runtime-api-peer.ts). Connections that arrive before this is set wait for it.
   */
  admitOnly(check: (socket: Socket) => Promise<boolean>): void {
    this.admit = check;
    this.admitSet?.();
  }

  private async screen(socket: Socket): Promise<void> {
    socket.on("error", () => socket.destroy());
    await this.admitKnown;
    const ok = !this.closed && this.admit !== null && (await this.admit(socket).catch(() => false));
    if (!ok || this.closed || socket.destroyed) {
      if (!ok) this.refused++;
      socket.destroy();
      return;
    }
    this.server.emit("connection", socket);
    socket.resume();
  }

  /** Hand an event to the runtime; resolves with its answer. */
  deliver(inv: Invocation): Promise<RuntimeOutcome> {
    this.initDone = true;
    const outcome = new Promise<RuntimeOutcome>((resolve) => {
      this.pending.set(inv.requestId, { inv, settle: resolve, streaming: null });
    });
    const waiting = this.waitingNext.shift();
    if (waiting) this.sendEvent(waiting, inv);
    else this.queued.push(inv);
    return outcome;
  }

  /** Forget every invocation (after a timeout or crash: the environment goes). */
  abandon(): void {
    for (const p of this.pending.values()) p.streaming?.destroy();
    this.pending.clear();
    this.queued.length = 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.admitSet?.();
    for (const res of this.waitingNext.splice(0)) res.destroy();
    const servers = [this.server, ...(this.unixServer ? [this.unixServer] : [])];
    for (const server of servers) server.closeAllConnections();
    const gate = this.gate;
    await Promise.all([
      ...servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      ...(gate ? [new Promise<void>((resolve) => gate.close(() => resolve()))] : []),
    ]);
    if (this.socketPath) await unlink(this.socketPath).catch(() => {});
  }

  private sendEvent(res: ServerResponse, inv: Invocation): void {
    const headers: Record<string, string | number> = {
      "content-type": "application/json",
      "content-length": inv.payload.length,
      "lambda-runtime-aws-request-id": inv.requestId,
      "lambda-runtime-deadline-ms": inv.deadlineMs,
      "lambda-runtime-invoked-function-arn": inv.invokedFunctionArn,
      "lambda-runtime-trace-id": inv.traceId,
    };
    if (inv.clientContext !== undefined) headers["lambda-runtime-client-context"] = inv.clientContext;
    if (inv.cognitoIdentity !== undefined) headers["lambda-runtime-cognito-identity"] = inv.cognitoIdentity;
    res.writeHead(200, headers);
    res.end(inv.payload);
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? "/";
    const path = url.includes("?") ? url.slice(0, url.indexOf("?")) : url;
    if (!path.startsWith(PREFIX)) {
      if (this.extraRoute?.(req, res, path)) return;
      req.resume();
      return apiError(res, 404, ApiError.UnknownPath, `Unknown Runtime API path: ${path}`);
    }
    const rest = path.slice(PREFIX.length);
    if (rest === "invocation/next") {
      if (req.method !== "GET") return this.methodNotAllowed(req, res);
      req.resume();
      return this.next(res);
    }
    if (rest === "init/error") {
      if (req.method !== "POST") return this.methodNotAllowed(req, res);
      return this.readBody(req, res, (body) => {
        if (this.initDone)
          return apiError(
            res,
            403,
            ApiError.InvalidStateTransition,
            "Init error reported after Init completed.",
          );
        sendJson(res, 202, ACCEPTED);
        this.events.onInitError(errorTypeOf(req, body), body);
      });
    }
    const m = /^invocation\/([^/]+)\/(response|error)$/.exec(rest);
    if (m) {
      if (req.method !== "POST") return this.methodNotAllowed(req, res);
      const id = decodeURIComponent(m[1] as string);
      const p = this.pending.get(id);
      // Queued events are not the runtime's yet: it cannot answer them.
      if (!p || p.settle === null || this.queued.includes(p.inv)) {
        req.resume();
        return apiError(
          res,
          p ? 403 : 400,
          p ? ApiError.InvalidStateTransition : ApiError.InvalidRequestID,
          `Invalid request ID: ${id}`,
        );
      }
      const settle = p.settle;
      p.settle = null;
      const done = (o: RuntimeOutcome) => {
        this.pending.delete(id);
        settle(o);
      };
      if (m[2] === "response" && isStreaming(req)) {
        return this.readStreamedResponse(req, res, p, done);
      }
      if (m[2] === "response") {
        return this.readBody(
          req,
          res,
          (body) => {
            // The 202 first: the runtime can ask for its next event while the caller gets its answer.
            sendJson(res, 202, ACCEPTED);
            done({ kind: "response", body });
          },
          (size) => {
            apiError(
              res,
              413,
              ApiError.RequestEntityTooLarge,
              `Exceeded maximum allowed payload size (${this.maxResponseBytes} bytes).`,
            );
            done({ kind: "tooLarge", size });
          },
        );
      }
      return this.readBody(req, res, (body) => {
        sendJson(res, 202, ACCEPTED);
        done({ kind: "error", body, errorType: errorTypeOf(req, body) });
      });
    }
    req.resume();
    apiError(res, 404, ApiError.UnknownPath, `Unknown Runtime API path: ${path}`);
  }

  /**
   * A response the runtime streams: chunked, its bytes handed to the invocation's sink as they arrive;
   * a failure part-way arrives in the trailers (`Lambda-Runtime-Function-Error-Type` and a base64
   * `Lambda-Runtime-Function-Error-Body`), as Lambda's Runtime API takes it.
   */
  private readStreamedResponse(
    req: IncomingMessage,
    res: ServerResponse,
    p: Pending,
    settle: (o: RuntimeOutcome) => void,
  ): void {
    const sink = p.inv.stream;
    const limit = sink ? MAX_STREAMED_RESPONSE_BYTES : this.maxResponseBytes;
    const buffered: Buffer[] = [];
    let size = 0;
    let over = false;
    p.streaming = req;
    sink?.start(header(req, "content-type") ?? "application/octet-stream");
    req.on("data", (c: Buffer) => {
      if (over) return;
      size += c.length;
      if (size > limit) {
        over = true;
        return;
      }
      if (!sink) {
        buffered.push(c);
        return;
      }
      const wait = sink.chunk(c);
      if (wait) {
        req.pause();
        void wait.finally(() => req.resume());
      }
    });
    req.on("end", () => {
      // Abandoned meanwhile (the environment timed out or crashed): nobody waits for it.
      if (p.streaming !== req || this.pending.get(p.inv.requestId) !== p) return;
      p.streaming = null;
      sendJson(res, 202, ACCEPTED);
      const streamed = sink !== undefined;
      if (over) {
        const message = `Response payload size exceeded maximum allowed payload size (${limit} bytes).`;
        settle({
          kind: "error",
          errorType: FunctionError.ResponseSizeTooLarge,
          body: errorBody(FunctionError.ResponseSizeTooLarge, message),
          streamed,
        });
        return;
      }
      const errorType = req.trailers["lambda-runtime-function-error-type"];
      if (errorType) {
        const body = Buffer.from(req.trailers["lambda-runtime-function-error-body"] ?? "", "base64");
        settle({ kind: "error", errorType, body, streamed });
        return;
      }
      settle({
        kind: "response",
        body: streamed ? Buffer.alloc(0) : Buffer.concat(buffered, size),
        streamed,
      });
    });
    req.on("error", () => res.destroy());
  }

  private next(res: ServerResponse): void {
    const queued = this.queued.shift();
    if (queued) {
      this.sendEvent(res, queued);
      return;
    }
    // More `next` calls waiting than the runtime has loops: the oldest is stale (its connection went away).
    if (this.waitingNext.length >= this.slots) this.waitingNext.shift()?.destroy();
    this.waitingNext.push(res);
    res.once("close", () => {
      const i = this.waitingNext.indexOf(res);
      if (i !== -1) this.waitingNext.splice(i, 1);
    });
    this.events.onNext();
  }

  private methodNotAllowed(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    apiError(res, 405, ApiError.MethodNotAllowed, `${req.method} is not allowed here`);
  }

  private readBody(
    req: IncomingMessage,
    res: ServerResponse,
    done: (body: Buffer) => void,
    tooLarge?: (size: number) => void,
  ): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > this.maxResponseBytes) over = true;
      else chunks.push(c);
    });
    req.on("end", () => {
      if (over) {
        if (tooLarge) tooLarge(size);
        else
          apiError(
            res,
            413,
            ApiError.RequestEntityTooLarge,
            `Exceeded maximum allowed payload size (${this.maxResponseBytes} bytes).`,
          );
        return;
      }
      done(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    req.on("error", () => res.destroy());
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isStreaming(req: IncomingMessage): boolean {
  return header(req, "lambda-runtime-function-response-mode")?.toLowerCase() === "streaming";
}

function errorTypeOf(req: IncomingMessage, body: Buffer): string {
  const h = req.headers["lambda-runtime-function-error-type"];
  if (typeof h === "string" && h) return h;
  try {
    const t = (JSON.parse(body.toString("utf8")) as { errorType?: unknown }).errorType;
    if (typeof t === "string" && t) return t;
  } catch {}
  return RuntimeError.Unknown;
}
