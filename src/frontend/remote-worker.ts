/**
 * A worker on another node, reached over one HTTP/2 connection (every
 * concurrent invoke is a stream of its own; the connection is made again
 * when it drops). Implements the same `WorkerClient` as the in-process
 * worker; every request is signed with the cluster secret.
 */
import http2 from "node:http2";
import { LambdaError } from "../errors.js";
import type { Assignment } from "../protocol/assignment.js";
import type {
  InvokeInput,
  InvokeOutcome,
  ProvisionedProgress,
  ResponseStreamSink,
} from "../protocol/invoke.js";
import { NODE_AUTH_HEADER, signNodeRequest } from "../protocol/node-auth.js";
import {
  type ErrorMessage,
  frame,
  type InvokeMessage,
  type OutcomeMessage,
  type ProvisionMessage,
  type RetireMessage,
  STREAM_CONTENT_TYPE,
  StreamRecord,
  StreamRecordReader,
  unframe,
} from "../protocol/wire.js";
import type { EnvironmentCount, WorkerClient, WorkerStats } from "../protocol/worker.js";

/** The worker could not be reached, or the connection broke before its answer came back. */
export class WorkerUnreachable extends Error {
  constructor(
    readonly address: string,
    /**
     * Whether the request may have reached the worker. False only when it provably did not: the
     * connection was never made (refused, unreachable, closed before it was up), or the worker refused
     * the stream before reading it (`REFUSED_STREAM`, which a GOAWAY also gives every stream it did
     * not take).
     */
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
  /** Sessions whose connection was made: a request on any other never left this node. */
  private readonly connected = new WeakSet<http2.ClientHttp2Session>();
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
    s.once("connect", () => this.connected.add(s));
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
    opts: {
      /** Give up (and cancel the stream) when no full answer came within this long. */
      timeoutMs?: number;
      /** Gather the answer's body (false: a long-lived stream whose data the caller reads). */
      collect?: boolean;
    } = {},
  ): { stream: http2.ClientHttp2Stream | null; response: Promise<{ status: number; body: Buffer }> } {
    let stream: http2.ClientHttp2Stream;
    let session: http2.ClientHttp2Session;
    try {
      session = this.connect();
      stream = session.request({
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
    const mayHaveRun = () =>
      this.connected.has(session) && stream.rstCode !== http2.constants.NGHTTP2_REFUSED_STREAM;
    const response = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => {
        status = Number(h[":status"]);
      });
      if (opts.collect !== false) stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        if (status === 0)
          reject(new WorkerUnreachable(this.address, true, new Error("stream ended without an answer")));
        else resolve({ status, body: Buffer.concat(chunks) });
      });
      stream.on("error", (err) => reject(new WorkerUnreachable(this.address, mayHaveRun(), err)));
      stream.on("close", () => {
        if (status === 0)
          reject(
            new WorkerUnreachable(
              this.address,
              mayHaveRun(),
              new Error(`stream closed (code ${stream.rstCode})`),
            ),
          );
      });
      const { timeoutMs } = opts;
      if (timeoutMs !== undefined) {
        const timer = setTimeout(() => {
          reject(
            new WorkerUnreachable(
              this.address,
              mayHaveRun(),
              new Error(`no answer within ${timeoutMs / 1000} s`),
            ),
          );
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }, timeoutMs);
        timer.unref();
        stream.on("close", () => clearTimeout(timer));
      }
    });
    // A GET's stream is ended with its headers (http2's default): it has no body to write.
    if (!stream.writableEnded) stream.end(body);
    return { stream, response };
  }

  async invoke(assignment: Assignment, input: InvokeInput): Promise<InvokeOutcome> {
    const { payload, stream: sink, ...rest } = input;
    const message: InvokeMessage = { assignment, input: rest, ...(sink ? { streaming: true } : {}) };
    // The worker ends a run at the function's timeout (and an Init at its limit): a request still open
    // well past both is stuck (the worker hangs, or the network between us is cut).
    const deadline = assignment.config.Timeout * 1000 + this.initTimeoutMs + INVOKE_MARGIN_MS;
    const { stream, response } = this.request("POST", "/invoke", frame(message, payload), {
      timeoutMs: deadline,
      collect: !sink,
    });
    const streamed = sink && stream ? this.followStream(stream, sink) : undefined;
    const { status, body } = await response;
    if (streamed) {
      const answer = await streamed;
      if (status === 200 && answer.outcome) {
        const { header, payload: out } = unframe<OutcomeMessage>(answer.outcome);
        return { ...header, payload: out };
      }
      if (status === 200 && answer.streamed) {
        throw new WorkerUnreachable(
          this.address,
          true,
          new Error("streamed answer ended without an outcome"),
        );
      }
      if (status === 200) {
        const { header, payload: out } = unframe<OutcomeMessage>(answer.body);
        return { ...header, payload: out };
      }
      throw refusal(this.address, status, answer.body);
    }
    if (status === 200) {
      const { header, payload: out } = unframe<OutcomeMessage>(body);
      return { ...header, payload: out };
    }
    throw refusal(this.address, status, body);
  }

  /**
   * Read an invoke's answer as it arrives: a streamed one (`STREAM_CONTENT_TYPE`) goes to the sink
   * record by record — the stream pauses while the sink asks to — any other is gathered.
   */
  private followStream(
    stream: http2.ClientHttp2Stream,
    sink: ResponseStreamSink,
  ): Promise<{ streamed: boolean; outcome?: Buffer; body: Buffer }> {
    return new Promise((resolve) => {
      let streamed = false;
      let outcome: Buffer | undefined;
      const chunks: Buffer[] = [];
      const reader = new StreamRecordReader();
      let delivering: Promise<void> = Promise.resolve();
      stream.on("response", (h) => {
        streamed = h["content-type"] === STREAM_CONTENT_TYPE;
      });
      stream.on("data", (c: Buffer) => {
        if (!streamed) {
          chunks.push(c);
          return;
        }
        const records = reader.push(c);
        if (records.length === 0) return;
        stream.pause();
        delivering = delivering
          .then(async () => {
            for (const r of records) {
              if (r.kind === StreamRecord.Start) sink.start(r.bytes.toString("utf8"));
              else if (r.kind === StreamRecord.Chunk) await sink.chunk(Buffer.from(r.bytes));
              else if (r.kind === StreamRecord.Outcome) outcome = Buffer.from(r.bytes);
            }
          })
          .catch(() => {
            // The caller's end went away: stop the run's stream too.
            stream.close(http2.constants.NGHTTP2_CANCEL);
          })
          .finally(() => stream.resume());
      });
      stream.on("close", () => {
        void delivering.then(() =>
          resolve({ streamed, ...(outcome ? { outcome } : {}), body: Buffer.concat(chunks) }),
        );
      });
    });
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
    const { stream, response } = this.request("POST", "/provision", frame(message), { collect: false });
    response.catch(() => {});
    if (count <= 0 || !stream) return;
    this.provisions.set(key, stream);
    onLines(stream, (line) => report(JSON.parse(line) as ProvisionedProgress));
    stream.on("close", () => {
      if (this.provisions.get(key) === stream) this.provisions.delete(key);
    });
  }

  /**
   * Follow the worker's environment counts (`GET /environments`): `onCounts` gets every version's
   * counts at once, then the changes; `onEnd` once, when the stream breaks or the worker ends it.
   * Returns what stops following.
   */
  watch(onCounts: (counts: EnvironmentCount[]) => void, onEnd: () => void): () => void {
    const { stream, response } = this.request("GET", "/environments", Buffer.alloc(0), {
      collect: false,
    });
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      onEnd();
    };
    response.then(end, end);
    if (!stream) return () => {};
    onLines(stream, (line) => {
      if (!ended) onCounts(JSON.parse(line) as EnvironmentCount[]);
    });
    return () => {
      ended = true;
      stream.close();
    };
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

/** Call `onLine` with each non-empty line of an NDJSON stream. */
function onLines(stream: http2.ClientHttp2Stream, onLine: (line: string) => void): void {
  let rest = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    rest += chunk;
    let nl = rest.indexOf("\n");
    while (nl !== -1) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line) onLine(line);
      nl = rest.indexOf("\n");
    }
  });
}
