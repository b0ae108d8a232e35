/**
 * Event source mappings (Create/Get/Update/Delete/ListEventSourceMappings):
 * validation, Lambda's EventSourceMappingConfiguration shape, state
 * transitions. The broker is named by a URI in EventSourceArn; the queue or
 * stream by `Queues` (RabbitMQ) or `Topics` (NATS JetStream, Redis Streams).
 * The pollers (sources/) follow the rows: they move `Creating`/`Enabling`/
 * `Updating` to `Enabled`, `Disabling` to `Disabled`, remove `Deleting` rows,
 * and report `LastProcessingResult`.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import { ACCOUNT_ID } from "../config.js";
import {
  constraintViolation,
  InvalidParameterValue,
  integerIn,
  ResourceConflict,
  ResourceInUse,
  ResourceNotFound,
} from "../errors.js";
import { objectColumn, requireMembers } from "../store/columns.js";
import type { EventSourceMappingsTable } from "../store/schema.js";
import type { Store } from "../store/store.js";
import { type FunctionRef, functionArn, parseFunctionRef } from "./arn.js";
import { type BrokerKind, parseBrokerUri, redact } from "./broker-uri.js";
import type { EgressPolicy } from "./egress.js";
import { validatePattern } from "./event-filter.js";
import { validateDestination } from "./event-invoke-config.js";
import { type FunctionService, LATEST } from "./functions.js";
import { pageAfter } from "./marker.js";

export type MappingState =
  | "Creating"
  | "Enabling"
  | "Enabled"
  | "Disabling"
  | "Disabled"
  | "Updating"
  | "Deleting";

export type StartingPosition = "TRIM_HORIZON" | "LATEST" | "AT_TIMESTAMP";

/** What a poller needs; stored as JSON in `settings`. */
export interface MappingSettings {
  enabled: boolean;
  queues?: string[];
  topics?: string[];
  batchSize: number;
  maximumBatchingWindowInSeconds: number;
  startingPosition?: StartingPosition;
  /** Epoch seconds (AT_TIMESTAMP). */
  startingPositionTimestamp?: number;
  /** -1 = until success (or the record ages out). */
  maximumRetryAttempts: number;
  /** -1 = no limit. */
  maximumRecordAgeInSeconds: number;
  bisectBatchOnFunctionError: boolean;
  functionResponseTypes: string[];
  onFailure?: string;
  /** FilterCriteria.Filters[].Pattern as given. */
  filters: string[];
  /** Queue sources: batches in flight at once. */
  maximumConcurrency?: number;
}

/** A mapping as the pollers see it (credentials included). */
export interface EventSourceMapping {
  uuid: string;
  functionName: string;
  qualifier: string | null;
  region: string;
  eventSource: string;
  kind: BrokerKind;
  settings: MappingSettings;
  state: MappingState;
  stateTransitionReason: string;
  lastProcessingResult: string;
  lastModified: number;
}

/** Queue sources run this many batches at once when ScalingConfig.MaximumConcurrency is unset. */
export const DEFAULT_QUEUE_CONCURRENCY = 5;
export const USER_ACTION = "User action";
export const NO_RECORDS = "No records processed";

const STREAM_KINDS = new Set<BrokerKind>(["nats", "redis"]);
const RESPONSE_TYPES = new Set(["ReportBatchItemFailures"]);
const POSITIONS = new Set<StartingPosition>(["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]);
const MAX_FILTERS = 5;
const MAX_PATTERN_LENGTH = 4096;

export function mappingArn(region: string, uuid: string): string {
  return `arn:aws:lambda:${region}:${ACCOUNT_ID}:event-source-mapping:${uuid}`;
}

function bool(member: string, value: unknown): boolean {
  if (typeof value !== "boolean") throw InvalidParameterValue(`${member} must be a boolean.`);
  return value;
}

function given(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function names(member: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v.length === 0)) {
    throw InvalidParameterValue(`${member} must be a list of non-empty strings.`);
  }
  if (value.length !== 1) {
    throw constraintViolation(member, value, "Member must have length less than or equal to 1");
  }
  const v = value[0] as string;
  if (v.length > 1000)
    throw constraintViolation(member, value, "Member must have length less than or equal to 1000");
  return [v];
}

/** Settings an Update names: a member set to undefined is cleared. */
type SettingsChange = { [K in keyof MappingSettings]?: MappingSettings[K] | undefined };

/** The settings after an Update: given members replaced, cleared ones removed. */
function applySettingsChange(settings: MappingSettings, change: SettingsChange): MappingSettings {
  const next: Partial<MappingSettings> = { ...settings, ...stripUndefined(change) };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete next[k as keyof MappingSettings];
  }
  // Only optional members are ever cleared (parseCommon sets undefined for those alone).
  return next as MappingSettings;
}

