/**
 * Event invoke configs (asynchronous invocation settings) per function and
 * qualifier: retry attempts, maximum event age and destinations. Put replaces,
 * Update merges; a config goes with its function (or version) when deleted.
 * What the async pollers apply to each event is cached per function and
 * qualifier and dropped on every change (through any server: the `change`
 * events travel on the change feed).
 */
import { EventEmitter } from "node:events";
import { constraintViolation, InvalidParameterValue, integerIn, ResourceNotFound } from "../errors.js";
import type { EventInvokeConfigsTable } from "../store/schema.js";
import type { Store } from "../store/store.js";
import { type FunctionRef, functionArn } from "./arn.js";
import { brokerDestinationProblem, parseBrokerUri, redact } from "./broker-uri.js";
import type { EgressPolicy } from "./egress.js";
import { type FunctionService, LATEST } from "./functions.js";
import { pageAfter } from "./marker.js";

export const DEFAULT_MAX_RETRY_ATTEMPTS = 2;
export const DEFAULT_MAX_EVENT_AGE_SECONDS = 21600;

/** The settings the async pollers apply to one event. */
export interface EventInvokeSettings {
  maximumRetryAttempts: number;
  maximumEventAgeSeconds: number;
  onSuccess?: string;
  onFailure?: string;
}

export interface EventInvokeConfigInput {
  MaximumRetryAttempts?: unknown;
  MaximumEventAgeInSeconds?: unknown;
  DestinationConfig?: unknown;
}

/** A Lambent function ARN, or an http(s) URL (a Lambent extension). Broker targets add their forms here. */
const FUNCTION_DESTINATION_RE =
  /^arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:([a-zA-Z0-9_-]{1,64})(?::(\$LATEST|[a-zA-Z0-9_-]+))?$/;
const URL_DESTINATION_RE = /^https?:\/\/[^\s/]+(\/\S*)?$/i;
const DESTINATION_ARN_RE =
  /^$|^arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)$/;

export class EventInvokeConfigService {
  /** Emits "change" with the function name whenever one of its configs is written or dropped. */
  readonly events = new EventEmitter<{ change: [string] }>();
  /** settings() per `name\0qualifier` (read once, then on every event of the function). */
  private readonly cache = new Map<string, EventInvokeSettings>();
  /** Bumped on every change: a read that overlapped one is not cached. */
  private generation = 0;

  constructor(
    private readonly store: Store,
    private readonly functions: FunctionService,
    /** Where URL and broker destinations may point (checked again at every delivery). */
    private readonly egress: EgressPolicy | null = null,
  ) {
    functions.events.on("change", ({ name, version }) => {
      // Only deletions matter: a deleted function (no version) or a deleted published version.
      void this.dropIfGone(name, version).catch(() => {});
    });
    this.events.on("change", () => this.forget());
  }

  /** Drop every cached setting (after a change, or when the change feed may have missed some). */
  forget(): void {
    this.generation++;
    this.cache.clear();
  }

  private async dropIfGone(name: string, version: string | undefined): Promise<void> {
    const q = version ?? LATEST;
    const exists = await this.store.db
      .selectFrom("function_versions")
      .select("version")
      .where("function_name", "=", name)
      .where("version", "=", q)
      .executeTakeFirst();
    if (exists) return;
    await this.store.db
      .deleteFrom("event_invoke_configs")
      .where("function_name", "=", name)
      .$if(version !== undefined, (d) => d.where("qualifier", "=", version as string))
      .execute();
    this.events.emit("change", name);
  }

  /** The function and the qualifier (a version or an alias) must exist. */
  private async check(ref: FunctionRef, region: string): Promise<string> {
    const qualifier = ref.qualifier ?? LATEST;
    if (qualifier !== LATEST && !/^\d+$/.test(qualifier)) {
      const alias = await this.store.db
        .selectFrom("aliases")
        .select("name")
        .where("function_name", "=", ref.name)
        .where("name", "=", qualifier)
        .executeTakeFirst();
      if (alias) return qualifier;
    }
    await this.functions.getVersion({ name: ref.name, qualifier }, region);
    return qualifier;
  }

