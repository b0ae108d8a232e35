/**
 * The one invoke path every caller uses (API, async queue, event sources):
 * resolve the qualifier, check state, count concurrency, hand the event to a
 * worker, shape the answer. A warm invoke makes no store query: resolved
 * versions are cached and dropped when control/ reports a change.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { type FunctionRef, functionArn } from "../control/arn.js";
import { type FunctionService, type FunctionVersion, LATEST } from "../control/functions.js";
import { InvalidRequestContent, RequestTooLarge, ResourceConflict, TooManyRequests } from "../errors.js";
import type { Worker } from "../worker/worker.js";

export type InvocationType = "RequestResponse" | "Event" | "DryRun";

export interface InvokeRequest {
  ref: FunctionRef;
  payload: Buffer;
  region: string;
  /** X-Amz-Client-Context as sent (base64 JSON). */
  clientContextBase64?: string;
  /** Return the last 4 KB of the log. */
  tail?: boolean;
  /** Fixed request id (async retries keep theirs); a new one otherwise. */
  requestId?: string;
  /** Maximum payload size for this kind of call. */
  maxPayloadBytes: number;
}

export interface InvokeResponse {
  requestId: string;
  executedVersion: string;
  payload: Buffer;
  /** "Unhandled" when the function (or its runtime) failed. */
  functionError?: "Unhandled";
  errorType?: string;
  logResult?: string;
}

export class Frontend {
  private readonly versions = new Map<string, FunctionVersion>();
  private inFlight = 0;

  constructor(
    private readonly functions: FunctionService,
    private readonly worker: Worker,
    private readonly accountConcurrency: number,
  ) {
    functions.events.on("change", ({ name, version }) => {
      for (const [key, v] of this.versions) if (v.name === name) this.versions.delete(key);
      worker.retire(name, version);
    });
  }

  get concurrentExecutions(): number {
    return this.inFlight;
  }

  /** Resolve a function reference to the version that runs (cached). */
  async resolve(ref: FunctionRef, region: string): Promise<FunctionVersion> {
    const key = `${ref.name}:${ref.qualifier ?? LATEST}`;
    const cached = this.versions.get(key);
    if (cached) return cached;
    const v = await this.functions.getVersion(ref, region);
    if (v.state === "Active") this.versions.set(key, v);
    return v;
  }

  /** Validate a request far enough to accept it: function exists and is Active, payload valid. */
  async admit(req: InvokeRequest): Promise<FunctionVersion> {
    if (req.payload.length > req.maxPayloadBytes) {
      throw RequestTooLarge(
        `Request must be smaller than ${req.maxPayloadBytes} bytes for the InvokeFunction operation`,
      );
    }
    if (req.payload.length > 0) {
      try {
        JSON.parse(req.payload.toString("utf8"));
      } catch {
        throw InvalidRequestContent(
          "Could not parse request body into json: Could not parse payload into json: Unexpected character",
        );
      }
    }
    const fn = await this.resolve(req.ref, req.region);
    if (fn.state !== "Active") {
      throw ResourceConflict(
        `The operation cannot be performed at this time. The function is currently in the following state: ${fn.state}`,
      );
    }
    return fn;
  }

  /** RequestResponse: run the event and wait for its answer. */
  async invoke(req: InvokeRequest): Promise<InvokeResponse> {
    const fn = await this.admit(req);
    const clientContext = decodeClientContext(req.clientContextBase64);
    if (this.inFlight >= this.accountConcurrency) {
      throw TooManyRequests(
        "Rate Exceeded.",
        { Reason: "ConcurrentInvocationLimitExceeded" },
        { "Retry-After": "1" },
      );
    }
    const requestId = req.requestId ?? randomUUID();
    this.inFlight++;
    try {
      const outcome = await this.worker.invoke(fn, {
        requestId,
        payload: req.payload.length > 0 ? req.payload : EMPTY_EVENT,
        invokedFunctionArn: functionArn(req.region, fn.name, req.ref.qualifier),
        traceId: traceId(),
        wantTail: req.tail === true,
        ...(clientContext !== undefined ? { clientContext } : {}),
      });
      const res: InvokeResponse = { requestId, executedVersion: fn.version, payload: outcome.payload };
      if (!outcome.ok) {
        res.functionError = "Unhandled";
        if (outcome.errorType) res.errorType = outcome.errorType;
      }
      if (outcome.tail !== undefined) res.logResult = outcome.tail;
      return res;
    } finally {
      this.inFlight--;
    }
  }
}

const EMPTY_EVENT = Buffer.from("{}");

function decodeClientContext(b64: string | undefined): string | undefined {
  if (b64 === undefined || b64 === "") return undefined;
  const text = Buffer.from(b64, "base64").toString("utf8");
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null) throw new Error("not an object");
  } catch {
    throw InvalidRequestContent("Client context must be a valid Base64-encoded JSON object.");
  }
  if (text.length > 3583) throw InvalidRequestContent("Client context must be at most 3583 bytes.");
  return text;
}

/** An X-Ray-shaped trace header, as Lambda hands every invoke. */
function traceId(): string {
  const epoch = Math.floor(Date.now() / 1000).toString(16);
  return `Root=1-${epoch}-${randomBytes(12).toString("hex")};Parent=${randomBytes(8).toString("hex")};Sampled=0`;
}
