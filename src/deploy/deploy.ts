/**
 * `lambent deploy` as a library (the CLI and `lambent dev` call it): a SAM or
 * CloudFormation template becomes a stack of Lambda resources and Scheduler
 * schedules, through the server's public APIs.
 *
 * 1. Load: parse, parameters, conditions, transform, checks — every refusal
 *    happens here, before anything changes.
 * 2. Build every package (deploy/build.ts); a package's sha256 is part of its
 *    resource's properties.
 * 3. Plan: walk the resources in dependency order, evaluate their properties
 *    and compare them (by hash) with what the stack last applied: create,
 *    update in place, replace (a property that cannot change in place), or
 *    nothing; what the stack has and the template no longer does is deleted.
 * 4. Apply in dependency order, writing the stack's record after every step.
 *    Deletes (removed and replaced resources) come last, once everything else
 *    worked, as CloudFormation's cleanup does. A failure undoes the steps
 *    already taken, newest first: created resources are deleted, updated ones
 *    get their previous properties (and code) back. A rollback that cannot
 *    finish leaves the stack UPDATE_ROLLBACK_FAILED with the reason; the record
 *    always says which resources exist, so the next deploy converges from there.
 *
 * A deploy killed midway (kill -9, a lost machine) leaves no orphan behind: the
 * record carries a `Pending` deployment from the first write on — the plan, the
 * steps done, and the step in flight (what it is about to create, update or
 * delete, with the physical id a create will make). The next deploy of the
 * stack settles the step in flight first (an unfinished create is undone, an
 * unfinished delete finished, an unfinished rollback of an update marked for
 * re-applying), says so, and then continues from the recorded state.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { stableJson } from "../stable-json.js";
import type { LambentClient } from "./api.js";
import { type BuiltCode, buildFunctionCode } from "./build.js";
import { type EvalContext, evaluate, isUnknown, NO_VALUE } from "./intrinsics.js";
import { type LoadedTemplate, loadTemplate, topologicalOrder } from "./load.js";
import {
  type ApplyContext,
  type BuiltPackage,
  type Progress,
  RESOURCE_TYPES,
  type ResourceState,
  splitFunction,
} from "./resources.js";
import type { CfnResource, Json } from "./sam.js";
import { DeployError, MAX_TEMPLATE_BYTES } from "./template.js";

export type { Progress } from "./resources.js";

export interface DeployOptions {
  client: LambentClient;
  /** Path of template.yaml / template.json. */
  templateFile: string;
  /** Default: the template folder's name, made a valid stack name. */
  stackName?: string;
  parameterOverrides?: Record<string, string>;
  /** Print the plan, change nothing. */
  dryRun?: boolean;
  /** Longest wait for a function (or provisioned concurrency) to be ready, ms (default 5 min). */
  waitMs?: number;
}

export type PlanAction = "create" | "update" | "replace" | "delete" | "none";

export interface PlanStep {
  logicalId: string;
  type: string;
  action: PlanAction;
  /** Properties that differ (update, replace). */
  changed?: string[];
}

export interface DeployedFunction {
  logicalId: string;
  functionName: string;
  /** Absolute path of the CodeUri folder or zip (absent for InlineCode). */
  codePath?: string;
  handler?: string;
  runtime?: string;
  metadata: Json;
}

export interface DeployResult {
  stackName: string;
  status: string;
  plan: PlanStep[];
  /** Whether anything was changed. */
  changed: boolean;
  outputs: Record<string, { Value: unknown; Description?: string }>;
  resources: Record<string, ResourceState>;
  functions: DeployedFunction[];
  notes: string[];
}

/** A template folder's name as a stack name ("my_app" → "my-app"). */
export function defaultStackName(templateFile: string): string {
  const base = basename(dirname(resolve(templateFile)))
    .replace(/[^-a-zA-Z0-9]/g, "-")
    .replace(/^[^a-zA-Z]+/, "");
  return (base || "lambent-app").slice(0, 128);
}

/** `<stack>-<LogicalId>-<SUFFIX>` as CloudFormation names things, shortened to `max` characters. */
export function generatedName(stack: string, id: string, max: number): string {
  const suffix = Array.from(randomBytes(12), (b) => "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[b % 36]).join("");
  const room = max - suffix.length - 2;
  const s = stack.slice(0, Math.max(1, Math.floor(room / 2)));
  const l = id.slice(0, room - s.length);
  return `${s}-${l}-${suffix}`;
}

function hashOf(type: string, props: Json): string {
  return createHash("sha256").update(stableJson({ type, props })).digest("hex");
}

function readTemplate(file: string): string {
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st?.isFile()) throw new DeployError(`${file}: no such template file`);
  if (st.size > MAX_TEMPLATE_BYTES) {
    throw new DeployError(`${file}: larger than ${MAX_TEMPLATE_BYTES} bytes (CloudFormation's limit)`);
  }
  return readFileSync(file, "utf8");
}

