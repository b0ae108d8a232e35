/**
 * One poller per enabled event source mapping: connect to the broker, run the
 * stream or queue loop, and when the broker goes away report it in the
 * mapping's LastProcessingResult and reconnect with backoff. Every batch is
 * invoked synchronously through the frontend; throttles and platform errors
 * back off and retry the same batch without counting an attempt.
 */
import { randomUUID } from "node:crypto";
import {
  countOf,
  type Lineage,
  MAX_RECURSIVE_INVOCATIONS,
  mergeLineages,
  parseLineage,
} from "../async/lineage.js";
import { invocationContext } from "../async/record.js";
import { backoffMs } from "../backoff.js";
import { functionArn } from "../control/arn.js";
import type { EgressPolicy } from "../control/egress.js";
import { DEFAULT_QUEUE_CONCURRENCY, type EventSourceMapping } from "../control/event-sources.js";
import { LambdaError } from "../errors.js";
import type { Frontend, InvokeResponse } from "../frontend/invoke.js";
import type { MetricsRecorder } from "../metrics/recorder.js";
import type { Connector, QueueConnector, SourceRecord, StreamConnector } from "./connector.js";
import { runQueue } from "./queue-consumer.js";
import type { RedisPollerState } from "./redis.js";
import type { MappingStats } from "./status.js";
import { runStream } from "./stream-consumer.js";

export interface PollerDeps {
  frontend: Frontend;
  maxPayloadBytes: number;
  /** Persist LastProcessingResult. */
  report(uuid: string, result: string): Promise<void>;
  /** Queue a record for the on-failure destination (durably). */
  deliverFailure(mapping: EventSourceMapping, requestId: string, body: unknown): Promise<void>;
  log(message: string): void;
  /** The function's RecursiveLoop setting is Terminate (the default). */
  terminatesLoops(functionName: string): Promise<boolean>;
  /** Checks (and pins) a broker's address before every connection. */
  egress: EgressPolicy;
  /** IteratorAge of stream batches, RecursiveInvocationsDropped (AWS/Lambda). */
  metrics: MetricsRecorder;
}

/** The counters of a poller that has not started (or of a mapping this server does not poll). */
export function emptyStats(): MappingStats {
  return {
    recordsReceived: 0,
    recordsProcessed: 0,
    recordsFiltered: 0,
    recordsFailed: 0,
    batches: 0,
    functionErrors: 0,
    retries: 0,
    throttles: 0,
    recursiveLoopsStopped: 0,
    reconnects: 0,
    inFlightRecords: 0,
    connected: false,
    lastError: null,
  };
}

const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 10_000;
const THROTTLE_MIN_MS = 100;
const THROTTLE_MAX_MS = 10_000;
const THROUGHPUT_WINDOW_MS = 60_000;

export class MappingPoller {
  readonly stats: MappingStats = emptyStats();
  /** (time, records) of finished records over the last minute. */
  private readonly done: Array<[number, number]> = [];
  private stopped = false;
  private wakeSleepers = new Set<() => void>();
  private stopListeners = new Set<() => void>();
  private running: Promise<void> | null = null;
  private connector: Connector | null = null;
  private lastReported = "";
  /** Attempts per queue message key, across redeliveries and reconnects. */
  readonly queueAttempts = new Map<string, number>();
  private readonly redisState: RedisPollerState = {};

  constructor(
    readonly mapping: EventSourceMapping,
    private readonly deps: PollerDeps,
  ) {}

  get stopping(): boolean {
    return this.stopped;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stop fetching; an in-flight batch finishes (up to `graceMs`), then the connection closes. */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    for (const wake of this.wakeSleepers) wake();
    for (const l of this.stopListeners) l();
    if (!this.running) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    await this.connector?.close().catch(() => {});
  }

  onStop(listener: () => void): () => void {
    this.stopListeners.add(listener);
    return () => this.stopListeners.delete(listener);
  }

