/**
 * Fires schedules: each due tick becomes ONE async invoke in the durable
 * queue. A due schedule row is claimed (`FOR UPDATE SKIP LOCKED` on
 * PostgreSQL; SQLite has one server), its due ticks are enqueued and its
 * next_tick_at advanced in the SAME transaction, guarded by the tick it read —
 * so across restarts and several servers every tick is enqueued exactly once.
 * The event's request id is derived from the schedule ARN and the tick (the
 * tick's idempotency key, also `<aws.scheduler.execution-id>`).
 *
 * Ticks missed while no server ran fire late when they are younger than the
 * target's MaximumEventAgeInSeconds; older ones are counted as dropped. A tick
 * whose function does not exist goes to the schedule's dead-letter target
 * (when it has one) and is counted as dropped. Each enqueued tick carries its
 * target's RetryPolicy and DeadLetterConfig (async/service.ts applies them when
 * the invoke cannot be made: throttled, platform error, function gone).
 */
import { createHash } from "node:crypto";
import type { FunctionRef } from "../control/arn.js";
import {
  nextFire,
  planOf,
  renderInput,
  retryPolicyOf,
  type ScheduleClock,
  type ScheduleService,
  type ScheduleTarget,
  targetFunction,
} from "../control/schedules.js";
import { LambdaError } from "../errors.js";
import { objectColumn } from "../store/columns.js";
import type { Store } from "../store/store.js";
import type { AsyncQueue, NewEvent } from "./event-queue.js";
import type { SchedulerDelivery } from "./service.js";

/** Ticks one schedule fires (or drops) per transaction; a long backlog takes several. */
const TICKS_PER_CLAIM = 200;
/** Schedules looked at per pass. */
const ROWS_PER_PASS = 50;
/** Longest real wait between passes (other servers' schedule changes are seen at least this often). */
const MAX_IDLE_MS = 1000;

export interface SchedulePollerDeps {
  store: Store;
  queue: AsyncQueue;
  schedules: ScheduleService;
  clock: ScheduleClock;
  /** Does the function exist (any qualifier resolves)? */
  functionExists: (ref: FunctionRef, region: string) => Promise<boolean>;
  /** New events are in the queue: wake the async pollers. */
  wakeQueue: () => void;
  log: (message: string) => void;
}

