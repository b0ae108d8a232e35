/**
 * Code signing configurations and the per-function settings kept beside a
 * function's versions: its code signing config, recursive-loop handling,
 * runtime management and scaling.
 *
 * Code signing configs are stored and returned as Lambda does; Lambent does
 * not verify signatures (there is no AWS Signer here): an Enforce policy is
 * recorded, not enforced.
 */
import { randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import { ACCOUNT_ID } from "../config.js";
import { InvalidParameterValue, LambdaError, ResourceConflict, ResourceNotFound } from "../errors.js";
import { numberMapColumn, objectColumn, requireMembers } from "../store/columns.js";
import type { CodeSigningConfigsTable, Database } from "../store/schema.js";
import type { Store } from "../store/store.js";
import { functionArn } from "./arn.js";
import { lambdaTimestamp } from "./function-config.js";
import { type FunctionService, LATEST } from "./functions.js";
import { decodeMarker, encodeMarker } from "./marker.js";

const CSC_ARN_RE = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):code-signing-config:(csc-[a-z0-9]{17})$/;

export const CodeSigningConfigNotFound = (message: string) =>
  new LambdaError("CodeSigningConfigNotFoundException", 404, message);

export function cscArn(region: string, id: string): string {
  return `arn:aws:lambda:${region}:${ACCOUNT_ID}:code-signing-config:${id}`;
}

type Kind = "code-signing" | "recursion" | "runtime-management" | "scaling";

export class FunctionSettingsService {
  constructor(
    private readonly store: Store,
    private readonly functions: FunctionService,
  ) {}

  private get db(): Kysely<Database> {
    return this.store.db;
  }

  // ---- code signing configs ----

  private show(row: CodeSigningConfigsTable, region: string) {
    const out: Record<string, unknown> = {
      CodeSigningConfigId: row.id,
      CodeSigningConfigArn: cscArn(region, row.id),
      Description: row.description,
      AllowedPublishers: { SigningProfileVersionArns: JSON.parse(row.allowed_publishers) },
      CodeSigningPolicies: { UntrustedArtifactOnDeployment: row.untrusted_artifact_on_deployment },
      LastModified: lambdaTimestamp(row.last_modified),
    };
    return out;
  }

  /** The id in a code signing config ARN of this account and region. */
  private cscId(arn: string, region: string, missing: (m: string) => LambdaError): string {
    const m = CSC_ARN_RE.exec(arn);
    if (!m) throw InvalidParameterValue(`Invalid code signing configuration ARN: ${arn}`);
    if (m[1] !== region || m[2] !== ACCOUNT_ID) throw this.cscMissing(arn, missing);
    return m[3] as string;
  }

  /**
   * A missing code signing config, as Lambda words it (localstack's Lambda provider, kept in step with
   * responses recorded on AWS): naming one to attach to a function is CodeSigningConfigNotFoundException
   * "The code signing configuration cannot be found. Check that the provided configuration is not
   * deleted: <arn>."; reading, changing or deleting one is ResourceNotFoundException "The Lambda code
   * signing configuration <arn> can not be found."
   */
  private cscMissing(arn: string, missing: (m: string) => LambdaError): LambdaError {
    return missing === CodeSigningConfigNotFound
      ? missing(
          `The code signing configuration cannot be found. Check that the provided configuration is not deleted: ${arn}.`,
        )
      : missing(`The Lambda code signing configuration ${arn} can not be found.`);
  }

  private async cscRow(arn: string, region: string, missing = ResourceNotFound) {
    const id = this.cscId(arn, region, missing);
    const row = await this.db
      .selectFrom("code_signing_configs")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    if (!row) throw this.cscMissing(arn, missing);
    return row;
  }

  async createCodeSigningConfig(input: Record<string, unknown>, region: string) {
    const publishers = (input.AllowedPublishers as { SigningProfileVersionArns?: string[] } | undefined)
      ?.SigningProfileVersionArns;
    if (!publishers) throw InvalidParameterValue("AllowedPublishers must be provided.");
    const policy =
      (input.CodeSigningPolicies as { UntrustedArtifactOnDeployment?: string } | undefined)
        ?.UntrustedArtifactOnDeployment ?? "Warn";
    const now = Date.now();
    const row: CodeSigningConfigsTable = {
      id: `csc-${randomBytes(9).toString("hex").slice(0, 17)}`,
      description: typeof input.Description === "string" ? input.Description : "",
      allowed_publishers: JSON.stringify(publishers),
      untrusted_artifact_on_deployment: policy,
      created_at: now,
      last_modified: now,
    };
    await this.db.insertInto("code_signing_configs").values(row).execute();
    return { CodeSigningConfig: this.show(row, region) };
  }

  async getCodeSigningConfig(arn: string, region: string) {
    return { CodeSigningConfig: this.show(await this.cscRow(arn, region), region) };
  }

