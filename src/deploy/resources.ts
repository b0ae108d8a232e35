/**
 * The resource types `lambent deploy` can make, each through the public
 * Lambda or Scheduler API: what properties it takes, which changes need a new
 * resource (replacement) rather than an update, what its Ref and attributes
 * are, and how it is created, updated and deleted. A Ref or attribute that is
 * not known before the resource exists (a published version's number) is an
 * unknown() token until then.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ACCOUNT_ID } from "../config.js";
import { ApiError, type Json, type LambentClient } from "./api.js";
import { unknown } from "./intrinsics.js";
import { ROLE_POLICY_TYPE } from "./sam.js";
import { DeployError } from "./template.js";

export type Progress = (line: string) => void;

/** What the stack remembers of one deployed resource. */
export interface ResourceState {
  Type: string;
  PhysicalId: string;
  Ref: unknown;
  Attributes: Json;
  /** The properties last applied (evaluated; code as its sha256). */
  Properties: Json;
  /** sha256 of Properties: equal hashes, nothing to change. */
  Hash: string;
  /** Logical ids it depended on (deletes go the other way). */
  DependsOn: string[];
  DeletionPolicy?: string;
}

export interface BuiltPackage {
  zip: Buffer;
  sha256: string;
  /** Environment variables the build adds (NODE_OPTIONS for esbuild source maps). */
  environment: Record<string, string>;
}

export interface ApplyContext {
  client: LambentClient;
  region: string;
  progress: Progress;
  /** Built packages by logical id. */
  packages: Map<string, BuiltPackage>;
  /** How long to wait for a function or provisioned concurrency to be ready. */
  waitMs: number;
}

export interface Applied {
  physicalId: string;
  ref: unknown;
  attributes: Json;
}

export interface ResourceHandler {
  properties: string[];
  required: string[];
  /** Properties whose change needs a new resource ("all": any change does, e.g. a published version). */
  replaceOn: string[] | "all";
  /** The property naming the resource, and its longest length (a name is generated when absent). */
  nameProperty?: { key: string; max: number };
  /**
   * The physical id a create of these properties makes, when it is known before the create (a
   * deploy killed during the create finds and removes what it made from this; see deploy.ts).
   */
  physicalIdOf?(props: Json, name: string | undefined, region: string): string | undefined;
  /**
   * For a resource whose id the server chooses (a version's number, a mapping's UUID): the physical
   * ids of those that exist now. Taken before a create and again after a deploy was killed during
   * it, the new ones are what the create made.
   */
  existing?(props: Json, name: string | undefined, ctx: ApplyContext): Promise<string[]>;
  /** Ref and attributes as known before deploy, for the physical name the plan chose. */
  predict(
    id: string,
    props: Json,
    name: string | undefined,
    region: string,
  ): { ref: unknown; attributes: Json };
  create(id: string, props: Json, name: string | undefined, ctx: ApplyContext): Promise<Applied>;
  update(id: string, props: Json, prev: ResourceState, ctx: ApplyContext): Promise<Applied>;
  remove(state: ResourceState, ctx: ApplyContext): Promise<void>;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const functionArn = (region: string, name: string) =>
  `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:${name}`;

/** Every page of a Lambda List operation: the items under `key`. */
async function listAll(ctx: ApplyContext, operation: string, input: Json, key: string): Promise<Json[]> {
  const out: Json[] = [];
  let marker: string | undefined;
  for (let page = 0; page < 1000; page++) {
    const r = await ctx.client.lambda(operation, { ...input, MaxItems: 50, Marker: marker });
    out.push(...(Array.isArray(r[key]) ? (r[key] as Json[]) : []));
    marker = typeof r.NextMarker === "string" && r.NextMarker !== "" ? r.NextMarker : undefined;
    if (marker === undefined) break;
  }
  return out;
}

/** name and qualifier from a function name, partial ARN or (qualified) ARN. */
export function splitFunction(ref: string): { name: string; qualifier?: string } {
  const m = /^arn:aws[a-zA-Z-]*:lambda:[^:]+:\d{12}:function:([^:]+)(?::([^:]+))?$/.exec(ref);
  if (m) return m[2] ? { name: m[1] as string, qualifier: m[2] } : { name: m[1] as string };
  return { name: ref };
}

/** Ignore "not found" on delete: the resource is already gone. */
async function gone(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return;
    throw err;
  }
}

