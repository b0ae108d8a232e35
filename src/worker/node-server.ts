/**
 * A worker node's door for frontends: the protocol's messages over HTTP/2
 * (cleartext h2c; one connection per frontend carries every concurrent
 * invoke as its own stream). Every request must carry a valid node
 * signature (`protocol/node-auth.ts`); anything else is answered 401 and
 * never reaches the worker.
 *
 *   POST /invoke     InvokeMessage + payload → OutcomeMessage + payload (or ErrorMessage)
 *   POST /provision  ProvisionMessage → ProvisionedProgress lines (NDJSON) while the stream is open
 *   POST /retire     RetireMessage → 204
 *   GET  /stats      → WorkerStats
 *   GET  /environments → EnvironmentCount[] lines (NDJSON) while the stream is open: every version's
 *                    counts at once, then the versions whose counts changed, at most every
 *                    `ANNOUNCE_BATCH_MS` (a frontend's warm view; it subscribes again after a break)
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { InvokeOutcome, ProvisionedProgress, ResponseStreamSink } from "../protocol/invoke.js";
import { NODE_AUTH_HEADER, verifyNodeRequest } from "../protocol/node-auth.js";
import {
  type ErrorMessage,
  frame,
  type InvokeMessage,
  type OutcomeMessage,
  type ProvisionMessage,
  type RetireMessage,
  STREAM_CONTENT_TYPE,
  StreamRecord,
  streamRecord,
  unframe,
} from "../protocol/wire.js";
import type { EnvironmentCount, EnvironmentView, WorkerClient, WorkerStats } from "../protocol/worker.js";

/** How long a closing node server lets peers close their connections before it cuts them. */
const CLOSE_GRACE_MS = 2000;
/** Larger bodies are refused before they are read in full (a 6 MB event plus its assignment fits). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Changes to the environments are gathered this long before they are announced (one line for many). */
export const ANNOUNCE_BATCH_MS = 10;

export interface NodeServerOptions {
  worker: WorkerClient & EnvironmentView & { stats(): WorkerStats };
  secret: string;
  host: string;
  port: number;
}

export class WorkerNodeServer {
  private readonly server: http2.Http2Server;
  /** Open provision streams by assignment key and source: a newer request for the same pair ends the older one. */
  private readonly provisions = new Map<string, http2.ServerHttp2Stream>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** Open `/environments` streams. */
  private readonly watchers = new Set<http2.ServerHttp2Stream>();

