/**
 * CloudWatch Logs' operations over Lambent's log store: groups (`log_groups`), streams
 * (`log_streams`) and events (`log_events`), as the Logs API (2014-03-28) shows them. Inputs arrive
 * checked against the model (api/routes/cloudwatch-logs.ts); what the model cannot say (one of
 * `logGroupName` / `logGroupIdentifier`, retention values, tokens, PutLogEvents' batch rules) is
 * checked here, with AWS's error types and texts.
 *
 * Events are read in (timestamp, id) order; every token is a position in that order, so pages
 * never shift when events are written meanwhile.
 */
import { sql } from "kysely";
import { ACCOUNT_ID } from "../config.js";
import { LambdaError } from "../errors.js";
import type { Store } from "../store/store.js";
import { compileFilterPattern, FilterPatternError } from "./filter-pattern.js";
import type { LogSink } from "./log-sink.js";

// CloudWatch Logs answers every client fault with 400.
export const InvalidParameter = (m: string) => new LambdaError("InvalidParameterException", 400, m);
export const ResourceNotFound = (m: string) => new LambdaError("ResourceNotFoundException", 400, m);
export const ResourceAlreadyExists = (m: string) => new LambdaError("ResourceAlreadyExistsException", 400, m);

const GROUP_NOT_FOUND = "The specified log group does not exist.";
const STREAM_NOT_FOUND = "The specified log stream does not exist.";
const INVALID_TOKEN = "The specified nextToken is invalid.";

/** PutRetentionPolicy's allowed values (the model's Days documentation). */
export const RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/** Lambda-sized response caps: 1 MB of events, 10,000 events. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
const MAX_EVENTS = 10_000;
/**
 * FilterLogEvents examines at most this many events, for at most this long, per call, then answers
 * with a nextToken (maybe with no events, as AWS may): one call never holds the event loop for long.
 */
const FILTER_SCAN_BUDGET = 50_000;
const FILTER_TIME_BUDGET_MS = 500;
const SCAN_CHUNK = 1000;
/** PutLogEvents: a batch's size (each message's UTF-8 bytes + 26) and span, and accepted ages. */
const MAX_BATCH_BYTES = 1_048_576;
const EVENT_OVERHEAD = 26;
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

type Input = Record<string, unknown>;

interface Position {
  timestamp: number;
  id: number;
}

function encodeToken(kind: string, p: Position): string {
  return `${kind}/${p.timestamp}/${p.id}`;
}

function decodeToken(token: string, kinds: string[]): { kind: string; at: Position } {
  const m = /^([a-z])\/(-?\d{1,16})\/(\d{1,16})$/.exec(token);
  if (!m || !kinds.includes(m[1] as string)) throw InvalidParameter(INVALID_TOKEN);
  return { kind: m[1] as string, at: { timestamp: Number(m[2]), id: Number(m[3]) } };
}

/** A keyset marker for names (and an optional number before them), opaque to clients. */
function encodeMarker(parts: Array<string | number>): string {
  return Buffer.from(JSON.stringify(parts)).toString("base64url");
}

function decodeMarker(token: string): Array<string | number> {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(v) && v.every((x) => typeof x === "string" || typeof x === "number")) return v;
  } catch {}
  throw InvalidParameter(INVALID_TOKEN);
}

const bytesOf = (s: string) => Buffer.byteLength(s, "utf8");
const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const num = (v: unknown) => (typeof v === "number" ? v : undefined);

export interface CloudWatchLogsOptions {
  /** The server's --log-retention-days (0: keep forever): what groups without their own show. */
  defaultRetentionDays: number;
  now?: () => number;
  /**
   * Each event PutLogEvents stores, for its embedded metric format records (CloudWatch Logs reads
   * them whether or not the request says `x-amzn-logs-format: json/emf`).
   */
  emf?: (source: string, message: string) => void;
}

export class CloudWatchLogs {
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly sink: LogSink,
    private readonly options: CloudWatchLogsOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  groupArn(region: string, group: string): string {
    return `arn:aws:logs:${region}:${ACCOUNT_ID}:log-group:${group}`;
  }

