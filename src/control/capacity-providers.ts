/**
 * Capacity providers (Lambda Managed Instances): the API shape Lambda has
 * (Create/Get/Update/Delete/ListCapacityProviders,
 * ListFunctionVersionsByCapacityProvider), mapped onto Lambent's workers.
 *
 * What maps: a provider is a name functions refer to in
 * CapacityProviderConfig; a function on a provider is served by
 * multi-concurrency environments (PerExecutionEnvironmentMaxConcurrency events
 * at once each; see worker/pool.ts). What does not: Lambent has no EC2
 * instances to launch, so VpcConfig, PermissionsConfig, InstanceRequirements,
 * CapacityProviderScalingConfig, KmsKeyArn, PropagateTags and TelemetryConfig
 * are validated (by the model), stored and shown back, and change nothing; a
 * provider is Active as soon as it is created; the environments run on this
 * server's workers like any others.
 */
import type { Kysely } from "kysely";
import { ACCOUNT_ID } from "../config.js";
import { InvalidParameterValue, LambdaError, ResourceConflict, ResourceNotFound } from "../errors.js";
import { objectColumn } from "../store/columns.js";
import type { CapacityProvidersTable, Database } from "../store/schema.js";
import type { Store } from "../store/store.js";
import { functionArn } from "./arn.js";
import { lambdaTimestamp, storedConfigColumn } from "./function-config.js";
import { validateTags } from "./functions.js";
import { pageAfter } from "./marker.js";

/** The settings a provider stores as given (the members of CapacityProvider besides its ARN, State and time). */
const SETTINGS = [
  "VpcConfig",
  "PermissionsConfig",
  "InstanceRequirements",
  "CapacityProviderScalingConfig",
  "KmsKeyArn",
  "PropagateTags",
  "TelemetryConfig",
] as const;
/** What UpdateCapacityProvider may change. */
const UPDATABLE = ["CapacityProviderScalingConfig", "PropagateTags", "TelemetryConfig"] as const;

/** Lambda's quota of capacity providers per account and region (Lambent applies it per server). */
export const MAX_CAPACITY_PROVIDERS = 1000;

const ARN_RE =
  /^arn:aws[a-zA-Z-]*:lambda:(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso[a-z]?))?-[a-z]+-\d:(\d{12}):capacity-provider:([a-zA-Z0-9-_]+)$/;

export function capacityProviderArn(region: string, name: string): string {
  return `arn:aws:lambda:${region}:${ACCOUNT_ID}:capacity-provider:${name}`;
}

/** A CapacityProviderName (a name or an ARN, as the model allows) → the name. */
export function capacityProviderName(nameOrArn: string): string {
  if (!nameOrArn.startsWith("arn:")) return nameOrArn;
  const m = ARN_RE.exec(nameOrArn);
  if (!m || m[1] !== ACCOUNT_ID) throw InvalidParameterValue(`Invalid capacity provider ARN: ${nameOrArn}`);
  return m[2] as string;
}

type Input = Record<string, unknown>;

export class CapacityProviderService {
  constructor(private readonly store: Store) {}

  private get db(): Kysely<Database> {
    return this.store.db;
  }

  private async row(name: string): Promise<CapacityProvidersTable> {
    const row = await this.db
      .selectFrom("capacity_providers")
      .selectAll()
      .where("name", "=", name)
      .executeTakeFirst();
    if (!row) throw ResourceNotFound(`Capacity provider not found: ${name}`);
    return row;
  }

  /** Lambda's CapacityProvider shape. */
  private shape(row: CapacityProvidersTable, region: string, state = "Active"): Record<string, unknown> {
    const settings = objectColumn("capacity_providers", "config", row.config);
    return {
      CapacityProviderArn: capacityProviderArn(region, row.name),
      State: state,
      ...settings,
      LastModified: lambdaTimestamp(Number(row.last_modified)),
    };
  }

  async create(input: Input, region: string): Promise<Record<string, unknown>> {
    const name = capacityProviderName(String(input.CapacityProviderName));
    const tags = validateTags(input.Tags ?? {});
    const settings: Input = {};
    for (const k of SETTINGS) if (input[k] !== undefined) settings[k] = input[k];
    const row: CapacityProvidersTable = {
      name,
      config: JSON.stringify(settings),
      tags: JSON.stringify(tags),
      last_modified: Date.now(),
    };
    await this.db.transaction().execute(async (tx) => {
      const { n } = await tx
        .selectFrom("capacity_providers")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .executeTakeFirstOrThrow();
      if (Number(n) >= MAX_CAPACITY_PROVIDERS) {
        throw new LambdaError(
          "CapacityProviderLimitExceededException",
          400,
          `You have reached the limit of ${MAX_CAPACITY_PROVIDERS} capacity providers.`,
        );
      }
      const exists = await tx
        .selectFrom("capacity_providers")
        .select("name")
        .where("name", "=", name)
        .executeTakeFirst();
      if (exists) throw ResourceConflict(`Capacity provider already exists: ${name}`);
      await tx.insertInto("capacity_providers").values(row).execute();
    });
    return this.shape(row, region);
  }