  constructor(private readonly opts: NodeServerOptions) {
    this.server = http2.createServer({ settings: { maxConcurrentStreams: 4096 } });
    this.server.on("session", (s) => {
      this.sessions.add(s);
      s.on("close", () => this.sessions.delete(s));
    });
    this.server.on("stream", (stream, headers) => {
      this.serve(stream, headers).catch((err: unknown) => {
        if (!stream.headersSent && !stream.destroyed) {
          respond(stream, 500, frame(errorMessage("ServiceException", 500, String(err))));
        }
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const { port } = this.server.address() as AddressInfo;
    return `${this.opts.host.includes(":") ? `[${this.opts.host}]` : this.opts.host}:${port}`;
  }

  private async serve(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): Promise<void> {
    const method = String(headers[":method"]);
    const path = String(headers[":path"]);
    const body = await readBody(stream);
    if (body === null) return respond(stream, 413, Buffer.alloc(0));
    const auth = headers[NODE_AUTH_HEADER];
    if (
      !verifyNodeRequest(this.opts.secret, typeof auth === "string" ? auth : undefined, method, path, body)
    ) {
      return respond(stream, 401, Buffer.alloc(0));
    }
    const { worker } = this.opts;
    if (method === "POST" && path === "/invoke") {
      const { header, payload } = unframe<InvokeMessage>(body);
      const sink = header.streaming ? streamingAnswer(stream) : undefined;
      let outcome: InvokeOutcome;
      try {
        outcome = await worker.invoke(header.assignment, {
          ...header.input,
          payload,
          ...(sink ? { stream: sink } : {}),
        });
      } catch (err) {
        // A refusal comes before any streaming; anything after it cuts the stream (the caller sees it broken).
        if (stream.headersSent) {
          stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          return;
        }
        const e = err as {
          type?: string;
          statusCode?: number;
          message?: string;
          fields?: Record<string, unknown>;
          headers?: Record<string, string>;
        };
        if (typeof e.type === "string" && typeof e.statusCode === "number") {
          return respond(
            stream,
            e.statusCode,
            frame(errorMessage(e.type, e.statusCode, e.message ?? "", e.fields, e.headers)),
          );
        }
        throw err;
      }
      const { payload: out, ...rest } = outcome;
      if (stream.headersSent) {
        if (!stream.destroyed) stream.end(streamRecord(StreamRecord.Outcome, frame(rest, out)));
        return;
      }
      return respond(stream, 200, frame(rest satisfies OutcomeMessage, out));
    }
    if (method === "POST" && path === "/provision") {
      const { header } = unframe<ProvisionMessage>(body);
      const key = `${header.assignment.name}\0${header.assignment.version}\0${header.assignment.revisionId}\0${header.source}`;
      this.provisions.get(key)?.end();
      this.provisions.delete(key);
      if (header.count <= 0) {
        worker.provision(header.assignment, header.source, 0, () => {});
        return respond(stream, 200, Buffer.alloc(0));
      }
      stream.respond({ ":status": 200, "content-type": "application/x-ndjson" });
      this.provisions.set(key, stream);
      stream.on("close", () => {
        if (this.provisions.get(key) === stream) this.provisions.delete(key);
      });
      worker.provision(header.assignment, header.source, header.count, (p: ProvisionedProgress) => {
        if (this.provisions.get(key) === stream && !stream.destroyed) stream.write(`${JSON.stringify(p)}\n`);
      });
      return;
    }
    if (method === "POST" && path === "/retire") {
      const { header } = unframe<RetireMessage>(body);
      worker.retire(header.name, header.version, header.keepRevision);
      return respond(stream, 204, Buffer.alloc(0));
    }
    if (method === "GET" && path === "/environments") return this.announce(stream);
    if (method === "GET" && path === "/stats") {
      return respond(stream, 200, Buffer.from(JSON.stringify(worker.stats())));
    }
    return respond(stream, 404, Buffer.alloc(0));
  }

  /** Announce the environments' counts on `stream`: all at once, then what changed, batched. */
  private announce(stream: http2.ServerHttp2Stream): void {
    const { worker } = this.opts;
    stream.respond({ ":status": 200, "content-type": "application/x-ndjson" });
    this.watchers.add(stream);
    const sent = new Map<string, string>();
    let timer: NodeJS.Timeout | null = null;
    const flush = () => {
      timer = null;
      if (stream.destroyed) return;
      const changed: EnvironmentCount[] = [];
      const seen = new Set<string>();
      for (const c of worker.environmentCounts()) {
        seen.add(c.key);
        const v = `${c.environments}/${c.idle}`;
        if (sent.get(c.key) === v) continue;
        sent.set(c.key, v);
        changed.push(c);
      }
      for (const key of sent.keys()) {
        if (seen.has(key)) continue;
        sent.delete(key);
        changed.push({ key, environments: 0, idle: 0 });
      }
      if (changed.length > 0) stream.write(`${JSON.stringify(changed)}\n`);
    };
    flush();
    const off = worker.onEnvironmentsChanged(() => {
      timer ??= setTimeout(flush, ANNOUNCE_BATCH_MS);
    });
    stream.on("close", () => {
      off();
      if (timer) clearTimeout(timer);
      this.watchers.delete(stream);
    });
  }

  async close(): Promise<void> {
    for (const s of this.provisions.values()) s.end();
    this.provisions.clear();
    for (const s of this.watchers) s.end();
    this.watchers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.close();
    // Callers drain first, so nothing of ours is in flight: a peer that keeps a stream open is cut off.
    const cut = setTimeout(() => {
      for (const s of this.sessions) s.destroy();
    }, CLOSE_GRACE_MS);
    await closed;
    clearTimeout(cut);
  }
}

function errorMessage(
  type: string,
  statusCode: number,
  message: string,
  fields?: Record<string, unknown>,
  headers?: Record<string, string>,
): ErrorMessage {
  return {
    error: { type, statusCode, message, ...(fields ? { fields } : {}), ...(headers ? { headers } : {}) },
  };
}

/**
 * A sink sending a streamed response to the frontend as it is written: the answer's head goes out
 * with the first record; a chunk the connection cannot take yet pauses the runtime's writes.
 */
function streamingAnswer(stream: http2.ServerHttp2Stream): ResponseStreamSink {
  const send = (kind: number, bytes: Buffer): Promise<void> | undefined => {
    if (stream.destroyed) return undefined;
    if (!stream.headersSent) stream.respond({ ":status": 200, "content-type": STREAM_CONTENT_TYPE });
    if (stream.write(streamRecord(kind, bytes))) return undefined;
    return new Promise<void>((resolve) => {
      const done = () => {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      };
      stream.on("drain", done);
      stream.on("close", done);
    });
  };
  return {
    start: (contentType) => void send(StreamRecord.Start, Buffer.from(contentType, "utf8")),
    chunk: (bytes) => send(StreamRecord.Chunk, bytes),
  };
}

function respond(stream: http2.ServerHttp2Stream, status: number, body: Buffer): void {
  if (stream.destroyed) return;
  stream.respond({ ":status": status, "content-length": body.length });
  stream.end(body);
}

function readBody(stream: http2.ServerHttp2Stream): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        resolve(null);
        return;
      }
      chunks.push(c);
    });
    stream.on("end", () => resolve(size > MAX_BODY_BYTES ? null : Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}