/** The tick's idempotency key as a UUID-shaped request id. */
export function tickRequestId(arn: string, tick: number): string {
  const h = createHash("sha256").update(`${arn}@${tick}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** How soon a poller whose store query failed tries again. */
const STORE_RETRY_MS = 1000;

export class SchedulePoller {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  private again = false;

  constructor(private readonly d: SchedulePollerDeps) {}

  start(): void {
    this.stopped = false;
    this.d.schedules.onChange = () => this.wake();
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Look for due schedules now. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.running = this.pass()
      .catch((err) => this.d.log(`schedules: ${err instanceof Error ? err.message : String(err)}`))
      .then(async () => {
        this.running = null;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          return this.wake();
        }
        // The store unreachable (PostgreSQL restarting): look again in a second.
        const wait = await this.delay().catch((err: unknown) => {
          this.d.log(`schedules: ${err instanceof Error ? err.message : String(err)}`);
          return STORE_RETRY_MS;
        });
        if (!this.stopped) this.timer = setTimeout(() => this.wake(), wait);
      });
  }

  private async delay(): Promise<number> {
    const r = await this.d.store.db
      .selectFrom("schedules")
      .select((eb) => eb.fn.min<number>("next_fire_at").as("due"))
      .where("state", "=", "ENABLED")
      .executeTakeFirst();
    if (r?.due === null || r?.due === undefined) return MAX_IDLE_MS;
    return Math.min(MAX_IDLE_MS, this.d.clock.realDelayUntil(Number(r.due)));
  }

  /** Fire every due schedule once over (each in its own transaction). */
  async pass(): Promise<void> {
    for (;;) {
      const now = this.d.clock.now();
      const due = await this.d.store.db
        .selectFrom("schedules")
        .select(["group_name", "name"])
        .where("state", "=", "ENABLED")
        .where("next_fire_at", "<=", now)
        .orderBy("next_fire_at")
        .limit(ROWS_PER_PASS)
        .execute();
      if (due.length === 0) return;
      let progressed = false;
      for (const s of due) {
        if (this.stopped) return;
        try {
          if (await this.fire(s.group_name, s.name)) progressed = true;
        } catch (err) {
          // One schedule that cannot fire (a store error, a corrupt row) does not hold up the others.
          this.d.log(
            `schedules: ${s.group_name}/${s.name} could not fire: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      }
      // Rows another server holds stay due here; leave them to it until the next pass.
      if (!progressed) return;
    }
  }

  /** Fire one schedule's due ticks. Resolves whether this server fired (or dropped) anything. */
  private async fire(group: string, name: string): Promise<boolean> {
    const peek = await this.d.schedules.find(group, name);
    if (!peek) return false;
    const target = objectColumn("schedules", "target", peek.target) as unknown as ScheduleTarget;
    const fn = targetFunction(target.Arn);
    const ref: FunctionRef | undefined = fn
      ? fn.qualifier
        ? { name: fn.name, qualifier: fn.qualifier }
        : { name: fn.name }
      : undefined;
    // Asked before the transaction (the invoke path checks again when the event runs).
    const exists = ref && fn ? await this.d.functionExists(ref, fn.region) : false;
    let events = 0;
    const done = await this.d.store.db.transaction().execute(async (tx) => {
      const now = this.d.clock.now();
      let q = tx
        .selectFrom("schedules")
        .selectAll()
        .where("group_name", "=", group)
        .where("name", "=", name)
        .where("state", "=", "ENABLED")
        .where("next_fire_at", "<=", now);
      if (this.d.store.engine === "postgres") q = q.forUpdate().skipLocked();
      const row = await q.executeTakeFirst();
      if (!row || row.next_tick_at === null || row.next_fire_at === null) return false;
      const plan = planOf(row);
      const { maximumEventAgeSeconds, maximumRetryAttempts } = retryPolicyOf(target);
      const dlq = target.DeadLetterConfig?.Arn;
      const out: NewEvent[] = [];
      let fired = 0;
      let dropped = 0;
      let tick: number | null = row.next_tick_at;
      let fireAt: number | null = row.next_fire_at;
      for (let i = 0; i < TICKS_PER_CLAIM && tick !== null && fireAt !== null && fireAt <= now; i++) {
        const requestId = tickRequestId(plan.arn, tick);
        const payload = Buffer.from(
          renderInput(target.Input, { arn: plan.arn, tick, executionId: requestId, attempt: 1 }),
        );
        if (now - fireAt > maximumEventAgeSeconds * 1000) {
          dropped++;
        } else if (!exists || !ref || !fn) {
          dropped++;
          if (dlq) {
            out.push({
              kind: "destination",
              requestId,
              functionName: fn?.name ?? target.Arn,
              region: row.region,
              payload,
              target: dlq,
              meta: {
                attributes: {
                  ERROR_CODE: "ResourceNotFoundException",
                  ERROR_MESSAGE: `Function not found: ${target.Arn}`,
                  EXECUTION_ID: requestId,
                  EXHAUSTED_RETRY_CONDITION: "MaximumRetryAttempts",
                  RETRY_ATTEMPTS: String(maximumRetryAttempts),
                  SCHEDULE_ARN: plan.arn,
                  TARGET_ARN: target.Arn,
                },
              },
            });
          }
        } else {
          fired++;
          // The tick's own delivery policy (RetryPolicy, DeadLetterConfig); its age limit counts from
          // when it was due, on this server's real clock.
          const scheduler: SchedulerDelivery = {
            maximumRetryAttempts,
            deadline: Date.now() + Math.max(0, maximumEventAgeSeconds * 1000 - (now - fireAt)),
            ...(dlq ? { deadLetter: dlq } : {}),
            attributes: { EXECUTION_ID: requestId, SCHEDULE_ARN: plan.arn, TARGET_ARN: target.Arn },
          };
          out.push({
            kind: "invoke",
            requestId,
            functionName: ref.name,
            ...(ref.qualifier !== undefined ? { qualifier: ref.qualifier } : {}),
            region: fn.region,
            payload,
            meta: { scheduler },
          });
        }
        const n = nextFire(plan, tick);
        tick = n?.tick ?? null;
        fireAt = n?.fireAt ?? null;
      }
      if (tick === null && row.action_after_completion === "DELETE") {
        const res = await tx
          .deleteFrom("schedules")
          .where("group_name", "=", group)
          .where("name", "=", name)
          .where("next_tick_at", "=", row.next_tick_at)
          .executeTakeFirst();
        if (Number(res.numDeletedRows) !== 1) return false;
      } else {
        const res = await tx
          .updateTable("schedules")
          .set((eb) => ({
            next_tick_at: tick,
            next_fire_at: fireAt,
            fired: eb("fired", "+", fired),
            dropped: eb("dropped", "+", dropped),
          }))
          .where("group_name", "=", group)
          .where("name", "=", name)
          // Guard: the tick this transaction read is still the next one (nobody fired it meanwhile).
          .where("next_tick_at", "=", row.next_tick_at)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) return false;
      }
      await this.d.queue.enqueue(out, tx);
      events = out.length;
      if (dropped > 0 && !dlq) this.d.log(`schedules: ${plan.arn}: ${dropped} tick(s) dropped`);
      return true;
    });
    if (events > 0) this.d.wakeQueue();
    return done;
  }
}

/** A frontend lookup answering whether a function exists (other errors are thrown). */
export async function existsVia(resolve: () => Promise<unknown>): Promise<boolean> {
  try {
    await resolve();
    return true;
  } catch (err) {
    if (err instanceof LambdaError && err.type === "ResourceNotFoundException") return false;
    throw err;
  }
}
