/**
 * EventBridge Scheduler's control plane: schedule groups (`default` always
 * exists) and schedules with Lambda function targets. A schedule row carries
 * its next tick and when that tick fires (the tick plus a deterministic
 * offset inside its flexible time window); `async/schedule-poller.ts` fires
 * due rows. Times in the API are epoch seconds, as Scheduler's REST-JSON sends them.
 */
import { createHash } from "node:crypto";
import { ACCOUNT_ID } from "../config.js";
import { LambdaError, ValidationError } from "../errors.js";
import { stableJson } from "../stable-json.js";
import { objectColumn } from "../store/columns.js";
import type { SchedulesTable } from "../store/schema.js";
import type { Store } from "../store/store.js";
import type { EgressPolicy } from "./egress.js";
import {
  ExpressionError,
  isTimeZone,
  nextTick,
  parseScheduleExpression,
  type ScheduleExpression,
} from "./schedule-expression.js";

export const DEFAULT_GROUP = "default";
const DEFAULT_MAX_EVENT_AGE_SECONDS = 86_400;
const DEFAULT_RETRY_ATTEMPTS = 185;

/** The hash of a create or update request (its ClientToken left out). */
function requestHash(name: string, body: Record<string, unknown>): string {
  const { ClientToken: _t, ...rest } = body;
  return createHash("sha256").update(stableJson({ name, rest })).digest("hex");
}

/** Is `base` (a request just read) the stored row's last request again, under the same ClientToken? */
function sameRequest(
  row: Pick<SchedulesTable, "client_token" | "request_hash">,
  base: Pick<SchedulesTable, "client_token" | "request_hash">,
): boolean {
  return (
    base.client_token !== null &&
    row.client_token === base.client_token &&
    row.request_hash === base.request_hash
  );
}

export const SchedulerNotFound = (m: string) => new LambdaError("ResourceNotFoundException", 404, m);
export const SchedulerConflict = (m: string) => new LambdaError("ConflictException", 409, m);

/** The clock schedules run on: real time, or (tests only) a faster one. */
export interface ScheduleClock {
  now(): number;
  /** Real milliseconds until the clock shows `t` (0 when it already has). */
  realDelayUntil(t: number): number;
}

export const REAL_CLOCK: ScheduleClock = {
  now: () => Date.now(),
  realDelayUntil: (t) => Math.max(0, t - Date.now()),
};

/**
 * A clock that runs `speed` times faster than real time from `anchorMs` (equal to real time there):
 * the same anchor and speed give every server and every restart the same clock. Tests only.
 */
export function fastClock(anchorMs: number, speed: number): ScheduleClock {
  const now = () => anchorMs + (Date.now() - anchorMs) * speed;
  return { now, realDelayUntil: (t) => Math.max(0, Math.ceil((t - now()) / speed)) };
}

export interface ScheduleTarget {
  Arn: string;
  RoleArn: string;
  Input?: string;
  RetryPolicy?: { MaximumEventAgeInSeconds?: number; MaximumRetryAttempts?: number };
  DeadLetterConfig?: { Arn?: string };
}

export interface FlexibleTimeWindow {
  Mode: "OFF" | "FLEXIBLE";
  MaximumWindowInMinutes?: number;
}

const LAMBDA_TARGET_RE =
  /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]+))?$/;

/** The function a Lambda target ARN names. */
export function targetFunction(
  arn: string,
): { region: string; name: string; qualifier?: string } | undefined {
  const m = LAMBDA_TARGET_RE.exec(arn);
  if (!m) return undefined;
  return { region: m[1] as string, name: m[3] as string, ...(m[4] ? { qualifier: m[4] } : {}) };
}

export const scheduleArn = (region: string, group: string, name: string) =>
  `arn:aws:scheduler:${region}:${ACCOUNT_ID}:schedule/${group}/${name}`;
export const groupArn = (region: string, name: string) =>
  `arn:aws:scheduler:${region}:${ACCOUNT_ID}:schedule-group/${name}`;

/** What a schedule row needs to plan its ticks. */
export interface SchedulePlan {
  arn: string;
  expression: ScheduleExpression;
  timezone: string;
  startDate: number | null;
  endDate: number | null;
  /** Where rate() ticks count from: the start date, else when the schedule was last written. */
  anchor: number;
  windowMs: number;
}