/** A List of something that does not exist (the function, the layer): nothing. */
function notFoundAsNone(err: unknown): Json[] {
  if (err instanceof ApiError && err.status === 404) return [];
  throw err;
}

function pick(props: Json, keys: string[]): Json {
  const out: Json = {};
  for (const k of keys) if (props[k] !== undefined) out[k] = props[k];
  return out;
}

function tagsMap(tags: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(tags)) {
    for (const t of tags) if (isObject(t) && typeof t.Key === "string") out[t.Key] = String(t.Value ?? "");
  }
  return out;
}

/** Wait until a function is Active with no update in progress; Failed is an error with Lambda's reason. */
export async function waitForFunction(ctx: ApplyContext, name: string, what: string): Promise<Json> {
  const deadline = Date.now() + ctx.waitMs;
  let delay = 50;
  let told = false;
  for (;;) {
    const c = await ctx.client.lambda("GetFunctionConfiguration", { FunctionName: name });
    if (c.State === "Failed")
      throw new DeployError(`${name}: ${what} failed: ${String(c.StateReason ?? "")}`);
    if (c.LastUpdateStatus === "Failed") {
      throw new DeployError(`${name}: ${what} failed: ${String(c.LastUpdateStatusReason ?? "")}`);
    }
    if (c.State === "Active" && c.LastUpdateStatus !== "InProgress") return c;
    if (Date.now() > deadline)
      throw new DeployError(`${name}: still not Active after ${ctx.waitMs / 1000} s`);
    if (!told) ctx.progress(`  ${name}: waiting for ${what} (State ${String(c.State)})`);
    told = true;
    await sleep(delay);
    delay = Math.min(1000, delay * 2);
  }
}

const FUNCTION_CONFIG_KEYS = [
  "Description",
  "MemorySize",
  "Timeout",
  "Handler",
  "Runtime",
  "Role",
  "Environment",
  "Layers",
  "EphemeralStorage",
  "LoggingConfig",
  "TracingConfig",
  "DeadLetterConfig",
];

function functionEnvironment(id: string, props: Json, ctx: ApplyContext): Json | undefined {
  const built = ctx.packages.get(id)?.environment ?? {};
  const env = props.Environment;
  if (env !== undefined && !isObject(env)) throw new DeployError(`${id}: Environment must be a map`);
  const vars = { ...built, ...((env?.Variables as Json | undefined) ?? {}) };
  return Object.keys(vars).length > 0 ? { Variables: vars } : undefined;
}

/** Lambda's CodeSha256 (base64) of the package a function's properties name. */
function codeSha256(props: Json): string | undefined {
  const hex = isObject(props.Code) ? props.Code.Sha256 : undefined;
  return typeof hex === "string" ? Buffer.from(hex, "hex").toString("base64") : undefined;
}

/** The package's zip (built before the plan) or the template's Code.ZipFile. */
function codeOf(id: string, ctx: ApplyContext): Buffer {
  const p = ctx.packages.get(id);
  if (!p) throw new DeployError(`${id}: no code was built`);
  return p.zip;
}

async function applyFunctionSettings(name: string, props: Json, prev: Json | undefined, ctx: ApplyContext) {
  const rc = props.ReservedConcurrentExecutions;
  if (rc !== prev?.ReservedConcurrentExecutions) {
    if (rc === undefined) await ctx.client.lambda("DeleteFunctionConcurrency", { FunctionName: name });
    else
      await ctx.client.lambda("PutFunctionConcurrency", {
        FunctionName: name,
        ReservedConcurrentExecutions: rc,
      });
  }
  const loop = props.RecursiveLoop;
  if (loop !== prev?.RecursiveLoop) {
    await ctx.client.lambda("PutFunctionRecursionConfig", {
      FunctionName: name,
      RecursiveLoop: loop ?? "Terminate",
    });
  }
  const rm = props.RuntimeManagementConfig;
  if (JSON.stringify(rm) !== JSON.stringify(prev?.RuntimeManagementConfig)) {
    const r = isObject(rm) ? rm : { UpdateRuntimeOn: "Auto" };
    await ctx.client.lambda("PutRuntimeManagementConfig", { FunctionName: name, ...r });
  }
}

