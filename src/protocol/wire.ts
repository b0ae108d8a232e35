/**
 * The bytes of one message between nodes: a JSON header (everything but the
 * payload) and the payload as it is, `<u32 header length><header><payload>`,
 * so a 6 MB event is never base64'd or parsed as JSON on its way.
 */
import type { Assignment } from "./assignment.js";
import type { InvokeInput, InvokeOutcome } from "./invoke.js";

/** POST /invoke: the request's header. */
export interface InvokeMessage {
  assignment: Assignment;
  /** The input without its payload (the message's bytes) and without a stream sink. */
  input: Omit<InvokeInput, "payload" | "stream">;
  /**
   * The caller takes a streamed response as it is written: a function that streams is answered with
   * `STREAM_CONTENT_TYPE` and records (see `streamRecord`), one that does not as usual.
   */
  streaming?: boolean;
}

/** The content type of a streamed invoke answer: `<u8 kind><u32 length><bytes>` records. */
export const STREAM_CONTENT_TYPE = "application/vnd.lambent.invoke-stream";

/** The kinds of record in a streamed answer: its content type, a piece of it, then the outcome (a frame). */
export const StreamRecord = { Start: 1, Chunk: 2, Outcome: 3 } as const;

export function streamRecord(kind: number, bytes: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt8(kind, 0);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/** Reads records from a streamed answer's bytes as they arrive. */
export class StreamRecordReader {
  private buffered: Buffer = Buffer.alloc(0);

  /** The records completed by `bytes` (a partial record waits for the rest). */
  push(bytes: Buffer): Array<{ kind: number; bytes: Buffer }> {
    this.buffered = this.buffered.length === 0 ? bytes : Buffer.concat([this.buffered, bytes]);
    const out: Array<{ kind: number; bytes: Buffer }> = [];
    while (this.buffered.length >= 5) {
      const n = this.buffered.readUInt32BE(1);
      if (this.buffered.length < 5 + n) break;
      out.push({ kind: this.buffered.readUInt8(0), bytes: this.buffered.subarray(5, 5 + n) });
      this.buffered = this.buffered.subarray(5 + n);
    }
    return out;
  }

  /** Bytes of an unfinished record (an answer that ended here was cut off). */
  get pending(): number {
    return this.buffered.length;
  }
}

/** POST /invoke: the answer's header. */
export type OutcomeMessage = Omit<InvokeOutcome, "payload">;

/** POST /provision: keep `count` environments for `source` (0 releases them); progress comes back as NDJSON lines. */
export interface ProvisionMessage {
  assignment: Assignment;
  source: string;
  count: number;
}

/** POST /retire. */
export interface RetireMessage {
  name: string;
  version?: string;
  keepRevision?: string;
}

/** The error type a worker refuses a `warmOnly` invoke with when it has no idle environment (409). */
export const WORKER_BUSY = "Lambent.EnvironmentsBusy";

/** A refusal the frontend passes on to its caller as it is (a `LambdaError`: throttles). */
export interface ErrorMessage {
  error: {
    type: string;
    statusCode: number;
    message: string;
    fields?: Record<string, unknown>;
    headers?: Record<string, string>;
  };
}

export function frame(header: unknown, payload: Buffer = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(json.length, 0);
  return Buffer.concat([len, json, payload]);
}

export function unframe<T>(body: Buffer): { header: T; payload: Buffer } {
  if (body.length < 4) throw new Error("message too short");
  const n = body.readUInt32BE(0);
  if (4 + n > body.length) throw new Error("message header runs past its end");
  return {
    header: JSON.parse(body.toString("utf8", 4, 4 + n)) as T,
    payload: body.subarray(4 + n),
  };
}
