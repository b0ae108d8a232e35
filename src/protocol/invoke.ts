/**
 * The invoke request a frontend hands a worker and the outcome it gets back,
 * as plain data (payloads are bytes; over a network they travel as they are).
 */

export interface InvokeInput {
  requestId: string;
  payload: Buffer;
  /** The ARN the caller invoked (with its qualifier, if any). */
  invokedFunctionArn: string;
  clientContext?: string;
  cognitoIdentity?: string;
  traceId: string;
  /** Collect the last 4 KB of this run's log. */
  wantTail: boolean;
  /**
   * Run only in an idle environment: with none idle, refuse with `WORKER_BUSY` rather than start one
   * (a frontend routed here because the worker announced one, and another took it first).
   */
  warmOnly?: boolean;
  /**
   * Receives a streamed response as the runtime writes it (absent: streamed responses are buffered).
   * A worker on another node sends it over the node protocol as records (`wire.ts`).
   */
  stream?: ResponseStreamSink;
}

/**
 * The receiver of a response the runtime streams (`Lambda-Runtime-Function-Response-Mode: streaming`).
 * Without one, a streamed response is buffered like any other (plain Invoke of a streaming function).
 */
export interface ResponseStreamSink {
  /** The runtime began its streamed response, with this content type. */
  start(contentType: string): void;
  /**
   * One piece of the response, as the runtime wrote it. A promise asks the reader to pause until it
   * settles (the caller's client is slower than the function): the runtime's writes then wait too.
   */
  chunk(bytes: Buffer): Promise<void> | undefined;
}

export interface InvokeOutcome {
  /** The runtime's answer, or what the platform answers in its place. */
  ok: boolean;
  payload: Buffer;
  errorType?: string;
  durationMs: number;
  initDurationMs?: number;
  /** Last 4 KB of the run's log, when asked for. */
  tail?: string;
  /** The environment cannot be used again. */
  fatal: boolean;
  /** The runtime streamed its response into the invoke's sink (`payload` holds only an error body, if any). */
  streamed?: boolean;
}

/** How far a provisioned-concurrency request has come on one worker (reported as environments initialise). */
export interface ProvisionedProgress {
  allocated: number;
  available: number;
  status: "IN_PROGRESS" | "READY" | "FAILED";
  reason?: string;
}