const FunctionHandler: ResourceHandler = {
  properties: [
    "Architectures",
    "Code",
    "DeadLetterConfig",
    "Description",
    "Environment",
    "EphemeralStorage",
    "FunctionName",
    "Handler",
    "KmsKeyArn",
    "Layers",
    "LoggingConfig",
    "MemorySize",
    "PackageType",
    "RecursiveLoop",
    "ReservedConcurrentExecutions",
    "Role",
    "Runtime",
    "RuntimeManagementConfig",
    "Tags",
    "Timeout",
    "TracingConfig",
  ],
  required: ["Role", "Code"],
  replaceOn: ["FunctionName", "PackageType"],
  nameProperty: { key: "FunctionName", max: 64 },
  physicalIdOf: (_props, name) => name,
  predict: (_id, props, name, region) => ({
    ref: name,
    attributes: { Arn: functionArn(region, name as string), CodeSha256: codeSha256(props) },
  }),
  async create(id, props, name, ctx) {
    const fn = name as string;
    ctx.progress(`  ${id}: creating function ${fn}`);
    const env = functionEnvironment(id, props, ctx);
    await ctx.client.lambda("CreateFunction", {
      FunctionName: fn,
      ...pick(
        props,
        FUNCTION_CONFIG_KEYS.filter((k) => k !== "Environment"),
      ),
      ...pick(props, ["Architectures", "PackageType"]),
      ...(props.KmsKeyArn !== undefined ? { KMSKeyArn: props.KmsKeyArn } : {}),
      ...(env ? { Environment: env } : {}),
      Code: { ZipFile: codeOf(id, ctx).toString("base64") },
      Tags: tagsMap(props.Tags),
    });
    try {
      const c = await waitForFunction(ctx, fn, "the function to be Active");
      await applyFunctionSettings(fn, props, undefined, ctx);
      return { physicalId: fn, ref: fn, attributes: { Arn: c.FunctionArn, CodeSha256: c.CodeSha256 } };
    } catch (err) {
      // A create is all or nothing: the function that never became Active goes.
      await gone(ctx.client.lambda("DeleteFunction", { FunctionName: fn }));
      throw err;
    }
  },
  async update(id, props, prev, ctx) {
    const fn = prev.PhysicalId;
    const old = prev.Properties;
    const archChanged = JSON.stringify(props.Architectures) !== JSON.stringify(old.Architectures);
    if (JSON.stringify(props.Code) !== JSON.stringify(old.Code) || archChanged) {
      ctx.progress(`  ${id}: uploading new code to ${fn}`);
      await ctx.client.lambda("UpdateFunctionCode", {
        FunctionName: fn,
        ZipFile: codeOf(id, ctx).toString("base64"),
        Architectures: props.Architectures ?? ["x86_64"],
      });
      await waitForFunction(ctx, fn, "the code update");
    }
    const config = (p: Json) => JSON.stringify([pick(p, FUNCTION_CONFIG_KEYS), p.KmsKeyArn]);
    if (config(props) !== config(old)) {
      ctx.progress(`  ${id}: updating the configuration of ${fn}`);
      await ctx.client.lambda("UpdateFunctionConfiguration", {
        FunctionName: fn,
        Role: props.Role,
        Handler: props.Handler,
        Runtime: props.Runtime,
        Description: props.Description ?? "",
        Timeout: props.Timeout ?? 3,
        MemorySize: props.MemorySize ?? 128,
        Environment: functionEnvironment(id, props, ctx) ?? { Variables: {} },
        Layers: props.Layers ?? [],
        EphemeralStorage: props.EphemeralStorage ?? { Size: 512 },
        ...(props.LoggingConfig !== undefined ? { LoggingConfig: props.LoggingConfig } : {}),
        TracingConfig: props.TracingConfig ?? { Mode: "PassThrough" },
        DeadLetterConfig: props.DeadLetterConfig ?? {},
        KMSKeyArn: props.KmsKeyArn ?? "",
      });
      await waitForFunction(ctx, fn, "the configuration update");
    }
    const tags = tagsMap(props.Tags);
    const oldTags = tagsMap(old.Tags);
    const arn = functionArn(ctx.region, fn);
    const removed = Object.keys(oldTags).filter((k) => !(k in tags));
    if (removed.length > 0)
      await ctx.client.lambda("UntagResource", { Resource: arn, TagKeys: removed.join(",") });
    if (JSON.stringify(tags) !== JSON.stringify(oldTags) && Object.keys(tags).length > 0) {
      await ctx.client.lambda("TagResource", { Resource: arn, Tags: tags });
    }
    await applyFunctionSettings(fn, props, old, ctx);
    return { physicalId: fn, ref: fn, attributes: { Arn: arn, CodeSha256: codeSha256(props) } };
  },
  async remove(state, ctx) {
    ctx.progress(`  deleting function ${state.PhysicalId}`);
    await gone(ctx.client.lambda("DeleteFunction", { FunctionName: state.PhysicalId }));
  },
};