/** Build every resource's package (in template order; each build reports its own progress). */
async function buildPackages(
  t: LoadedTemplate,
  templateDir: string,
  progress: Progress,
): Promise<Map<string, BuiltPackage>> {
  const out = new Map<string, BuiltPackage>();
  for (const id of t.order) {
    const r = t.resources[id] as CfnResource;
    const p = r.Package;
    if (!p) continue;
    let built: BuiltCode;
    try {
      built = await buildFunctionCode(
        p.kind === "function"
          ? {
              templateDir,
              logicalId: id,
              ...(p.codeUri !== undefined ? { codeUri: p.codeUri } : {}),
              ...(p.inlineCode !== undefined ? { inlineCode: p.inlineCode } : {}),
              ...(p.handler !== undefined ? { handler: p.handler } : {}),
              ...(p.runtime !== undefined ? { runtime: p.runtime } : {}),
              metadata: p.metadata,
            }
          : { templateDir, logicalId: id, codeUri: p.contentUri, metadata: p.metadata },
        progress,
      );
    } catch (err) {
      throw new DeployError(err instanceof Error ? err.message : String(err));
    }
    out.set(id, { zip: built.zip, sha256: built.sha256, environment: built.environment });
  }
  return out;
}

interface Decision {
  id: string;
  type: string;
  action: PlanAction;
  props: Json;
  hash: string;
  name: string | undefined;
  changed: string[];
  prev: ResourceState | undefined;
}

interface Known {
  ref: unknown;
  attributes: Json;
}

/** Resolves Ref / Fn::GetAtt against what is known of each resource so far. */
function evalContext(
  t: LoadedTemplate,
  known: Map<string, Known>,
  types: Record<string, string>,
): EvalContext {
  const lookup = (id: string, at: string): Known => {
    const k = known.get(t.refAliases[id] ?? id);
    if (!k) throw new DeployError(`${at}: ${id} is not a resource of this template`);
    return k;
  };
  return {
    params: t.params,
    mappings: t.mappings,
    conditions: t.conditions,
    ref: (id, at) => lookup(id, at).ref,
    getAtt(id, attr, at) {
      const alias = t.refAliases[`${id}.${attr}`];
      if (alias) return lookup(alias, at).ref;
      // `Fn.Version.Version`, `Fn.Alias.AliasArn`: an attribute of a resource SAM generated.
      const dot = attr.indexOf(".");
      const generated = dot > 0 ? t.refAliases[`${id}.${attr.slice(0, dot)}`] : undefined;
      if (generated) return this.getAtt(generated, attr.slice(dot + 1), at);
      const k = lookup(id, at);
      if (!(attr in k.attributes)) {
        throw new DeployError(
          `${at}: ${id} (${types[id]}) has no attribute ${attr} (it has: ${Object.keys(k.attributes).join(", ") || "none"})`,
        );
      }
      return k.attributes[attr];
    },
  };
}

/** The name part of a stored resource's physical id (functions, schedules, permissions, layers). */
function storedName(s: ResourceState): string | undefined {
  return typeof s.Attributes.Name === "string" ? s.Attributes.Name : undefined;
}

function decide(
  id: string,
  r: CfnResource,
  props: Json,
  prev: ResourceState | undefined,
  stackName: string,
  plannedNames: Map<string, string>,
): Decision {
  const handler = RESOURCE_TYPES[r.Type];
  if (!handler) throw new DeployError(`${id}: type ${r.Type} is not supported`);
  const hash = hashOf(r.Type, props);
  const np = handler.nameProperty;
  const given = np?.key ? (props[np.key] as string | undefined) : undefined;
  const base = { id, type: r.Type, props, hash, prev };
  if (!prev || prev.Type !== r.Type) {
    const name = np ? (given ?? plannedNames.get(id) ?? generatedName(stackName, id, np.max)) : undefined;
    if (name !== undefined) plannedNames.set(id, name);
    return { ...base, action: prev ? "replace" : "create", name, changed: prev ? ["Type"] : [] };
  }
  const changed = [...new Set([...Object.keys(props), ...Object.keys(prev.Properties)])].filter(
    (k) => stableJson(props[k]) !== stableJson(prev.Properties[k]),
  );
  if (prev.Hash === hash) return { ...base, action: "none", name: storedName(prev), changed: [] };
  const replace =
    handler.replaceOn === "all" || changed.some((k) => (handler.replaceOn as string[]).includes(k));
  if (replace) {
    const name = np ? (given ?? plannedNames.get(id) ?? generatedName(stackName, id, np.max)) : undefined;
    if (name !== undefined) plannedNames.set(id, name);
    return { ...base, action: "replace", name, changed };
  }
  return { ...base, action: "update", name: storedName(prev), changed };
}