/** The fields Create and Update share, validated; only the given ones are set. */
function parseCommon(input: Record<string, unknown>, kind: BrokerKind, fnName: string): SettingsChange {
  const out: SettingsChange = {};
  const stream = STREAM_KINDS.has(kind);
  const streamOnly = (field: string) => {
    if (!stream)
      throw InvalidParameterValue(`Unsupported ${field} parameter for given event source mapping type.`);
  };
  if (given(input.Enabled)) out.enabled = bool("enabled", input.Enabled);
  if (given(input.BatchSize)) out.batchSize = integerIn("batchSize", input.BatchSize, 1, 10000);
  if (given(input.MaximumBatchingWindowInSeconds)) {
    out.maximumBatchingWindowInSeconds = integerIn(
      "maximumBatchingWindowInSeconds",
      input.MaximumBatchingWindowInSeconds,
      0,
      300,
    );
  }
  if (given(input.MaximumRetryAttempts)) {
    out.maximumRetryAttempts = integerIn("maximumRetryAttempts", input.MaximumRetryAttempts, -1, 10000);
  }
  if (given(input.MaximumRecordAgeInSeconds)) {
    streamOnly("MaximumRecordAgeInSeconds");
    const v = integerIn("maximumRecordAgeInSeconds", input.MaximumRecordAgeInSeconds, -1, 604800);
    if (v !== -1 && v < 60) {
      throw InvalidParameterValue("MaximumRecordAgeInSeconds must be -1 or between 60 and 604800.");
    }
    out.maximumRecordAgeInSeconds = v;
  }
  if (given(input.BisectBatchOnFunctionError)) {
    streamOnly("BisectBatchOnFunctionError");
    out.bisectBatchOnFunctionError = bool("bisectBatchOnFunctionError", input.BisectBatchOnFunctionError);
  }
  if (given(input.FunctionResponseTypes)) {
    streamOnly("FunctionResponseTypes");
    const v = input.FunctionResponseTypes;
    if (!Array.isArray(v) || v.some((t) => typeof t !== "string" || !RESPONSE_TYPES.has(t))) {
      throw constraintViolation(
        "functionResponseTypes",
        v,
        "Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures]]",
      );
    }
    if (v.length > 1)
      throw constraintViolation(
        "functionResponseTypes",
        v,
        "Member must have length less than or equal to 1",
      );
    out.functionResponseTypes = v as string[];
  }
  if (given(input.ParallelizationFactor)) {
    const v = integerIn("parallelizationFactor", input.ParallelizationFactor, 1, 10);
    if (v !== 1) {
      throw InvalidParameterValue(
        "Lambent keeps one batch in flight per stream: ParallelizationFactor must be 1.",
      );
    }
  }
  if (given(input.TumblingWindowInSeconds) && input.TumblingWindowInSeconds !== 0) {
    throw InvalidParameterValue("TumblingWindowInSeconds is not supported by Lambent.");
  }
  if (given(input.ScalingConfig)) {
    const sc = input.ScalingConfig;
    if (typeof sc !== "object" || Array.isArray(sc))
      throw InvalidParameterValue("ScalingConfig must be an object.");
    const mc = (sc as Record<string, unknown>).MaximumConcurrency;
    if (given(mc)) {
      if (stream) {
        throw InvalidParameterValue(
          "Unsupported ScalingConfig parameter for given event source mapping type: streams keep one batch in flight.",
        );
      }
      out.maximumConcurrency = integerIn("scalingConfig.maximumConcurrency", mc, 2, 1000);
    } else {
      out.maximumConcurrency = undefined;
    }
  }
  if (given(input.FilterCriteria)) {
    const fc = input.FilterCriteria as { Filters?: unknown };
    if (typeof fc !== "object" || Array.isArray(fc))
      throw InvalidParameterValue("FilterCriteria must be an object.");
    const filters = fc.Filters ?? [];
    if (!Array.isArray(filters)) throw InvalidParameterValue("FilterCriteria.Filters must be a list.");
    if (filters.length > MAX_FILTERS) {
      throw InvalidParameterValue(`FilterCriteria can contain at most ${MAX_FILTERS} filters.`);
    }
    out.filters = filters.map((f: unknown) => {
      const p = (f as { Pattern?: unknown } | null)?.Pattern;
      if (typeof p !== "string") throw InvalidParameterValue("Each filter needs a Pattern string.");
      if (p.length > MAX_PATTERN_LENGTH) {
        throw constraintViolation(
          "filterCriteria.filters.member.pattern",
          p,
          `Member must have length less than or equal to ${MAX_PATTERN_LENGTH}`,
        );
      }
      const problem = validatePattern(p);
      if (problem) throw InvalidParameterValue(`Invalid filter pattern definition. ${problem}`);
      return p;
    });
  }
  if (given(input.DestinationConfig)) {
    const dc = input.DestinationConfig as Record<string, unknown>;
    if (typeof dc !== "object" || Array.isArray(dc))
      throw InvalidParameterValue("DestinationConfig must be an object.");
    const onSuccess = (dc.OnSuccess as { Destination?: unknown } | undefined)?.Destination;
    if (given(onSuccess) && onSuccess !== "") {
      throw InvalidParameterValue(
        "Unsupported DestinationConfig parameter for given event source mapping type.",
      );
    }
    const onFailure = (dc.OnFailure as { Destination?: unknown } | undefined)?.Destination;
    out.onFailure =
      given(onFailure) && onFailure !== ""
        ? validateDestination("destinationConfig.onFailure.destination", onFailure, fnName, "\u0000")
        : undefined;
  }
  for (const field of [
    "SourceAccessConfigurations",
    "SelfManagedEventSource",
    "AmazonManagedKafkaEventSourceConfig",
  ]) {
    if (given(input[field])) {
      throw InvalidParameterValue(`${field} is not supported: put credentials in the EventSourceArn URI.`);
    }
  }
  return out;
}

