/**
 * Queue semantics (RabbitMQ), as Lambda's Amazon MQ source: messages arrive
 * up to the prefetch limit (BatchSize × MaximumConcurrency), are grouped into
 * batches of BatchSize or whatever arrived within MaximumBatchingWindowInSeconds,
 * and up to ScalingConfig.MaximumConcurrency batches run at once. A batch that
 * succeeds is acked; one that fails is requeued (after a short backoff) and
 * retried; a message whose invocations exceed MaximumRetryAttempts + 1 goes to
 * the on-failure destination (inside an invocation record whose
 * requestPayload is the `aws:rmq` event of those messages) and is acked.
 */

import { invocationRecord } from "../async/record.js";
import { backoffMs } from "../backoff.js";
import { functionArn } from "../control/arn.js";
import { RecordFilter } from "../control/event-filter.js";
import { LambdaError } from "../errors.js";
import type { QueueConnector, QueueMessage } from "./connector.js";
import type { MappingPoller } from "./mapping-poller.js";

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

export function runQueue(p: MappingPoller, conn: QueueConnector): Promise<void> {
  const s = p.settings;
  const filter = new RecordFilter(s.filters);
  const windowMs = s.maximumBatchingWindowInSeconds * 1000;
  const buffer: QueueMessage[] = [];
  let inflight = 0;
  let timer: NodeJS.Timeout | undefined;
  let scheduled = false;

  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      offStop();
      if (err) reject(err);
      else resolve();
    };
    const offStop = p.onStop(() => {
      clearTimeout(timer);
      conn.requeue(buffer.splice(0));
      if (inflight === 0) finish();
    });
    conn.lost.catch((err: Error) => {
      buffer.splice(0);
      finish(err);
    });

    const pump = () => {
      scheduled = false;
      clearTimeout(timer);
      while (!p.stopping && !settled && inflight < p.queueConcurrency && buffer.length > 0) {
        const oldest = (buffer[0] as QueueMessage).receivedAt;
        const due = buffer.length >= s.batchSize || Date.now() - oldest >= windowMs;
        if (!due) {
          timer = setTimeout(pump, oldest + windowMs - Date.now());
          break;
        }
        const batch = buffer.splice(0, s.batchSize);
        inflight++;
        p.stats.inFlightRecords += batch.length;
        void runBatch(p, conn, filter, batch)
          .catch((err: unknown) => p.log(`batch failed: ${err instanceof Error ? err.message : String(err)}`))
          .finally(() => {
            inflight--;
            p.stats.inFlightRecords -= batch.length;
            if (p.stopping && inflight === 0) finish();
            else pump();
          });
      }
    };

    conn
      .consume((m) => {
        p.stats.recordsReceived++;
        buffer.push(m);
        // Messages that arrive together (one read from the socket) join one batch.
        if (!scheduled) {
          scheduled = true;
          setImmediate(pump);
        }
      })
      .catch((err: Error) => finish(err));
  });
}

async function runBatch(
  p: MappingPoller,
  conn: QueueConnector,
  filter: RecordFilter,
  batch: QueueMessage[],
): Promise<void> {
  const kept: QueueMessage[] = [];
  const dropped: QueueMessage[] = [];
  for (const m of batch) (filter.matches(m.filterView) ? kept : dropped).push(m);
  if (dropped.length > 0) {
    conn.ack(dropped);
    p.stats.recordsFiltered += dropped.length;
    p.finished(dropped.length);
  }
  const { looped, rest } = await p.takeLooped(kept);
  if (looped.length > 0) await giveUp(p, conn, looped, 0, undefined, "RecursiveInvocationDetected");
  if (rest.length === 0) return;
  await invokeBatch(p, conn, filter, rest);
}

async function invokeBatch(
  p: MappingPoller,
  conn: QueueConnector,
  filter: RecordFilter,
  kept: QueueMessage[],
): Promise<void> {
  const payload = conn.payload(kept);
  let res: Awaited<ReturnType<MappingPoller["invoke"]>>;
  try {
    res = await p.invoke(payload, kept);
  } catch (err) {
    if (!(err instanceof LambdaError && err.type === "RequestTooLargeException")) throw err;
    if (kept.length === 1) {
      await giveUp(p, conn, kept, 0, undefined);
      return;
    }
    const half = Math.ceil(kept.length / 2);
    await runBatch(p, conn, filter, kept.slice(0, half));
    await runBatch(p, conn, filter, kept.slice(half));
    return;
  }
  if (!res) {
    conn.requeue(kept);
    return;
  }
  if (!res.functionError) {
    conn.ack(kept);
    for (const m of kept) p.queueAttempts.delete(m.key);
    p.stats.recordsProcessed += kept.length;
    p.finished(kept.length);
    return;
  }
  const max = p.settings.maximumRetryAttempts;
  const exhausted: QueueMessage[] = [];
  const retry: QueueMessage[] = [];
  let most = 0;
  for (const m of kept) {
    const n = (p.queueAttempts.get(m.key) ?? 0) + 1;
    p.queueAttempts.set(m.key, n);
    most = Math.max(most, n);
    (max >= 0 && n > max ? exhausted : retry).push(m);
  }
  if (exhausted.length > 0) await giveUp(p, conn, exhausted, most, res);
  if (retry.length > 0) {
    p.stats.retries++;
    await p.sleep(backoffMs(most - 1, RETRY_MIN_MS, RETRY_MAX_MS));
    conn.requeue(retry);
  }
}

async function giveUp(
  p: MappingPoller,
  conn: QueueConnector,
  messages: QueueMessage[],
  attempts: number,
  last: Awaited<ReturnType<MappingPoller["invoke"]>> | undefined,
  condition: "RetriesExhausted" | "RecursiveInvocationDetected" = "RetriesExhausted",
): Promise<void> {
  const m = p.mapping;
  const record = invocationRecord({
    requestId: last?.requestId ?? "",
    functionArn: functionArn(m.region, m.functionName, m.qualifier ?? undefined),
    condition,
    approximateInvokeCount: attempts,
    requestPayload: conn.payload(messages),
    ...(last
      ? {
          last: {
            statusCode: 200,
            executedVersion: last.executedVersion,
            ...(last.functionError ? { functionError: last.functionError } : {}),
            payload: last.payload.toString("utf8"),
          },
        }
      : {}),
  });
  const { requestContext, ...rest } = record;
  await p.fail(requestContext.condition, attempts, last ?? undefined, messages.length, {
    ...rest,
    requestContext,
  });
  conn.ack(messages);
  for (const msg of messages) p.queueAttempts.delete(msg.key);
  p.finished(messages.length);
}