  async updateCodeSigningConfig(arn: string, input: Record<string, unknown>, region: string) {
    const row = await this.cscRow(arn, region);
    const next = { ...row };
    if (typeof input.Description === "string") next.description = input.Description;
    const publishers = (input.AllowedPublishers as { SigningProfileVersionArns?: string[] } | undefined)
      ?.SigningProfileVersionArns;
    if (publishers) next.allowed_publishers = JSON.stringify(publishers);
    const policy = (input.CodeSigningPolicies as { UntrustedArtifactOnDeployment?: string } | undefined)
      ?.UntrustedArtifactOnDeployment;
    if (policy) next.untrusted_artifact_on_deployment = policy;
    next.last_modified = Date.now();
    const { id, ...set } = next;
    await this.db.updateTable("code_signing_configs").set(set).where("id", "=", id).execute();
    return { CodeSigningConfig: this.show(next, region) };
  }

  async deleteCodeSigningConfig(arn: string, region: string): Promise<void> {
    const row = await this.cscRow(arn, region);
    await this.db.transaction().execute(async (tx) => {
      const used = await tx
        .selectFrom("function_settings")
        .select("function_name")
        .where("kind", "=", "code-signing")
        .where("value", "=", row.id)
        .execute();
      if (used.length > 0) {
        throw ResourceConflict(
          `The code signing configuration cannot be deleted because it is used by the following functions: [${used
            .map((u) => functionArn(region, u.function_name))
            .join(", ")}]`,
        );
      }
      await tx.deleteFrom("code_signing_configs").where("id", "=", row.id).execute();
    });
  }

  async listCodeSigningConfigs(marker: string | undefined, maxItems: number, region: string) {
    const after = marker === undefined ? undefined : decodeMarker(marker);
    const rows = await this.db
      .selectFrom("code_signing_configs")
      .selectAll()
      .$if(after !== undefined, (q) => q.where("id", ">", after as string))
      .orderBy("id")
      .limit(maxItems + 1)
      .execute();
    const page = rows.slice(0, maxItems);
    const out: Record<string, unknown> = { CodeSigningConfigs: page.map((r) => this.show(r, region)) };
    const last = page[page.length - 1];
    if (rows.length > maxItems && last) out.NextMarker = encodeMarker(last.id);
    return out;
  }

  async listFunctionsByCodeSigningConfig(
    arn: string,
    marker: string | undefined,
    maxItems: number,
    region: string,
  ) {
    const row = await this.cscRow(arn, region);
    const after = marker === undefined ? undefined : decodeMarker(marker);
    const rows = await this.db
      .selectFrom("function_settings")
      .select("function_name")
      .where("kind", "=", "code-signing")
      .where("value", "=", row.id)
      .$if(after !== undefined, (q) => q.where("function_name", ">", after as string))
      .orderBy("function_name")
      .limit(maxItems + 1)
      .execute();
    const page = rows.slice(0, maxItems);
    const out: Record<string, unknown> = {
      FunctionArns: page.map((r) => functionArn(region, r.function_name)),
    };
    const last = page[page.length - 1];
    if (rows.length > maxItems && last) out.NextMarker = encodeMarker(last.function_name);
    return out;
  }

  // ---- per-function settings ----