const VersionHandler: ResourceHandler = {
  properties: ["FunctionName", "Description", "CodeSha256"],
  required: ["FunctionName"],
  replaceOn: "all",
  predict: (id) => ({ ref: unknown(id, "Ref"), attributes: { Version: unknown(id, "Version") } }),
  async existing(props, _name, ctx) {
    const fn = splitFunction(String(props.FunctionName)).name;
    const versions = await listAll(ctx, "ListVersionsByFunction", { FunctionName: fn }, "Versions").catch(
      notFoundAsNone,
    );
    return versions.filter((v) => v.Version !== "$LATEST").map((v) => String(v.FunctionArn));
  },
  async create(id, props, _name, ctx) {
    const fn = splitFunction(String(props.FunctionName)).name;
    ctx.progress(`  ${id}: publishing a version of ${fn}`);
    const v = await ctx.client.lambda("PublishVersion", {
      FunctionName: fn,
      ...pick(props, ["Description", "CodeSha256"]),
    });
    return {
      physicalId: String(v.FunctionArn),
      ref: v.FunctionArn,
      attributes: { Version: v.Version, FunctionArn: functionArn(ctx.region, fn) },
    };
  },
  update: () => Promise.reject(new Error("versions are replaced, never updated")),
  async remove(state, ctx) {
    const { name, qualifier } = splitFunction(state.PhysicalId);
    await gone(ctx.client.lambda("DeleteFunction", { FunctionName: name, Qualifier: qualifier }));
  },
};

async function applyProvisioned(
  fn: string,
  alias: string,
  want: unknown,
  had: unknown,
  ctx: ApplyContext,
): Promise<void> {
  const n = isObject(want) ? want.ProvisionedConcurrentExecutions : undefined;
  const before = isObject(had) ? had.ProvisionedConcurrentExecutions : undefined;
  if (n === before) return;
  if (n === undefined) {
    await gone(
      ctx.client.lambda("DeleteProvisionedConcurrencyConfig", { FunctionName: fn, Qualifier: alias }),
    );
    return;
  }
  ctx.progress(`  ${fn}:${alias}: provisioning ${String(n)} environment(s)`);
  await ctx.client.lambda("PutProvisionedConcurrencyConfig", {
    FunctionName: fn,
    Qualifier: alias,
    ProvisionedConcurrentExecutions: n,
  });
  const deadline = Date.now() + ctx.waitMs;
  let delay = 50;
  for (;;) {
    const c = await ctx.client.lambda("GetProvisionedConcurrencyConfig", {
      FunctionName: fn,
      Qualifier: alias,
    });
    if (c.Status === "READY") return;
    if (c.Status === "FAILED")
      throw new DeployError(
        `${fn}:${alias}: provisioned concurrency failed: ${String(c.StatusReason ?? "")}`,
      );
    if (Date.now() > deadline)
      throw new DeployError(`${fn}:${alias}: provisioned concurrency not READY after ${ctx.waitMs / 1000} s`);
    await sleep(delay);
    delay = Math.min(1000, delay * 2);
  }
}

