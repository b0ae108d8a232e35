/**
 * Broker connectors: the small interface the pollers drive, one file per
 * broker. Stream connectors (NATS JetStream, Redis Streams) hand out records
 * in order and checkpoint what the poller commits; the queue connector
 * (RabbitMQ) pushes messages and acks or requeues them.
 */
import { TRACE_HEADER } from "../async/lineage.js";
import type { EgressPolicy } from "../control/egress.js";
import type { EventSourceMapping } from "../control/event-sources.js";

export interface SourceRecord {
  /** The record's sequence id: `batchItemFailures[].itemIdentifier` names it. */
  id: string;
  /** When the broker stored it (epoch ms). */
  arrivalMs: number;
  /** The record as it appears in the event. */
  event: Record<string, unknown>;
  /** What filter patterns see: the record's fields with `data` parsed when it is JSON. */
  filterView: Record<string, unknown>;
  /**
   * The `X-Amzn-Trace-Id` the record carries (a RabbitMQ or NATS header, a Redis stream field), whose
   * Lineage field says how often each function already ran in this chain (see async/lineage.ts).
   */
  traceHeader?: string;
}

/** The record's trace header among its headers or fields (any case; a list's first value). */
export function traceHeaderOf(entries: Record<string, unknown> | undefined): string | undefined {
  if (!entries) return undefined;
  for (const [k, v] of Object.entries(entries)) {
    if (k.toLowerCase() !== TRACE_HEADER_LOWER) continue;
    const first = Array.isArray(v) ? v[0] : v;
    if (typeof first === "string") return first;
    if (Buffer.isBuffer(first)) return first.toString("utf8");
  }
  return undefined;
}

const TRACE_HEADER_LOWER = TRACE_HEADER.toLowerCase();

export interface Connector {
  /** Rejects once the connection is lost (never resolves). */
  readonly lost: Promise<never>;
  /** Records waiting that this mapping has not finished (null when unknown). */
  lag(): Promise<number | null>;
  close(): Promise<void>;
}

export interface StreamConnector extends Connector {
  /** Up to `max` records after the last ones handed out, waiting up to `waitMs` for the first. */
  fetch(max: number, waitMs: number): Promise<SourceRecord[]>;
  /** Checkpoint: these records are done (processed, filtered out, or sent to the on-failure destination). */
  commit(records: SourceRecord[]): Promise<void>;
  /** The function's event for a batch. */
  payload(records: SourceRecord[]): Buffer;
  /** The on-failure description of a batch: `{ "<Kind>BatchInfo": {…} }`. */
  batchInfo(records: SourceRecord[]): Record<string, unknown>;
}

export interface QueueMessage extends SourceRecord {
  /** Identifies the message across redeliveries (message id, else a content hash). */
  key: string;
  receivedAt: number;
}

export interface QueueConnector extends Connector {
  consume(onMessage: (m: QueueMessage) => void): Promise<void>;
  ack(messages: QueueMessage[]): void;
  /** Return the messages to the queue for redelivery. */
  requeue(messages: QueueMessage[]): void;
  payload(messages: QueueMessage[]): Buffer;
}

export interface ConnectorOptions {
  mapping: EventSourceMapping;
  /** Messages a queue consumer may hold unacknowledged. */
  prefetch: number;
  /** Checks (and pins) the broker's address before every connection. */
  egress: EgressPolicy;
  /** The function's execution role (stream records carry it as `invokeIdentityArn`). */
  invokeIdentityArn?: string;
}

/** A promise that rejects when `fail` is called, with no unhandled-rejection noise. */
export function lostSignal(): { lost: Promise<never>; fail: (err: Error) => void } {
  let fail!: (err: Error) => void;
  const lost = new Promise<never>((_, reject) => {
    fail = reject;
  });
  lost.catch(() => {});
  let done = false;
  return {
    lost,
    fail: (err) => {
      if (done) return;
      done = true;
      fail(err);
    },
  };
}

export function epochSeconds(ms: number): number {
  return Math.round(ms) / 1000;
}