  /** `logGroupName`, or `logGroupIdentifier` (a name or an ARN): exactly one. */
  groupOf(input: Input, required = true): string | undefined {
    const name = str(input.logGroupName);
    const id = str(input.logGroupIdentifier);
    if (name !== undefined && id !== undefined) {
      throw InvalidParameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.");
    }
    if (id !== undefined) return groupFromIdentifier(id);
    if (name === undefined && required) {
      throw InvalidParameter("Either LogGroupName or LogGroupIdentifier must be specified.");
    }
    return name;
  }

  private async groupRow(group: string) {
    const row = await this.store.db
      .selectFrom("log_groups")
      .selectAll()
      .where("group_name", "=", group)
      .executeTakeFirst();
    if (!row) throw ResourceNotFound(GROUP_NOT_FOUND);
    return row;
  }

  private async assertStream(group: string, stream: string) {
    const row = await this.store.db
      .selectFrom("log_streams")
      .selectAll()
      .where("group_name", "=", group)
      .where("stream_name", "=", stream)
      .executeTakeFirst();
    if (!row) throw ResourceNotFound(STREAM_NOT_FOUND);
    return row;
  }

  // ---------- groups ----------

  async createLogGroup(input: Input): Promise<Input> {
    const group = input.logGroupName as string;
    const tags = (input.tags as Record<string, string> | undefined) ?? null;
    const result = await this.store.db
      .insertInto("log_groups")
      .values({
        group_name: group,
        retention_days: null,
        created_at: this.now(),
        tags: tags ? JSON.stringify(tags) : null,
      })
      .onConflict((oc) => oc.column("group_name").doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) {
      throw ResourceAlreadyExists("The specified log group already exists");
    }
    return {};
  }

  async deleteLogGroup(input: Input): Promise<Input> {
    const group = input.logGroupName as string;
    await this.groupRow(group);
    await this.sink.flush();
    await this.store.db.transaction().execute(async (tx) => {
      await tx.deleteFrom("log_events").where("group_name", "=", group).execute();
      await tx.deleteFrom("log_streams").where("group_name", "=", group).execute();
      await tx.deleteFrom("log_groups").where("group_name", "=", group).execute();
    });
    this.sink.forget(group);
    return {};
  }

  async describeLogGroups(input: Input, region: string): Promise<Input> {
    const prefix = str(input.logGroupNamePrefix);
    const pattern = str(input.logGroupNamePattern);
    const identifiers = input.logGroupIdentifiers as string[] | undefined;
    if (prefix !== undefined && pattern !== undefined) {
      throw InvalidParameter(
        "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
      );
    }
    const limit = num(input.limit) ?? 50;
    let q = this.store.db
      .selectFrom("log_groups")
      .selectAll()
      .orderBy("group_name")
      .limit(limit + 1);
    if (prefix !== undefined)
      q = q.where("group_name", ">=", prefix).where("group_name", "<", `${prefix}\u{10ffff}`);
    if (identifiers) q = q.where("group_name", "in", identifiers.map(groupFromIdentifier));
    const token = str(input.nextToken);
    if (token !== undefined) {
      const [after] = decodeMarker(token);
      if (typeof after !== "string") throw InvalidParameter(INVALID_TOKEN);
      q = q.where("group_name", ">", after);
    }
    if (pattern !== undefined) {
      // A case-insensitive substring of the name.
      const like = `%${pattern.toLowerCase().replace(/[\\%_]/g, "\\$&")}%`;
      q = q.where(sql<boolean>`lower(group_name) like ${like} escape '\\'`);
    }
    const rows = await q.execute();
    const page = rows.slice(0, limit);
    const more = rows.length > limit;
    const stored = await this.storedBytes(page.map((r) => r.group_name));
    const out: Input = {
      logGroups: page.map((r) => {
        const retention = r.retention_days ?? this.options.defaultRetentionDays;
        const arn = this.groupArn(region, r.group_name);
        return {
          logGroupName: r.group_name,
          creationTime: r.created_at,
          ...(retention > 0 ? { retentionInDays: retention } : {}),
          metricFilterCount: 0,
          arn: `${arn}:*`,
          storedBytes: stored.get(r.group_name) ?? 0,
          logGroupClass: "STANDARD",
          logGroupArn: arn,
        };
      }),
    };
    if (more && page.length > 0)
      out.nextToken = encodeMarker([(page[page.length - 1] as { group_name: string }).group_name]);
    return out;
  }

