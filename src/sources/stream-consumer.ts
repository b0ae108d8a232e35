/**
 * Stream semantics (NATS JetStream, Redis Streams), as Lambda's Kinesis
 * source: one batch in flight, so records reach the function in order; a
 * batch is collected up to BatchSize or MaximumBatchingWindowInSeconds;
 * records a filter drops are checkpointed without an invoke; a failing batch
 * is retried until it succeeds, MaximumRetryAttempts is spent or its records
 * are older than MaximumRecordAgeInSeconds; BisectBatchOnFunctionError halves
 * it; ReportBatchItemFailures checkpoints before the first failed record and
 * retries from there. Records that give up go to the on-failure destination
 * described like Lambda's stream failure record, then are checkpointed.
 */

import { backoffMs } from "../backoff.js";
import { RecordFilter } from "../control/event-filter.js";
import { LambdaError } from "../errors.js";
import type { InvokeResponse } from "../frontend/invoke.js";
import type { SourceRecord, StreamConnector } from "./connector.js";
import type { MappingPoller } from "./mapping-poller.js";

/** How long one fetch waits for a first record before looking at stop() again. */
const POLL_MS = 1000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

/** A stream batch as the function gets it: Kinesis-style `Records[]`. */
export function recordsPayload(records: SourceRecord[]): Buffer {
  return Buffer.from(JSON.stringify({ Records: records.map((r) => r.event) }));
}

/** What a stream failure record says of a batch (the broker adds its own fields: stream, filter…). */
export function batchRange(records: SourceRecord[], eventSourceArn: string) {
  const first = records[0] as SourceRecord;
  const last = records[records.length - 1] as SourceRecord;
  return {
    startSequenceNumber: first.id,
    endSequenceNumber: last.id,
    approximateArrivalOfFirstRecord: new Date(first.arrivalMs).toISOString(),
    approximateArrivalOfLastRecord: new Date(last.arrivalMs).toISOString(),
    batchSize: records.length,
    eventSourceArn,
  };
}

export async function runStream(p: MappingPoller, conn: StreamConnector): Promise<void> {
  const filter = new RecordFilter(p.settings.filters);
  while (!p.stopping) {
    const batch = await Promise.race([collect(p, conn), conn.lost]);
    if (batch.length === 0) continue;
    p.stats.recordsReceived += batch.length;
    p.stats.inFlightRecords = batch.length;
    const kept: SourceRecord[] = [];
    const dropped: SourceRecord[] = [];
    for (const r of batch) (filter.matches(r.filterView) ? kept : dropped).push(r);
    if (dropped.length > 0) {
      await conn.commit(dropped);
      p.stats.recordsFiltered += dropped.length;
      p.finished(dropped.length);
    }
    const { looped, rest } = await p.takeLooped(kept);
    if (looped.length > 0) await giveUp(p, conn, looped, "RecursiveInvocationDetected", 0, undefined);
    const done = await processRecords(p, conn, rest);
    p.stats.inFlightRecords = 0;
    if (!done) return;
  }
}

/** Up to BatchSize records: wait for a first one, then fill until the batching window closes. */
async function collect(p: MappingPoller, conn: StreamConnector): Promise<SourceRecord[]> {
  const size = p.settings.batchSize;
  const windowMs = p.settings.maximumBatchingWindowInSeconds * 1000;
  const out = await conn.fetch(size, POLL_MS);
  if (out.length === 0 || windowMs === 0) return out;
  const deadline = Date.now() + windowMs;
  while (out.length < size && !p.stopping) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    out.push(...(await conn.fetch(size - out.length, left)));
  }
  return out;
}

/** The index of the first failed record a ReportBatchItemFailures response names; -1 = none failed. */
export function firstFailure(payload: Buffer, records: SourceRecord[]): number {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString("utf8"));
  } catch {
    return -1;
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return -1;
  const failures = (body as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return -1;
  if (!Array.isArray(failures)) return 0;
  if (failures.length === 0) return -1;
  let first = Number.POSITIVE_INFINITY;
  for (const f of failures) {
    const id = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    const i = typeof id === "string" && id !== "" ? records.findIndex((r) => r.id === id) : -1;
    // A missing or unknown identifier fails the whole batch, as Lambda does.
    if (i < 0) return 0;
    first = Math.min(first, i);
  }
  return first;
}

/**
 * Run records until each is processed or handed to the on-failure
 * destination, checkpointing as it goes. False when the poller stopped first
 * (the rest is redelivered later).
 */
async function processRecords(
  p: MappingPoller,
  conn: StreamConnector,
  records: SourceRecord[],
): Promise<boolean> {
  const s = p.settings;
  let rest = records;
  let attempts = 0;
  let last: InvokeResponse | undefined;
  while (rest.length > 0) {
    if (p.stopping) return false;
    if (s.maximumRecordAgeInSeconds >= 0) {
      const cutoff = Date.now() - s.maximumRecordAgeInSeconds * 1000;
      const old = rest.filter((r) => r.arrivalMs < cutoff);
      if (old.length > 0) {
        await giveUp(p, conn, old, "RecordAgeExceeded", attempts, last);
        rest = rest.filter((r) => r.arrivalMs >= cutoff);
        continue;
      }
    }
    let res: InvokeResponse | null;
    p.iteratorAge(rest);
    try {
      res = await p.invoke(conn.payload(rest), rest);
    } catch (err) {
      if (!(err instanceof LambdaError && err.type === "RequestTooLargeException")) throw err;
      if (rest.length === 1) {
        await giveUp(p, conn, rest, "MaximumPayloadSizeExceeded", attempts, last);
        return true;
      }
      const half = Math.ceil(rest.length / 2);
      return (
        (await processRecords(p, conn, rest.slice(0, half))) &&
        (await processRecords(p, conn, rest.slice(half)))
      );
    }
    if (!res) return false;
    if (!res.functionError) {
      const failedAt = s.functionResponseTypes.includes("ReportBatchItemFailures")
        ? firstFailure(res.payload, rest)
        : -1;
      if (failedAt < 0) {
        await done(p, conn, rest);
        return true;
      }
      if (failedAt > 0) {
        await done(p, conn, rest.slice(0, failedAt));
        rest = rest.slice(failedAt);
      }
    }
    last = res;
    attempts++;
    if (s.bisectBatchOnFunctionError && rest.length > 1) {
      // Halves start with a fresh retry count, as Lambda's bisect does.
      const half = Math.ceil(rest.length / 2);
      return (
        (await processRecords(p, conn, rest.slice(0, half))) &&
        (await processRecords(p, conn, rest.slice(half)))
      );
    }
    if (s.maximumRetryAttempts >= 0 && attempts > s.maximumRetryAttempts) {
      await giveUp(p, conn, rest, "RetryAttemptsExhausted", attempts, last);
      return true;
    }
    p.stats.retries++;
    await p.sleep(backoffMs(attempts - 1, RETRY_MIN_MS, RETRY_MAX_MS));
  }
  return true;
}

async function done(p: MappingPoller, conn: StreamConnector, records: SourceRecord[]): Promise<void> {
  await conn.commit(records);
  p.stats.recordsProcessed += records.length;
  p.finished(records.length);
}

async function giveUp(
  p: MappingPoller,
  conn: StreamConnector,
  records: SourceRecord[],
  condition: string,
  attempts: number,
  last: InvokeResponse | undefined,
): Promise<void> {
  await p.fail(condition, attempts, last, records.length, conn.batchInfo(records));
  await conn.commit(records);
  p.finished(records.length);
}
