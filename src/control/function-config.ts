/**
 * A function version's configuration: what is stored, how requests are
 * validated into it, and how it is shown (Lambda's FunctionConfiguration).
 */
import { createHash } from "node:crypto";
import type { Limits } from "../config.js";
import { constraintViolation, InvalidParameterValue, integerIn, ValidationError } from "../errors.js";
import { RUNTIMES, type Runtime, runtimeFamily as runtimeFamilyOf } from "../runtimes/catalog.js";
import { objectColumn, requireMembers } from "../store/columns.js";
import type { FunctionVersionsTable } from "../store/schema.js";
import { functionArn } from "./arn.js";

export { RUNTIMES, type Runtime, runtimeFamily } from "../runtimes/catalog.js";

/** What is stored per version (JSON in function_versions.config). */
export interface StoredConfig {
  Runtime: Runtime;
  Handler: string;
  Role: string;
  Description: string;
  Timeout: number;
  MemorySize: number;
  Environment: Record<string, string>;
  EphemeralStorageSize: number;
  Layers: string[];
  Architectures: string[];
  TracingMode: "Active" | "PassThrough";
  DeadLetterTargetArn?: string;
  KMSKeyArn?: string;
  LogFormat: "Text" | "JSON";
  LogGroup?: string;
  /** With LogFormat JSON only (Lambda defaults both to INFO). */
  ApplicationLogLevel?: string;
  SystemLogLevel?: string;
  /** SnapStart.ApplyOn when it is PublishedVersions (absent: None). */
  SnapStartApplyOn?: "PublishedVersions";
  /** On a published version: the RevisionId of $LATEST it was published from. */
  PublishedFromRevisionId?: string;
  /** CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig (absent: Lambda's default compute). */
  CapacityProvider?: CapacityProviderSettings;
}

/** A function's Lambda Managed Instances settings, as given (defaults are worked out where used). */
export interface CapacityProviderSettings {
  CapacityProviderArn: string;
  PerExecutionEnvironmentMaxConcurrency?: number;
  ExecutionEnvironmentMemoryGiBPerVCpu?: number;
}

/**
 * The runtimes Lambda Managed Instances run ("Node.js 22 and later", "Python 3.13 and later",
 * OS-only `provided.al2023`: AWS docs, "Lambda Managed Instances runtimes"), and the default
 * PerExecutionEnvironmentMaxConcurrency per vCPU of each family (Node.js 64, Python 16; provided:
 * Lambent's choice, 16).
 */
const MULTI_CONCURRENCY_RUNTIMES: ReadonlySet<Runtime> = new Set<Runtime>([
  "nodejs22.x",
  "nodejs24.x",
  "python3.13",
  "python3.14",
  "provided.al2023",
]);
const DEFAULT_CONCURRENCY_PER_VCPU: Record<string, number> = { nodejs: 64, python: 16, provided: 16 };
/** Lambda's default memory per vCPU of a managed-instances environment (GiB). */
const DEFAULT_GIB_PER_VCPU = 2;

/**
 * Events one environment of a capacity-provider function runs at once: the configured
 * PerExecutionEnvironmentMaxConcurrency, else the runtime's default per vCPU times the
 * environment's vCPUs (its memory over ExecutionEnvironmentMemoryGiBPerVCpu, at least 1).
 */
export function maxConcurrency(c: Pick<StoredConfig, "CapacityProvider" | "MemorySize" | "Runtime">): number {
  const cp = c.CapacityProvider;
  if (!cp) return 1;
  if (cp.PerExecutionEnvironmentMaxConcurrency !== undefined) return cp.PerExecutionEnvironmentMaxConcurrency;
  const vcpus = Math.max(
    1,
    Math.floor(c.MemorySize / 1024 / (cp.ExecutionEnvironmentMemoryGiBPerVCpu ?? DEFAULT_GIB_PER_VCPU)),
  );
  return (DEFAULT_CONCURRENCY_PER_VCPU[runtimeFamilyOf(c.Runtime)] ?? 1) * vcpus;
}