/** event_source_mappings.settings, checked: the members every stored mapping has. */
function mappingSettingsColumn(text: string): MappingSettings {
  const v = objectColumn("event_source_mappings", "settings", text);
  requireMembers<MappingSettings>("event_source_mappings", "settings", v, {
    enabled: "boolean",
    batchSize: "number",
    maximumBatchingWindowInSeconds: "number",
    maximumRetryAttempts: "number",
    maximumRecordAgeInSeconds: "number",
    bisectBatchOnFunctionError: "boolean",
    functionResponseTypes: "array",
    filters: "array",
    queues: "array?",
    topics: "array?",
    onFailure: "string?",
    maximumConcurrency: "number?",
  });
  return v;
}

function rowToMapping(row: EventSourceMappingsTable): EventSourceMapping {
  return {
    uuid: row.uuid,
    functionName: row.function_name,
    qualifier: row.qualifier,
    region: row.region,
    eventSource: row.event_source,
    kind: row.kind as BrokerKind,
    settings: mappingSettingsColumn(row.settings),
    state: row.state as MappingState,
    stateTransitionReason: row.state_transition_reason,
    lastProcessingResult: row.last_processing_result,
    lastModified: row.last_modified,
  };
}

/** Lambda's EventSourceMappingConfiguration, credentials redacted. */
export function mappingConfiguration(m: EventSourceMapping) {
  const s = m.settings;
  const stream = STREAM_KINDS.has(m.kind);
  const out: Record<string, unknown> = {
    UUID: m.uuid,
    EventSourceMappingArn: mappingArn(m.region, m.uuid),
    BatchSize: s.batchSize,
    MaximumBatchingWindowInSeconds: s.maximumBatchingWindowInSeconds,
    EventSourceArn: redact(m.eventSource),
    FunctionArn: functionArn(m.region, m.functionName, m.qualifier ?? undefined),
    LastModified: m.lastModified / 1000,
    LastProcessingResult: m.lastProcessingResult,
    State: m.state,
    StateTransitionReason: m.stateTransitionReason,
    MaximumRetryAttempts: s.maximumRetryAttempts,
    FunctionResponseTypes: s.functionResponseTypes,
    DestinationConfig: { OnSuccess: {}, OnFailure: s.onFailure ? { Destination: redact(s.onFailure) } : {} },
  };
  if (s.queues) out.Queues = s.queues;
  if (s.topics) out.Topics = s.topics;
  if (s.filters.length > 0) out.FilterCriteria = { Filters: s.filters.map((p) => ({ Pattern: p })) };
  if (stream) {
    out.StartingPosition = s.startingPosition;
    if (s.startingPositionTimestamp !== undefined)
      out.StartingPositionTimestamp = s.startingPositionTimestamp;
    out.ParallelizationFactor = 1;
    out.MaximumRecordAgeInSeconds = s.maximumRecordAgeInSeconds;
    out.BisectBatchOnFunctionError = s.bisectBatchOnFunctionError;
  } else if (s.maximumConcurrency !== undefined) {
    out.ScalingConfig = { MaximumConcurrency: s.maximumConcurrency };
  }
  return out;
}

