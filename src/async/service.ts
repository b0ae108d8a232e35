/**
 * Asynchronous invocation: accept events into the durable queue, run them
 * through the frontend like any synchronous call, retry function errors up to
 * MaximumRetryAttempts, back off on throttles and platform errors (not counted
 * as attempts) until MaximumEventAgeInSeconds, and hand the outcome to the
 * configured destinations and dead-letter target.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { backoffMs } from "../backoff.js";
import type { ServerOptions } from "../config.js";
import { type FunctionRef, functionArn } from "../control/arn.js";
import { redact } from "../control/broker-uri.js";
import { type EgressPolicy, EgressRefused } from "../control/egress.js";
import type { EventInvokeConfigService, EventInvokeSettings } from "../control/event-invoke-config.js";
import { LATEST } from "../control/functions.js";
import { LambdaError } from "../errors.js";
import type { Frontend, InvokeRequest, InvokeResponse } from "../frontend/invoke.js";
import type { MetricsRecorder } from "../metrics/recorder.js";
import { objectColumn, requireMembers } from "../store/columns.js";
import { type Listener, listenPostgres } from "../store/notify.js";
import type { Store } from "../store/store.js";
import { type AsyncCounter, AsyncCounters } from "./counters.js";
import { FunctionDestinations } from "./destinations/function.js";
import { HttpDestinations } from "./destinations/http.js";
import { NatsDestinations } from "./destinations/nats.js";
import { RabbitMqDestinations } from "./destinations/rabbitmq.js";
import { RedisDestinations } from "./destinations/redis.js";
import { DeliveryError, Destinations } from "./destinations/target.js";
import { AsyncPoller } from "./event-poller.js";
import {
  AsyncQueue,
  type NewEvent,
  NOTIFY_CHANNEL,
  type QueuedEvent,
  type StatBumps,
} from "./event-queue.js";
import {
  countOf,
  formatLineage,
  type Lineage,
  MAX_RECURSIVE_INVOCATIONS,
  nextLineage,
  parseLineage,
  TRACE_HEADER,
} from "./lineage.js";
import { type AttemptResult, type Condition, invocationRecord } from "./record.js";
import { retryDelayMs } from "./retry.js";
import type { AsyncFunctionStatus, AsyncStatus } from "./status.js";

/** Events (and deliveries) one server runs at once. */
const DEFAULT_CONCURRENCY = 16;
const LEASE_MS = 30_000;
/** How long stop() lets running events finish before handing them back. */
const STOP_GRACE_MS = 10_000;
/** Destination deliveries are retried for as long as Lambda keeps an event: 6 hours. */
const DELIVERY_MAX_AGE_MS = 6 * 3600_000;
const DLQ_MESSAGE_BYTES = 1024;
/** Throttles, platform errors and failed deliveries back off ~1 s, 2 s, 4 s … up to 5 min (as Lambda does for throttled async events). */
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 5 * 60_000;

interface DeliveryMeta {
  attributes?: Record<string, string>;
}

/**
 * How EventBridge Scheduler delivers a schedule's tick (its target's RetryPolicy and
 * DeadLetterConfig): when the invoke itself cannot be made — the function is throttled, the
 * platform fails, the function is gone — the tick is retried with backoff at most
 * `maximumRetryAttempts` times and not after `deadline`, then sent to the dead-letter target.
 * Once the function ran, the function's own asynchronous settings apply, as on AWS.
 */
export interface SchedulerDelivery {
  maximumRetryAttempts: number;
  /** Epoch ms (real time) after which the tick is no longer delivered (MaximumEventAgeInSeconds). */
  deadline: number;
  deadLetter?: string;
  /** EXECUTION_ID, SCHEDULE_ARN, TARGET_ARN: carried to the dead-letter message. */
  attributes: Record<string, string>;
}

type InvokeMeta = Partial<AttemptResult> & { lineage?: Lineage; scheduler?: SchedulerDelivery };

/** async_events.meta of an invoke event: the last attempt's answer (once there was one), the chain's lineage, and a schedule's delivery policy. */
function invokeMetaColumn(text: string): InvokeMeta {
  const v = objectColumn("async_events", "meta", text);
  requireMembers<InvokeMeta>("async_events", "meta", v, {
    statusCode: "number?",
    executedVersion: "string?",
    payload: "string?",
    functionError: "string?",
    lineage: "object?",
    scheduler: "object?",
  });
  return v;
}