const AliasHandler: ResourceHandler = {
  properties: [
    "FunctionName",
    "FunctionVersion",
    "Name",
    "Description",
    "ProvisionedConcurrencyConfig",
    "RoutingConfig",
  ],
  required: ["FunctionName", "FunctionVersion", "Name"],
  replaceOn: ["FunctionName", "Name"],
  physicalIdOf: (props, _name, region) =>
    `${functionArn(region, splitFunction(String(props.FunctionName)).name)}:${String(props.Name)}`,
  predict: (_id, props, _name, region) => {
    const fn = splitFunction(String(props.FunctionName)).name;
    return {
      ref: `${functionArn(region, fn)}:${String(props.Name)}`,
      attributes: { AliasArn: `${functionArn(region, fn)}:${String(props.Name)}` },
    };
  },
  async create(id, props, _name, ctx) {
    const fn = splitFunction(String(props.FunctionName)).name;
    ctx.progress(`  ${id}: alias ${fn}:${String(props.Name)} → version ${String(props.FunctionVersion)}`);
    const a = await ctx.client.lambda("CreateAlias", {
      FunctionName: fn,
      ...pick(props, ["Name", "FunctionVersion", "Description", "RoutingConfig"]),
    });
    try {
      await applyProvisioned(fn, String(props.Name), props.ProvisionedConcurrencyConfig, undefined, ctx);
    } catch (err) {
      await gone(ctx.client.lambda("DeleteAlias", { FunctionName: fn, Name: props.Name }));
      throw err;
    }
    return { physicalId: String(a.AliasArn), ref: a.AliasArn, attributes: { AliasArn: a.AliasArn } };
  },
  async update(id, props, prev, ctx) {
    const fn = splitFunction(String(props.FunctionName)).name;
    ctx.progress(`  ${id}: alias ${fn}:${String(props.Name)} → version ${String(props.FunctionVersion)}`);
    await ctx.client.lambda("UpdateAlias", {
      FunctionName: fn,
      Name: props.Name,
      FunctionVersion: props.FunctionVersion,
      Description: props.Description ?? "",
      RoutingConfig: props.RoutingConfig ?? { AdditionalVersionWeights: {} },
    });
    await applyProvisioned(
      fn,
      String(props.Name),
      props.ProvisionedConcurrencyConfig,
      prev.Properties.ProvisionedConcurrencyConfig,
      ctx,
    );
    return { physicalId: prev.PhysicalId, ref: prev.Ref, attributes: prev.Attributes };
  },
  async remove(state, ctx) {
    const { name, qualifier } = splitFunction(state.PhysicalId);
    await gone(ctx.client.lambda("DeleteAlias", { FunctionName: name, Name: qualifier }));
  },
};

const UrlHandler: ResourceHandler = {
  properties: ["TargetFunctionArn", "Qualifier", "AuthType", "Cors", "InvokeMode"],
  required: ["TargetFunctionArn", "AuthType"],
  replaceOn: ["TargetFunctionArn", "Qualifier"],
  physicalIdOf(props, name, region) {
    return String(this.predict("", props, name, region).ref);
  },
  predict: (id, props, _name, region) => {
    const { name, qualifier } = splitFunction(String(props.TargetFunctionArn));
    const q = (props.Qualifier as string | undefined) ?? qualifier;
    const arn = `${functionArn(region, name)}${q ? `:${q}` : ""}`;
    return { ref: arn, attributes: { FunctionArn: arn, FunctionUrl: unknown(id, "FunctionUrl") } };
  },
  async create(id, props, _name, ctx) {
    const { name, qualifier } = splitFunction(String(props.TargetFunctionArn));
    const q = (props.Qualifier as string | undefined) ?? qualifier;
    const u = await ctx.client.lambda("CreateFunctionUrlConfig", {
      FunctionName: name,
      Qualifier: q,
      ...pick(props, ["AuthType", "Cors", "InvokeMode"]),
    });
    ctx.progress(`  ${id}: ${String(u.FunctionUrl)}`);
    return {
      physicalId: String(u.FunctionArn),
      ref: u.FunctionArn,
      attributes: { FunctionArn: u.FunctionArn, FunctionUrl: u.FunctionUrl },
    };
  },
  async update(_id, props, prev, ctx) {
    const { name, qualifier } = splitFunction(prev.PhysicalId);
    const u = await ctx.client.lambda("UpdateFunctionUrlConfig", {
      FunctionName: name,
      Qualifier: qualifier,
      AuthType: props.AuthType,
      Cors: props.Cors ?? {},
      InvokeMode: props.InvokeMode ?? "BUFFERED",
    });
    return {
      physicalId: prev.PhysicalId,
      ref: prev.Ref,
      attributes: { FunctionArn: u.FunctionArn, FunctionUrl: u.FunctionUrl },
    };
  },
  async remove(state, ctx) {
    const { name, qualifier } = splitFunction(state.PhysicalId);
    await gone(ctx.client.lambda("DeleteFunctionUrlConfig", { FunctionName: name, Qualifier: qualifier }));
  },
};