/** Evaluate a resource's properties; its package's sha256 (and build environment) go in. */
function resourceProps(
  id: string,
  r: CfnResource,
  ctx: EvalContext,
  packages: Map<string, BuiltPackage>,
): Json {
  const props = evaluate(r.Properties, ctx, `Resources.${id}.Properties`) as Json;
  const pkg = packages.get(id);
  if (pkg) {
    if (r.Type === "AWS::Lambda::LayerVersion") props.Content = { Sha256: pkg.sha256 };
    else {
      props.Code = { Sha256: pkg.sha256 };
      if (Object.keys(pkg.environment).length > 0) {
        const env = (props.Environment ?? {}) as Json;
        props.Environment = { ...env, Variables: { ...pkg.environment, ...((env.Variables as Json) ?? {}) } };
      }
    }
  }
  return props;
}

/** Walk the template in order, deciding each resource against the previous state. */
function plan(
  t: LoadedTemplate,
  prevResources: Record<string, ResourceState>,
  stackName: string,
  region: string,
  packages: Map<string, BuiltPackage>,
  plannedNames: Map<string, string>,
): { decisions: Decision[]; deletes: string[] } {
  const known = new Map<string, Known>();
  const types = Object.fromEntries(Object.entries(t.resources).map(([id, r]) => [id, r.Type]));
  const ctx = evalContext(t, known, types);
  const decisions: Decision[] = [];
  for (const id of t.order) {
    const r = t.resources[id] as CfnResource;
    const props = resourceProps(id, r, ctx, packages);
    const d = decide(id, r, props, prevResources[id], stackName, plannedNames);
    decisions.push(d);
    const predicted = (RESOURCE_TYPES[r.Type] as (typeof RESOURCE_TYPES)[string]).predict(
      id,
      props,
      d.name,
      region,
    );
    if (d.action === "none" && d.prev) known.set(id, { ref: d.prev.Ref, attributes: d.prev.Attributes });
    else if (d.action === "update" && d.prev) {
      // Updated in place: what it had, with what is already known to change (a function's CodeSha256).
      const sure = Object.entries(predicted.attributes).filter(([, v]) => v !== undefined && !isUnknown(v));
      known.set(id, { ref: d.prev.Ref, attributes: { ...d.prev.Attributes, ...Object.fromEntries(sure) } });
    } else known.set(id, predicted);
  }
  // Outputs are checked now too (with what is known), so a wrong one fails before any change.
  for (const [name, o] of Object.entries(t.outputs)) evaluate(o.Value, ctx, `Outputs.${name}`);
  const deletes = Object.keys(prevResources).filter((id) => !(id in t.resources));
  return { decisions, deletes };
}

const SYMBOL: Record<PlanAction, string> = { create: "+", update: "~", replace: "±", delete: "-", none: "=" };

export function formatPlan(steps: PlanStep[]): string {
  const lines = steps
    .filter((s) => s.action !== "none")
    .map(
      (s) =>
        `  ${SYMBOL[s.action]} ${s.action.padEnd(7)} ${s.logicalId} (${s.type})${s.changed && s.changed.length > 0 ? `: ${s.changed.join(", ")}` : ""}`,
    );
  const same = steps.filter((s) => s.action === "none").length;
  if (lines.length === 0) return `  no changes (${same} resource(s) up to date)`;
  return `${lines.join("\n")}${same > 0 ? `\n  (${same} resource(s) unchanged)` : ""}`;
}

/** Resources of `ids` ordered so each is deleted before what it depends on. */
function deleteOrder(ids: string[], state: Record<string, ResourceState>): string[] {
  const set = new Set(ids);
  const deps: Record<string, string[]> = {};
  for (const id of ids) deps[id] = (state[id]?.DependsOn ?? []).filter((d) => set.has(d));
  return topologicalOrder(deps).reverse();
}

