/**
 * The AWS::Serverless-2016-10-31 transform, for what Lambent can run: each
 * `AWS::Serverless::Function` becomes an `AWS::Lambda::Function` and the
 * resources SAM generates beside it (Version + Alias for AutoPublishAlias, Url
 * and public Permissions for FunctionUrlConfig and HttpApi/Api events,
 * EventInvokeConfig, Scheduler schedules for Schedule/ScheduleV2 events, event
 * source mappings for MQ events), with SAM's logical ids; each
 * `AWS::Serverless::LayerVersion` an `AWS::Lambda::LayerVersion`. Globals are
 * merged as SAM merges them (maps merged, lists appended, scalars replaced).
 *
 * Anything Lambent cannot do is refused here, before anything is deployed.
 */
import { createHash } from "node:crypto";
import { ACCOUNT_ID } from "../config.js";
import { stableJson } from "../stable-json.js";
import { intrinsicName } from "./intrinsics.js";
import { DeployError } from "./template.js";

export type Json = Record<string, unknown>;

/** Where a function's or layer's package comes from (built by deploy/build.ts). */
export type PackageSource =
  | {
      kind: "function";
      /** Folder or .zip, relative to the template's folder. */
      codeUri?: string;
      inlineCode?: string;
      handler?: string;
      runtime?: string;
      /** The resource's Metadata (BuildMethod, BuildProperties). */
      metadata: Json;
    }
  | { kind: "layer"; contentUri: string; metadata: Json };

/** A resource as CloudFormation sees it after the transform; Properties still hold intrinsics. */
export interface CfnResource {
  Type: string;
  Properties: Json;
  DependsOn: string[];
  DeletionPolicy?: string;
  Package?: PackageSource;
  /** The SAM resource this one was generated from. */
  From?: string;
}

/** Evaluates a value that SAM needs at transform time (parameters, mappings, conditions only). */
export type TransformEval = (value: unknown, at: string) => unknown;

const FUNCTION_PROPERTIES = new Set([
  "Policies",
  "Handler",
  "Runtime",
  "CodeUri",
  "InlineCode",
  "FunctionName",
  "Description",
  "MemorySize",
  "Timeout",
  "Role",
  "Environment",
  "Events",
  "Layers",
  "Architectures",
  "EphemeralStorage",
  "LoggingConfig",
  "ReservedConcurrentExecutions",
  "ProvisionedConcurrencyConfig",
  "AutoPublishAlias",
  "AutoPublishAliasAllProperties",
  "AutoPublishCodeSha256",
  "VersionDescription",
  "FunctionUrlConfig",
  "EventInvokeConfig",
  "DeadLetterQueue",
  "Tags",
  "PropagateTags",
  "Tracing",
  "PackageType",
  "RecursiveLoop",
  "RuntimeManagementConfig",
  "KmsKeyArn",
]);

const LAYER_PROPERTIES = new Set([
  "ContentUri",
  "LayerName",
  "Description",
  "CompatibleRuntimes",
  "CompatibleArchitectures",
  "LicenseInfo",
  "RetentionPolicy",
]);

/** Why a property is refused, where a hint helps. */
const REFUSED_HINTS: Record<string, string> = {
  DeploymentPreference:
    "gradual (CodeDeploy) deployments are not supported by lambent deploy; remove it — AutoPublishAlias alone moves the alias to the new version at once",
  VpcConfig: "Lambent functions have no VPC (see README: Sandbox network)",
  FileSystemConfigs: "EFS file systems are not supported",
  ImageUri: "container images are not supported: use CodeUri or InlineCode",
  ImageConfig: "container images are not supported: use CodeUri or InlineCode",
  CodeSigningConfigArn: "code signing configs cannot be attached by lambent deploy",
  SnapStart: "SnapStart is not supported",
};

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkProperties(id: string, type: string, props: Json, allowed: Set<string>): void {
  for (const k of Object.keys(props)) {
    if (allowed.has(k)) continue;
    const hint = REFUSED_HINTS[k];
    throw new DeployError(
      `${id} (${type}): property ${k} is not supported${hint ? `: ${hint}` : ` (supported: ${[...allowed].join(", ")})`}`,
    );
  }
}