/**
 * What a destination message says of its chain: `X-Amzn-Trace-Id: Lineage=…` (a header on HTTP, RabbitMQ
 * and NATS, a field on Redis), so a record that reaches an event source mapping's broker counts
 * towards the same recursive-loop limit as an invoke would (see sources/mapping-poller.ts).
 */
function traceAttributes(lineage: Lineage | undefined): Record<string, string> {
  const field = lineage ? formatLineage(lineage) : "";
  return field ? { [TRACE_HEADER]: field } : {};
}

/** async_events.meta of a destination delivery: its message attributes. */
function deliveryMetaColumn(text: string): DeliveryMeta {
  const v = objectColumn("async_events", "meta", text);
  requireMembers<DeliveryMeta>("async_events", "meta", v, { attributes: "object?" });
  return v;
}

export class AsyncService {
  readonly queue: AsyncQueue;
  readonly counters = new AsyncCounters();
  private readonly poller: AsyncPoller;
  private readonly destinations: Destinations;
  private readonly brokers: Array<RabbitMqDestinations | NatsDestinations | RedisDestinations>;
  private readonly http: HttpDestinations;
  private listener: Listener | null = null;

  constructor(
    private readonly store: Store,
    private readonly frontend: Frontend,
    private readonly configs: EventInvokeConfigService,
    private readonly options: ServerOptions,
    egress: EgressPolicy,
    /** The function's RecursiveLoop setting is Terminate (the default): FunctionSettingsService's. */
    private readonly terminatesLoops: (functionName: string) => Promise<boolean>,
    /** AsyncEventsReceived, AsyncEventAge, AsyncEventsDropped, DeadLetterErrors, DestinationDeliveryFailures. */
    private readonly metrics: MetricsRecorder,
  ) {
    // Every URL and broker target is checked (and pinned) by the egress policy at each connection.
    this.http = new HttpDestinations(egress);
    this.brokers = [
      new RabbitMqDestinations(egress),
      new NatsDestinations(egress),
      new RedisDestinations(egress),
    ];
    this.queue = new AsyncQueue(store, nodeId(options.dataDir), LEASE_MS);
    this.destinations = new Destinations([
      new FunctionDestinations((ref, region, payload, traceHeader) => {
        const lineage = parseLineage(traceHeader);
        return this.enqueue({
          ref,
          region,
          payload,
          maxPayloadBytes: options.limits.asyncPayloadBytes,
          ...(Object.keys(lineage).length > 0 ? { lineage } : {}),
        });
      }),
      this.http,
      ...this.brokers,
    ]);
    const concurrency = Math.max(1, Math.min(options.accountConcurrency, DEFAULT_CONCURRENCY));
    this.poller = new AsyncPoller(this.queue, (ev, slotFree) => this.handle(ev, slotFree), {
      concurrency,
      // A backlog's next events are leased and waiting when a slot frees (see event-poller.ts).
      prefetch: concurrency,
      sweepMs: LEASE_MS,
      heartbeatMs: LEASE_MS / 3,
      onError: (err) => this.log(`async poller error: ${errText(err)}`),
    });
  }

  private log(message: string): void {
    if (!this.options.quiet) console.error(`lambent: ${message}`);
  }

  /** Accept an Event invocation: validate, store durably, wake a poller. */
  async enqueue(req: InvokeRequest): Promise<{ requestId: string }> {
    await this.frontend.admit(req);
    const requestId = req.requestId ?? randomUUID();
    // A free slot and nothing waiting before it: the event is stored leased to this server and run
    // as soon as it is committed (no claim).
    const handOff = this.poller.reserve();
    let stored: QueuedEvent[];
    try {
      stored = await this.queue.enqueue([
        {
          kind: "invoke",
          requestId,
          functionName: req.ref.name,
          ...(req.ref.qualifier !== undefined ? { qualifier: req.ref.qualifier } : {}),
          region: req.region,
          payload: req.payload,
          // The chain the event belongs to travels with it (see lineage.ts).
          ...(req.lineage ? { meta: { lineage: req.lineage } } : {}),
          ...(handOff ? { leased: true } : {}),
        },
      ]);
    } catch (err) {
      if (handOff) this.poller.unreserve();
      throw err;
    }
    this.counters.add(req.ref.name, "enqueued");
    this.metrics.lambda("AsyncEventsReceived", req.ref.name, req.ref.qualifier, 1);
    if (handOff) this.poller.adopt(stored[0] as QueuedEvent);
    else this.poller.wake();
    return { requestId };
  }