export class EventSourceMappingService {
  /** Emits "change" with a mapping's UUID after every create, update and delete request. */
  readonly events = new EventEmitter<{ change: [string] }>();

  constructor(
    private readonly store: Store,
    private readonly functions: FunctionService,
    /** Where brokers and on-failure destinations may point (checked again at every connection). */
    private readonly egress: EgressPolicy | null = null,
  ) {}

  /** The function and its qualifier (version or alias) must exist. */
  private async checkFunction(ref: FunctionRef, region: string): Promise<void> {
    const q = ref.qualifier;
    if (q !== undefined && q !== LATEST && !/^\d+$/.test(q)) {
      const alias = await this.store.db
        .selectFrom("aliases")
        .select("name")
        .where("function_name", "=", ref.name)
        .where("name", "=", q)
        .executeTakeFirst();
      if (alias) return;
    }
    await this.functions.getVersion({ name: ref.name, qualifier: q ?? LATEST }, region);
  }

  private async row(uuid: string): Promise<EventSourceMappingsTable | undefined> {
    return this.store.db
      .selectFrom("event_source_mappings")
      .selectAll()
      .where("uuid", "=", uuid)
      .executeTakeFirst();
  }

  private notFound(uuid: string): Error {
    return ResourceNotFound(
      `The resource you requested does not exist. (Service: Lambda, Status Code: 404, UUID: ${uuid})`,
    );
  }