/** The step a deploy was taking when its record was last written (see the header). */
export interface InFlight {
  /** create / replace: a new resource; update; delete: a recorded one; restore: a rollback of an update. */
  Action: "create" | "replace" | "update" | "delete" | "restore";
  /** The key in Resources (a replaced resource's is `<LogicalId>.replaced`). */
  LogicalId: string;
  Type: string;
  /** create / replace: the physical id it will have, when known before the create. */
  PhysicalId?: string;
  /** create / replace of a resource whose id the server chooses: the ids that existed before it. */
  Before?: string[];
  /** …and the properties and name it was created with (to list its kind again). */
  Properties?: Json;
  Name?: string;
  /** delete of a created resource in a rollback: the replaced resource to put back under LogicalId. */
  Restores?: string;
  /** restore: the properties the rollback puts back (the record holds the ones the update applied). */
  Previous?: Json;
}

/** A deployment that has started and not finished, as the stack record keeps it. */
export interface PendingDeployment {
  StartedAt: string;
  Plan: Array<{ LogicalId: string; Type: string; Action: PlanAction }>;
  /** Logical ids whose step is done. */
  Done: string[];
  /** Set while a step runs. */
  InFlight?: InFlight;
  /** Set once the deploy is rolling back. */
  RollingBack?: boolean;
}

interface StackWriter {
  revision: number;
  /** Written with every IN_PROGRESS status; dropped when the deploy ends (COMPLETE, FAILED). */
  pending: PendingDeployment | undefined;
  write(status: string, reason?: string, outputs?: Json): Promise<void>;
  /** Record the step about to run (undefined: none) and write it (with the last reason given, if none is). */
  step(status: string, inFlight: InFlight | undefined, reason?: string): Promise<void>;
}