  /**
   * Queue a delivery to a destination (durably; retried with backoff for up
   * to 6 hours), e.g. an event source mapping's on-failure record.
   */
  async enqueueDelivery(d: {
    requestId: string;
    functionName: string;
    region: string;
    target: string;
    body: Buffer;
    attributes?: Record<string, string>;
  }): Promise<void> {
    await this.queue.enqueue([
      {
        kind: "destination",
        requestId: d.requestId,
        functionName: d.functionName,
        region: d.region,
        payload: d.body,
        target: d.target,
        meta: { attributes: d.attributes ?? {} } satisfies DeliveryMeta,
      },
    ]);
    this.poller.wake();
  }

  /** Look for due events now (enqueues on this server and NOTIFYs from others do this already). */
  wake(): void {
    this.poller.wake();
  }

  /** Take back this server's leases from an earlier life, listen for other servers, start claiming. */
  async start(): Promise<void> {
    const released = await this.queue.release({ all: this.store.engine === "sqlite" });
    if (released > 0)
      this.log(`async: ${released} event(s) left running by an earlier server are queued again`);
    if (this.store.engine === "postgres" && this.options.database) {
      this.listener = await listenPostgres(this.options.database, {
        channel: NOTIFY_CHANNEL,
        onMessage: () => this.poller.wake(),
        // Events may have been enqueued while we were not listening.
        onConnect: () => this.poller.wake(),
        onError: (err) => this.log(`async: LISTEN connection error: ${errText(err)}`),
      });
    }
    this.poller.start();
  }

  async stop(): Promise<void> {
    await this.poller.stop(STOP_GRACE_MS);
    await this.listener?.close();
    this.listener = null;
    for (const b of this.brokers) await b.close();
    await this.http.close();
  }

  /** Queue depth and outcomes per function (all servers sharing the store). */
  async status(): Promise<AsyncStatus> {
    const [depth, stats] = await Promise.all([this.queue.depth(), this.queue.stats()]);
    const byName = new Map<string, AsyncFunctionStatus>();
    const entry = (name: string) => {
      let e = byName.get(name);
      if (!e) {
        e = {
          functionName: name,
          waiting: 0,
          running: 0,
          deliveriesWaiting: 0,
          succeeded: 0,
          failed: 0,
          expired: 0,
          dropped: 0,
          retries: 0,
          throttles: 0,
          delivered: 0,
          deliveryFailures: 0,
        };
        byName.set(name, e);
      }
      return e;
    };
    for (const d of depth) {
      const e = entry(d.functionName);
      if (d.kind === "destination") e.deliveriesWaiting += d.count;
      else if (d.state === "running") e.running += d.count;
      else e.waiting += d.count;
    }
    for (const s of stats) {
      const e = entry(s.function_name);
      e.succeeded = s.succeeded;
      e.failed = s.failed;
      e.expired = s.expired;
      e.dropped = s.dropped;
      e.retries = s.retries;
      e.throttles = s.throttles;
      e.delivered = s.delivered;
      e.deliveryFailures = s.delivery_failures;
    }
    return { functions: [...byName.values()].sort((a, b) => a.functionName.localeCompare(b.functionName)) };
  }

  /** `slotFree`: the poller's slot is no longer needed (the invoke or delivery is over; the outcome's commit follows). */
  private async handle(ev: QueuedEvent, slotFree: () => void): Promise<void> {
    if (ev.kind === "destination") await this.deliver(ev, slotFree);
    else await this.run(ev, slotFree);
  }