export function planOf(row: SchedulesTable): SchedulePlan {
  const flex = objectColumn(
    "schedules",
    "flexible_time_window",
    row.flexible_time_window,
  ) as unknown as FlexibleTimeWindow;
  return {
    arn: scheduleArn(row.region, row.group_name, row.name),
    expression: parseScheduleExpression(row.expression),
    timezone: row.timezone,
    startDate: row.start_date,
    endDate: row.end_date,
    anchor: row.start_date ?? row.last_modified,
    windowMs: flex.Mode === "FLEXIBLE" ? (flex.MaximumWindowInMinutes ?? 0) * 60_000 : 0,
  };
}

/** The tick after `after` and when it fires; undefined when the schedule has no tick left. */
export function nextFire(p: SchedulePlan, after: number): { tick: number; fireAt: number } | undefined {
  const oneTime = p.expression.kind === "at";
  // StartDate and EndDate apply to recurring schedules only.
  const from = !oneTime && p.startDate !== null && p.startDate > after ? p.startDate - 1 : after;
  const tick = nextTick(p.expression, from, p.timezone, p.anchor);
  if (tick === undefined) return undefined;
  if (!oneTime && p.endDate !== null && tick >= p.endDate) return undefined;
  return { tick, fireAt: tick + flexOffset(p.arn, tick, p.windowMs) };
}

/** A deterministic offset in [0, windowMs) for one tick of one schedule (the same on every server). */
function flexOffset(arn: string, tick: number, windowMs: number): number {
  if (windowMs <= 0) return 0;
  const h = createHash("sha256").update(`${arn}\n${tick}`).digest();
  return h.readUIntBE(0, 6) % windowMs;
}

/** The retry settings a schedule's target has (defaults as Scheduler's). */
export function retryPolicyOf(t: ScheduleTarget): {
  maximumEventAgeSeconds: number;
  maximumRetryAttempts: number;
} {
  return {
    maximumEventAgeSeconds: t.RetryPolicy?.MaximumEventAgeInSeconds ?? DEFAULT_MAX_EVENT_AGE_SECONDS,
    maximumRetryAttempts: t.RetryPolicy?.MaximumRetryAttempts ?? DEFAULT_RETRY_ATTEMPTS,
  };
}

type Body = Record<string, unknown>;

const seconds = (ms: number) => ms / 1000;

function dateMember(body: Body, name: string): number | null {
  const v = body[name];
  if (v === undefined || v === null) return null;
  const ms = typeof v === "number" ? v * 1000 : Date.parse(String(v));
  if (!Number.isFinite(ms)) throw ValidationError(`Invalid ${name}: ${String(v)}.`);
  return Math.round(ms);
}

interface ListPage<T> {
  items: T[];
  nextToken?: string;
}

function page<T>(
  all: T[],
  keyOf: (t: T) => string,
  max: number | undefined,
  token: string | undefined,
): ListPage<T> {
  let start = 0;
  if (token !== undefined) {
    let after: string;
    try {
      after = Buffer.from(token, "base64url").toString("utf8");
    } catch {
      throw ValidationError("Invalid NextToken.");
    }
    start = all.findIndex((t) => keyOf(t) > after);
    if (start < 0) start = all.length;
  }
  const size = max ?? 100;
  const items = all.slice(start, start + size);
  const more = start + size < all.length;
  const last = items.at(-1);
  return more && last ? { items, nextToken: Buffer.from(keyOf(last)).toString("base64url") } : { items };
}

export class ScheduleService {
  /** Called after a schedule is written, so the poller can look again. */
  onChange: () => void = () => {};

  constructor(
    private readonly store: Store,
    readonly clock: ScheduleClock,
    /** Where dead-letter URIs may point (checked here, and again at every delivery). */
    private readonly egress?: EgressPolicy,
  ) {}

  private get db() {
    return this.store.db;
  }

  // ---- groups ----

  async createGroup(name: string, region: string, tags: Array<{ Key: string; Value: string }> = []) {
    const now = Date.now();
    const exists = await this.db
      .selectFrom("schedule_groups")
      .select("name")
      .where("name", "=", name)
      .executeTakeFirst();
    if (exists) throw SchedulerConflict(`Schedule group ${name} already exists.`);
    await this.db
      .insertInto("schedule_groups")
      .values({ name, created_at: now, last_modified: now, tags: JSON.stringify(tagMap(tags)) })
      .execute();
    return { ScheduleGroupArn: groupArn(region, name) };
  }

  private async groupRow(name: string) {
    const row = await this.db
      .selectFrom("schedule_groups")
      .selectAll()
      .where("name", "=", name)
      .executeTakeFirst();
    if (!row) throw SchedulerNotFound(`Schedule group ${name} does not exist.`);
    return row;
  }

