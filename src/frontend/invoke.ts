/**
 * The one invoke path every caller uses (API, async queue, event sources):
 * resolve the qualifier, check state, count concurrency, hand the event to a
 * worker, shape the answer. A warm invoke makes no store query: resolved
 * versions are cached and dropped when control/ reports a change.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { formatLineage, type Lineage, nextLineage } from "../async/lineage.js";
import { type Alias, type AliasService, isAliasQualifier } from "../control/aliases.js";
import { type FunctionRef, functionArn } from "../control/arn.js";
import type { ConcurrencyService } from "../control/concurrency.js";
import { type FunctionService, type FunctionVersion, LATEST } from "../control/functions.js";
import { InvalidRequestContent, LambdaError, RequestTooLarge, ResourceConflict } from "../errors.js";
import { ConcurrencyPeaks } from "../metrics/concurrency-peaks.js";
import { ProvisionedPeaks } from "../metrics/provisioned-peaks.js";
import { LAMBDA_NAMESPACE, type MetricsRecorder } from "../metrics/recorder.js";
import type { ResponseStreamSink } from "../protocol/invoke.js";
import type { WorkerClient } from "../protocol/worker.js";
import type { Assignments } from "./assignment.js";
import type { Counter, Release } from "./counter.js";

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
  /** The payload is JSON already (built by Lambent, or checked when it was queued): do not parse it again. */
  payloadIsJson?: boolean;
  /** The chain this request belongs to (from its X-Amzn-Trace-Id): runs per function so far. */
  lineage?: Lineage;
  /** Take a streamed response as it is written (InvokeWithResponseStream, RESPONSE_STREAM URLs). */
  stream?: InvokeStream;
}

/** The caller's end of a streamed response. */
export interface InvokeStream {
  /** The function began streaming: the caller can answer its headers now. */
  start(head: { contentType: string; executedVersion: string; requestId: string }): void;
  /** A promise asks for a pause until it settles (backpressure from the caller's client). */
  chunk(bytes: Buffer): Promise<void> | undefined;
}

export interface InvokeResponse {
  requestId: string;
  executedVersion: string;
  payload: Buffer;
  /** "Unhandled" when the function (or its runtime) failed. */
  functionError?: "Unhandled";
  errorType?: string;
  logResult?: string;
  /** The response went to the request's stream; `payload` is empty or an error body. */
  streamed?: boolean;
}

export class Frontend {
  private readonly versions = new Map<string, FunctionVersion>();
  private readonly aliasCache = new Map<string, Alias>();
  /** Reserved concurrency per function (as loaded): who runs outside the unreserved pool. */
  private reserved = new Map<string, number>();
  /** The most executions at once per sampling interval (ConcurrentExecutions). */
  readonly peaks = new ConcurrencyPeaks();
  /** Executions on provisioned concurrency per version or alias with a config. */
  readonly provisioned = new ProvisionedPeaks();
  /** Settles once the reservations reloaded after the latest change are in force. */
  reservationsLoaded: Promise<void> = Promise.resolve();

  constructor(
    private readonly functions: FunctionService,
    private readonly aliases: AliasService,
    private readonly concurrency: ConcurrencyService,
    private readonly worker: WorkerClient,
    /** In memory on one server, leased shares of each limit in a cluster. */
    readonly counter: Counter,
    /** Versions as workers see them (built once per revision). */
    readonly assignments: Assignments,
    /** Invocations, Errors, Duration and Throttles of every invoke (AWS/Lambda). */
    private readonly metrics: MetricsRecorder,
  ) {
    functions.events.on("change", ({ name, version }) => this.changed(name, version));
    aliases.events.on("change", (name) => this.forgetAliases(name));
    concurrency.events.on("reserved", () => {
      this.reservationsLoaded = this.loadReservations().catch(() => {});
    });
    const reloadProvisioned = () => void this.loadProvisioned();
    concurrency.events.on("provisioned", reloadProvisioned);
    concurrency.events.on("allocated", reloadProvisioned);
  }