  private count(ev: QueuedEvent, stats: StatBumps): void {
    const names: Record<string, AsyncCounter> = {
      succeeded: "succeeded",
      failed: "failed",
      expired: "expired",
      dropped: "dropped",
      retries: "retries",
      throttles: "throttles",
      delivered: "delivered",
      delivery_failures: "deliveryFailures",
    };
    for (const [k, n] of Object.entries(stats)) {
      const c = names[k];
      if (c && n) this.counters.add(ev.function_name, c, n);
    }
    // Lambda's metrics of the same outcomes (a delivery event's qualifier is its function's: none).
    const qualifier = ev.qualifier ?? undefined;
    const dropped = (stats.failed ?? 0) + (stats.expired ?? 0) + (stats.dropped ?? 0);
    if (ev.kind === "invoke" && dropped > 0) {
      this.metrics.lambda("AsyncEventsDropped", ev.function_name, qualifier, dropped);
    }
    if (stats.delivery_failures) {
      const metric = isDeadLetter(ev) ? "DeadLetterErrors" : "DestinationDeliveryFailures";
      this.metrics.lambda(metric, ev.function_name, qualifier, stats.delivery_failures);
    }
  }

  private async reschedule(
    ev: QueuedEvent,
    change: Parameters<AsyncQueue["reschedule"]>[1],
    stats: StatBumps,
  ): Promise<void> {
    if (await this.queue.reschedule(ev, change, stats)) {
      this.count(ev, stats);
      // Its new due time: the poller's next claim and sleep take it into account.
      this.poller.wake();
    }
  }

  private async complete(ev: QueuedEvent, followUps: NewEvent[], stats: StatBumps): Promise<void> {
    if (await this.queue.complete(ev, followUps, stats)) {
      this.count(ev, stats);
      if (followUps.length > 0) this.poller.wake();
    }
  }

  /** Run one invoke event: one attempt, then retry, finish or back off. */
  private async run(ev: QueuedEvent, slotFree: () => void): Promise<void> {
    const ref: FunctionRef =
      ev.qualifier !== null
        ? { name: ev.function_name, qualifier: ev.qualifier }
        : { name: ev.function_name };
    const settings = await this.configs.settings(ev.function_name, ev.qualifier);
    const deadline = ev.enqueued_at + settings.maximumEventAgeSeconds * 1000;
    // meta: the last attempt's result, and the chain's lineage (kept across attempts).
    const meta = ev.meta ? invokeMetaColumn(ev.meta) : undefined;
    const lineage = meta?.lineage;
    const scheduler = meta?.scheduler;
    const last = meta?.statusCode !== undefined ? (meta as AttemptResult) : undefined;
    if (Date.now() >= deadline) {
      await this.fail(ev, ref, settings, "EventAgeExceeded", ev.attempts, last, lineage);
      return;
    }
    if (
      countOf(lineage, ev.function_name) >= MAX_RECURSIVE_INVOCATIONS &&
      (await this.terminatesLoops(ev.function_name))
    ) {
      // This run would be the 17th of the function in one chain: Lambda stops the loop and sends the
      // event to the dead-letter queue / on-failure destination.
      this.log(`async: event ${ev.request_id} for ${ev.function_name} stopped: recursive loop detected`);
      this.counters.add(ev.function_name, "recursiveLoopsStopped");
      this.metrics.lambda("RecursiveInvocationsDropped", ev.function_name, ev.qualifier ?? undefined, 1);
      await this.fail(ev, ref, settings, "RecursiveInvocationDetected", ev.attempts, last, lineage);
      return;
    }
    // From being queued to this attempt (retries included, as Lambda counts it).
    this.metrics.lambda(
      "AsyncEventAge",
      ev.function_name,
      ev.qualifier ?? undefined,
      Date.now() - ev.enqueued_at,
      "Milliseconds",
    );
    let res: InvokeResponse;
    try {
      res = await this.frontend.invoke({
        ref,
        payload: ev.payload,
        region: ev.region,
        requestId: ev.request_id,
        ...(lineage ? { lineage } : {}),
        // Checked when it was accepted.
        payloadIsJson: true,
        maxPayloadBytes: Math.max(
          this.options.limits.asyncPayloadBytes,
          this.options.limits.syncPayloadBytes,
        ),
      });
    } catch (err) {
      slotFree();
      if (scheduler && (await this.schedulerUndelivered(ev, scheduler, err))) return;
      if (err instanceof LambdaError && err.type === "ResourceNotFoundException") {
        this.log(`async: dropped event ${ev.request_id}: ${err.message}`);
        await this.complete(ev, [], { dropped: 1 });
        return;
      }
      // Throttles and platform errors: back off, without counting an attempt, until the event ages out.
      if (!(err instanceof LambdaError) || err.statusCode >= 500) {
        this.log(
          `async: event ${ev.request_id} for ${ev.function_name} hit a platform error: ${errText(err)}`,
        );
      }
      const next = Math.min(Date.now() + backoffMs(ev.backoffs, BACKOFF_MIN_MS, BACKOFF_MAX_MS), deadline);
      await this.reschedule(ev, { nextRunAt: next, backoffs: ev.backoffs + 1 }, { throttles: 1 });
      return;
    }
    slotFree();
    const attempts = ev.attempts + 1;
    // The chain as of this run: what the records it leads to carry on (see traceAttributes).
    const ranLineage = nextLineage(lineage, ev.function_name);
    const result: AttemptResult = {
      statusCode: 200,
      executedVersion: res.executedVersion,
      ...(res.functionError ? { functionError: res.functionError } : {}),
      payload: res.payload.toString("utf8"),
    };
    if (!res.functionError) {
      const followUps: NewEvent[] = [];
      if (settings.onSuccess) {
        followUps.push(
          this.recordDelivery(ev, ref, settings.onSuccess, "Success", attempts, result, ranLineage),
        );
      }
      await this.complete(ev, followUps, { succeeded: 1 });
      return;
    }
    if (attempts <= settings.maximumRetryAttempts) {
      const next = Math.min(Date.now() + retryDelayMs(attempts, this.options.asyncRetryDelaysMs), deadline);
      await this.reschedule(
        ev,
        {
          nextRunAt: next,
          attempts,
          meta: { ...result, ...(lineage ? { lineage } : {}), ...(scheduler ? { scheduler } : {}) },
        },
        { retries: 1 },
      );
      return;
    }
    await this.fail(ev, ref, settings, "RetriesExhausted", attempts, result, ranLineage);
  }

