/**
 * Concurrency settings: reserved concurrency per function (carved out of the
 * account pool) and provisioned concurrency configs per version or alias.
 */
import { EventEmitter } from "node:events";
import {
  constraintViolation,
  InvalidParameterValue,
  LambdaError,
  ResourceConflict,
  ResourceNotFound,
} from "../errors.js";
import type { ProvisionedConcurrencyTable } from "../store/schema.js";
import type { Store } from "../store/store.js";
import { isAliasQualifier } from "./aliases.js";
import { functionArn } from "./arn.js";
import { lambdaTimestamp } from "./function-config.js";
import { LATEST } from "./functions.js";

/** Lambda keeps at least this much of the account pool unreserved (scaled for small accounts). */
export function minimumUnreserved(accountConcurrency: number): number {
  return Math.min(100, Math.floor(accountConcurrency / 10));
}

export const ProvisionedConcurrencyConfigNotFound = (message: string) =>
  new LambdaError("ProvisionedConcurrencyConfigNotFoundException", 404, message);

export interface ProvisionedConfig {
  functionName: string;
  qualifier: string;
  requested: number;
  allocated: number;
  available: number;
  status: "IN_PROGRESS" | "READY" | "FAILED";
  statusReason: string | null;
  lastModified: number;
}

function toConfig(r: ProvisionedConcurrencyTable): ProvisionedConfig {
  return {
    functionName: r.function_name,
    qualifier: r.qualifier,
    requested: r.requested,
    allocated: r.allocated,
    available: r.available,
    status: r.status as ProvisionedConfig["status"],
    statusReason: r.status_reason,
    lastModified: r.last_modified,
  };
}

export function provisionedConfiguration(
  c: ProvisionedConfig,
  region: string,
  withArn: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    RequestedProvisionedConcurrentExecutions: c.requested,
    AvailableProvisionedConcurrentExecutions: c.available,
    AllocatedProvisionedConcurrentExecutions: c.allocated,
    Status: c.status,
    LastModified: lambdaTimestamp(c.lastModified),
  };
  if (c.statusReason) out.StatusReason = c.statusReason;
  if (withArn) out.FunctionArn = functionArn(region, c.functionName, c.qualifier);
  return out;
}

export class ConcurrencyService {
  /**
   * "reserved": a function's reservation changed; "provisioned": a provisioned config was put or
   * deleted; "allocated": the worker's progress on a config was recorded.
   */
  readonly events = new EventEmitter<{
    reserved: [string];
    allocated: [string];
    provisioned: [ProvisionedConfig | { functionName: string; qualifier: string; deleted: true }];
  }>();

  constructor(
    private readonly store: Store,
    private readonly accountConcurrency: number,
  ) {}

  private async requireFunction(fn: string, region: string): Promise<void> {
    const row = await this.store.db
      .selectFrom("functions")
      .select("name")
      .where("name", "=", fn)
      .executeTakeFirst();
    if (!row) throw ResourceNotFound(`Function not found: ${functionArn(region, fn)}`);
  }

  async reservations(): Promise<Map<string, number>> {
    const rows = await this.store.db
      .selectFrom("functions")
      .select(["name", "reserved_concurrency"])
      .where("reserved_concurrency", "is not", null)
      .execute();
    return new Map(rows.map((r) => [r.name, r.reserved_concurrency as number]));
  }

  async unreserved(): Promise<number> {
    let reserved = 0;
    for (const n of (await this.reservations()).values()) reserved += n;
    return this.accountConcurrency - reserved;
  }

  async getReserved(fn: string, region: string): Promise<number | null> {
    await this.requireFunction(fn, region);
    const row = await this.store.db
      .selectFrom("functions")
      .select("reserved_concurrency")
      .where("name", "=", fn)
      .executeTakeFirstOrThrow();
    return row.reserved_concurrency;
  }