  async get(nameOrArn: string, region: string): Promise<Record<string, unknown>> {
    return this.shape(await this.row(capacityProviderName(nameOrArn)), region);
  }

  async update(nameOrArn: string, input: Input, region: string): Promise<Record<string, unknown>> {
    const name = capacityProviderName(nameOrArn);
    const row = await this.row(name);
    const settings = objectColumn("capacity_providers", "config", row.config) as Input;
    for (const k of UPDATABLE) if (input[k] !== undefined) settings[k] = input[k];
    const updated = { ...row, config: JSON.stringify(settings), last_modified: Date.now() };
    await this.db
      .updateTable("capacity_providers")
      .set({ config: updated.config, last_modified: updated.last_modified })
      .where("name", "=", name)
      .execute();
    return this.shape(updated, region);
  }

  /** Refused while a function version uses it (Lambda: ResourceConflictException). */
  async delete(nameOrArn: string, region: string): Promise<Record<string, unknown>> {
    const name = capacityProviderName(nameOrArn);
    const row = await this.row(name);
    const users = await this.versionsOf(name);
    if (users.length > 0) {
      throw ResourceConflict(
        `Capacity provider ${name} is in use by ${users.length} function version(s), e.g. ${functionArn(region, users[0]?.function_name ?? "", users[0]?.version)}.`,
      );
    }
    await this.db.deleteFrom("capacity_providers").where("name", "=", name).execute();
    return this.shape(row, region, "Deleting");
  }

  async list(
    region: string,
    opts: { state?: string; marker?: string; maxItems: number },
  ): Promise<Record<string, unknown>> {
    // Every provider is Active: another State filter matches none.
    const rows =
      opts.state === undefined || opts.state === "Active"
        ? await this.db.selectFrom("capacity_providers").selectAll().execute()
        : [];
    const { page, nextMarker } = pageAfter(rows, (r) => r.name, opts.marker, opts.maxItems);
    return {
      CapacityProviders: page.map((r) => this.shape(r, region)),
      ...(nextMarker ? { NextMarker: nextMarker } : {}),
    };
  }

  async listFunctionVersions(
    nameOrArn: string,
    region: string,
    opts: { marker?: string; maxItems: number },
  ): Promise<Record<string, unknown>> {
    const name = capacityProviderName(nameOrArn);
    await this.row(name);
    const versions = await this.versionsOf(name);
    const items = versions.map((v) => ({
      FunctionArn: functionArn(region, v.function_name, v.version),
      State: v.state,
    }));
    const { page, nextMarker } = pageAfter(items, (i) => i.FunctionArn, opts.marker, opts.maxItems);
    return {
      CapacityProviderArn: capacityProviderArn(region, name),
      FunctionVersions: page,
      ...(nextMarker ? { NextMarker: nextMarker } : {}),
    };
  }

  /** Checks a function's CapacityProviderArn: this account's, and a provider that exists. */
  async check(arn: string): Promise<void> {
    const m = ARN_RE.exec(arn);
    if (!m || m[1] !== ACCOUNT_ID) throw InvalidParameterValue(`Invalid capacity provider ARN: ${arn}`);
    const exists = await this.db
      .selectFrom("capacity_providers")
      .select("name")
      .where("name", "=", m[2] as string)
      .executeTakeFirst();
    if (!exists) throw InvalidParameterValue(`Capacity provider not found: ${arn}`);
  }

  /** The function versions whose configuration names this provider. */
  private async versionsOf(name: string) {
    const rows = await this.db
      .selectFrom("function_versions")
      .select(["function_name", "version", "config", "state"])
      .where("config", "like", `%capacity-provider:${name}"%`)
      .execute();
    return rows.filter((r) => {
      const arn = storedConfigColumn(r.config).CapacityProvider?.CapacityProviderArn;
      return arn !== undefined && ARN_RE.exec(arn)?.[2] === name;
    });
  }
}