  /**
   * A schedule's tick whose invoke could not be made: retried under the schedule's RetryPolicy, or
   * sent to its dead-letter target with Scheduler's attributes once the attempts or the age run out
   * (at once when the function does not exist). Resolves whether it handled the event.
   */
  private async schedulerUndelivered(ev: QueuedEvent, s: SchedulerDelivery, err: unknown): Promise<boolean> {
    const code = err instanceof LambdaError ? err.type : "ServiceException";
    const retries = ev.backoffs;
    const now = Date.now();
    let exhausted: string | undefined;
    if (code === "ResourceNotFoundException") exhausted = "MaximumRetryAttempts";
    else if (retries >= s.maximumRetryAttempts) exhausted = "MaximumRetryAttempts";
    else if (now >= s.deadline) exhausted = "MaximumEventAgeInSeconds";
    if (exhausted === undefined) {
      const next = Math.min(now + backoffMs(ev.backoffs, BACKOFF_MIN_MS, BACKOFF_MAX_MS), s.deadline);
      await this.reschedule(ev, { nextRunAt: next, backoffs: ev.backoffs + 1 }, { throttles: 1 });
      return true;
    }
    const followUps: NewEvent[] = [];
    if (s.deadLetter) {
      followUps.push({
        kind: "destination",
        requestId: ev.request_id,
        functionName: ev.function_name,
        region: ev.region,
        payload: ev.payload,
        target: s.deadLetter,
        meta: {
          attributes: {
            ...s.attributes,
            ERROR_CODE: code,
            ERROR_MESSAGE: headerSafe(errText(err).slice(0, DLQ_MESSAGE_BYTES)),
            EXHAUSTED_RETRY_CONDITION: exhausted,
            RETRY_ATTEMPTS: String(retries),
          },
        } satisfies DeliveryMeta,
      });
    } else {
      this.log(
        `async: schedule tick ${ev.request_id} for ${ev.function_name} dropped (${code}, ${exhausted})`,
      );
    }
    await this.complete(ev, followUps, { dropped: 1 });
    return true;
  }

  private recordDelivery(
    ev: QueuedEvent,
    ref: FunctionRef,
    target: string,
    condition: Condition,
    attempts: number,
    last: AttemptResult | undefined,
    lineage: Lineage | undefined,
  ): NewEvent {
    const record = invocationRecord({
      requestId: ev.request_id,
      functionArn: functionArn(ev.region, ref.name, ref.qualifier ?? LATEST),
      condition,
      approximateInvokeCount: attempts,
      requestPayload: ev.payload,
      ...(last ? { last } : {}),
    });
    return {
      kind: "destination",
      requestId: ev.request_id,
      functionName: ev.function_name,
      region: ev.region,
      payload: Buffer.from(JSON.stringify(record)),
      target,
      meta: { attributes: traceAttributes(lineage) } satisfies DeliveryMeta,
    };
  }