  async create(input: Record<string, unknown>, region: string) {
    const source = input.EventSourceArn;
    if (typeof source !== "string" || source.length === 0) {
      throw InvalidParameterValue(
        "EventSourceArn is required: a broker URI (amqp://…, nats://…, redis://…).",
      );
    }
    const broker = parseBrokerUri(source);
    if (!broker) {
      throw InvalidParameterValue(
        `Unrecognized event source: ${redact(source)}. Lambent takes amqp(s)://, nats:// or redis(s):// URIs.`,
      );
    }
    const kind = broker.kind;
    const ref = parseFunctionRef(input.FunctionName, undefined, "functionName", 140);
    await this.checkFunction(ref, region);
    const stream = STREAM_KINDS.has(kind);
    const common = parseCommon(input, kind, ref.name);
    await this.egress?.checkConfigured(source, "The event source");
    if (common.onFailure) await this.egress?.checkConfigured(common.onFailure, "The destination");
    const settings: MappingSettings = {
      enabled: true,
      batchSize: 100,
      maximumBatchingWindowInSeconds: 0,
      maximumRetryAttempts: -1,
      maximumRecordAgeInSeconds: -1,
      bisectBatchOnFunctionError: false,
      functionResponseTypes: [],
      filters: [],
      ...stripUndefined(common),
    };
    if (kind === "rabbitmq") {
      if (given(input.Topics))
        throw InvalidParameterValue("RabbitMQ sources name their queue in Queues, not Topics.");
      if (!given(input.Queues))
        throw InvalidParameterValue("Queues is required for a RabbitMQ event source.");
      settings.queues = names("queues", input.Queues);
      if (given(input.StartingPosition)) {
        throw InvalidParameterValue("Unsupported starting position for a RabbitMQ event source.");
      }
    } else {
      if (given(input.Queues))
        throw InvalidParameterValue("Stream sources name their stream in Topics, not Queues.");
      if (!given(input.Topics))
        throw InvalidParameterValue(
          `Topics is required for a ${kind === "nats" ? "NATS" : "Redis"} event source.`,
        );
      settings.topics = names("topics", input.Topics);
      if (kind === "nats" && !/^[^\s.*>/\\:]+(:\S+)?$/.test(settings.topics[0] as string)) {
        throw InvalidParameterValue("A NATS topic is <stream> or <stream>:<subject filter>.");
      }
      const pos = input.StartingPosition;
      if (!given(pos)) throw InvalidParameterValue("StartingPosition is required for stream event sources.");
      if (typeof pos !== "string" || !POSITIONS.has(pos as StartingPosition)) {
        throw constraintViolation(
          "startingPosition",
          pos,
          "Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]",
        );
      }
      settings.startingPosition = pos as StartingPosition;
      if (pos === "AT_TIMESTAMP") {
        const ts = input.StartingPositionTimestamp;
        if (typeof ts !== "number" || !Number.isFinite(ts)) {
          throw InvalidParameterValue(
            "StartingPositionTimestamp is required with StartingPosition AT_TIMESTAMP.",
          );
        }
        settings.startingPositionTimestamp = ts;
      } else if (given(input.StartingPositionTimestamp)) {
        throw InvalidParameterValue(
          "StartingPositionTimestamp is only valid with StartingPosition AT_TIMESTAMP.",
        );
      }
    }
    if (!stream && settings.maximumConcurrency === undefined) delete settings.maximumConcurrency;
    const target = (settings.queues ?? settings.topics ?? [])[0];
    const existing = await this.store.db
      .selectFrom("event_source_mappings")
      .selectAll()
      .where("function_name", "=", ref.name)
      .execute();
    for (const r of existing) {
      const s = mappingSettingsColumn(r.settings);
      if (
        r.event_source === source &&
        (r.qualifier ?? null) === (ref.qualifier ?? null) &&
        (s.queues ?? s.topics ?? [])[0] === target
      ) {
        throw ResourceConflict(
          `An event source mapping with event source ("${redact(source)}"), function ("${functionArn(region, ref.name, ref.qualifier)}"), ${kind === "rabbitmq" ? "queue" : "topic"} ("${target}") already exists. Please update or delete the existing mapping with UUID ${r.uuid}`,
        );
      }
    }
    const now = Date.now();
    const row: EventSourceMappingsTable = {
      uuid: randomUUID(),
      function_name: ref.name,
      qualifier: ref.qualifier ?? null,
      region,
      event_source: source,
      kind,
      settings: JSON.stringify(settings),
      state: "Creating",
      state_transition_reason: USER_ACTION,
      last_processing_result: NO_RECORDS,
      created_at: now,
      last_modified: now,
    };
    await this.store.db.insertInto("event_source_mappings").values(row).execute();
    this.events.emit("change", row.uuid);
    return mappingConfiguration(rowToMapping(row));
  }

  async get(uuid: string) {
    return mappingConfiguration(await this.mapping(uuid));
  }

  /** The stored mapping (credentials included), for the pollers. */
  async mapping(uuid: string): Promise<EventSourceMapping> {
    const row = await this.row(uuid);
    if (!row) throw this.notFound(uuid);
    return rowToMapping(row);
  }

  async all(): Promise<EventSourceMapping[]> {
    const rows = await this.store.db
      .selectFrom("event_source_mappings")
      .selectAll()
      .orderBy("created_at")
      .orderBy("uuid")
      .execute();
    return rows.map(rowToMapping);
  }