  private async get(name: string, qualifier: string, kind: Kind): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("function_settings")
      .select("value")
      .where("function_name", "=", name)
      .where("qualifier", "=", qualifier)
      .where("kind", "=", kind)
      .executeTakeFirst();
    return row?.value;
  }

  private async put(name: string, qualifier: string, kind: Kind, value: string): Promise<void> {
    await this.db
      .insertInto("function_settings")
      .values({ function_name: name, qualifier, kind, value })
      .onConflict((oc) => oc.columns(["function_name", "qualifier", "kind"]).doUpdateSet({ value }))
      .execute();
  }

  private async remove(name: string, qualifier: string, kind: Kind): Promise<void> {
    await this.db
      .deleteFrom("function_settings")
      .where("function_name", "=", name)
      .where("qualifier", "=", qualifier)
      .where("kind", "=", kind)
      .execute();
  }

  /** Attach a code signing config given at CreateFunction (the function row exists by now). */
  async attachOnCreate(name: string, arn: string, region: string): Promise<void> {
    const row = await this.cscRow(arn, region, CodeSigningConfigNotFound);
    await this.put(name, "", "code-signing", row.id);
  }

  /** Check a CreateFunction's CodeSigningConfigArn before anything is written. */
  async checkCodeSigningConfig(arn: string, region: string): Promise<void> {
    await this.cscRow(arn, region, CodeSigningConfigNotFound);
  }

  async putFunctionCodeSigningConfig(name: string, arn: string, region: string) {
    await this.functions.getFunctionRow(name, region);
    const row = await this.cscRow(arn, region, CodeSigningConfigNotFound);
    await this.put(name, "", "code-signing", row.id);
    return { CodeSigningConfigArn: cscArn(region, row.id), FunctionName: name };
  }

  async getFunctionCodeSigningConfig(name: string, region: string) {
    await this.functions.getFunctionRow(name, region);
    const id = await this.get(name, "", "code-signing");
    // No config attached: Lambda answers an empty ARN (the member is required in the model).
    return { CodeSigningConfigArn: id ? cscArn(region, id) : "", FunctionName: name };
  }

  async deleteFunctionCodeSigningConfig(name: string, region: string): Promise<void> {
    await this.functions.getFunctionRow(name, region);
    await this.remove(name, "", "code-signing");
  }

  async getRecursionConfig(name: string, region: string) {
    await this.functions.getFunctionRow(name, region);
    return { RecursiveLoop: (await this.get(name, "", "recursion")) ?? "Terminate" };
  }

  /** Whether recursive loops of this function are stopped (the default) — for the invoke paths. */
  async terminatesLoops(name: string): Promise<boolean> {
    return ((await this.get(name, "", "recursion")) ?? "Terminate") === "Terminate";
  }

  async putRecursionConfig(name: string, loop: string, region: string) {
    await this.functions.getFunctionRow(name, region);
    await this.put(name, "", "recursion", loop);
    return { RecursiveLoop: loop };
  }

  /** A qualifier naming $LATEST or an existing published version (not an alias). */
  private async versionQualifier(name: string, qualifier: string | undefined, region: string) {
    const version = qualifier ?? LATEST;
    await this.functions.getVersion({ name, qualifier: version }, region);
    return version;
  }

  async getRuntimeManagementConfig(name: string, qualifier: string | undefined, region: string) {
    const version = await this.versionQualifier(name, qualifier, region);
    const raw = await this.get(name, version, "runtime-management");
    let cfg: { UpdateRuntimeOn: string; RuntimeVersionArn?: string } | undefined;
    if (raw) {
      const v = objectColumn("function_settings", "value", raw);
      requireMembers<{ UpdateRuntimeOn: string; RuntimeVersionArn?: string }>(
        "function_settings",
        "value",
        v,
        {
          UpdateRuntimeOn: "string",
          RuntimeVersionArn: "string?",
        },
      );
      cfg = v;
    }
    const out: Record<string, unknown> = {
      UpdateRuntimeOn: cfg?.UpdateRuntimeOn ?? "Auto",
      FunctionArn: functionArn(region, name, version),
    };
    if (cfg?.RuntimeVersionArn) out.RuntimeVersionArn = cfg.RuntimeVersionArn;
    return out;
  }

  async putRuntimeManagementConfig(
    name: string,
    qualifier: string | undefined,
    input: { UpdateRuntimeOn?: unknown; RuntimeVersionArn?: unknown },
    region: string,
  ) {
    const version = await this.versionQualifier(name, qualifier, region);
    const mode = input.UpdateRuntimeOn as string;
    const arn = input.RuntimeVersionArn as string | undefined;
    if (mode === "Manual" && !arn) {
      throw InvalidParameterValue("RuntimeVersionArn must be specified when UpdateRuntimeOn is Manual.");
    }
    if (mode !== "Manual" && arn) {
      throw InvalidParameterValue("RuntimeVersionArn can only be specified when UpdateRuntimeOn is Manual.");
    }
    const value: Record<string, string> = { UpdateRuntimeOn: mode };
    if (arn) value.RuntimeVersionArn = arn;
    await this.put(name, version, "runtime-management", JSON.stringify(value));
    return { ...value, FunctionArn: functionArn(region, name, version) };
  }

  async getScalingConfig(name: string, qualifier: string, region: string) {
    const version = await this.versionQualifier(name, qualifier, region);
    const raw = await this.get(name, version, "scaling");
    const out: Record<string, unknown> = { FunctionArn: functionArn(region, name, version) };
    if (raw) {
      const cfg = numberMapColumn("function_settings", "value", raw);
      out.RequestedFunctionScalingConfig = cfg;
      out.AppliedFunctionScalingConfig = cfg;
    }
    return out;
  }

  async putScalingConfig(name: string, qualifier: string, config: unknown, region: string) {
    const version = await this.versionQualifier(name, qualifier, region);
    const cfg = (config ?? {}) as { MinExecutionEnvironments?: number; MaxExecutionEnvironments?: number };
    if (
      cfg.MinExecutionEnvironments !== undefined &&
      cfg.MaxExecutionEnvironments !== undefined &&
      cfg.MinExecutionEnvironments > cfg.MaxExecutionEnvironments
    ) {
      throw InvalidParameterValue(
        "MinExecutionEnvironments must be less than or equal to MaxExecutionEnvironments.",
      );
    }
    const value: Record<string, number> = {};
    if (cfg.MinExecutionEnvironments !== undefined)
      value.MinExecutionEnvironments = cfg.MinExecutionEnvironments;
    if (cfg.MaxExecutionEnvironments !== undefined)
      value.MaxExecutionEnvironments = cfg.MaxExecutionEnvironments;
    await this.put(name, version, "scaling", JSON.stringify(value));
    const v = await this.functions.getVersion({ name, qualifier: version }, region);
    return { FunctionState: v.state };
  }
}