  /** The event failed for good: on-failure destination and dead-letter target. */
  private async fail(
    ev: QueuedEvent,
    ref: FunctionRef,
    settings: EventInvokeSettings,
    condition: Condition,
    attempts: number,
    last: AttemptResult | undefined,
    lineage: Lineage | undefined,
  ): Promise<void> {
    const followUps: NewEvent[] = [];
    if (settings.onFailure) {
      followUps.push(this.recordDelivery(ev, ref, settings.onFailure, condition, attempts, last, lineage));
    }
    const dlq = await this.deadLetterTarget(ref, ev.region);
    if (dlq) {
      const message = last?.payload ?? `Event dropped: ${condition}`;
      followUps.push({
        kind: "destination",
        requestId: ev.request_id,
        functionName: ev.function_name,
        region: ev.region,
        payload: ev.payload.length > 0 ? ev.payload : Buffer.from("{}"),
        target: dlq,
        meta: {
          attributes: {
            ...traceAttributes(lineage),
            "Lambent-Request-Id": ev.request_id,
            "Lambent-Error-Code": String(last?.statusCode ?? 0),
            "Lambent-Error-Message": headerSafe(message.slice(0, DLQ_MESSAGE_BYTES)),
            "Lambent-Condition": condition,
          },
        } satisfies DeliveryMeta,
      });
    }
    if (!settings.onFailure && !dlq) {
      this.log(`async: event ${ev.request_id} for ${ev.function_name} dropped (${condition})`);
    }
    await this.complete(ev, followUps, condition === "EventAgeExceeded" ? { expired: 1 } : { failed: 1 });
  }

  private async deadLetterTarget(ref: FunctionRef, region: string): Promise<string | undefined> {
    try {
      const fn = await this.frontend.resolve(ref, region);
      return fn.config.DeadLetterTargetArn || undefined;
    } catch {
      return undefined;
    }
  }

  /** Deliver one record (or dead letter) to its target; retry with backoff for up to 6 hours. */
  private async deliver(ev: QueuedEvent, slotFree: () => void): Promise<void> {
    const target = ev.target ?? "";
    const meta = ev.meta ? deliveryMetaColumn(ev.meta) : {};
    try {
      await this.destinations.open(target).deliver({ body: ev.payload, attributes: meta.attributes ?? {} });
    } catch (err) {
      slotFree();
      // A target the egress policy refuses stays refused: a failed delivery, not retried.
      const refused = err instanceof EgressRefused;
      const permanent = refused || (err instanceof DeliveryError && err.permanent);
      const next = Date.now() + backoffMs(ev.attempts, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
      if (permanent || next - ev.enqueued_at > DELIVERY_MAX_AGE_MS) {
        this.log(
          `async: giving up delivering ${ev.request_id} (${ev.function_name}) to ${redact(target)}: ${refused ? "refused: " : ""}${errText(err)}`,
        );
        await this.complete(ev, [], { delivery_failures: 1 });
      } else {
        this.log(
          `async: delivery of ${ev.request_id} (${ev.function_name}) to ${redact(target)} failed: ${errText(err)}`,
        );
        await this.reschedule(ev, { nextRunAt: next, attempts: ev.attempts + 1 }, { delivery_failures: 1 });
      }
      return;
    }
    slotFree();
    await this.complete(ev, [], { delivered: 1 });
  }
}

/** This server's stable lease owner id, kept in its data dir (only one server runs per data dir). */
function nodeId(dataDir: string): string {
  const file = join(dataDir, "node-id");
  if (existsSync(file)) {
    const id = readFileSync(file, "utf8").trim();
    if (id) return id;
  }
  const id = randomUUID();
  writeFileSync(file, `${id}\n`);
  return id;
}

/** A delivery to a dead-letter target (fail() gives those, and only those, a Lambent-Condition attribute). */
function isDeadLetter(ev: QueuedEvent): boolean {
  if (ev.kind !== "destination" || !ev.meta) return false;
  return deliveryMetaColumn(ev.meta).attributes?.["Lambent-Condition"] !== undefined;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function headerSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, " ");
}
