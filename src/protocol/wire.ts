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
  /** The input without its payload (the message's bytes) and without a stream sink (answers come back buffered). */
  input: Omit<InvokeInput, "payload" | "stream">;
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