/** function_versions.config, checked: the members every stored configuration has. */
export function storedConfigColumn(text: string): StoredConfig {
  const v = objectColumn("function_versions", "config", text);
  requireMembers<StoredConfig>("function_versions", "config", v, {
    Runtime: "string",
    Handler: "string",
    Role: "string",
    Timeout: "number",
    MemorySize: "number",
    Environment: "object",
    EphemeralStorageSize: "number",
    Layers: "array",
    Architectures: "array",
    PublishedFromRevisionId: "string?",
  });
  return v;
}

export const DEFAULTS = {
  Timeout: 3,
  MemorySize: 128,
  EphemeralStorageSize: 512,
  Description: "",
};

const ROLE_RE = /^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role\/?[a-zA-Z_0-9+=,.@\-_/]+$/;
const HANDLER_RE = /^[^\s]+$/;
const LAYER_VERSION_ARN_RE = /^arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+$/;
const ENV_KEY_RE = /^[a-zA-Z]([a-zA-Z0-9_])+$/;
const RESERVED_ENV = new Set([
  "_HANDLER",
  "_X_AMZN_TRACE_ID",
  "AWS_DEFAULT_REGION",
  "AWS_REGION",
  "AWS_EXECUTION_ENV",
  "AWS_LAMBDA_FUNCTION_NAME",
  "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
  "AWS_LAMBDA_FUNCTION_VERSION",
  "AWS_LAMBDA_INITIALIZATION_TYPE",
  "AWS_LAMBDA_LOG_GROUP_NAME",
  "AWS_LAMBDA_LOG_STREAM_NAME",
  "AWS_ACCESS_KEY",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_LAMBDA_RUNTIME_API",
  "LAMBDA_TASK_ROOT",
  "LAMBDA_RUNTIME_DIR",
]);

function str(member: string, v: unknown, maxLen: number): string {
  if (typeof v !== "string") throw constraintViolation(member, v, "Member must be a string");
  if (v.length > maxLen)
    throw constraintViolation(member, v, `Member must have length less than or equal to ${maxLen}`);
  return v;
}

/** The configuration members a Create/UpdateFunctionConfiguration request may carry. */
export interface ConfigInput {
  Runtime?: unknown;
  Handler?: unknown;
  Role?: unknown;
  Description?: unknown;
  Timeout?: unknown;
  MemorySize?: unknown;
  Environment?: unknown;
  EphemeralStorage?: unknown;
  Layers?: unknown;
  Architectures?: unknown;
  TracingConfig?: unknown;
  DeadLetterConfig?: unknown;
  KMSKeyArn?: unknown;
  LoggingConfig?: unknown;
  SnapStart?: unknown;
  CapacityProviderConfig?: unknown;
}

/**
 * Apply the members present in `input` on top of `base`, validating each as
 * Lambda does. Absent members keep their value.
 */