  async putReserved(fn: string, value: unknown, region: string): Promise<number> {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      throw constraintViolation(
        "reservedConcurrentExecutions",
        value ?? "null",
        "Member must have value greater than or equal to 0",
      );
    }
    await this.requireFunction(fn, region);
    const others = await this.reservations();
    others.delete(fn);
    let reservedElsewhere = 0;
    for (const n of others.values()) reservedElsewhere += n;
    const floor = minimumUnreserved(this.accountConcurrency);
    if (this.accountConcurrency - reservedElsewhere - value < floor) {
      throw InvalidParameterValue(
        `Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [${floor}].`,
      );
    }
    const provisioned = await this.store.db
      .selectFrom("provisioned_concurrency")
      .select("requested")
      .where("function_name", "=", fn)
      .execute();
    const totalProvisioned = provisioned.reduce((a, r) => a + r.requested, 0);
    if (value < totalProvisioned) {
      throw ResourceConflict(
        `Specified ReservedConcurrentExecutions for function is less than the function's provisioned concurrency (${totalProvisioned}).`,
      );
    }
    await this.store.db
      .updateTable("functions")
      .set({ reserved_concurrency: value })
      .where("name", "=", fn)
      .execute();
    this.events.emit("reserved", fn);
    return value;
  }

  async deleteReserved(fn: string, region: string): Promise<void> {
    await this.requireFunction(fn, region);
    await this.store.db
      .updateTable("functions")
      .set({ reserved_concurrency: null })
      .where("name", "=", fn)
      .execute();
    this.events.emit("reserved", fn);
  }

  private async checkQualifier(fn: string, qualifier: string | undefined, region: string): Promise<string> {
    await this.requireFunction(fn, region);
    if (qualifier === undefined || qualifier === "") {
      throw constraintViolation("qualifier", "null", "Member must not be null");
    }
    if (qualifier === LATEST) {
      throw InvalidParameterValue(
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions.",
      );
    }
    const exists = isAliasQualifier(qualifier)
      ? await this.store.db
          .selectFrom("aliases")
          .select("name")
          .where("function_name", "=", fn)
          .where("name", "=", qualifier)
          .executeTakeFirst()
      : await this.store.db
          .selectFrom("function_versions")
          .select("version")
          .where("function_name", "=", fn)
          .where("version", "=", qualifier)
          .executeTakeFirst();
    if (!exists) throw ResourceNotFound(`Function not found: ${functionArn(region, fn, qualifier)}`);
    return qualifier;
  }

  /**
   * Lambda refuses provisioned concurrency on both an alias and the version
   * it points to (the same environments would be counted twice).
   */
  private async checkNotProvisionedTwice(fn: string, q: string): Promise<void> {
    const db = this.store.db;
    const configured = new Set(
      (
        await db
          .selectFrom("provisioned_concurrency")
          .select("qualifier")
          .where("function_name", "=", fn)
          .execute()
      ).map((r) => r.qualifier),
    );
    configured.delete(q);
    if (configured.size === 0) return;
    const aliases = await db
      .selectFrom("aliases")
      .select(["name", "function_version"])
      .where("function_name", "=", fn)
      .execute();
    const clash = isAliasQualifier(q)
      ? aliases.find((a) => a.name === q && configured.has(a.function_version))?.function_version
      : aliases.find((a) => a.function_version === q && configured.has(a.name))?.name;
    // Lambda's texts (localstack's Lambda provider, kept in step with responses recorded on AWS).
    if (clash !== undefined) {
      throw ResourceConflict(
        isAliasQualifier(q)
          ? "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
          : "Version is pointed by a Provisioned Concurrency alias",
      );
    }
  }

  async putProvisioned(
    fn: string,
    qualifier: string | undefined,
    value: unknown,
    region: string,
  ): Promise<ProvisionedConfig> {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      throw constraintViolation(
        "provisionedConcurrentExecutions",
        value ?? "null",
        "Member must have value greater than or equal to 1",
      );
    }
    const q = await this.checkQualifier(fn, qualifier, region);
    await this.checkNotProvisionedTwice(fn, q);
    const reserved = await this.getReserved(fn, region);
    const others = await this.store.db
      .selectFrom("provisioned_concurrency")
      .select("requested")
      .where("function_name", "=", fn)
      .where("qualifier", "!=", q)
      .execute();
    const total = others.reduce((a, r) => a + r.requested, 0) + value;
    if (reserved !== null && total > reserved) {
      throw InvalidParameterValue(
        `Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function (${reserved}).`,
      );
    }
    if (total > (await this.unreserved()) - minimumUnreserved(this.accountConcurrency) && reserved === null) {
      throw InvalidParameterValue(
        "Requested Provisioned Concurrency would leave too little unreserved concurrency in the account.",
      );
    }
    const row: ProvisionedConcurrencyTable = {
      function_name: fn,
      qualifier: q,
      requested: value,
      allocated: 0,
      available: 0,
      status: "IN_PROGRESS",
      status_reason: null,
      last_modified: Date.now(),
    };
    await this.store.db
      .insertInto("provisioned_concurrency")
      .values(row)
      .onConflict((oc) =>
        oc.columns(["function_name", "qualifier"]).doUpdateSet({
          requested: value,
          status: "IN_PROGRESS",
          status_reason: null,
          last_modified: row.last_modified,
        }),
      )
      .execute();
    const config = await this.getProvisioned(fn, q, region);
    this.events.emit("provisioned", config);
    return config;
  }

  async getProvisioned(
    fn: string,
    qualifier: string | undefined,
    region: string,
  ): Promise<ProvisionedConfig> {
    const q = await this.checkQualifier(fn, qualifier, region);
    const row = await this.store.db
      .selectFrom("provisioned_concurrency")
      .selectAll()
      .where("function_name", "=", fn)
      .where("qualifier", "=", q)
      .executeTakeFirst();
    if (!row)
      throw ProvisionedConcurrencyConfigNotFound("No Provisioned Concurrency Config found for this function");
    return toConfig(row);
  }

  async listProvisioned(fn: string, region: string): Promise<ProvisionedConfig[]> {
    await this.requireFunction(fn, region);
    const rows = await this.store.db
      .selectFrom("provisioned_concurrency")
      .selectAll()
      .where("function_name", "=", fn)
      .orderBy("qualifier")
      .execute();
    return rows.map(toConfig);
  }

  /** Every config (the worker provisions them at start). */
  async allProvisioned(): Promise<ProvisionedConfig[]> {
    return (await this.store.db.selectFrom("provisioned_concurrency").selectAll().execute()).map(toConfig);
  }

  async deleteProvisioned(fn: string, qualifier: string | undefined, region: string): Promise<void> {
    const q = await this.checkQualifier(fn, qualifier, region);
    await this.store.db
      .deleteFrom("provisioned_concurrency")
      .where("function_name", "=", fn)
      .where("qualifier", "=", q)
      .execute();
    this.events.emit("provisioned", { functionName: fn, qualifier: q, deleted: true });
  }

  /** Record the worker's progress on a config. */
  async reportProvisioned(
    fn: string,
    qualifier: string,
    p: { allocated: number; available: number; status: ProvisionedConfig["status"]; reason?: string },
  ) {
    await this.store.db
      .updateTable("provisioned_concurrency")
      .set({
        allocated: p.allocated,
        available: p.available,
        status: p.status,
        status_reason: p.reason ?? null,
      })
      .where("function_name", "=", fn)
      .where("qualifier", "=", qualifier)
      .execute();
    this.events.emit("allocated", fn);
  }
}