/** SAM's Globals merge: maps merged key by key, lists appended (globals first), anything else replaced. */
export function mergeGlobals(global: unknown, local: unknown): unknown {
  if (local === undefined) return global;
  if (global === undefined) return local;
  if (intrinsicName(global) || intrinsicName(local)) return local;
  if (Array.isArray(global) && Array.isArray(local)) return [...global, ...local];
  if (isObject(global) && isObject(local)) {
    const out: Json = { ...global };
    for (const [k, v] of Object.entries(local)) out[k] = mergeGlobals(global[k], v);
    return out;
  }
  return local;
}

function shortHash(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 10);
}

export interface TransformInput {
  stackName: string;
  resources: Record<
    string,
    { Type: string; Properties: Json; DependsOn: string[]; DeletionPolicy?: string; Metadata: Json }
  >;
  globals: Json;
  evalNow: TransformEval;
}

export interface TransformResult {
  resources: Record<string, CfnResource>;
  /** `Fn.Alias` / `Fn.Version` style references SAM allows, → the generated logical id. */
  refAliases: Record<string, string>;
  /** What the user should know (an Api event served by a Function URL, …). */
  notes: string[];
}

const TRANSFORM_VALUE = "AWS::Serverless-2016-10-31";
export const SAM_TRANSFORM = TRANSFORM_VALUE;

/** Run the transform over resources whose conditions held. */
export function transformSam(input: TransformInput): TransformResult {
  const out: Record<string, CfnResource> = {};
  const refAliases: Record<string, string> = {};
  const notes: string[] = [];
  const add = (id: string, r: CfnResource) => {
    if (out[id] || (input.resources[id] && r.From !== id)) {
      throw new DeployError(
        `${id}: the transform generates a resource with this logical id, which the template also uses`,
      );
    }
    out[id] = r;
  };
  const fnGlobals = isObject(input.globals.Function) ? input.globals.Function : {};
  const layerGlobals = isObject(input.globals.LayerVersion) ? input.globals.LayerVersion : {};
  for (const k of Object.keys(input.globals)) {
    if (k !== "Function" && k !== "LayerVersion") {
      throw new DeployError(
        `Globals.${k} is not supported (lambent deploy serves HttpApi/Api events through Function URLs; Globals may hold Function and LayerVersion)`,
      );
    }
  }
  for (const [id, res] of Object.entries(input.resources)) {
    if (res.Type === "AWS::Serverless::Function") {
      transformFunction(id, res, fnGlobals, input, add, refAliases, notes);
    } else if (res.Type === "AWS::Serverless::LayerVersion") {
      const props = mergeGlobals(layerGlobals, res.Properties) as Json;
      checkProperties(id, res.Type, props, LAYER_PROPERTIES);
      const contentUri = input.evalNow(props.ContentUri, `${id}.ContentUri`);
      if (typeof contentUri !== "string") {
        throw new DeployError(
          `${id}: ContentUri must be a folder or .zip path (S3 locations are not supported)`,
        );
      }
      const retention = input.evalNow(props.RetentionPolicy ?? "Retain", `${id}.RetentionPolicy`);
      if (retention !== "Retain" && retention !== "Delete") {
        throw new DeployError(`${id}: RetentionPolicy must be Retain or Delete`);
      }
      const { ContentUri: _c, RetentionPolicy: _r, ...rest } = props;
      add(id, {
        Type: "AWS::Lambda::LayerVersion",
        Properties: { LayerName: id, ...rest },
        DependsOn: res.DependsOn,
        DeletionPolicy: String(retention),
        Package: { kind: "layer", contentUri, metadata: res.Metadata },
        From: id,
      });
    } else if (res.Type.startsWith("AWS::Serverless::")) {
      throw new DeployError(
        `${id}: ${res.Type} is not supported by lambent deploy (supported: AWS::Serverless::Function, AWS::Serverless::LayerVersion)`,
      );
    } else {
      add(id, {
        Type: res.Type,
        ...plainPackage(id, res, input.evalNow),
        DependsOn: res.DependsOn,
        ...(res.DeletionPolicy ? { DeletionPolicy: res.DeletionPolicy } : {}),
        From: id,
      });
    }
  }
  return { resources: out, refAliases, notes };
}