const PermissionHandler: ResourceHandler = {
  properties: [
    "Action",
    "FunctionName",
    "Principal",
    "EventSourceToken",
    "FunctionUrlAuthType",
    "InvokedViaFunctionUrl",
    "PrincipalOrgID",
    "SourceAccount",
    "SourceArn",
  ],
  required: ["Action", "FunctionName", "Principal"],
  replaceOn: "all",
  nameProperty: { key: "", max: 100 },
  physicalIdOf: (props, name) => `${String(props.FunctionName)}|${String(name)}`,
  predict: (_id, _props, name) => ({ ref: name, attributes: {} }),
  async create(_id, props, name, ctx) {
    const { name: fn, qualifier } = splitFunction(String(props.FunctionName));
    await ctx.client.lambda("AddPermission", {
      FunctionName: fn,
      Qualifier: qualifier,
      StatementId: name,
      ...pick(
        props,
        this.properties.filter((k) => k !== "FunctionName"),
      ),
    });
    return { physicalId: `${String(props.FunctionName)}|${String(name)}`, ref: name, attributes: {} };
  },
  update: () => Promise.reject(new Error("permissions are replaced, never updated")),
  async remove(state, ctx) {
    const [target = "", sid] = state.PhysicalId.split("|");
    const { name, qualifier } = splitFunction(target);
    await gone(
      ctx.client.lambda("RemovePermission", { FunctionName: name, Qualifier: qualifier, StatementId: sid }),
    );
  },
};

const EventInvokeConfigHandler: ResourceHandler = {
  properties: [
    "FunctionName",
    "Qualifier",
    "MaximumEventAgeInSeconds",
    "MaximumRetryAttempts",
    "DestinationConfig",
  ],
  required: ["FunctionName", "Qualifier"],
  replaceOn: ["FunctionName", "Qualifier"],
  physicalIdOf: (props) => `${splitFunction(String(props.FunctionName)).name}:${String(props.Qualifier)}`,
  predict: (_id, props) => ({
    ref: `${String(props.FunctionName)}:${String(props.Qualifier)}`,
    attributes: {},
  }),
  async create(_id, props, _name, ctx) {
    const fn = splitFunction(String(props.FunctionName)).name;
    await ctx.client.lambda("PutFunctionEventInvokeConfig", {
      FunctionName: fn,
      ...pick(props, ["Qualifier", "MaximumEventAgeInSeconds", "MaximumRetryAttempts", "DestinationConfig"]),
    });
    const id = `${fn}:${String(props.Qualifier)}`;
    return { physicalId: id, ref: id, attributes: {} };
  },
  async update(id, props, _prev, ctx) {
    return this.create(id, props, undefined, ctx);
  },
  async remove(state, ctx) {
    const [name, qualifier] = state.PhysicalId.split(":");
    await gone(
      ctx.client.lambda("DeleteFunctionEventInvokeConfig", { FunctionName: name, Qualifier: qualifier }),
    );
  },
};

