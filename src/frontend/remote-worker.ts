/**
 * A worker on another node, reached over one HTTP/2 connection (every
 * concurrent invoke is a stream of its own; the connection is made again
 * when it drops). Implements the same `WorkerClient` as the in-process
 * worker; every request is signed with the cluster secret.
 */
import http2 from "node:http2";
import { LambdaError } from "../errors.js";
import type { Assignment } from "../protocol/assignment.js";
import type { InvokeInput, InvokeOutcome, ProvisionedProgress } from "../protocol/invoke.js";
import { NODE_AUTH_HEADER, signNodeRequest } from "../protocol/node-auth.js";
import {
  type ErrorMessage,
  frame,
  type InvokeMessage,
  type OutcomeMessage,
  type ProvisionMessage,
  type RetireMessage,
  unframe,
} from "../protocol/wire.js";
import type { WorkerClient, WorkerStats } from "../protocol/worker.js";

/** The worker could not be reached, or the connection broke before its answer came back. */
export class WorkerUnreachable extends Error {
  constructor(
    readonly address: string,
    /** Whether the request was written out at all (false: it surely never ran). */
    readonly sent: boolean,
    cause: unknown,
  ) {
    super(`worker ${address} unreachable: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** How far past the function's timeout and Init limit an invoke's request may stay open. */
export const INVOKE_MARGIN_MS = 5000;

export class RemoteWorker implements WorkerClient {
  private session: http2.ClientHttp2Session | null = null;
  private readonly provisions = new Map<string, http2.ClientHttp2Stream>();
  private closed = false;

  constructor(
    /** host:port of the worker's node server. */
    readonly address: string,
    private readonly secret: string,
    /** How long an environment's Init may take (ms): part of an invoke's deadline. */
    private readonly initTimeoutMs: number,
  ) {}

  private connect(): http2.ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const s = http2.connect(`http://${this.address}`);
    s.on("error", () => {});
    s.on("close", () => {
      if (this.session === s) this.session = null;
    });
    // The worker is going away (draining, stopping): later requests open a new connection.
    s.on("goaway", () => {
      if (this.session === s) this.session = null;
    });
    s.unref();
    this.session = s;
    return s;
  }

  private request(
    method: string,
    path: string,
    body: Buffer,
    /** Give up (and cancel the stream) when no full answer came within this long. */
    timeoutMs?: number,
  ): { stream: http2.ClientHttp2Stream | null; response: Promise<{ status: number; body: Buffer }> } {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.connect().request({
        ":method": method,
        ":path": path,
        "content-length": body.length,
        [NODE_AUTH_HEADER]: signNodeRequest(this.secret, method, path, body),
      });
    } catch (err) {
      // The session is closing or gone: nothing was sent.
      this.session = null;
      const failed = new WorkerUnreachable(this.address, false, err);
      return { stream: null, response: Promise.reject(failed) };
    }
    let sent = false;
    stream.on("ready", () => {
      sent = true;
    });
    const response = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        sent = true;
        status = Number(h[":status"]);
      });
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if (status === 0)
          reject(new WorkerUnreachable(this.address, sent, new Error("stream ended without an answer")));
        else resolve({ status, body: Buffer.concat(chunks) });
      });
      stream.on("error", (err) => reject(new WorkerUnreachable(this.address, sent, err)));
      stream.on("close", () => {
        if (status === 0)
          reject(
            new WorkerUnreachable(this.address, sent, new Error(`stream closed (code ${stream.rstCode})`)),
          );
      });
      if (timeoutMs !== undefined) {
        const timer = setTimeout(() => {
          reject(
            new WorkerUnreachable(this.address, sent, new Error(`no answer within ${timeoutMs / 1000} s`)),
          );
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }, timeoutMs);
        timer.unref();
        stream.on("close", () => clearTimeout(timer));
      }
    });
    stream.end(body);
    return { stream, response };
  }

  async invoke(assignment: Assignment, input: InvokeInput): Promise<InvokeOutcome> {
    const { payload, ...rest } = input;
    const message: InvokeMessage = { assignment, input: rest };
    // The worker ends a run at the function's timeout (and an Init at its limit): a request still open
    // well past both is stuck (the worker hangs, or the network between us is cut).
    const deadline = assignment.config.Timeout * 1000 + this.initTimeoutMs + INVOKE_MARGIN_MS;
    const { response } = this.request("POST", "/invoke", frame(message, payload), deadline);
    const { status, body } = await response;
    if (status === 200) {
      const { header, payload: out } = unframe<OutcomeMessage>(body);
      return { ...header, payload: out };
    }
    throw refusal(this.address, status, body);
  }

  provision(
    assignment: Assignment,
    source: string,
    count: number,
    report: (progress: ProvisionedProgress) => void,
  ): void {
    const key = `${assignment.name}\0${assignment.version}\0${assignment.revisionId}\0${source}`;
    this.provisions.get(key)?.close();
    this.provisions.delete(key);
    const message: ProvisionMessage = { assignment, source, count };
    const { stream, response } = this.request("POST", "/provision", frame(message));
    response.catch(() => {});
    if (count <= 0 || !stream) return;
    this.provisions.set(key, stream);
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      rest += chunk;
      let nl = rest.indexOf("\n");
      while (nl !== -1) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        if (line) report(JSON.parse(line) as ProvisionedProgress);
        nl = rest.indexOf("\n");
      }
    });
    stream.on("close", () => {
      if (this.provisions.get(key) === stream) this.provisions.delete(key);
    });
  }

  retire(name: string, version?: string, keepRevision?: string): void {
    const message: RetireMessage = {
      name,
      ...(version !== undefined ? { version } : {}),
      ...(keepRevision !== undefined ? { keepRevision } : {}),
    };
    this.request("POST", "/retire", frame(message)).response.catch(() => {});
  }

  async stats(): Promise<WorkerStats> {
    const { status, body } = await this.request("GET", "/stats", Buffer.alloc(0)).response;
    if (status !== 200) throw refusal(this.address, status, body);
    return JSON.parse(body.toString("utf8")) as WorkerStats;
  }

  close(): void {
    this.closed = true;
    for (const s of this.provisions.values()) s.close();
    this.provisions.clear();
    this.session?.close();
    this.session = null;
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

function refusal(address: string, status: number, body: Buffer): Error {
  if (status === 401)
    return new Error(`worker ${address} refused this node's signature (is the cluster secret the same?)`);
  try {
    const { header } = unframe<ErrorMessage>(body);
    const e = header.error;
    return new LambdaError(e.type, e.statusCode, e.message, e.fields ?? {}, e.headers ?? {});
  } catch {
    return new Error(`worker ${address} answered ${status}`);
  }
}
