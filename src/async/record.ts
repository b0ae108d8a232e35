/**
 * Lambda's invocation record: what destinations receive about an
 * asynchronous invocation (the same JSON shape Lambda sends to SQS, SNS,
 * EventBridge and Lambda destinations).
 */
export type Condition = "Success" | "RetriesExhausted" | "EventAgeExceeded" | "RecursiveInvocationDetected";

/** What the last attempt answered (kept on the queued event between attempts). */
export interface AttemptResult {
  statusCode: number;
  executedVersion: string;
  functionError?: string;
  /** The response payload as text. */
  payload: string;
}

export interface InvocationRecord {
  version: "1.0";
  timestamp: string;
  requestContext: {
    requestId: string;
    functionArn: string;
    condition: Condition;
    approximateInvokeCount: number;
  };
  requestPayload: unknown;
  responseContext?: { statusCode: number; executedVersion: string; functionError?: string };
  responsePayload?: unknown;
}

/** A payload as JSON when it parses, else as text; an empty payload is `{}` (what the function received). */
export function parsePayload(text: string, empty: unknown): unknown {
  if (text.length === 0) return empty;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** What every invocation record starts with: version, time, request context and (after a run) response context. */
export function invocationContext<C extends string>(opts: {
  requestId: string;
  functionArn: string;
  /** Lambda's conditions: async (`RetriesExhausted`, …) or stream (`RetryAttemptsExhausted`, …). */
  condition: C;
  approximateInvokeCount: number;
  /** Absent when the event never ran (e.g. it aged out while throttled). */
  last?: Omit<AttemptResult, "payload">;
  now?: Date;
}): Pick<InvocationRecord, "version" | "timestamp" | "responseContext"> & {
  requestContext: Omit<InvocationRecord["requestContext"], "condition"> & { condition: C };
} {
  return {
    version: "1.0",
    timestamp: (opts.now ?? new Date()).toISOString(),
    requestContext: {
      requestId: opts.requestId,
      functionArn: opts.functionArn,
      condition: opts.condition,
      approximateInvokeCount: opts.approximateInvokeCount,
    },
    ...(opts.last
      ? {
          responseContext: {
            statusCode: opts.last.statusCode,
            executedVersion: opts.last.executedVersion,
            ...(opts.last.functionError ? { functionError: opts.last.functionError } : {}),
          },
        }
      : {}),
  };
}

/** Lambda's invocation record for an asynchronous event (destinations, DLQ conditions). */
export function invocationRecord(opts: {
  requestId: string;
  functionArn: string;
  condition: Condition;
  approximateInvokeCount: number;
  requestPayload: Buffer;
  /** Absent when the event never ran (e.g. it aged out while throttled). */
  last?: AttemptResult;
  now?: Date;
}): InvocationRecord {
  const { responseContext, ...head } = invocationContext(opts);
  return {
    ...head,
    requestPayload: parsePayload(opts.requestPayload.toString("utf8"), {}),
    ...(responseContext && opts.last
      ? { responseContext, responsePayload: parsePayload(opts.last.payload, null) }
      : {}),
  };
}