const ESM_REPLACE = ["EventSourceArn", "StartingPosition", "StartingPositionTimestamp", "Topics", "Queues"];

const EventSourceMappingHandler: ResourceHandler = {
  properties: [
    "FunctionName",
    "EventSourceArn",
    "BatchSize",
    "Enabled",
    "MaximumBatchingWindowInSeconds",
    "FilterCriteria",
    "DestinationConfig",
    "StartingPosition",
    "StartingPositionTimestamp",
    "MaximumRecordAgeInSeconds",
    "MaximumRetryAttempts",
    "BisectBatchOnFunctionError",
    "FunctionResponseTypes",
    "ParallelizationFactor",
    "Topics",
    "Queues",
    "ScalingConfig",
    "TumblingWindowInSeconds",
  ],
  required: ["FunctionName", "EventSourceArn"],
  replaceOn: ESM_REPLACE,
  predict: (id) => ({ ref: unknown(id, "Ref"), attributes: { Id: unknown(id, "Id") } }),
  async existing(props, _name, ctx) {
    const input = { FunctionName: props.FunctionName, EventSourceArn: props.EventSourceArn };
    const mappings = await listAll(ctx, "ListEventSourceMappings", input, "EventSourceMappings").catch(
      notFoundAsNone,
    );
    return mappings.map((m) => String(m.UUID));
  },
  async create(id, props, _name, ctx) {
    const m = await ctx.client.lambda("CreateEventSourceMapping", { ...props });
    ctx.progress(`  ${id}: event source mapping ${String(m.UUID)}`);
    return {
      physicalId: String(m.UUID),
      ref: m.UUID,
      attributes: { Id: m.UUID, EventSourceMappingArn: m.EventSourceMappingArn },
    };
  },
  async update(_id, props, prev, ctx) {
    const mutable = Object.fromEntries(Object.entries(props).filter(([k]) => !ESM_REPLACE.includes(k)));
    await ctx.client.lambda("UpdateEventSourceMapping", { UUID: prev.PhysicalId, Enabled: true, ...mutable });
    return { physicalId: prev.PhysicalId, ref: prev.Ref, attributes: prev.Attributes };
  },
  async remove(state, ctx) {
    await gone(ctx.client.lambda("DeleteEventSourceMapping", { UUID: state.PhysicalId }));
  },
};

const LayerVersionHandler: ResourceHandler = {
  properties: [
    "Content",
    "LayerName",
    "Description",
    "CompatibleRuntimes",
    "CompatibleArchitectures",
    "LicenseInfo",
  ],
  required: ["Content"],
  replaceOn: "all",
  nameProperty: { key: "LayerName", max: 140 },
  predict: (id) => ({
    ref: unknown(id, "LayerVersionArn"),
    attributes: { LayerVersionArn: unknown(id, "LayerVersionArn") },
  }),
  async existing(_props, name, ctx) {
    const versions = await listAll(ctx, "ListLayerVersions", { LayerName: name }, "LayerVersions").catch(
      notFoundAsNone,
    );
    return versions.map((v) => String(v.LayerVersionArn));
  },
  async create(id, props, name, ctx) {
    ctx.progress(`  ${id}: publishing layer ${String(name)}`);
    const l = await ctx.client.lambda("PublishLayerVersion", {
      LayerName: name,
      ...pick(props, ["Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"]),
      Content: { ZipFile: codeOf(id, ctx).toString("base64") },
    });
    return {
      physicalId: String(l.LayerVersionArn),
      ref: l.LayerVersionArn,
      attributes: { LayerVersionArn: l.LayerVersionArn },
    };
  },
  update: () => Promise.reject(new Error("layer versions are replaced, never updated")),
  async remove(state, ctx) {
    const m = /:layer:([^:]+):(\d+)$/.exec(state.PhysicalId);
    if (!m) return;
    await gone(ctx.client.lambda("DeleteLayerVersion", { LayerName: m[1], VersionNumber: Number(m[2]) }));
  },
};