  private async storedBytes(groups: string[]): Promise<Map<string, number>> {
    if (groups.length === 0) return new Map();
    const rows = await this.store.db
      .selectFrom("log_events")
      .select((eb) => ["group_name", eb.fn.sum<number>(eb.fn("length", ["message"])).as("bytes")])
      .where("group_name", "in", groups)
      .groupBy("group_name")
      .execute();
    return new Map(rows.map((r) => [r.group_name, Number(r.bytes)]));
  }

  async putRetentionPolicy(input: Input): Promise<Input> {
    const group = input.logGroupName as string;
    const days = input.retentionInDays as number;
    if (!RETENTION_DAYS.includes(days)) {
      throw InvalidParameter(
        `1 validation error detected: Value '${days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [${RETENTION_DAYS.join(", ")}]`,
      );
    }
    await this.groupRow(group);
    await this.sink.setRetention(group, days);
    return {};
  }

  async deleteRetentionPolicy(input: Input): Promise<Input> {
    const group = input.logGroupName as string;
    await this.groupRow(group);
    // Never expire (0), as AWS's groups without a policy; not the server's default.
    await this.sink.setRetention(group, 0);
    return {};
  }

  // ---------- tags ----------

  private async tagsOf(group: string): Promise<Record<string, string>> {
    const row = await this.groupRow(group);
    if (!row.tags) return {};
    const v: unknown = JSON.parse(row.tags);
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, string>) : {};
  }

  private async setTags(group: string, tags: Record<string, string>): Promise<void> {
    if (Object.keys(tags).length > 50) {
      throw new LambdaError("TooManyTagsException", 400, "A resource can have no more than 50 tags.");
    }
    await this.store.db
      .updateTable("log_groups")
      .set({ tags: Object.keys(tags).length ? JSON.stringify(tags) : null })
      .where("group_name", "=", group)
      .execute();
  }

  async tagLogGroup(group: string, tags: Record<string, string>): Promise<Input> {
    await this.setTags(group, { ...(await this.tagsOf(group)), ...tags });
    return {};
  }

  async untagLogGroup(group: string, keys: string[]): Promise<Input> {
    const tags = await this.tagsOf(group);
    for (const k of keys) delete tags[k];
    await this.setTags(group, tags);
    return {};
  }

  async listTags(group: string): Promise<Input> {
    return { tags: await this.tagsOf(group) };
  }

  /** The group a tagging ARN names (`arn:aws:logs:<region>:<account>:log-group:<name>[:*]`). */
  groupOfArn(arn: string): string {
    const m = /^arn:aws[a-z-]*:logs:[a-z0-9-]*:(\d{12}):log-group:([^:]+)(?::\*)?$/.exec(arn);
    if (!m || m[1] !== ACCOUNT_ID) {
      throw InvalidParameter(`Invalid resource ARN: ${arn}. Lambent tags log groups only.`);
    }
    return m[2] as string;
  }

  // ---------- streams ----------

  async createLogStream(input: Input): Promise<Input> {
    const group = input.logGroupName as string;
    const stream = input.logStreamName as string;
    await this.groupRow(group);
    const now = this.now();
    const result = await this.store.db
      .insertInto("log_streams")
      .values({
        group_name: group,
        stream_name: stream,
        created_at: now,
        last_event_at: now,
        first_event_at: null,
        last_ingestion_at: null,
      })
      .onConflict((oc) => oc.columns(["group_name", "stream_name"]).doNothing())
      .executeTakeFirst();
    if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) {
      throw ResourceAlreadyExists("The specified log stream already exists");
    }
    return {};
  }

  async deleteLogStream(input: Input): Promise<Input> {
    const group = input.logGroupName as string;
    const stream = input.logStreamName as string;
    await this.groupRow(group);
    await this.assertStream(group, stream);
    await this.sink.flush();
    await this.store.db.transaction().execute(async (tx) => {
      await tx
        .deleteFrom("log_events")
        .where("group_name", "=", group)
        .where("stream_name", "=", stream)
        .execute();
      await tx
        .deleteFrom("log_streams")
        .where("group_name", "=", group)
        .where("stream_name", "=", stream)
        .execute();
    });
    return {};
  }

  async describeLogStreams(input: Input, region: string): Promise<Input> {
    const group = this.groupOf(input) as string;
    await this.groupRow(group);
    await this.sink.flush();
    const prefix = str(input.logStreamNamePrefix);
    const byTime = input.orderBy === "LastEventTime";
    const descending = input.descending === true;
    if (byTime && prefix !== undefined) {
      throw InvalidParameter("Cannot order by LastEventTime with a logStreamNamePrefix.");
    }
    const limit = num(input.limit) ?? 50;
    const dir = descending ? "desc" : "asc";
    let q = this.store.db
      .selectFrom("log_streams")
      .selectAll()
      .where("group_name", "=", group)
      .limit(limit + 1);
    if (prefix !== undefined)
      q = q.where("stream_name", ">=", prefix).where("stream_name", "<", `${prefix}\u{10ffff}`);
    q = byTime ? q.orderBy("last_event_at", dir).orderBy("stream_name", dir) : q.orderBy("stream_name", dir);
    const token = str(input.nextToken);
    if (token !== undefined) {
      const marker = decodeMarker(token);
      const cmp = descending ? "<" : ">";
      if (byTime) {
        const [t, name] = marker;
        if (typeof t !== "number" || typeof name !== "string") throw InvalidParameter(INVALID_TOKEN);
        q = q.where((eb) =>
          eb.or([
            eb("last_event_at", cmp, t),
            eb.and([eb("last_event_at", "=", t), eb("stream_name", cmp, name)]),
          ]),
        );
      } else {
        const [name] = marker;
        if (typeof name !== "string") throw InvalidParameter(INVALID_TOKEN);
        q = q.where("stream_name", cmp, name);
      }
    }
    const rows = await q.execute();
    const page = rows.slice(0, limit);
    const out: Input = {
      logStreams: page.map((r) => ({
        logStreamName: r.stream_name,
        creationTime: r.created_at,
        ...(r.first_event_at !== null
          ? { firstEventTimestamp: r.first_event_at, lastEventTimestamp: r.last_event_at }
          : {}),
        ...(r.last_ingestion_at !== null ? { lastIngestionTime: r.last_ingestion_at } : {}),
        arn: `${this.groupArn(region, group)}:log-stream:${r.stream_name}`,
        storedBytes: 0,
      })),
    };
    const last = page[page.length - 1];
    if (rows.length > limit && last) {
      out.nextToken = encodeMarker(byTime ? [last.last_event_at, last.stream_name] : [last.stream_name]);
    }
    return out;
  }

  // ---------- events ----------

  async putLogEvents(input: Input): Promise<Input> {
    const group = input.logGroupName as string;
    const stream = input.logStreamName as string;
    const events = input.logEvents as Array<{ timestamp: number; message: string }>;
    let bytes = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as { timestamp: number; message: string };
      bytes += bytesOf(e.message) + EVENT_OVERHEAD;
      if (i > 0 && e.timestamp < (events[i - 1] as { timestamp: number }).timestamp) {
        throw InvalidParameter("Log events in a single PutLogEvents request must be in chronological order.");
      }
    }
    if (bytes > MAX_BATCH_BYTES) {
      throw InvalidParameter(`Upload too large: ${bytes} bytes exceeds limit of ${MAX_BATCH_BYTES}`);
    }
    const first = events[0] as { timestamp: number };
    if ((events[events.length - 1] as { timestamp: number }).timestamp - first.timestamp > DAY) {
      throw InvalidParameter(
        "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
      );
    }
    const row = await this.groupRow(group);
    await this.assertStream(group, stream);
    const now = this.now();
    const retention = row.retention_days ?? this.options.defaultRetentionDays;
    const rejected: Record<string, number> = {};
    let start = 0;
    let end = events.length;
    // Too old: more than 14 days before now; expired: older than the group's retention.
    while (start < end && (events[start] as { timestamp: number }).timestamp < now - 14 * DAY) start++;
    if (start > 0) rejected.tooOldLogEventEndIndex = start;
    let expired = start;
    if (retention > 0) {
      while (expired < end && (events[expired] as { timestamp: number }).timestamp < now - retention * DAY)
        expired++;
      if (expired > start) rejected.expiredLogEventEndIndex = expired;
    }
    // Too new: more than 2 hours ahead.
    while (end > expired && (events[end - 1] as { timestamp: number }).timestamp > now + 2 * HOUR) end--;
    if (end < events.length) rejected.tooNewLogEventStartIndex = end;
    for (const e of events.slice(expired, end)) {
      this.sink.write(group, stream, e.message, e.timestamp);
      this.options.emf?.(`log group ${group}`, e.message);
    }
    await this.sink.flush();
    return {
      nextSequenceToken: String(now).padStart(56, "0"),
      ...(Object.keys(rejected).length ? { rejectedLogEventsInfo: rejected } : {}),
    };
  }

  async getLogEvents(input: Input): Promise<Input> {
    const group = this.groupOf(input) as string;
    const stream = input.logStreamName as string;
    await this.groupRow(group);
    await this.assertStream(group, stream);
    await this.sink.flush();
    const limit = num(input.limit) ?? MAX_EVENTS;
    const startTime = num(input.startTime);
    const endTime = num(input.endTime);
    const token = str(input.nextToken);
    const parsed = token !== undefined ? decodeToken(token, ["f", "b"]) : undefined;
    // Forward from a position (or the head), or backward from one (or the tail).
    const forward = parsed ? parsed.kind === "f" : input.startFromHead === true;
    let q = this.store.db
      .selectFrom("log_events")
      .select(["id", "timestamp", "message", "ingestion_time"])
      .where("group_name", "=", group)
      .where("stream_name", "=", stream)
      .limit(limit);
    if (startTime !== undefined) q = q.where("timestamp", ">=", startTime);
    if (endTime !== undefined) q = q.where("timestamp", "<", endTime);
    if (parsed) {
      const { timestamp: t, id } = parsed.at;
      const cmp = forward ? ">" : "<";
      q = q.where((eb) =>
        eb.or([eb("timestamp", cmp, t), eb.and([eb("timestamp", "=", t), eb("id", cmp, id)])]),
      );
    }
    q = forward
      ? q.orderBy("timestamp", "asc").orderBy("id", "asc")
      : q.orderBy("timestamp", "desc").orderBy("id", "desc");
    let rows = await q.execute();
    // Stay within 1 MB: from the side the reader moves away from.
    let size = 0;
    let keep = 0;
    for (const r of rows) {
      size += bytesOf(r.message) + EVENT_OVERHEAD;
      if (size > MAX_RESPONSE_BYTES && keep > 0) break;
      keep++;
    }
    rows = rows.slice(0, keep);
    if (!forward) rows.reverse();
    const firstRow = rows[0];
    const lastRow = rows[rows.length - 1];
    // With nothing returned the token in hand is the answer (the end of the stream).
    const here: Position =
      parsed?.at ?? (forward ? { timestamp: -1, id: 0 } : { timestamp: Number.MAX_SAFE_INTEGER, id: 0 });
    const nextForwardToken = encodeToken(
      "f",
      lastRow ? { timestamp: lastRow.timestamp, id: lastRow.id } : here,
    );
    const nextBackwardToken = encodeToken(
      "b",
      firstRow ? { timestamp: firstRow.timestamp, id: firstRow.id } : here,
    );
    return {
      events: rows.map((r) => ({
        timestamp: r.timestamp,
        message: r.message,
        ingestionTime: r.ingestion_time,
      })),
      nextForwardToken,
      nextBackwardToken,
    };
  }

  async filterLogEvents(input: Input): Promise<Input> {
    const group = this.groupOf(input) as string;
    await this.groupRow(group);
    const names = input.logStreamNames as string[] | undefined;
    const prefix = str(input.logStreamNamePrefix);
    if (names !== undefined && prefix !== undefined) {
      throw InvalidParameter("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.");
    }
    let matcher: (m: string) => boolean;
    try {
      matcher = compileFilterPattern(str(input.filterPattern));
    } catch (err) {
      if (err instanceof FilterPatternError) throw InvalidParameter(`Invalid filter pattern: ${err.message}`);
      throw err;
    }
    await this.sink.flush();
    const limit = num(input.limit) ?? MAX_EVENTS;
    const startTime = num(input.startTime);
    const endTime = num(input.endTime);
    const token = str(input.nextToken);
    let at = token !== undefined ? decodeToken(token, ["n"]).at : undefined;
    const events: Input[] = [];
    let size = 0;
    let scanned = 0;
    let exhausted = false;
    let full = false;
    const deadline = performance.now() + FILTER_TIME_BUDGET_MS;
    while (!full && scanned < FILTER_SCAN_BUDGET && performance.now() < deadline) {
      let q = this.store.db
        .selectFrom("log_events")
        .select(["id", "stream_name", "timestamp", "message", "ingestion_time"])
        .where("group_name", "=", group)
        .orderBy("timestamp", "asc")
        .orderBy("id", "asc")
        .limit(SCAN_CHUNK);
      if (startTime !== undefined) q = q.where("timestamp", ">=", startTime);
      if (endTime !== undefined) q = q.where("timestamp", "<=", endTime);
      if (names !== undefined) q = q.where("stream_name", "in", names);
      if (prefix !== undefined)
        q = q.where("stream_name", ">=", prefix).where("stream_name", "<", `${prefix}\u{10ffff}`);
      if (at) {
        const { timestamp: t, id } = at;
        q = q.where((eb) =>
          eb.or([eb("timestamp", ">", t), eb.and([eb("timestamp", "=", t), eb("id", ">", id)])]),
        );
      }
      const rows = await q.execute();
      for (const r of rows) {
        const bytes = bytesOf(r.message) + EVENT_OVERHEAD;
        if (matcher(r.message)) {
          if (events.length >= limit || (size + bytes > MAX_RESPONSE_BYTES && events.length > 0)) {
            full = true;
            break;
          }
          size += bytes;
          events.push({
            logStreamName: r.stream_name,
            timestamp: r.timestamp,
            message: r.message,
            ingestionTime: r.ingestion_time,
            eventId: String(r.id),
          });
        }
        at = { timestamp: r.timestamp, id: r.id };
        scanned++;
        if (scanned % 64 === 0 && performance.now() >= deadline) {
          full = true;
          break;
        }
      }
      if (rows.length < SCAN_CHUNK && !full) {
        exhausted = true;
        break;
      }
    }
    const out: Input = { events, searchedLogStreams: [] };
    if (!exhausted && at) out.nextToken = encodeToken("n", at);
    return out;
  }

  /** Lambent keeps no metric filters: DescribeMetricFilters lists none (of an existing group, if named). */
  async describeMetricFilters(input: Input): Promise<Input> {
    const group = str(input.logGroupName);
    if (group !== undefined) await this.groupRow(group);
    return { metricFilters: [] };
  }

  /** Nor subscription filters: DescribeSubscriptionFilters lists none of an existing group. */
  async describeSubscriptionFilters(input: Input): Promise<Input> {
    await this.groupRow(this.groupOf(input) as string);
    return { subscriptionFilters: [] };
  }

  /** TestMetricFilter: which of the given messages the pattern matches (1-based event numbers). */
  testMetricFilter(input: Input): Input {
    let matcher: (m: string) => boolean;
    try {
      matcher = compileFilterPattern(str(input.filterPattern));
    } catch (err) {
      if (err instanceof FilterPatternError)
        throw InvalidParameter(`Invalid metric filter pattern: ${err.message}`);
      throw err;
    }
    const messages = input.logEventMessages as string[];
    return {
      matches: messages.flatMap((m, i) =>
        matcher(m) ? [{ eventNumber: i + 1, eventMessage: m, extractedValues: {} }] : [],
      ),
    };
  }
}

/** A log group name from `logGroupIdentifier`: a name, or its ARN (with or without `:*`). */
export function groupFromIdentifier(id: string): string {
  const m = /^arn:aws[a-z-]*:logs:[a-z0-9-]*:(\d{12}):log-group:([^:]+)(?::\*)?$/.exec(id);
  if (!m) return id;
  if (m[1] !== ACCOUNT_ID) throw ResourceNotFound(GROUP_NOT_FOUND);
  return m[2] as string;
}