/**
 * A plain AWS::Lambda::Function's `Code` or AWS::Lambda::LayerVersion's `Content`: a local path (as
 * `aws cloudformation package` takes it) or inline `ZipFile` text; S3 and images are refused.
 */
function plainPackage(
  id: string,
  res: TransformInput["resources"][string],
  evalNow: TransformEval,
): { Properties: Json; Package?: PackageSource } {
  const key =
    res.Type === "AWS::Lambda::Function"
      ? "Code"
      : res.Type === "AWS::Lambda::LayerVersion"
        ? "Content"
        : undefined;
  if (key === undefined || res.Properties[key] === undefined) return { Properties: res.Properties };
  const { [key]: raw, ...rest } = res.Properties;
  const code = evalNow(raw, `${id}.${key}`);
  const metadata = res.Metadata;
  if (typeof code === "string") {
    return {
      Properties: rest,
      Package:
        key === "Code"
          ? { kind: "function", codeUri: code, metadata, ...handlerRuntime(rest, evalNow, id) }
          : { kind: "layer", contentUri: code, metadata },
    };
  }
  if (
    key === "Code" &&
    isObject(code) &&
    typeof code.ZipFile === "string" &&
    Object.keys(code).length === 1
  ) {
    return {
      Properties: rest,
      Package: { kind: "function", inlineCode: code.ZipFile, metadata, ...handlerRuntime(rest, evalNow, id) },
    };
  }
  throw new DeployError(
    `${id}: ${key} must be a local folder or .zip path${key === "Code" ? " or { ZipFile: <source> }" : ""} (S3 locations and images are not supported)`,
  );
}

function handlerRuntime(
  props: Json,
  evalNow: TransformEval,
  id: string,
): { handler?: string; runtime?: string } {
  const handler = evalNow(props.Handler, `${id}.Handler`);
  const runtime = evalNow(props.Runtime, `${id}.Runtime`);
  return {
    ...(typeof handler === "string" ? { handler } : {}),
    ...(typeof runtime === "string" ? { runtime } : {}),
  };
}

/** Lambent's role policy resource: the identity policy of a function's execution role (`/_lambent/roles`). */
export const ROLE_POLICY_TYPE = "Lambent::IAM::RolePolicy";

/** Managed policies that grant nothing Lambent needs granted (logs are always written). */
const BASIC_MANAGED_POLICIES = new Set([
  "AWSLambdaBasicExecutionRole",
  "AWSLambdaExecute",
  "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
  "arn:aws:iam::aws:policy/AWSLambdaExecute",
]);

/**
 * SAM's `Policies` as one identity policy's statements: inline policy documents are taken as they
 * are; the basic execution managed policies need nothing; other managed policies and SAM policy
 * templates are refused (their statements are AWS's, not Lambent's to guess).
 */
function policyStatements(id: string, raw: unknown, notes: string[]): unknown[] {
  const out: unknown[] = [];
  for (const p of Array.isArray(raw) ? raw : [raw]) {
    if (typeof p === "string") {
      if (BASIC_MANAGED_POLICIES.has(p)) {
        notes.push(`${id}.Policies: ${p} grants nothing Lambent needs granted (logs are always written)`);
        continue;
      }
      throw new DeployError(
        `${id}.Policies: managed policy ${p} cannot be attached: write its statements inline`,
      );
    }
    if (isObject(p) && p.Statement !== undefined) {
      out.push(...(Array.isArray(p.Statement) ? p.Statement : [p.Statement]));
      continue;
    }
    const name = isObject(p) ? Object.keys(p)[0] : typeof p;
    throw new DeployError(
      `${id}.Policies: ${String(name)} is not supported (SAM policy templates are not expanded): write the statements inline ({Statement: [...]})`,
    );
  }
  return out;
}