  /** A function destination must name a function (and version or alias) that exists, as Lambda checks. */
  private async checkDestinationFunction(dest: string, region: string): Promise<void> {
    const m = FUNCTION_DESTINATION_RE.exec(dest);
    if (!m) return;
    const [name, qualifier] = [m[1] as string, m[2]];
    try {
      if (qualifier !== undefined && qualifier !== LATEST && !/^\d+$/.test(qualifier)) {
        const alias = await this.store.db
          .selectFrom("aliases")
          .select("name")
          .where("function_name", "=", name)
          .where("name", "=", qualifier)
          .executeTakeFirst();
        if (!alias) throw new Error("no alias");
      } else {
        await this.functions.getVersion(qualifier === undefined ? { name } : { name, qualifier }, region);
      }
    } catch {
      // Lambda's text (localstack's Lambda provider, kept in step with responses recorded on AWS).
      throw InvalidParameterValue(`The destination ARN ${dest} is invalid.`);
    }
  }

  private async row(name: string, qualifier: string): Promise<EventInvokeConfigsTable | undefined> {
    return this.store.db
      .selectFrom("event_invoke_configs")
      .selectAll()
      .where("function_name", "=", name)
      .where("qualifier", "=", qualifier)
      .executeTakeFirst();
  }

  private missing(region: string, name: string, qualifier: string): Error {
    return ResourceNotFound(
      `The function ${functionArn(region, name, qualifier)} doesn't have an EventInvokeConfig`,
    );
  }

  async get(ref: FunctionRef, region: string) {
    const qualifier = await this.check(ref, region);
    const row = await this.row(ref.name, qualifier);
    if (!row) throw this.missing(region, ref.name, qualifier);
    return toApi(row, region);
  }

  async put(ref: FunctionRef, region: string, input: EventInvokeConfigInput) {
    return this.write(ref, region, input, false);
  }

  async update(ref: FunctionRef, region: string, input: EventInvokeConfigInput) {
    return this.write(ref, region, input, true);
  }

  private async write(ref: FunctionRef, region: string, input: EventInvokeConfigInput, merge: boolean) {
    const qualifier = await this.check(ref, region);
    const given = parseInput(input, ref.name, qualifier);
    for (const dest of [given.on_success, given.on_failure]) {
      if (dest) await this.checkDestinationFunction(dest, region);
      if (dest) await this.egress?.checkConfigured(dest, "The destination");
    }
    const current = await this.row(ref.name, qualifier);
    if (merge && !current) throw this.missing(region, ref.name, qualifier);
    const base: EventInvokeConfigsTable =
      merge && current
        ? current
        : {
            function_name: ref.name,
            qualifier,
            maximum_retry_attempts: null,
            maximum_event_age_seconds: null,
            on_success: null,
            on_failure: null,
            last_modified: 0,
          };
    const row: EventInvokeConfigsTable = { ...base, ...given, last_modified: Date.now() };
    await this.store.db
      .insertInto("event_invoke_configs")
      .values(row)
      .onConflict((oc) =>
        oc.columns(["function_name", "qualifier"]).doUpdateSet({
          maximum_retry_attempts: row.maximum_retry_attempts,
          maximum_event_age_seconds: row.maximum_event_age_seconds,
          on_success: row.on_success,
          on_failure: row.on_failure,
          last_modified: row.last_modified,
        }),
      )
      .execute();
    this.events.emit("change", ref.name);
    return toApi(row, region);
  }

  async delete(ref: FunctionRef, region: string): Promise<void> {
    const qualifier = await this.check(ref, region);
    const res = await this.store.db
      .deleteFrom("event_invoke_configs")
      .where("function_name", "=", ref.name)
      .where("qualifier", "=", qualifier)
      .executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw this.missing(region, ref.name, qualifier);
    this.events.emit("change", ref.name);
  }

  async list(name: string, region: string, marker: string | undefined, maxItems: number) {
    await this.functions.getFunctionRow(name, region);
    const rows = await this.store.db
      .selectFrom("event_invoke_configs")
      .selectAll()
      .where("function_name", "=", name)
      .orderBy("qualifier")
      .execute();
    const { page, nextMarker } = pageAfter(rows, (r) => r.qualifier, marker, maxItems);
    const configs = page.map((r) => toApi(r, region));
    return nextMarker
      ? { FunctionEventInvokeConfigs: configs, NextMarker: nextMarker }
      : { FunctionEventInvokeConfigs: configs };
  }