export function applyConfig(base: StoredConfig, input: ConfigInput, limits: Limits): StoredConfig {
  const out: StoredConfig = { ...base };
  if (input.Runtime !== undefined) {
    if (typeof input.Runtime !== "string" || !(RUNTIMES as readonly string[]).includes(input.Runtime)) {
      throw InvalidParameterValue(
        `Value ${String(input.Runtime)} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [${RUNTIMES.join(", ")}] or be a valid ARN`,
      );
    }
    out.Runtime = input.Runtime as Runtime;
  }
  if (input.Handler !== undefined) {
    const h = str("handler", input.Handler, 128);
    if (!HANDLER_RE.test(h))
      throw constraintViolation("handler", h, "Member must satisfy regular expression pattern: [^\\s]+");
    out.Handler = h;
  }
  if (input.Role !== undefined) {
    const role = str("role", input.Role, 2048);
    if (!ROLE_RE.test(role)) {
      throw constraintViolation(
        "role",
        role,
        "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
      );
    }
    out.Role = role;
  }
  if (input.Description !== undefined) out.Description = str("description", input.Description, 256);
  if (input.Timeout !== undefined)
    out.Timeout = integerIn("timeout", input.Timeout, 1, limits.timeoutMaxSeconds);
  if (input.MemorySize !== undefined) {
    out.MemorySize = integerIn("memorySize", input.MemorySize, limits.memoryMinMb, limits.memoryMaxMb);
  }
  if (input.Environment !== undefined) out.Environment = validateEnvironment(input.Environment, limits);
  if (input.EphemeralStorage !== undefined) {
    const size = (input.EphemeralStorage as { Size?: unknown } | null)?.Size;
    out.EphemeralStorageSize = integerIn("ephemeralStorage.size", size, 512, 10240);
  }
  if (input.Layers !== undefined) {
    if (!Array.isArray(input.Layers) || input.Layers.some((l) => typeof l !== "string")) {
      throw constraintViolation("layers", input.Layers, "Member must be a list of strings");
    }
    for (const layer of input.Layers as string[]) {
      if (layer.length > 140 || !LAYER_VERSION_ARN_RE.test(layer)) {
        throw constraintViolation(
          "layers",
          layer,
          "Member must satisfy constraint: [Member must have length less than or equal to 140, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+]",
        );
      }
    }
    if (input.Layers.length > 5) throw InvalidParameterValue("Cannot reference more than 5 layers.");
    out.Layers = input.Layers as string[];
  }
  if (input.Architectures !== undefined) {
    const a = input.Architectures;
    if (!Array.isArray(a) || a.length !== 1 || (a[0] !== "x86_64" && a[0] !== "arm64")) {
      throw constraintViolation(
        "architectures",
        a,
        "Member must have length less than or equal to 1, Member must satisfy enum value set: [x86_64, arm64]",
      );
    }
    out.Architectures = a as string[];
  }
  if (input.TracingConfig !== undefined) {
    const mode = (input.TracingConfig as { Mode?: unknown } | null)?.Mode;
    if (mode !== undefined && mode !== "Active" && mode !== "PassThrough") {
      throw constraintViolation(
        "tracingConfig.mode",
        mode,
        "Member must satisfy enum value set: [Active, PassThrough]",
      );
    }
    if (mode !== undefined) out.TracingMode = mode;
  }
  if (input.DeadLetterConfig !== undefined) {
    const target = (input.DeadLetterConfig as { TargetArn?: unknown } | null)?.TargetArn;
    if (target === undefined || target === "") delete out.DeadLetterTargetArn;
    else out.DeadLetterTargetArn = str("deadLetterConfig.targetArn", target, 1024);
  }
  if (input.KMSKeyArn !== undefined) {
    if (input.KMSKeyArn === "") delete out.KMSKeyArn;
    else out.KMSKeyArn = str("kMSKeyArn", input.KMSKeyArn, 2048);
  }
  if (input.LoggingConfig !== undefined) {
    const lc = input.LoggingConfig as {
      LogFormat?: unknown;
      LogGroup?: unknown;
      ApplicationLogLevel?: unknown;
      SystemLogLevel?: unknown;
    } | null;
    if (lc?.LogFormat !== undefined) {
      if (lc.LogFormat !== "Text" && lc.LogFormat !== "JSON") {
        throw constraintViolation(
          "loggingConfig.logFormat",
          lc.LogFormat,
          "Member must satisfy enum value set: [JSON, Text]",
        );
      }
      out.LogFormat = lc.LogFormat;
    }
    if (lc?.LogGroup !== undefined) out.LogGroup = str("loggingConfig.logGroup", lc.LogGroup, 512);
    const levels = lc?.ApplicationLogLevel !== undefined || lc?.SystemLogLevel !== undefined;
    if (out.LogFormat === "Text" && levels) {
      throw InvalidParameterValue(
        "ApplicationLogLevel and SystemLogLevel can only be set when LogFormat is JSON.",
      );
    }
    if (typeof lc?.ApplicationLogLevel === "string") out.ApplicationLogLevel = lc.ApplicationLogLevel;
    if (typeof lc?.SystemLogLevel === "string") out.SystemLogLevel = lc.SystemLogLevel;
  }
  if (input.SnapStart !== undefined) {
    // The model's enum check (api/validate.ts) already refused other values. AWS accepts the setting
    // for every runtime over the API (localstack/localstack#12006, validated against AWS); it takes
    // effect on the runtimes SnapStart supports (see snapStartResponse).
    const applyOn = (input.SnapStart as { ApplyOn?: unknown } | null)?.ApplyOn;
    if (applyOn === "PublishedVersions") out.SnapStartApplyOn = applyOn;
    else delete out.SnapStartApplyOn;
  }
  if (input.CapacityProviderConfig !== undefined) {
    // Shapes, ranges and the ARN pattern are the model's (api/validate.ts); whether the provider
    // exists is the function service's check.
    const lmi = (
      input.CapacityProviderConfig as { LambdaManagedInstancesCapacityProviderConfig?: unknown } | null
    )?.LambdaManagedInstancesCapacityProviderConfig as Partial<CapacityProviderSettings> | undefined;
    if (!lmi || typeof lmi.CapacityProviderArn !== "string") {
      throw InvalidParameterValue(
        "CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.CapacityProviderArn is required.",
      );
    }
    const n = lmi.PerExecutionEnvironmentMaxConcurrency;
    const ratio = lmi.ExecutionEnvironmentMemoryGiBPerVCpu;
    out.CapacityProvider = {
      CapacityProviderArn: lmi.CapacityProviderArn,
      ...(n !== undefined && n !== null
        ? {
            PerExecutionEnvironmentMaxConcurrency: integerIn(
              "capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig.perExecutionEnvironmentMaxConcurrency",
              n,
              1,
              1600,
            ),
          }
        : {}),
      ...(ratio !== undefined && ratio !== null
        ? { ExecutionEnvironmentMemoryGiBPerVCpu: gibPerVCpu(ratio) }
        : {}),
    };
  }
  if (out.CapacityProvider && !MULTI_CONCURRENCY_RUNTIMES.has(out.Runtime)) {
    throw InvalidParameterValue(
      `The runtime ${out.Runtime} does not support capacity providers. Use one of: ${[...MULTI_CONCURRENCY_RUNTIMES].join(", ")}.`,
    );
  }
  // LogFormat JSON defaults both levels to INFO; Text carries none (AWS docs, "Configuring JSON and
  // plain text log formats": "the default log level is INFO" for JSON; levels apply to JSON only).
  if (out.LogFormat === "JSON") {
    out.ApplicationLogLevel ??= "INFO";
    out.SystemLogLevel ??= "INFO";
  } else {
    delete out.ApplicationLogLevel;
    delete out.SystemLogLevel;
  }
  return out;
}