/** The IAM role name SAM would make for a function (Lambent keeps its identity policy, not a role). */
function roleName(stack: string, id: string): string {
  return `${stack}-${id}Role`.slice(0, 64);
}

function defaultRoleArn(stack: string, id: string): string {
  return `arn:aws:iam::${ACCOUNT_ID}:role/${roleName(stack, id)}`;
}

function transformFunction(
  id: string,
  res: TransformInput["resources"][string],
  globals: Json,
  input: TransformInput,
  add: (id: string, r: CfnResource) => void,
  refAliases: Record<string, string>,
  notes: string[],
): void {
  const type = res.Type;
  const p = mergeGlobals(globals, res.Properties) as Json;
  checkProperties(id, type, p, FUNCTION_PROPERTIES);
  const at = (k: string) => `${id}.${k}`;
  const packageType = input.evalNow(p.PackageType ?? "Zip", at("PackageType"));
  if (packageType !== "Zip")
    throw new DeployError(`${id}: PackageType ${String(packageType)}: only Zip is supported`);
  const codeUri = input.evalNow(p.CodeUri, at("CodeUri"));
  const inlineCode = input.evalNow(p.InlineCode, at("InlineCode"));
  if ((codeUri === undefined) === (inlineCode === undefined)) {
    throw new DeployError(`${id}: give exactly one of CodeUri and InlineCode`);
  }
  if (codeUri !== undefined && typeof codeUri !== "string") {
    throw new DeployError(`${id}: CodeUri must be a folder or .zip path (S3 locations are not supported)`);
  }
  if (inlineCode !== undefined && typeof inlineCode !== "string")
    throw new DeployError(`${id}: InlineCode must be a string`);
  const handler = input.evalNow(p.Handler, at("Handler"));
  const runtime = input.evalNow(p.Runtime, at("Runtime"));
  const alias = input.evalNow(p.AutoPublishAlias, at("AutoPublishAlias"));
  if (alias !== undefined && (typeof alias !== "string" || !/^[a-zA-Z0-9]+$/.test(alias))) {
    throw new DeployError(`${id}: AutoPublishAlias must be alphanumeric`);
  }
  if (p.ProvisionedConcurrencyConfig !== undefined && alias === undefined) {
    throw new DeployError(
      `${id}: ProvisionedConcurrencyConfig needs AutoPublishAlias (it is set on the alias)`,
    );
  }

  const fnProps: Json = {};
  for (const k of [
    "FunctionName",
    "Description",
    "MemorySize",
    "Timeout",
    "Handler",
    "Runtime",
    "Environment",
    "Layers",
    "Architectures",
    "EphemeralStorage",
    "LoggingConfig",
    "ReservedConcurrentExecutions",
    "RecursiveLoop",
    "RuntimeManagementConfig",
    "KmsKeyArn",
  ]) {
    if (p[k] !== undefined) fnProps[k] = p[k];
  }
  fnProps.Role = p.Role ?? defaultRoleArn(input.stackName, id);
  const dependsOn = [...res.DependsOn];
  if (p.Policies !== undefined) {
    if (p.Role !== undefined) throw new DeployError(`${id}: give Role or Policies, not both`);
    const policyId = `${id}Role`;
    add(policyId, {
      Type: ROLE_POLICY_TYPE,
      Properties: {
        RoleName: roleName(input.stackName, id),
        PolicyDocument: {
          Version: "2012-10-17",
          Statement: policyStatements(id, input.evalNow(p.Policies, at("Policies")), notes),
        },
      },
      DependsOn: [],
      From: id,
    });
    dependsOn.push(policyId);
  }
  if (p.Tracing !== undefined) fnProps.TracingConfig = { Mode: p.Tracing };
  const tags = input.evalNow(p.Tags ?? {}, at("Tags"));
  if (!isObject(tags)) throw new DeployError(`${id}: Tags must be a map`);
  fnProps.Tags = [
    { Key: "lambda:createdBy", Value: "SAM" },
    ...Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
  ];
  if (p.DeadLetterQueue !== undefined) {
    const dlq = p.DeadLetterQueue;
    if (!isObject(dlq) || dlq.TargetArn === undefined) {
      throw new DeployError(`${id}: DeadLetterQueue needs TargetArn (and Type SQS or SNS)`);
    }
    fnProps.DeadLetterConfig = { TargetArn: dlq.TargetArn };
  }
  add(id, {
    Type: "AWS::Lambda::Function",
    Properties: fnProps,
    DependsOn: dependsOn,
    Package: {
      kind: "function",
      ...(codeUri !== undefined ? { codeUri: codeUri as string } : {}),
      ...(inlineCode !== undefined ? { inlineCode: inlineCode as string } : {}),
      ...(typeof handler === "string" ? { handler } : {}),
      ...(typeof runtime === "string" ? { runtime } : {}),
      metadata: res.Metadata,
    },
    From: id,
  });

  // What events, URLs and invoke configs point at: the alias when there is one.
  let target: unknown = { "Fn::GetAtt": [id, "Arn"] };
  let qualifier: string | undefined;
  if (typeof alias === "string") {
    // A new Version whenever the function's properties change; the code's hash (CodeSha256) makes
    // the same Version resource a replacement (a new version) when only the code changed.
    const versionId = `${id}Version${shortHash(stableJson(fnProps), stableJson(res.Metadata))}`;
    const aliasId = `${id}Alias${alias}`;
    add(versionId, {
      Type: "AWS::Lambda::Version",
      Properties: {
        FunctionName: { Ref: id },
        CodeSha256: { "Fn::GetAtt": [id, "CodeSha256"] },
        ...(p.VersionDescription !== undefined ? { Description: p.VersionDescription } : {}),
      },
      DependsOn: [],
      DeletionPolicy: "Retain",
      From: id,
    });
    add(aliasId, {
      Type: "AWS::Lambda::Alias",
      Properties: {
        Name: alias,
        FunctionName: { Ref: id },
        FunctionVersion: { "Fn::GetAtt": [versionId, "Version"] },
        ...(p.ProvisionedConcurrencyConfig !== undefined
          ? { ProvisionedConcurrencyConfig: p.ProvisionedConcurrencyConfig }
          : {}),
      },
      DependsOn: [],
      From: id,
    });
    refAliases[`${id}.Alias`] = aliasId;
    refAliases[`${id}.Version`] = versionId;
    target = { Ref: aliasId };
    qualifier = alias;
  }

  if (p.EventInvokeConfig !== undefined) {
    const e = p.EventInvokeConfig;
    if (!isObject(e)) throw new DeployError(`${id}: EventInvokeConfig must be a map`);
    const dc = e.DestinationConfig;
    const destinations: Json = {};
    if (dc !== undefined) {
      if (!isObject(dc)) throw new DeployError(`${id}: EventInvokeConfig.DestinationConfig must be a map`);
      for (const [k, v] of Object.entries(dc)) {
        if (k !== "OnSuccess" && k !== "OnFailure") {
          throw new DeployError(
            `${id}: EventInvokeConfig.DestinationConfig.${k} is not OnSuccess or OnFailure`,
          );
        }
        if (!isObject(v) || v.Destination === undefined) {
          throw new DeployError(
            `${id}: EventInvokeConfig.DestinationConfig.${k} needs Destination (lambent deploy creates no queues or topics)`,
          );
        }
        destinations[k] = { Destination: v.Destination };
      }
    }
    for (const k of Object.keys(e)) {
      if (!["MaximumEventAgeInSeconds", "MaximumRetryAttempts", "DestinationConfig"].includes(k)) {
        throw new DeployError(`${id}: EventInvokeConfig.${k} is not supported`);
      }
    }
    add(`${id}EventInvokeConfig`, {
      Type: "AWS::Lambda::EventInvokeConfig",
      Properties: {
        FunctionName: { Ref: id },
        Qualifier: qualifier ?? "$LATEST",
        ...(e.MaximumEventAgeInSeconds !== undefined
          ? { MaximumEventAgeInSeconds: e.MaximumEventAgeInSeconds }
          : {}),
        ...(e.MaximumRetryAttempts !== undefined ? { MaximumRetryAttempts: e.MaximumRetryAttempts } : {}),
        ...(dc !== undefined ? { DestinationConfig: destinations } : {}),
      },
      DependsOn: qualifier ? [`${id}Alias${qualifier}`] : [],
      From: id,
    });
  }

  const events = input.evalNow(p.Events ?? {}, at("Events"));
  if (!isObject(events)) throw new DeployError(`${id}: Events must be a map`);
  let urlConfig: Json | undefined;
  if (p.FunctionUrlConfig !== undefined) {
    if (!isObject(p.FunctionUrlConfig)) throw new DeployError(`${id}: FunctionUrlConfig must be a map`);
    urlConfig = p.FunctionUrlConfig;
  }
  const httpEvents: string[] = [];
  for (const [name, raw] of Object.entries(events)) {
    const ev = raw as Json;
    if (!isObject(ev) || typeof ev.Type !== "string")
      throw new DeployError(`${id}.Events.${name}: needs Type`);
    const props = (ev.Properties ?? {}) as Json;
    if (!isObject(props)) throw new DeployError(`${id}.Events.${name}: Properties must be a map`);
    const eid = `${id}${name}`;
    const where = `${id}.Events.${name} (${ev.Type})`;
    const only = (allowed: string[]) => {
      for (const k of Object.keys(props)) {
        if (!allowed.includes(k))
          throw new DeployError(
            `${where}: property ${k} is not supported (supported: ${allowed.join(", ")})`,
          );
      }
    };
    switch (ev.Type) {
      case "Schedule":
      case "ScheduleV2": {
        const v2 = ev.Type === "ScheduleV2";
        only(
          v2
            ? [
                "ScheduleExpression",
                "ScheduleExpressionTimezone",
                "FlexibleTimeWindow",
                "Input",
                "Name",
                "GroupName",
                "State",
                "StartDate",
                "EndDate",
                "RetryPolicy",
                "DeadLetterConfig",
                "RoleArn",
                "Description",
                "OmitName",
                "KmsKeyArn",
              ]
            : [
                "Schedule",
                "Input",
                "Enabled",
                "State",
                "Name",
                "Description",
                "RetryPolicy",
                "DeadLetterConfig",
              ],
        );
        const expression = v2 ? props.ScheduleExpression : props.Schedule;
        if (expression === undefined)
          throw new DeployError(`${where}: needs ${v2 ? "ScheduleExpression" : "Schedule"}`);
        let state: unknown = props.State;
        if (state === undefined && props.Enabled !== undefined) {
          const enabled = input.evalNow(props.Enabled, `${where}.Enabled`);
          state = enabled === false || enabled === "false" ? "DISABLED" : "ENABLED";
        }
        let dlq: unknown;
        if (props.DeadLetterConfig !== undefined) {
          const d = props.DeadLetterConfig;
          if (!isObject(d) || d.Arn === undefined) {
            throw new DeployError(`${where}: DeadLetterConfig needs Arn (lambent deploy creates no queues)`);
          }
          dlq = { Arn: d.Arn };
        }
        const omitName = props.OmitName === true || props.OmitName === "true";
        add(eid, {
          Type: "AWS::Scheduler::Schedule",
          Properties: {
            ...(props.Name !== undefined && !omitName ? { Name: props.Name } : {}),
            ...(props.GroupName !== undefined ? { GroupName: props.GroupName } : {}),
            ScheduleExpression: expression,
            ...(props.ScheduleExpressionTimezone !== undefined
              ? { ScheduleExpressionTimezone: props.ScheduleExpressionTimezone }
              : {}),
            FlexibleTimeWindow: props.FlexibleTimeWindow ?? { Mode: "OFF" },
            ...(state !== undefined ? { State: state } : {}),
            ...(props.Description !== undefined ? { Description: props.Description } : {}),
            ...(props.StartDate !== undefined ? { StartDate: props.StartDate } : {}),
            ...(props.EndDate !== undefined ? { EndDate: props.EndDate } : {}),
            ...(props.KmsKeyArn !== undefined ? { KmsKeyArn: props.KmsKeyArn } : {}),
            Target: {
              Arn: target,
              RoleArn:
                props.RoleArn ??
                `arn:aws:iam::${ACCOUNT_ID}:role/${`${input.stackName}-${eid}Role`.slice(0, 64)}`,
              ...(props.Input !== undefined ? { Input: props.Input } : {}),
              ...(props.RetryPolicy !== undefined ? { RetryPolicy: props.RetryPolicy } : {}),
              ...(dlq !== undefined ? { DeadLetterConfig: dlq } : {}),
            },
          },
          DependsOn: [],
          From: id,
        });
        break;
      }
      case "HttpApi":
      case "Api": {
        only(["Path", "Method", "PayloadFormatVersion", "TimeoutInMillis"]);
        if (
          ev.Type === "HttpApi" &&
          props.PayloadFormatVersion !== undefined &&
          props.PayloadFormatVersion !== "2.0"
        ) {
          throw new DeployError(
            `${where}: PayloadFormatVersion ${String(props.PayloadFormatVersion)}: Function URLs send format 2.0`,
          );
        }
        httpEvents.push(name);
        if (ev.Type === "Api") {
          notes.push(
            `${id}.Events.${name}: an Api event is served by the function's URL, whose events have payload format 2.0 (event.requestContext.http.method, event.rawPath), not REST API's 1.0`,
          );
        }
        break;
      }
      case "MQ": {
        only([
          "Broker",
          "Queues",
          "BatchSize",
          "Enabled",
          "MaximumBatchingWindowInSeconds",
          "FilterCriteria",
        ]);
        if (props.Broker === undefined || props.Queues === undefined) {
          throw new DeployError(
            `${where}: needs Broker (an amqp:// URI, see README "Event source mappings") and Queues`,
          );
        }
        const { Broker, ...rest } = props;
        add(eid, {
          Type: "AWS::Lambda::EventSourceMapping",
          Properties: { FunctionName: target, EventSourceArn: Broker, ...rest },
          DependsOn: [],
          From: id,
        });
        break;
      }
      default:
        throw new DeployError(
          `${where}: event type ${ev.Type} is not supported (supported: Schedule, ScheduleV2, HttpApi, Api, MQ; other brokers through AWS::Lambda::EventSourceMapping)`,
        );
    }
  }
  if (httpEvents.length > 0 && urlConfig === undefined) urlConfig = { AuthType: "NONE" };
  if (urlConfig !== undefined) {
    for (const k of Object.keys(urlConfig)) {
      if (!["AuthType", "Cors", "InvokeMode"].includes(k))
        throw new DeployError(`${id}: FunctionUrlConfig.${k} is not supported`);
    }
    const urlId = `${id}Url`;
    add(urlId, {
      Type: "AWS::Lambda::Url",
      Properties: {
        TargetFunctionArn: { Ref: id },
        AuthType: urlConfig.AuthType ?? "AWS_IAM",
        ...(qualifier ? { Qualifier: qualifier } : {}),
        ...(urlConfig.Cors !== undefined ? { Cors: urlConfig.Cors } : {}),
        ...(urlConfig.InvokeMode !== undefined ? { InvokeMode: urlConfig.InvokeMode } : {}),
      },
      DependsOn: qualifier ? [`${id}Alias${qualifier}`] : [],
      From: id,
    });
    if (input.evalNow(urlConfig.AuthType, `${id}.FunctionUrlConfig.AuthType`) === "NONE") {
      add(`${id}UrlPublicPermissions`, {
        Type: "AWS::Lambda::Permission",
        Properties: {
          Action: "lambda:InvokeFunctionUrl",
          FunctionName: target,
          Principal: "*",
          FunctionUrlAuthType: "NONE",
        },
        DependsOn: [],
        From: id,
      });
      add(`${id}URLInvokeAllowPublicAccess`, {
        Type: "AWS::Lambda::Permission",
        Properties: {
          Action: "lambda:InvokeFunction",
          FunctionName: target,
          Principal: "*",
          InvokedViaFunctionUrl: true,
        },
        DependsOn: [],
        From: id,
      });
    }
  }
}