  /** A function (every version) or one version changed: drop what is cached, retire old environments. */
  private changed(name: string, version: string | undefined): void {
    for (const [key, v] of this.versions) if (v.name === name) this.versions.delete(key);
    if (version === undefined) this.forgetAliases(name);
    this.assignments.forget(name, version);
    if (version === undefined || !this.worker.retiresLate) this.worker.retire(name, version);
    else {
      // Another frontend's retire for the same change may land after new environments started:
      // name the revision that is current now, whose environments stay.
      this.functions.revisionId(name, version).then(
        (keep) => this.worker.retire(name, version, keep),
        () => this.worker.retire(name, version),
      );
    }
  }

  /**
   * Changes may have been missed (the change feed's connection to PostgreSQL was down): every cached
   * version whose revision moved on, or that is gone, is handled as a change; aliases and reservations
   * are loaded again. Cached versions that did not change keep their warm environments.
   */
  async resync(): Promise<void> {
    this.aliasCache.clear();
    const cached = new Map<string, FunctionVersion>();
    for (const v of this.versions.values()) cached.set(`${v.name}\0${v.version}`, v);
    for (const v of cached.values()) {
      const current = await this.functions.revisionId(v.name, v.version);
      if (current === undefined) this.changed(v.name, undefined);
      else if (current !== v.revisionId) this.changed(v.name, v.version);
    }
    await this.loadReservations();
  }

  /**
   * Start an environment of a function's $LATEST before the next invoke asks for one (its dev mount
   * changed: the edit is initialised by the time it is invoked). Where the worker cannot, nothing.
   */
  async prewarm(name: string, region: string): Promise<void> {
    if (!this.worker.prewarm) return;
    const fn = await this.resolve({ name }, region);
    this.worker.prewarm(await this.assignments.of(fn));
  }

  private forgetAliases(name: string): void {
    for (const [key, a] of this.aliasCache) if (a.functionName === name) this.aliasCache.delete(key);
  }

  /** Load the reserved-concurrency settings (at start and whenever one changes). */
  async loadReservations(): Promise<void> {
    const reserved = await this.concurrency.reservations();
    this.reserved = reserved;
    this.counter.setReservations(reserved);
  }

  private provisionedLoading: Promise<void> | null = null;

  /**
   * Load the provisioned configs' allocated counts (at start, on a change here, and at each metrics
   * sample: in a cluster the progress is recorded by another node). One load at a time; never throws.
   */
  loadProvisioned(): Promise<void> {
    this.provisionedLoading ??= this.concurrency
      .allProvisioned()
      .then(
        (configs) => this.provisioned.setAllocations(configs),
        () => {},
      )
      .finally(() => {
        this.provisionedLoading = null;
      });
    return this.provisionedLoading;
  }

  get concurrentExecutions(): number {
    return this.counter.total;
  }

  /** Resolve an alias (cached). */
  async alias(name: string, alias: string, region: string): Promise<Alias> {
    const key = `${name}:${alias}`;
    const cached = this.aliasCache.get(key);
    if (cached) return cached;
    const a = await this.aliases.get(name, alias, region);
    this.aliasCache.set(key, a);
    return a;
  }