  async getGroup(name: string, region: string) {
    return groupView(await this.groupRow(name), region);
  }

  async deleteGroup(name: string) {
    if (name === DEFAULT_GROUP) throw ValidationError("The default schedule group cannot be deleted.");
    await this.groupRow(name);
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom("schedules").where("group_name", "=", name).execute();
      await tx.deleteFrom("schedule_groups").where("name", "=", name).execute();
    });
  }

  async listGroups(region: string, opts: { prefix?: string; max?: number; token?: string }) {
    let q = this.db.selectFrom("schedule_groups").selectAll().orderBy("name");
    if (opts.prefix) q = q.where("name", "like", `${escapeLike(opts.prefix)}%`);
    const rows = (await q.execute()).filter((r) => !opts.prefix || r.name.startsWith(opts.prefix));
    const p = page(rows, (r) => r.name, opts.max, opts.token);
    return {
      ScheduleGroups: p.items.map((r) => groupView(r, region)),
      ...(p.nextToken ? { NextToken: p.nextToken } : {}),
    };
  }

  /** Tags live on schedule groups (Scheduler does not tag schedules). */
  async tagsOf(resourceArn: string) {
    const row = await this.groupRow(groupNameOfArn(resourceArn));
    return Object.entries(objectColumn("schedule_groups", "tags", row.tags)).map(([Key, Value]) => ({
      Key,
      Value: String(Value),
    }));
  }

  async tag(resourceArn: string, tags: Array<{ Key: string; Value: string }>) {
    const row = await this.groupRow(groupNameOfArn(resourceArn));
    const merged = { ...objectColumn("schedule_groups", "tags", row.tags), ...tagMap(tags) };
    await this.db
      .updateTable("schedule_groups")
      .set({ tags: JSON.stringify(merged), last_modified: Date.now() })
      .where("name", "=", row.name)
      .execute();
  }

  async untag(resourceArn: string, keys: string[]) {
    const row = await this.groupRow(groupNameOfArn(resourceArn));
    const tags = objectColumn("schedule_groups", "tags", row.tags);
    for (const k of keys) delete tags[k];
    await this.db
      .updateTable("schedule_groups")
      .set({ tags: JSON.stringify(tags), last_modified: Date.now() })
      .where("name", "=", row.name)
      .execute();
  }

  // ---- schedules ----

  /** Check a Create/UpdateSchedule body and turn it into a row (without times and counters). */
  private async rowOf(name: string, region: string, body: Body) {
    const group = (body.GroupName as string | undefined) ?? DEFAULT_GROUP;
    await this.groupRow(group);
    const expression = body.ScheduleExpression as string;
    try {
      parseScheduleExpression(expression);
    } catch (err) {
      if (err instanceof ExpressionError) throw ValidationError(`Invalid Schedule Expression ${expression}.`);
      throw err;
    }
    const timezone = (body.ScheduleExpressionTimezone as string | undefined) ?? "UTC";
    if (!isTimeZone(timezone)) throw ValidationError(`Invalid time zone: ${timezone}.`);
    const flex = body.FlexibleTimeWindow as FlexibleTimeWindow;
    if (flex.Mode === "FLEXIBLE" && flex.MaximumWindowInMinutes === undefined) {
      throw ValidationError(
        "MaximumWindowInMinutes must be provided when FlexibleTimeWindow Mode is FLEXIBLE.",
      );
    }
    if (flex.Mode === "OFF" && flex.MaximumWindowInMinutes !== undefined) {
      throw ValidationError(
        "MaximumWindowInMinutes must not be provided when FlexibleTimeWindow Mode is OFF.",
      );
    }
    const target = body.Target as ScheduleTarget;
    const fn = targetFunction(target.Arn);
    if (!fn) {
      throw ValidationError(
        `Invalid target ARN ${target.Arn}: Lambent schedules invoke Lambda functions only (arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]).`,
      );
    }
    if (target.Input !== undefined) {
      try {
        JSON.parse(renderInput(target.Input, { arn: "", tick: 0, executionId: "", attempt: 1 }));
      } catch {
        throw ValidationError("Target Input must be valid JSON for a Lambda function target.");
      }
    }
    const dlq = target.DeadLetterConfig?.Arn;
    if (dlq) {
      try {
        await this.egress?.checkConfigured(dlq, "The dead-letter queue");
      } catch (err) {
        throw err instanceof LambdaError ? ValidationError(err.message) : err;
      }
    }
    const startDate = dateMember(body, "StartDate");
    const endDate = dateMember(body, "EndDate");
    if (startDate !== null && endDate !== null && endDate <= startDate) {
      throw ValidationError("The EndDate must be after the StartDate.");
    }
    const keep: ScheduleTarget = {
      Arn: target.Arn,
      RoleArn: target.RoleArn,
      ...(target.Input !== undefined ? { Input: target.Input } : {}),
      RetryPolicy: {
        MaximumEventAgeInSeconds: retryPolicyOf(target).maximumEventAgeSeconds,
        MaximumRetryAttempts: retryPolicyOf(target).maximumRetryAttempts,
      },
      ...(target.DeadLetterConfig?.Arn ? { DeadLetterConfig: { Arn: target.DeadLetterConfig.Arn } } : {}),
    };
    return {
      group_name: group,
      name,
      region,
      expression,
      timezone,
      description: (body.Description as string | undefined) ?? null,
      state: (body.State as string | undefined) ?? "ENABLED",
      start_date: startDate,
      end_date: endDate,
      flexible_time_window: JSON.stringify(flex),
      action_after_completion: (body.ActionAfterCompletion as string | undefined) ?? "NONE",
      target: JSON.stringify(keep),
      kms_key_arn: (body.KmsKeyArn as string | undefined) ?? null,
      client_token: (body.ClientToken as string | undefined) ?? null,
      request_hash: requestHash(name, body),
    };
  }

  /** next_tick_at / next_fire_at for a freshly written row. */
  private firstFire(row: SchedulesTable): { next_tick_at: number | null; next_fire_at: number | null } {
    if (row.state !== "ENABLED") return { next_tick_at: null, next_fire_at: null };
    const n = nextFire(planOf(row), this.clock.now());
    return n ? { next_tick_at: n.tick, next_fire_at: n.fireAt } : { next_tick_at: null, next_fire_at: null };
  }

  async create(name: string, region: string, body: Body) {
    const base = await this.rowOf(name, region, body);
    const existing = await this.find(base.group_name, name);
    // The same request again with its ClientToken (an SDK retry): the schedule it made, unchanged.
    if (existing && sameRequest(existing, base))
      return { ScheduleArn: scheduleArn(existing.region, base.group_name, name) };
    if (existing) throw SchedulerConflict(`Schedule ${name} already exists.`);
    const now = this.clock.now();
    const row: SchedulesTable = {
      ...base,
      created_at: now,
      last_modified: now,
      next_tick_at: null,
      next_fire_at: null,
      fired: 0,
      dropped: 0,
    };
    Object.assign(row, this.firstFire(row));
    try {
      await this.db.insertInto("schedules").values(row).execute();
    } catch (err) {
      if (await this.find(base.group_name, name)) throw SchedulerConflict(`Schedule ${name} already exists.`);
      throw err;
    }
    this.onChange();
    return { ScheduleArn: scheduleArn(region, base.group_name, name) };
  }

  async update(name: string, region: string, body: Body) {
    const base = await this.rowOf(name, region, body);
    const existing = await this.find(base.group_name, name);
    if (!existing) throw SchedulerNotFound(`Schedule ${name} does not exist.`);
    // A repeated update (same ClientToken, same request) changes nothing: a rate() keeps its ticks.
    if (sameRequest(existing, base))
      return { ScheduleArn: scheduleArn(existing.region, base.group_name, name) };
    const now = this.clock.now();
    const row: SchedulesTable = { ...existing, ...base, region: existing.region, last_modified: now };
    Object.assign(row, this.firstFire(row));
    await this.db
      .updateTable("schedules")
      .set({
        ...base,
        region: existing.region,
        last_modified: now,
        next_tick_at: row.next_tick_at,
        next_fire_at: row.next_fire_at,
      })
      .where("group_name", "=", base.group_name)
      .where("name", "=", name)
      .execute();
    this.onChange();
    return { ScheduleArn: scheduleArn(existing.region, base.group_name, name) };
  }

  async find(group: string, name: string): Promise<SchedulesTable | undefined> {
    return this.db
      .selectFrom("schedules")
      .selectAll()
      .where("group_name", "=", group)
      .where("name", "=", name)
      .executeTakeFirst();
  }

  private async mustFind(group: string | undefined, name: string): Promise<SchedulesTable> {
    const g = group ?? DEFAULT_GROUP;
    const row = await this.find(g, name);
    if (!row) {
      await this.groupRow(g);
      throw SchedulerNotFound(`Schedule ${name} does not exist.`);
    }
    return row;
  }

  async get(name: string, group: string | undefined) {
    return scheduleView(await this.mustFind(group, name));
  }

  async delete(name: string, group: string | undefined) {
    const row = await this.mustFind(group, name);
    await this.db
      .deleteFrom("schedules")
      .where("group_name", "=", row.group_name)
      .where("name", "=", row.name)
      .execute();
    this.onChange();
  }

  async list(opts: { group?: string; prefix?: string; state?: string; max?: number; token?: string }) {
    if (opts.group !== undefined) await this.groupRow(opts.group);
    let q = this.db.selectFrom("schedules").selectAll().orderBy("group_name").orderBy("name");
    if (opts.group !== undefined) q = q.where("group_name", "=", opts.group);
    if (opts.state !== undefined) q = q.where("state", "=", opts.state);
    const rows = (await q.execute()).filter((r) => !opts.prefix || r.name.startsWith(opts.prefix));
    const p = page(rows, (r) => `${r.group_name}/${r.name}`, opts.max, opts.token);
    return {
      Schedules: p.items.map((r) => ({
        Arn: scheduleArn(r.region, r.group_name, r.name),
        CreationDate: seconds(r.created_at),
        GroupName: r.group_name,
        LastModificationDate: seconds(r.last_modified),
        Name: r.name,
        State: r.state,
        Target: { Arn: (objectColumn("schedules", "target", r.target) as unknown as ScheduleTarget).Arn },
      })),
      ...(p.nextToken ? { NextToken: p.nextToken } : {}),
    };
  }

  /** How many ticks a schedule fired and dropped (Lambent's own view, for tests and status). */
  async counts(group: string, name: string): Promise<{ fired: number; dropped: number } | undefined> {
    const r = await this.find(group, name);
    return r ? { fired: Number(r.fired), dropped: Number(r.dropped) } : undefined;
  }
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function tagMap(tags: Array<{ Key: string; Value: string }>): Record<string, string> {
  return Object.fromEntries(tags.map((t) => [t.Key, t.Value]));
}