/** ExecutionEnvironmentMemoryGiBPerVCpu: a number from 2 to 8 (the model's range). */
function gibPerVCpu(v: unknown): number {
  const member =
    "capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig.executionEnvironmentMemoryGiBPerVCpu";
  if (typeof v !== "number" || !Number.isFinite(v))
    throw constraintViolation(member, v, "Member must be a number");
  if (v < 2) throw constraintViolation(member, v, "Member must have value greater than or equal to 2");
  if (v > 8) throw constraintViolation(member, v, "Member must have value less than or equal to 8");
  return v;
}

function validateEnvironment(input: unknown, limits: Limits): Record<string, string> {
  const vars = (input as { Variables?: unknown } | null)?.Variables ?? {};
  if (typeof vars !== "object" || vars === null || Array.isArray(vars)) {
    throw constraintViolation("environment.variables", vars, "Member must be a map of strings");
  }
  const out: Record<string, string> = {};
  const reserved: string[] = [];
  for (const [k, v] of Object.entries(vars)) {
    if (!ENV_KEY_RE.test(k)) {
      // Variable names are sensitive in Lambda's model: the message does not echo them.
      throw ValidationError(
        "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
      );
    }
    if (typeof v !== "string")
      throw constraintViolation("environment.variables", v, "Member must be a string");
    if (RESERVED_ENV.has(k)) reserved.push(k);
    out[k] = v;
  }
  if (reserved.length > 0) {
    throw InvalidParameterValue(
      `Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: ${reserved.join(", ")}`,
    );
  }
  const measured = JSON.stringify(out);
  if (Buffer.byteLength(measured) > limits.envBytes) {
    throw InvalidParameterValue(
      `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${measured}`,
    );
  }
  return out;
}

/**
 * The runtime version ARN Lambent reports for a runtime: stable for a runtime
 * identifier (Lambent updates runtimes with the server, not per function).
 */
export function runtimeVersionArn(region: string, runtime: string): string {
  const digest = createHash("sha256").update(`lambent-runtime:${runtime}`).digest("hex");
  return `arn:aws:lambda:${region}::runtime:${digest}`;
}

/**
 * The runtimes SnapStart works with among Lambent's: "Java 11 and later, Python 3.12 and later,
 * .NET 8 and later" (AWS docs, "Improving startup performance with Lambda SnapStart").
 */