  async update(uuid: string, input: Record<string, unknown>, region: string) {
    const row = await this.row(uuid);
    if (!row) throw this.notFound(uuid);
    const current = rowToMapping(row);
    if (current.state === "Deleting") {
      throw ResourceInUse(`Cannot update the event source mapping ${uuid}: it is being deleted.`);
    }
    for (const field of [
      "EventSourceArn",
      "Queues",
      "Topics",
      "StartingPosition",
      "StartingPositionTimestamp",
    ]) {
      if (given(input[field])) throw InvalidParameterValue(`${field} cannot be updated.`);
    }
    let fnName = current.functionName;
    let qualifier = current.qualifier;
    if (given(input.FunctionName)) {
      const ref = parseFunctionRef(input.FunctionName, undefined, "functionName", 140);
      await this.checkFunction(ref, region);
      fnName = ref.name;
      qualifier = ref.qualifier ?? null;
    }
    const changes = parseCommon(input, current.kind, fnName);
    if (changes.onFailure) await this.egress?.checkConfigured(changes.onFailure, "The destination");
    const settings = applySettingsChange(current.settings, changes);
    const wasEnabled = current.settings.enabled;
    let state: MappingState = current.state;
    if (settings.enabled && !wasEnabled) state = "Enabling";
    else if (!settings.enabled && wasEnabled) state = "Disabling";
    else if (settings.enabled) state = "Updating";
    const now = Date.now();
    await this.store.db
      .updateTable("event_source_mappings")
      .set({
        function_name: fnName,
        qualifier,
        settings: JSON.stringify(settings),
        state,
        state_transition_reason: USER_ACTION,
        last_modified: now,
      })
      .where("uuid", "=", uuid)
      .execute();
    this.events.emit("change", uuid);
    return mappingConfiguration({
      ...current,
      functionName: fnName,
      qualifier,
      settings,
      state,
      stateTransitionReason: USER_ACTION,
      lastModified: now,
    });
  }

  /** Marks the mapping Deleting; the pollers stop it and remove the row. */
  async delete(uuid: string) {
    const row = await this.row(uuid);
    if (!row) throw this.notFound(uuid);
    const now = Date.now();
    await this.store.db
      .updateTable("event_source_mappings")
      .set({ state: "Deleting", state_transition_reason: USER_ACTION, last_modified: now })
      .where("uuid", "=", uuid)
      .execute();
    this.events.emit("change", uuid);
    return mappingConfiguration({ ...rowToMapping(row), state: "Deleting", lastModified: now });
  }

  async list(
    filter: { eventSourceArn?: string; functionName?: string },
    marker: string | undefined,
    maxItems: number,
  ) {
    let ref: FunctionRef | undefined;
    if (filter.functionName !== undefined) ref = parseFunctionRef(filter.functionName);
    const all = (await this.all()).filter((m) => {
      if (filter.eventSourceArn !== undefined) {
        const e = filter.eventSourceArn;
        if (m.eventSource !== e && redact(m.eventSource) !== e && redact(m.eventSource) !== redact(e))
          return false;
      }
      if (ref) {
        if (m.functionName !== ref.name) return false;
        if (ref.qualifier !== undefined && (m.qualifier ?? LATEST) !== ref.qualifier) return false;
      }
      return true;
    });
    const { page, nextMarker } = pageAfter(all, (m) => m.uuid, marker, maxItems);
    const mappings = page.map(mappingConfiguration);
    return nextMarker
      ? { EventSourceMappings: mappings, NextMarker: nextMarker }
      : { EventSourceMappings: mappings };
  }

  /** The pollers' side: a settled state. */
  async settle(uuid: string, state: MappingState): Promise<void> {
    await this.store.db
      .updateTable("event_source_mappings")
      .set({ state })
      .where("uuid", "=", uuid)
      .where("state", "!=", "Deleting")
      .execute();
  }

  async setLastProcessingResult(uuid: string, result: string): Promise<void> {
    await this.store.db
      .updateTable("event_source_mappings")
      .set({ last_processing_result: result })
      .where("uuid", "=", uuid)
      .execute();
  }

  async remove(uuid: string): Promise<void> {
    await this.store.db.deleteFrom("event_source_mappings").where("uuid", "=", uuid).execute();
  }
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}