  /** Sleep, cut short by stop(). */
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakeSleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakeSleepers.add(wake);
    });
  }

  report(result: string): void {
    if (result === this.lastReported) return;
    this.lastReported = result;
    void this.deps.report(this.mapping.uuid, result).catch(() => {});
  }

  finished(records: number): void {
    const now = Date.now();
    this.done.push([now, records]);
    while (this.done.length > 0 && (this.done[0] as [number, number])[0] < now - THROUGHPUT_WINDOW_MS)
      this.done.shift();
  }

  /** Records finished per second over the last minute. */
  throughput(): number {
    const cutoff = Date.now() - THROUGHPUT_WINDOW_MS;
    let n = 0;
    for (const [t, c] of this.done) if (t >= cutoff) n += c;
    return Math.round((n / (THROUGHPUT_WINDOW_MS / 1000)) * 100) / 100;
  }

  async lag(): Promise<number | null> {
    if (!this.connector || !this.stats.connected) return null;
    return this.connector.lag();
  }

  get settings() {
    return this.mapping.settings;
  }

  get maxPayloadBytes(): number {
    return this.deps.maxPayloadBytes;
  }

  get queueConcurrency(): number {
    return this.mapping.settings.maximumConcurrency ?? DEFAULT_QUEUE_CONCURRENCY;
  }

  log(message: string): void {
    this.deps.log(`event source mapping ${this.mapping.uuid}: ${message}`);
  }

  private async open(): Promise<Connector> {
    const m = this.mapping;
    const prefetch = m.settings.batchSize * this.queueConcurrency;
    // Each broker's client library is loaded by the first mapping of its kind, not by every server start.
    switch (m.kind) {
      case "rabbitmq": {
        const { openRabbitMq } = await import("./rabbitmq.js");
        return openRabbitMq({ mapping: m, prefetch, egress: this.deps.egress });
      }
      case "nats": {
        const { openNats } = await import("./nats.js");
        return openNats({ mapping: m, prefetch, egress: this.deps.egress, ...(await this.identity()) });
      }
      case "redis": {
        const { openRedis } = await import("./redis.js");
        return openRedis(
          { mapping: m, prefetch, egress: this.deps.egress, ...(await this.identity()) },
          this.redisState,
        );
      }
    }
  }

  /** The function's execution role as of this connection (stream records name it `invokeIdentityArn`). */
  private async identity(): Promise<{ invokeIdentityArn?: string }> {
    const m = this.mapping;
    const ref =
      m.qualifier !== null ? { name: m.functionName, qualifier: m.qualifier } : { name: m.functionName };
    const fn = await this.deps.frontend.resolve(ref, m.region).catch(() => undefined);
    return fn ? { invokeIdentityArn: fn.config.Role } : {};
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        this.connector = await this.open();
        this.stats.connected = true;
        this.stats.lastError = null;
        if (failures > 0 || this.lastReported.startsWith("PROBLEM: Connection")) {
          this.report(this.stats.recordsProcessed > 0 ? "OK" : "No records processed");
        }
        if (this.mapping.kind === "rabbitmq") await runQueue(this, this.connector as QueueConnector);
        else await runStream(this, this.connector as StreamConnector);
      } catch (err) {
        if (this.stopped) break;
        const text = err instanceof Error ? err.message : String(err);
        this.stats.lastError = text;
        this.stats.reconnects++;
        this.report(`PROBLEM: Connection error. ${text}`);
        this.log(`broker error, reconnecting: ${text}`);
      } finally {
        if (this.stats.connected && this.stats.recordsReceived > 0) failures = 0;
        this.stats.connected = false;
        await this.connector?.close().catch(() => {});
      }
      if (this.stopped) break;
      await this.sleep(backoffMs(failures++, RECONNECT_MIN_MS, RECONNECT_MAX_MS));
    }
  }

  /** A stream batch is about to run: IteratorAge is the age of its last record (AWS/Lambda). */
  iteratorAge(records: SourceRecord[]): void {
    const last = records[records.length - 1];
    if (!last) return;
    const m = this.mapping;
    this.deps.metrics.lambda(
      "IteratorAge",
      m.functionName,
      m.qualifier ?? undefined,
      Math.max(0, Date.now() - last.arrivalMs),
      "Milliseconds",
    );
  }

  /**
   * Recursive-loop detection through the broker, as Lambda does it for SQS: a
   * record whose trace header says the function already ran 16 times in its
   * chain is not run again (RecursiveLoop `Terminate`, the default); it goes to
   * the on-failure destination as `RecursiveInvocationDetected` and is counted.
   * Records without a trace header are never stopped (see README, Recursive loops).
   */
  async takeLooped<T extends SourceRecord>(records: T[]): Promise<{ looped: T[]; rest: T[] }> {
    const fn = this.mapping.functionName;
    const looped = records.filter(
      (r) => countOf(parseLineage(r.traceHeader), fn) >= MAX_RECURSIVE_INVOCATIONS,
    );
    if (looped.length === 0 || !(await this.deps.terminatesLoops(fn))) return { looped: [], rest: records };
    this.stats.recursiveLoopsStopped += looped.length;
    this.deps.metrics.lambda(
      "RecursiveInvocationsDropped",
      fn,
      this.mapping.qualifier ?? undefined,
      looped.length,
    );
    this.log(`${looped.length} record(s) for ${fn} stopped: recursive loop detected`);
    return { looped, rest: records.filter((r) => !looped.includes(r)) };
  }

  /**
   * Invoke the function with one batch, synchronously through the frontend.
   * Throttles and platform errors back off and try again (not an attempt);
   * null when the poller stopped meanwhile. The run carries the chain lineage
   * of its records' trace headers, so a loop through the broker is counted.
   */
  async invoke(payload: Buffer, records: SourceRecord[]): Promise<InvokeResponse | null> {
    const m = this.mapping;
    const lineage: Lineage = mergeLineages(records.map((r) => parseLineage(r.traceHeader)));
    let n = 0;
    for (;;) {
      try {
        const res = await this.deps.frontend.invoke({
          ref:
            m.qualifier !== null
              ? { name: m.functionName, qualifier: m.qualifier }
              : { name: m.functionName },
          payload,
          region: m.region,
          ...(Object.keys(lineage).length > 0 ? { lineage } : {}),
          maxPayloadBytes: this.deps.maxPayloadBytes,
          // The connectors build the event with JSON.stringify.
          payloadIsJson: true,
        });
        this.stats.batches++;
        if (res.functionError) {
          this.stats.functionErrors++;
          this.report("PROBLEM: Function call failed");
        } else {
          this.report("OK");
        }
        return res;
      } catch (err) {
        if (err instanceof LambdaError && err.type === "RequestTooLargeException") throw err;
        if (err instanceof LambdaError && err.statusCode === 429) {
          this.stats.throttles++;
        } else {
          const text = err instanceof LambdaError ? `${err.type}: ${err.message}` : String(err);
          this.report(
            err instanceof LambdaError && err.type === "ResourceNotFoundException"
              ? "PROBLEM: Function not found."
              : `PROBLEM: ${text}`,
          );
        }
        if (this.stopped) return null;
        await this.sleep(backoffMs(n++, THROTTLE_MIN_MS, THROTTLE_MAX_MS));
        if (this.stopped) return null;
      }
    }
  }

  /** Hand a failed batch's description to the on-failure destination (or log that it was dropped). */
  async fail(
    condition: string,
    attempts: number,
    last: InvokeResponse | undefined,
    records: number,
    description: Record<string, unknown>,
  ): Promise<void> {
    this.stats.recordsFailed += records;
    const m = this.mapping;
    const requestId = last?.requestId ?? randomUUID();
    const body = {
      ...invocationContext({
        requestId,
        functionArn: functionArn(m.region, m.functionName, m.qualifier ?? undefined),
        condition,
        approximateInvokeCount: attempts,
        ...(last
          ? {
              last: {
                statusCode: 200,
                executedVersion: last.executedVersion,
                ...(last.functionError ? { functionError: last.functionError } : {}),
              },
            }
          : {}),
      }),
      ...description,
    };
    if (m.settings.onFailure) await this.deps.deliverFailure(m, requestId, body);
    else this.log(`${records} record(s) dropped (${condition}); no on-failure destination`);
  }
}