const SNAPSTART_RUNTIMES: ReadonlySet<Runtime> = new Set<Runtime>(["python3.12", "python3.13", "python3.14"]);

/**
 * Lambda's SnapStartResponse: ApplyOn as configured; OptimizationStatus says whether SnapStart is
 * active for that version (API reference, SnapStartResponse: "When you provide a qualified ARN, this
 * response element indicates whether SnapStart is activated for the specified function version"):
 * On only on a published version of a PublishedVersions function whose runtime supports it, never on
 * $LATEST. Lambent stores the setting; it takes no snapshots (an Init runs as without SnapStart).
 */
export function snapStartResponse(
  c: Pick<StoredConfig, "SnapStartApplyOn" | "Runtime">,
  version: string,
): { ApplyOn: "PublishedVersions" | "None"; OptimizationStatus: "On" | "Off" } {
  const applyOn = c.SnapStartApplyOn ?? "None";
  const on = applyOn === "PublishedVersions" && version !== "$LATEST" && SNAPSTART_RUNTIMES.has(c.Runtime);
  return { ApplyOn: applyOn, OptimizationStatus: on ? "On" : "Off" };
}

/** Lambda's LastModified format: 2024-01-31T12:34:56.789+0000. */
export function lambdaTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "+0000");
}

/** The FunctionConfiguration shape of a stored version. */
export function functionConfiguration(
  name: string,
  row: FunctionVersionsTable,
  region: string,
): Record<string, unknown> {
  const c = storedConfigColumn(row.config);
  const qualifier = row.version === "$LATEST" ? undefined : row.version;
  const out: Record<string, unknown> = {
    FunctionName: name,
    FunctionArn: functionArn(region, name, qualifier),
    Runtime: c.Runtime,
    Role: c.Role,
    Handler: c.Handler,
    CodeSize: row.code_size,
    Description: c.Description,
    Timeout: c.Timeout,
    MemorySize: c.MemorySize,
    LastModified: lambdaTimestamp(row.last_modified),
    CodeSha256: Buffer.from(row.code_sha256, "hex").toString("base64"),
    Version: row.version,
    TracingConfig: { Mode: c.TracingMode },
    RevisionId: row.revision_id,
    State: row.state,
    LastUpdateStatus: row.last_update_status,
    PackageType: "Zip",
    Architectures: c.Architectures,
    EphemeralStorage: { Size: c.EphemeralStorageSize },
    SnapStart: snapStartResponse(c, row.version),
    LoggingConfig: {
      LogFormat: c.LogFormat,
      ...(c.ApplicationLogLevel ? { ApplicationLogLevel: c.ApplicationLogLevel } : {}),
      ...(c.SystemLogLevel ? { SystemLogLevel: c.SystemLogLevel } : {}),
      LogGroup: c.LogGroup ?? `/aws/lambda/${name}`,
    },
    RuntimeVersionConfig: { RuntimeVersionArn: runtimeVersionArn(region, c.Runtime) },
  };
  if (Object.keys(c.Environment).length > 0) out.Environment = { Variables: c.Environment };
  if (c.Layers.length > 0) out.Layers = c.Layers.map((Arn) => ({ Arn, CodeSize: 0 }));
  if (c.DeadLetterTargetArn) out.DeadLetterConfig = { TargetArn: c.DeadLetterTargetArn };
  if (c.KMSKeyArn) out.KMSKeyArn = c.KMSKeyArn;
  if (row.state_reason) out.StateReason = row.state_reason;
  if (row.state_reason_code) out.StateReasonCode = row.state_reason_code;
  if (row.last_update_status_reason) out.LastUpdateStatusReason = row.last_update_status_reason;
  if (row.last_update_status_reason_code) out.LastUpdateStatusReasonCode = row.last_update_status_reason_code;
  if (c.CapacityProvider) {
    out.CapacityProviderConfig = {
      LambdaManagedInstancesCapacityProviderConfig: {
        ...c.CapacityProvider,
        PerExecutionEnvironmentMaxConcurrency: maxConcurrency(c),
        ExecutionEnvironmentMemoryGiBPerVCpu:
          c.CapacityProvider.ExecutionEnvironmentMemoryGiBPerVCpu ?? DEFAULT_GIB_PER_VCPU,
      },
    };
  }
  return out;
}