/** CloudFormation gives dates as ISO text; Scheduler's REST-JSON takes epoch seconds. */
function scheduleInput(props: Json, at: string): Json {
  const out: Json = { ...props };
  for (const k of ["StartDate", "EndDate"]) {
    const v = props[k];
    if (v === undefined) continue;
    const ms = typeof v === "number" ? v * 1000 : Date.parse(String(v));
    if (!Number.isFinite(ms)) throw new DeployError(`${at}: ${k} ${String(v)} is not a date`);
    out[k] = ms / 1000;
  }
  return out;
}

const ScheduleHandler: ResourceHandler = {
  properties: [
    "Name",
    "GroupName",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "State",
    "Description",
    "StartDate",
    "EndDate",
    "KmsKeyArn",
    "Target",
  ],
  required: ["ScheduleExpression", "FlexibleTimeWindow", "Target"],
  replaceOn: ["Name", "GroupName"],
  nameProperty: { key: "Name", max: 64 },
  physicalIdOf: (props, name) => `${String(props.GroupName ?? "default")}/${String(name)}`,
  predict: (_id, props, name, region) => {
    const arn = `arn:aws:scheduler:${region}:${ACCOUNT_ID}:schedule/${String(props.GroupName ?? "default")}/${String(name)}`;
    return { ref: name, attributes: { Arn: arn } };
  },
  async create(id, props, name, ctx) {
    ctx.progress(`  ${id}: schedule ${String(name)} (${String(props.ScheduleExpression)})`);
    const { Name: _n, ...rest } = props;
    const s = await ctx.client.scheduler("CreateSchedule", { Name: name, ...scheduleInput(rest, id) });
    return {
      physicalId: `${String(props.GroupName ?? "default")}/${String(name)}`,
      ref: name,
      attributes: { Arn: s.ScheduleArn },
    };
  },
  async update(id, props, prev, ctx) {
    const [group, name] = prev.PhysicalId.split("/");
    const { Name: _n, GroupName: _g, ...rest } = props;
    const s = await ctx.client.scheduler("UpdateSchedule", {
      Name: name,
      GroupName: group,
      ...scheduleInput(rest, id),
    });
    return { physicalId: prev.PhysicalId, ref: prev.Ref, attributes: { Arn: s.ScheduleArn } };
  },
  async remove(state, ctx) {
    const [group, name] = state.PhysicalId.split("/");
    await gone(ctx.client.scheduler("DeleteSchedule", { Name: name, GroupName: group }));
  },
};

/** The identity policy of a function's execution role (SAM `Policies`), through `/_lambent/roles`. */
const RolePolicyHandler: ResourceHandler = {
  properties: ["RoleName", "PolicyDocument"],
  required: ["RoleName", "PolicyDocument"],
  replaceOn: ["RoleName"],
  physicalIdOf: (props) => String(props.RoleName),
  predict: (_id, props) => ({ ref: props.RoleName, attributes: {} }),
  async create(id, props, _name, ctx) {
    ctx.progress(`  ${id}: policy of role ${String(props.RoleName)}`);
    await ctx.client.putRolePolicy(String(props.RoleName), props.PolicyDocument);
    return { physicalId: String(props.RoleName), ref: props.RoleName, attributes: {} };
  },
  async update(id, props, _prev, ctx) {
    return this.create(id, props, undefined, ctx);
  },
  async remove(state, ctx) {
    await gone(ctx.client.deleteRolePolicy(state.PhysicalId));
  },
};

export const RESOURCE_TYPES: Record<string, ResourceHandler> = {
  [ROLE_POLICY_TYPE]: RolePolicyHandler,
  "AWS::Lambda::Function": FunctionHandler,
  "AWS::Lambda::Version": VersionHandler,
  "AWS::Lambda::Alias": AliasHandler,
  "AWS::Lambda::Url": UrlHandler,
  "AWS::Lambda::Permission": PermissionHandler,
  "AWS::Lambda::EventInvokeConfig": EventInvokeConfigHandler,
  "AWS::Lambda::EventSourceMapping": EventSourceMappingHandler,
  "AWS::Lambda::LayerVersion": LayerVersionHandler,
  "AWS::Scheduler::Schedule": ScheduleHandler,
};