function groupNameOfArn(arn: string): string {
  const m = /^arn:aws[a-zA-Z-]*:scheduler:[a-z0-9-]+:\d{12}:schedule-group\/([0-9a-zA-Z-_.]+)$/.exec(arn);
  if (!m) throw SchedulerNotFound(`Resource ${arn} does not exist.`);
  return m[1] as string;
}

function groupView(r: { name: string; created_at: number; last_modified: number }, region: string) {
  return {
    Arn: groupArn(region, r.name),
    CreationDate: seconds(r.created_at),
    LastModificationDate: seconds(r.last_modified),
    Name: r.name,
    State: "ACTIVE",
  };
}

function scheduleView(r: SchedulesTable) {
  return {
    ActionAfterCompletion: r.action_after_completion,
    Arn: scheduleArn(r.region, r.group_name, r.name),
    CreationDate: seconds(r.created_at),
    ...(r.description !== null ? { Description: r.description } : {}),
    ...(r.end_date !== null ? { EndDate: seconds(r.end_date) } : {}),
    FlexibleTimeWindow: JSON.parse(r.flexible_time_window),
    GroupName: r.group_name,
    ...(r.kms_key_arn !== null ? { KmsKeyArn: r.kms_key_arn } : {}),
    LastModificationDate: seconds(r.last_modified),
    Name: r.name,
    ScheduleExpression: r.expression,
    ScheduleExpressionTimezone: r.timezone,
    ...(r.start_date !== null ? { StartDate: seconds(r.start_date) } : {}),
    State: r.state,
    Target: JSON.parse(r.target),
  };
}

/** A target's Input with Scheduler's context attributes filled in; `{}` when it has none. */
export function renderInput(
  input: string | undefined,
  ctx: { arn: string; tick: number; executionId: string; attempt: number },
): string {
  if (input === undefined) return "{}";
  return input
    .replaceAll("<aws.scheduler.schedule-arn>", ctx.arn)
    .replaceAll("<aws.scheduler.scheduled-time>", new Date(ctx.tick).toISOString().replace(/\.\d{3}Z$/, "Z"))
    .replaceAll("<aws.scheduler.execution-id>", ctx.executionId)
    .replaceAll("<aws.scheduler.attempt-number>", String(ctx.attempt));
}