  /**
   * Resolve a function reference to the version that runs (cached). An alias
   * picks its version, or its additional version with the configured weight.
   */
  async resolve(ref: FunctionRef, region: string): Promise<FunctionVersion> {
    let version = ref.qualifier ?? LATEST;
    if (isAliasQualifier(ref.qualifier)) {
      const a = await this.alias(ref.name, ref.qualifier, region);
      version = pickVersion(a);
    }
    const key = `${ref.name}:${version}`;
    const cached = this.versions.get(key);
    if (cached) return cached;
    const v = await this.functions.getVersion({ name: ref.name, qualifier: version }, region);
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
    if (req.payload.length > 0 && !req.payloadIsJson) {
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
    const assignment = this.assignments.cached(fn) ?? (await this.assignments.of(fn));
    const clientContext = decodeClientContext(req.clientContextBase64);
    let release: Release;
    try {
      const slot = this.counter.acquire(fn.name);
      release = typeof slot === "function" ? slot : await slot;
    } catch (err) {
      this.throttled(fn.name, req.ref.qualifier);
      throw err;
    }
    const unreserved = !this.reserved.has(fn.name);
    this.peaks.enter(fn.name, unreserved);
    const provisioned = this.provisioned.enter(fn.name, req.ref.qualifier);
    const requestId = req.requestId ?? randomUUID();
    try {
      const outcome = await this.worker.invoke(assignment, {
        requestId,
        payload: req.payload.length > 0 ? req.payload : EMPTY_EVENT,
        invokedFunctionArn: functionArn(req.region, fn.name, req.ref.qualifier),
        // The run's trace header carries the chain's lineage, one more run of this function.
        traceId: withLineage(traceId(), nextLineage(req.lineage, fn.name)),
        wantTail: req.tail === true,
        ...(clientContext !== undefined ? { clientContext } : {}),
        ...(req.stream ? { stream: streamSink(req.stream, fn.version, requestId) } : {}),
      });
      this.metrics.invocation(
        fn.name,
        req.ref.qualifier !== undefined && req.ref.qualifier !== LATEST
          ? `${fn.name}:${req.ref.qualifier}`
          : undefined,
        fn.version,
        outcome.durationMs,
        !outcome.ok,
        outcome.initDurationMs !== undefined,
      );
      if (provisioned) {
        this.metrics.lambda(
          provisioned.provisioned
            ? "ProvisionedConcurrencyInvocations"
            : "ProvisionedConcurrencySpilloverInvocations",
          fn.name,
          req.ref.qualifier,
          1,
        );
      }
      const res: InvokeResponse = { requestId, executedVersion: fn.version, payload: outcome.payload };
      if (!outcome.ok) {
        res.functionError = "Unhandled";
        if (outcome.errorType) res.errorType = outcome.errorType;
      }
      if (outcome.tail !== undefined) res.logResult = outcome.tail;
      if (outcome.streamed) res.streamed = true;
      return res;
    } catch (err) {
      // The worker's scaling rate throttles too.
      if (err instanceof LambdaError && err.type === "TooManyRequestsException") {
        this.throttled(fn.name, req.ref.qualifier);
      }
      throw err;
    } finally {
      release();
      this.peaks.leave(fn.name, unreserved);
      if (provisioned) this.provisioned.leave(provisioned);
    }
  }

  private throttled(name: string, qualifier: string | undefined): void {
    this.metrics.lambda("Throttles", name, qualifier, 1);
    this.metrics.record(LAMBDA_NAMESPACE, "Throttles", "[]", 1, "Count");
  }
}

const EMPTY_EVENT = Buffer.from("{}");

function streamSink(stream: InvokeStream, executedVersion: string, requestId: string): ResponseStreamSink {
  return {
    start: (contentType) => stream.start({ contentType, executedVersion, requestId }),
    chunk: (bytes) => stream.chunk(bytes),
  };
}

/** An alias's version, or its additional version with the configured probability. */
function pickVersion(a: Alias): string {
  for (const [version, weight] of Object.entries(a.weights)) {
    if (Math.random() < weight) return version;
  }
  return a.functionVersion;
}

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

/** Random bytes drawn in bulk: two crypto calls per invoke cost more than the rest of a trace id. */
let pool = Buffer.alloc(0);
let poolAt = 0;
function randomHex(bytes: number): string {
  if (poolAt + bytes > pool.length) {
    pool = randomBytes(4096);
    poolAt = 0;
  }
  poolAt += bytes;
  return pool.toString("hex", poolAt - bytes, poolAt);
}

function withLineage(trace: string, lineage: Lineage): string {
  const field = formatLineage(lineage);
  return field ? `${trace};${field}` : trace;
}

/** An X-Ray-shaped trace header, as Lambda hands every invoke. */
function traceId(): string {
  const epoch = Math.floor(Date.now() / 1000).toString(16);
  return `Root=1-${epoch}-${randomHex(12)};Parent=${randomHex(8)};Sampled=0`;
}