function stackWriter(
  client: LambentClient,
  name: string,
  revision: number,
  resources: Record<string, ResourceState>,
  parameters: Record<string, string>,
  outputs: Json,
): StackWriter {
  let lastOutputs = outputs;
  let lastReason: string | undefined;
  const w: StackWriter = {
    revision,
    pending: undefined,
    async write(status, reason, newOutputs) {
      if (newOutputs) lastOutputs = newOutputs;
      lastReason = reason;
      const pending = status.endsWith("_IN_PROGRESS") ? w.pending : undefined;
      const rec = await client.putStack(name, {
        ExpectedRevision: w.revision,
        Status: status,
        ...(reason ? { StatusReason: reason.slice(0, 4096) } : {}),
        Parameters: parameters,
        Resources: resources,
        Outputs: lastOutputs,
        ...(pending ? { Pending: pending } : {}),
      });
      w.revision = Number(rec.Revision);
    },
    async step(status, inFlight, reason) {
      if (w.pending) {
        if (inFlight) w.pending.InFlight = inFlight;
        else delete w.pending.InFlight;
      }
      await w.write(status, reason ?? lastReason);
    },
  };
  return w;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Marks a property whose value is unknown after an interrupted rollback: any template value differs. */
const INTERRUPTED = { "Lambent::Interrupted": true };

/** What a deploy about to resume will do first (also printed by a dry run). */
export function describeInFlight(f: InFlight): string {
  switch (f.Action) {
    case "create":
    case "replace":
      return f.PhysicalId !== undefined
        ? `the unfinished ${f.Action} of ${f.LogicalId} (${f.Type}) is undone: ${f.PhysicalId} is deleted if it was made`
        : f.Before !== undefined
          ? `the unfinished ${f.Action} of ${f.LogicalId} (${f.Type}) is undone: what it made (one not there before it and not in the stack's record) is deleted`
          : `the unfinished ${f.Action} of ${f.LogicalId} (${f.Type}) cannot be undone: its id was not known before the create; look for a ${f.Type} of this stack that is not in its record`;
    case "delete":
      return `the unfinished delete of ${f.LogicalId} (${f.Type}) is finished`;
    case "update":
      return `the unfinished update of ${f.LogicalId} (${f.Type}) is applied again (the record still has its previous properties)`;
    case "restore":
      return `the unfinished rollback of ${f.LogicalId} (${f.Type}) leaves it between two states: the properties it touched are applied again`;
  }
}

/**
 * A deploy killed midway: settle the step it was taking, so the recorded resources are exactly
 * what exists (`state` is changed in place), and say what was done.
 */
async function settleInFlight(
  f: InFlight,
  state: Record<string, ResourceState>,
  ctx: ApplyContext,
  progress: Progress,
): Promise<void> {
  const handler = RESOURCE_TYPES[f.Type];
  if (!handler) return;
  progress(`  ${describeInFlight(f)}`);
  switch (f.Action) {
    case "create":
    case "replace": {
      const orphan = (physicalId: string): ResourceState => ({
        Type: f.Type,
        PhysicalId: physicalId,
        Ref: physicalId,
        Attributes: {},
        Properties: {},
        Hash: "",
        DependsOn: [],
      });
      if (f.PhysicalId !== undefined) {
        if (state[f.LogicalId]?.PhysicalId !== f.PhysicalId) await handler.remove(orphan(f.PhysicalId), ctx);
      } else if (f.Before !== undefined && handler.existing) {
        const keep = new Set([...f.Before, ...Object.values(state).map((s) => s.PhysicalId)]);
        for (const id of await handler.existing(f.Properties ?? {}, f.Name, ctx)) {
          if (keep.has(id)) continue;
          progress(`  deleting ${id}, made by the unfinished ${f.Action} of ${f.LogicalId}`);
          await handler.remove(orphan(id), ctx);
        }
      }
      return;
    }
    case "delete": {
      const s = state[f.LogicalId];
      if (!s) return;
      await handler.remove(s, ctx);
      const back = f.Restores !== undefined ? state[f.Restores] : undefined;
      if (back && f.Restores !== undefined) {
        state[f.LogicalId] = back;
        delete state[f.Restores];
      } else delete state[f.LogicalId];
      return;
    }
    case "update":
      return;
    case "restore": {
      const s = state[f.LogicalId];
      if (!s) return;
      const previous = f.Previous ?? {};
      const props: Json = { ...s.Properties };
      for (const k of new Set([...Object.keys(previous), ...Object.keys(s.Properties)])) {
        if (stableJson(previous[k]) !== stableJson(s.Properties[k])) props[k] = INTERRUPTED;
      }
      state[f.LogicalId] = { ...s, Properties: props, Hash: "interrupted" };
      return;
    }
  }
}

/** Deploy (create or update) a stack from a template. */
export async function deployStack(opts: DeployOptions, progress: Progress = () => {}): Promise<DeployResult> {
  const { client } = opts;
  const templateFile = resolve(opts.templateFile);
  const templateDir = dirname(templateFile);
  const stackName = opts.stackName ?? defaultStackName(templateFile);
  const text = readTemplate(templateFile);
  const prior = await client.getStack(stackName);
  const priorStatus = prior?.Status as string | undefined;
  if (priorStatus?.startsWith("DELETE_")) {
    throw new DeployError(
      `stack ${stackName} is ${priorStatus}: finish deleting it first (lambent stacks delete ${stackName})`,
    );
  }
  const prevResources = { ...((prior?.Resources ?? {}) as Record<string, ResourceState>) };
  const pending = prior?.Pending as PendingDeployment | undefined;
  if (pending) {
    progress(
      `stack ${stackName} has a deploy that did not finish (started ${pending.StartedAt}, ${priorStatus}; ${pending.Done.length} of ${pending.Plan.length} step(s) done${pending.RollingBack ? ", it was rolling back" : ""}): ${opts.dryRun ? "a deploy will settle it first" : "settling it, then continuing from its recorded state"}`,
    );
    if (pending.InFlight && opts.dryRun) progress(`  ${describeInFlight(pending.InFlight)}`);
    else if (pending.InFlight) {
      const settleCtx: ApplyContext = {
        client,
        region: client.region,
        progress,
        packages: new Map(),
        waitMs: opts.waitMs ?? 300_000,
      };
      await settleInFlight(pending.InFlight, prevResources, settleCtx, progress);
    }
  }
  const load = (stackId: string) =>
    loadTemplate(text, templateFile, {
      stackName,
      stackId,
      region: client.region,
      overrides: opts.parameterOverrides ?? {},
    });
  let t = load(
    typeof prior?.StackId === "string"
      ? prior.StackId
      : `arn:aws:cloudformation:${client.region}:000000000000:stack/${stackName}/<new>`,
  );
  for (const n of t.notes) progress(`note: ${n}`);
  const packages = await buildPackages(t, templateDir, progress);
  const plannedNames = new Map<string, string>();
  let { decisions, deletes } = plan(t, prevResources, stackName, client.region, packages, plannedNames);
  const steps: PlanStep[] = [
    ...decisions.map((d) => ({
      logicalId: d.id,
      type: d.type,
      action: d.action,
      ...(d.changed.length > 0 ? { changed: d.changed } : {}),
    })),
    ...deletes.map((id) => ({
      logicalId: id,
      type: prevResources[id]?.Type ?? "?",
      action: "delete" as const,
    })),
  ];
  if (priorStatus?.endsWith("_IN_PROGRESS") && !pending) {
    progress(
      `stack ${stackName} was left ${priorStatus} by a deploy that did not finish: continuing from its recorded state`,
    );
  }
  progress(`plan for stack ${stackName}:\n${formatPlan(steps)}`);
  const functions = (resources: Record<string, ResourceState>) =>
    Object.entries(t.resources)
      .filter(([id, r]) => r.Type === "AWS::Lambda::Function" && resources[id])
      .map(([id, r]) => {
        const p = r.Package?.kind === "function" ? r.Package : undefined;
        return {
          logicalId: id,
          functionName: (resources[id] as ResourceState).PhysicalId,
          ...(p?.codeUri !== undefined ? { codePath: resolve(templateDir, p.codeUri) } : {}),
          ...(p?.handler !== undefined ? { handler: p.handler } : {}),
          ...(p?.runtime !== undefined ? { runtime: p.runtime } : {}),
          metadata: p?.metadata ?? {},
        };
      });
  const nothing = steps.every((s) => s.action === "none");
  const settled =
    priorStatus !== undefined && !priorStatus.endsWith("_IN_PROGRESS") && !priorStatus.endsWith("_FAILED");
  const result = (
    status: string,
    resources: Record<string, ResourceState>,
    outputs: DeployResult["outputs"],
    changed: boolean,
  ): DeployResult => ({
    stackName,
    status,
    plan: steps,
    changed,
    outputs,
    resources,
    functions: functions(resources),
    notes: t.notes,
  });
  if (opts.dryRun)
    return result(
      priorStatus ?? "(new)",
      prevResources,
      (prior?.Outputs ?? {}) as DeployResult["outputs"],
      false,
    );
  if (nothing && settled) {
    return result(
      priorStatus as string,
      prevResources,
      (prior?.Outputs ?? {}) as DeployResult["outputs"],
      false,
    );
  }

  // Apply.
  const state: Record<string, ResourceState> = { ...prevResources };
  // A stack whose creation never completed (or was rolled back) is created, not updated.
  const creating =
    prior === undefined ||
    ["ROLLBACK_COMPLETE", "CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED"].includes(
      priorStatus as string,
    );
  const writer = stackWriter(
    client,
    stackName,
    Number(prior?.Revision ?? 0),
    state,
    t.shownParams,
    (prior?.Outputs ?? {}) as Json,
  );
  const inProgress = creating ? "CREATE_IN_PROGRESS" : "UPDATE_IN_PROGRESS";
  // Recorded before anything changes: a deploy killed from here on is resumed by the next one.
  writer.pending = {
    StartedAt: new Date().toISOString(),
    Plan: steps.map((s) => ({ LogicalId: s.logicalId, Type: s.type, Action: s.action })),
    Done: [],
  };
  await writer.write(inProgress);
  if (prior === undefined) {
    // The stack id exists now: evaluate again with it (AWS::StackId), same names.
    const rec = await client.getStack(stackName);
    t = load(String(rec?.StackId));
    ({ decisions, deletes } = plan(t, prevResources, stackName, client.region, packages, plannedNames));
  }
  const applyCtx: ApplyContext = {
    client,
    region: client.region,
    progress,
    packages,
    waitMs: opts.waitMs ?? 300_000,
  };
  const rollbackStatus = creating ? "ROLLBACK_IN_PROGRESS" : "UPDATE_ROLLBACK_IN_PROGRESS";
  const undo: Array<{ what: string; run: () => Promise<void> }> = [];
  const known = new Map<string, Known>();
  const types = Object.fromEntries(Object.entries(t.resources).map(([id, r]) => [id, r.Type]));
  const ctx = evalContext(t, known, types);
  const replaced: string[] = [];
  const record = (
    id: string,
    r: CfnResource,
    d: Decision,
    applied: { physicalId: string; ref: unknown; attributes: Json },
  ) => {
    state[id] = {
      Type: r.Type,
      PhysicalId: applied.physicalId,
      Ref: applied.ref,
      Attributes: { ...applied.attributes, ...(d.name !== undefined ? { Name: d.name } : {}) },
      Properties: d.props,
      Hash: d.hash,
      DependsOn: t.dependencies[id] ?? [],
      ...(r.DeletionPolicy ? { DeletionPolicy: r.DeletionPolicy } : {}),
    };
    known.set(id, { ref: applied.ref, attributes: state[id].Attributes });
  };
  let current = "";
  try {
    for (const id of t.order) {
      current = id;
      const r = t.resources[id] as CfnResource;
      const handler = RESOURCE_TYPES[r.Type] as (typeof RESOURCE_TYPES)[string];
      const props = resourceProps(id, r, ctx, packages);
      const d = decide(id, r, props, prevResources[id], stackName, plannedNames);
      const prev = d.prev;
      if (d.action === "none" && prev) {
        known.set(id, { ref: prev.Ref, attributes: prev.Attributes });
        continue;
      }
      if (d.action === "update" && prev) {
        progress(`~ updating ${id} (${r.Type}): ${d.changed.join(", ")}`);
        await writer.step(inProgress, { Action: "update", LogicalId: id, Type: r.Type });
        const restore = await rollbackPackage(id, r, prev, applyCtx);
        // Registered first: an update that fails halfway (code changed, configuration refused) is undone too.
        const attempted: ResourceState = { ...prev, Properties: props };
        undo.push({
          what: `restore ${id}`,
          run: async () => {
            await writer.step(rollbackStatus, {
              Action: "restore",
              LogicalId: id,
              Type: r.Type,
              Previous: prev.Properties,
            });
            const back = await handler.update(id, prev.Properties, attempted, {
              ...applyCtx,
              packages: restore,
            });
            state[id] = { ...prev, Ref: back.ref ?? prev.Ref };
          },
        });
        const applied = await handler.update(id, props, prev, applyCtx);
        record(id, r, d, applied);
      } else {
        progress(`+ ${d.action === "replace" ? "replacing" : "creating"} ${id} (${r.Type})`);
        const physicalId = handler.physicalIdOf?.(props, d.name, client.region);
        // An id only the server chooses: what exists before, so a killed create's leftover can be told apart.
        const before =
          physicalId === undefined && handler.existing
            ? {
                Before: await handler.existing(props, d.name, applyCtx),
                Properties: props,
                ...(d.name !== undefined ? { Name: d.name } : {}),
              }
            : {};
        await writer.step(inProgress, {
          Action: d.action === "replace" ? "replace" : "create",
          LogicalId: id,
          Type: r.Type,
          ...(physicalId !== undefined ? { PhysicalId: physicalId } : {}),
          ...before,
        });
        const applied = await handler.create(id, props, d.name, applyCtx);
        if (prev) {
          let key = `${id}.replaced`;
          for (let n = 2; key in state; n++) key = `${id}.replaced${n}`;
          state[key] = prev;
          replaced.push(key);
        }
        record(id, r, d, applied);
        const created = state[id] as ResourceState;
        undo.push({
          what: `delete ${id}`,
          run: async () => {
            const restores = prev ? replaced.find((k) => state[k] === prev) : undefined;
            await writer.step(rollbackStatus, {
              Action: "delete",
              LogicalId: id,
              Type: r.Type,
              ...(restores !== undefined ? { Restores: restores } : {}),
            });
            await handler.remove(created, applyCtx);
            if (prev) {
              state[id] = prev;
              const key = replaced.find((k) => state[k] === prev);
              if (key) delete state[key];
            } else delete state[id];
          },
        });
      }
      writer.pending?.Done.push(id);
      await writer.step(inProgress, undefined);
    }
  } catch (err) {
    const reason = `${current}: ${message(err)}`;
    progress(`✗ ${reason}`);
    progress("rolling back");
    if (writer.pending) writer.pending.RollingBack = true;
    await writer.step(rollbackStatus, undefined, reason).catch(() => {});
    const failures: string[] = [];
    for (const u of undo.reverse()) {
      try {
        progress(`  ${u.what}`);
        await u.run();
      } catch (e) {
        failures.push(`${u.what}: ${message(e)}`);
      }
      await writer.step(rollbackStatus, undefined, reason).catch(() => {});
    }
    const status =
      failures.length > 0
        ? creating
          ? "ROLLBACK_FAILED"
          : "UPDATE_ROLLBACK_FAILED"
        : creating
          ? "ROLLBACK_COMPLETE"
          : "UPDATE_ROLLBACK_COMPLETE";
    const finalReason = failures.length > 0 ? `${reason}; rollback failed: ${failures.join("; ")}` : reason;
    await writer.write(status, finalReason);
    throw new DeployError(
      `deploy of stack ${stackName} failed at ${finalReason}\nstack ${stackName} is ${status}${failures.length > 0 ? " (the recorded resources are what exists; deploy again to converge)" : ""}`,
    );
  }

  // Cleanup: what the template no longer has, and what was replaced.
  const cleanup = deleteOrder(
    [...deletes, ...replaced].filter((id) => id in state),
    state,
  );
  const cleanupFailures: string[] = [];
  for (const id of cleanup) {
    const s = state[id] as ResourceState;
    try {
      if (s.DeletionPolicy === "Retain") progress(`- ${id}: kept (DeletionPolicy Retain)`);
      else {
        progress(`- deleting ${id} (${s.Type})`);
        await writer.step(inProgress, { Action: "delete", LogicalId: id, Type: s.Type });
        await (RESOURCE_TYPES[s.Type] as (typeof RESOURCE_TYPES)[string]).remove(s, applyCtx);
      }
      delete state[id];
      writer.pending?.Done.push(id);
      await writer.step(inProgress, undefined);
    } catch (err) {
      cleanupFailures.push(`${id}: ${message(err)}`);
    }
  }
  const outputs: DeployResult["outputs"] = {};
  for (const [name, o] of Object.entries(t.outputs)) {
    const v = evaluate(o.Value, ctx, `Outputs.${name}`);
    if (v === NO_VALUE) continue;
    outputs[name] = { Value: v, ...(o.Description ? { Description: o.Description } : {}) };
  }
  const status =
    cleanupFailures.length > 0
      ? "UPDATE_COMPLETE_CLEANUP_FAILED"
      : creating
        ? "CREATE_COMPLETE"
        : "UPDATE_COMPLETE";
  await writer.write(
    status,
    cleanupFailures.length > 0 ? `could not delete ${cleanupFailures.join("; ")}` : undefined,
    outputs,
  );
  return result(status, state, outputs, true);
}

/**
 * Before a function's code is replaced: its current package, downloaded, so a rollback can put it
 * back (other types need nothing: their previous properties are in the stack record).
 */
async function rollbackPackage(
  id: string,
  r: CfnResource,
  prev: ResourceState,
  ctx: ApplyContext,
): Promise<Map<string, BuiltPackage>> {
  const out = new Map<string, BuiltPackage>();
  if (r.Type !== "AWS::Lambda::Function") return out;
  const sha = (prev.Properties.Code as Json | undefined)?.Sha256;
  const fn = await ctx.client.lambda("GetFunction", { FunctionName: prev.PhysicalId });
  const location = (fn.Code as Json | undefined)?.Location;
  if (typeof location !== "string")
    throw new DeployError(`${id}: the server gave no Code.Location to keep for a rollback`);
  if (ctx.packages.get(id)?.sha256 === sha) out.set(id, ctx.packages.get(id) as BuiltPackage);
  else out.set(id, { zip: await ctx.client.download(location), sha256: String(sha), environment: {} });
  return out;
}

/** Delete a stack: its resources (newest dependents first), then its record. */
export async function deleteStack(
  client: LambentClient,
  stackName: string,
  progress: Progress = () => {},
): Promise<void> {
  const prior = await client.getStack(stackName);
  if (!prior) throw new DeployError(`stack ${stackName} does not exist`);
  const state = { ...(prior.Resources as Record<string, ResourceState>) };
  const writer = stackWriter(
    client,
    stackName,
    Number(prior.Revision),
    state,
    (prior.Parameters ?? {}) as Record<string, string>,
    (prior.Outputs ?? {}) as Json,
  );
  await writer.write("DELETE_IN_PROGRESS");
  const ctx: ApplyContext = { client, region: client.region, progress, packages: new Map(), waitMs: 300_000 };
  const failures: string[] = [];
  for (const id of deleteOrder(Object.keys(state), state)) {
    const s = state[id] as ResourceState;
    try {
      if (s.DeletionPolicy === "Retain" && !functionGoes(s, state))
        progress(`- ${id}: kept (DeletionPolicy Retain)`);
      else {
        progress(`- deleting ${id} (${s.Type})`);
        await (RESOURCE_TYPES[s.Type] as (typeof RESOURCE_TYPES)[string]).remove(s, ctx);
      }
      delete state[id];
      await writer.write("DELETE_IN_PROGRESS");
    } catch (err) {
      failures.push(`${id}: ${message(err)}`);
    }
  }
  if (failures.length > 0) {
    await writer.write("DELETE_FAILED", failures.join("; "));
    throw new DeployError(`could not delete every resource of stack ${stackName}: ${failures.join("; ")}`);
  }
  await client.deleteStack(stackName, writer.revision);
}

/** A retained version of a function the same delete removes goes with it anyway. */
function functionGoes(s: ResourceState, state: Record<string, ResourceState>): boolean {
  if (s.Type !== "AWS::Lambda::Version") return false;
  const fn = splitFunction(s.PhysicalId).name;
  return Object.values(state).some((o) => o.Type === "AWS::Lambda::Function" && o.PhysicalId === fn);
}