  /** What the pollers apply to an event for `name` invoked with `qualifier` (defaults when unset). */
  async settings(name: string, qualifier: string | null): Promise<EventInvokeSettings> {
    const key = `${name}\0${qualifier ?? LATEST}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const generation = this.generation;
    const row = await this.row(name, qualifier ?? LATEST);
    const settings: EventInvokeSettings = {
      maximumRetryAttempts: row?.maximum_retry_attempts ?? DEFAULT_MAX_RETRY_ATTEMPTS,
      maximumEventAgeSeconds: row?.maximum_event_age_seconds ?? DEFAULT_MAX_EVENT_AGE_SECONDS,
      ...(row?.on_success ? { onSuccess: row.on_success } : {}),
      ...(row?.on_failure ? { onFailure: row.on_failure } : {}),
    };
    if (generation === this.generation) this.cache.set(key, settings);
    return settings;
  }
}

function parseInput(
  input: EventInvokeConfigInput,
  name: string,
  qualifier: string,
): Partial<EventInvokeConfigsTable> {
  const out: Partial<EventInvokeConfigsTable> = {};
  if (input.MaximumRetryAttempts !== undefined && input.MaximumRetryAttempts !== null) {
    out.maximum_retry_attempts = integerIn("maximumRetryAttempts", input.MaximumRetryAttempts, 0, 2);
  }
  if (input.MaximumEventAgeInSeconds !== undefined && input.MaximumEventAgeInSeconds !== null) {
    out.maximum_event_age_seconds = integerIn(
      "maximumEventAgeInSeconds",
      input.MaximumEventAgeInSeconds,
      60,
      21600,
    );
  }
  const dc = input.DestinationConfig;
  let anyDestination = false;
  if (dc !== undefined && dc !== null) {
    if (typeof dc !== "object" || Array.isArray(dc))
      throw InvalidParameterValue("DestinationConfig must be an object.");
    for (const [key, column, member] of [
      ["OnSuccess", "on_success", "destinationConfig.onSuccess.destination"],
      ["OnFailure", "on_failure", "destinationConfig.onFailure.destination"],
    ] as const) {
      const d = (dc as Record<string, unknown>)[key];
      if (d === undefined || d === null) continue;
      anyDestination = true;
      const dest = (d as { Destination?: unknown }).Destination;
      if (dest === undefined || dest === null || dest === "") {
        out[column] = null;
        continue;
      }
      out[column] = validateDestination(member, dest, name, qualifier);
    }
  }
  if (
    out.maximum_retry_attempts === undefined &&
    out.maximum_event_age_seconds === undefined &&
    !anyDestination
  ) {
    throw InvalidParameterValue("You must specify at least one of error handling or destination setting.");
  }
  return out;
}

/** A destination must be a Lambent function ARN (not the function itself) or an http(s) URL. */
export function validateDestination(member: string, value: unknown, name: string, qualifier: string): string {
  if (typeof value !== "string") throw InvalidParameterValue(`${member} must be a string.`);
  if (value.length > 350)
    throw constraintViolation(member, value, "Member must have length less than or equal to 350");
  if (URL_DESTINATION_RE.test(value)) return value;
  if (parseBrokerUri(value)) {
    // A broker (a Lambent extension): amqp://…?queue=, nats://…?subject=, redis://…?stream=.
    const problem = brokerDestinationProblem(value);
    if (problem) throw InvalidParameterValue(`The destination ${redact(value)} is invalid: ${problem}.`);
    return value;
  }
  if (!DESTINATION_ARN_RE.test(value)) {
    throw constraintViolation(
      member,
      value,
      "Member must satisfy regular expression pattern: ^$|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}(-gov)?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)",
    );
  }
  const m = FUNCTION_DESTINATION_RE.exec(value);
  if (!m) {
    throw InvalidParameterValue(
      `The destination ARN ${value} is invalid. Lambent supports Lambda function ARNs, http(s):// URLs and broker URIs (amqp://, nats://, redis://) as destinations.`,
    );
  }
  if (m[1] === name && (m[2] ?? LATEST) === qualifier) {
    throw InvalidParameterValue("You can't specify the function as a destination for itself.");
  }
  return value;
}

function toApi(row: EventInvokeConfigsTable, region: string) {
  return {
    LastModified: row.last_modified / 1000,
    FunctionArn: functionArn(region, row.function_name, row.qualifier),
    ...(row.maximum_retry_attempts !== null ? { MaximumRetryAttempts: row.maximum_retry_attempts } : {}),
    ...(row.maximum_event_age_seconds !== null
      ? { MaximumEventAgeInSeconds: row.maximum_event_age_seconds }
      : {}),
    DestinationConfig: {
      OnSuccess: row.on_success ? { Destination: redact(row.on_success) } : {},
      OnFailure: row.on_failure ? { Destination: redact(row.on_failure) } : {},
    },
  };
}
