/**
 * From a template's text to the resources to deploy: top-level sections
 * checked, Parameters resolved (defaults, overrides, AllowedValues,
 * AllowedPattern, lengths, ranges, NoEcho), pseudo parameters, Mappings,
 * Conditions evaluated, resources whose Condition is false dropped, the SAM
 * transform run, every resource type and property checked against what
 * lambent deploy can make, and the dependency order worked out (a cycle is an
 * error). Nothing here talks to a server.
 */
import { ACCOUNT_ID } from "../config.js";
import { type EvalContext, evalCondition, evaluate, references } from "./intrinsics.js";
import { RESOURCE_TYPES } from "./resources.js";
import { type CfnResource, type Json, SAM_TRANSFORM, transformSam } from "./sam.js";
import { DeployError, parseTemplate, type Template } from "./template.js";

const TOP_LEVEL = new Set([
  "AWSTemplateFormatVersion",
  "Transform",
  "Description",
  "Metadata",
  "Parameters",
  "Mappings",
  "Conditions",
  "Globals",
  "Resources",
  "Outputs",
  "Rules",
]);

const RESOURCE_KEYS = new Set([
  "Type",
  "Properties",
  "DependsOn",
  "Condition",
  "DeletionPolicy",
  "UpdateReplacePolicy",
  "Metadata",
]);

const PARAMETER_KEYS = new Set([
  "Type",
  "Default",
  "Description",
  "AllowedValues",
  "AllowedPattern",
  "ConstraintDescription",
  "MinLength",
  "MaxLength",
  "MinValue",
  "MaxValue",
  "NoEcho",
]);

const PARAMETER_TYPES = new Set(["String", "Number", "List<Number>", "CommaDelimitedList"]);

export const PSEUDO_PARAMETERS = [
  "AWS::Region",
  "AWS::AccountId",
  "AWS::StackName",
  "AWS::StackId",
  "AWS::Partition",
  "AWS::URLSuffix",
  "AWS::NotificationARNs",
];

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export interface LoadedOutput {
  Value: unknown;
  Description?: string;
}

export interface LoadedTemplate {
  /** Resources after the transform, in dependency order. */
  resources: Record<string, CfnResource>;
  order: string[];
  /** Each resource's dependencies (logical ids). */
  dependencies: Record<string, string[]>;
  params: Record<string, unknown>;
  /** Parameters as shown and stored: NoEcho values masked. */
  shownParams: Record<string, string>;
  mappings: Json;
  conditions: Record<string, boolean>;
  outputs: Record<string, LoadedOutput>;
  refAliases: Record<string, string>;
  notes: string[];
}

export interface LoadOptions {
  stackName: string;
  stackId: string;
  region: string;
  overrides: Record<string, string>;
}

function resolveParameters(
  decl: unknown,
  overrides: Record<string, string>,
): { values: Record<string, unknown>; shown: Record<string, string> } {
  if (decl !== undefined && !isObject(decl)) throw new DeployError("Parameters must be a map");
  const params = (decl ?? {}) as Json;
  for (const k of Object.keys(overrides)) {
    if (!(k in params)) throw new DeployError(`--parameter-overrides: the template has no parameter ${k}`);
  }
  const values: Record<string, unknown> = {};
  const shown: Record<string, string> = {};
  for (const [name, raw] of Object.entries(params)) {
    if (!isObject(raw)) throw new DeployError(`Parameters.${name} must be a map`);
    for (const k of Object.keys(raw)) {
      if (!PARAMETER_KEYS.has(k))
        throw new DeployError(`Parameters.${name}: ${k} is not a parameter property`);
    }
    const type = raw.Type;
    if (typeof type !== "string" || !PARAMETER_TYPES.has(type)) {
      throw new DeployError(
        `Parameters.${name}: Type ${String(type)} is not supported (String, Number, List<Number>, CommaDelimitedList)`,
      );
    }
    const given = overrides[name] ?? (raw.Default === undefined ? undefined : String(raw.Default));
    if (given === undefined) {
      throw new DeployError(
        `Parameters: ${name} has no Default; give it with --parameter-overrides ${name}=<value>`,
      );
    }
    const fail = (why: string) => {
      const desc = typeof raw.ConstraintDescription === "string" ? ` (${raw.ConstraintDescription})` : "";
      throw new DeployError(`Parameter ${name}: ${why}${desc}`);
    };
    const items = type === "String" || type === "Number" ? [given] : given.split(",").map((s) => s.trim());
    for (const v of items) {
      if (Array.isArray(raw.AllowedValues) && !raw.AllowedValues.map(String).includes(v)) {
        fail(`value '${v}' is not one of AllowedValues [${raw.AllowedValues.map(String).join(", ")}]`);
      }
      if (type === "Number" || type === "List<Number>") {
        const n = Number(v);
        if (v === "" || !Number.isFinite(n)) fail(`'${v}' is not a number`);
        if (raw.MinValue !== undefined && n < Number(raw.MinValue))
          fail(`${v} is below MinValue ${raw.MinValue}`);
        if (raw.MaxValue !== undefined && n > Number(raw.MaxValue))
          fail(`${v} is above MaxValue ${raw.MaxValue}`);
      } else {
        if (raw.MinLength !== undefined && v.length < Number(raw.MinLength))
          fail(`shorter than MinLength ${raw.MinLength}`);
        if (raw.MaxLength !== undefined && v.length > Number(raw.MaxLength))
          fail(`longer than MaxLength ${raw.MaxLength}`);
        if (typeof raw.AllowedPattern === "string") {
          let re: RegExp;
          try {
            re = new RegExp(`^(?:${raw.AllowedPattern})$`);
          } catch {
            throw new DeployError(`Parameters.${name}: AllowedPattern is not a valid pattern`);
          }
          if (v.length > 4096 || !re.test(v))
            fail(`value does not match AllowedPattern ${raw.AllowedPattern}`);
        }
      }
    }
    values[name] = type === "String" || type === "Number" ? given : items;
    shown[name] = raw.NoEcho === true || raw.NoEcho === "true" ? "****" : given;
  }
  return { values, shown };
}

/** Parse and check a template; resolve everything that does not need a deployed resource. */
export function loadTemplate(text: string, source: string, opts: LoadOptions): LoadedTemplate {
  const t: Template = parseTemplate(text, source);
  for (const k of Object.keys(t)) {
    if (!TOP_LEVEL.has(k)) throw new DeployError(`${source}: unknown top-level section ${k}`);
  }
  const transforms =
    t.Transform === undefined ? [] : Array.isArray(t.Transform) ? t.Transform : [t.Transform];
  for (const tr of transforms) {
    if (tr !== SAM_TRANSFORM) {
      throw new DeployError(
        `${source}: Transform ${JSON.stringify(tr)} is not supported (only ${SAM_TRANSFORM})`,
      );
    }
  }
  if (t.Rules !== undefined) throw new DeployError(`${source}: Rules are not supported`);
  if (!isObject(t.Resources) || Object.keys(t.Resources).length === 0) {
    throw new DeployError(`${source}: Resources must be a map with at least one resource`);
  }
  if (t.Globals !== undefined && transforms.length === 0) {
    throw new DeployError(`${source}: Globals needs Transform: ${SAM_TRANSFORM}`);
  }
  const { values, shown } = resolveParameters(t.Parameters, opts.overrides);
  const params: Record<string, unknown> = {
    ...values,
    "AWS::Region": opts.region,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::StackName": opts.stackName,
    "AWS::StackId": opts.stackId,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
  };
  const mappings = (t.Mappings ?? {}) as Json;
  if (!isObject(mappings)) throw new DeployError(`${source}: Mappings must be a map`);
  const noResources = (what: string) => (id: string, at: string) => {
    throw new DeployError(
      `${at}: ${what} ${id}: only parameters, pseudo parameters and mappings can be used here`,
    );
  };
  const conditions: Record<string, boolean> = {};
  const condDecl = (t.Conditions ?? {}) as Json;
  if (!isObject(condDecl)) throw new DeployError(`${source}: Conditions must be a map`);
  const resolving = new Set<string>();
  const ctxFor = (conds: Record<string, boolean>): EvalContext => ({
    params,
    mappings,
    conditions: conds,
    ref: noResources("Ref"),
    getAtt: noResources("Fn::GetAtt of"),
  });
  // Conditions may name other conditions: evaluated on first use, a cycle is an error.
  const lazy = new Proxy(conditions, {
    get(target, name) {
      if (typeof name !== "string") return undefined;
      if (name in target) return target[name];
      if (!(name in condDecl)) return undefined;
      if (resolving.has(name)) throw new DeployError(`Conditions: ${name} depends on itself`);
      resolving.add(name);
      target[name] = evalCondition(condDecl[name], ctxFor(lazy), `Conditions.${name}`);
      resolving.delete(name);
      return target[name];
    },
  });
  for (const name of Object.keys(condDecl)) void lazy[name];
  const evalNow = (v: unknown, at: string) => evaluate(v, ctxFor(conditions), at);

  const kept: Parameters<typeof transformSam>[0]["resources"] = {};
  for (const [id, raw] of Object.entries(t.Resources)) {
    if (!/^[A-Za-z0-9]+$/.test(id)) throw new DeployError(`Resources.${id}: logical ids are alphanumeric`);
    if (id in params) throw new DeployError(`Resources.${id}: a parameter has the same name`);
    if (!isObject(raw) || typeof raw.Type !== "string") throw new DeployError(`Resources.${id}: needs Type`);
    for (const k of Object.keys(raw)) {
      if (!RESOURCE_KEYS.has(k)) throw new DeployError(`Resources.${id}: ${k} is not a resource attribute`);
    }
    if (raw.Condition !== undefined) {
      const c = conditions[String(raw.Condition)];
      if (c === undefined)
        throw new DeployError(`Resources.${id}: no condition named ${String(raw.Condition)}`);
      if (!c) continue;
    }
    const props = raw.Properties ?? {};
    if (!isObject(props)) throw new DeployError(`Resources.${id}: Properties must be a map`);
    const dependsOn =
      raw.DependsOn === undefined ? [] : Array.isArray(raw.DependsOn) ? raw.DependsOn : [raw.DependsOn];
    if (!dependsOn.every((d) => typeof d === "string"))
      throw new DeployError(`Resources.${id}: DependsOn takes logical ids`);
    const policy = raw.DeletionPolicy;
    if (policy !== undefined && policy !== "Delete" && policy !== "Retain") {
      throw new DeployError(`Resources.${id}: DeletionPolicy must be Delete or Retain`);
    }
    kept[id] = {
      Type: raw.Type,
      Properties: props,
      DependsOn: dependsOn as string[],
      ...(policy ? { DeletionPolicy: policy as string } : {}),
      Metadata: isObject(raw.Metadata) ? raw.Metadata : {},
    };
  }
  if (transforms.length === 0) {
    for (const [id, r] of Object.entries(kept)) {
      if (r.Type.startsWith("AWS::Serverless::")) {
        throw new DeployError(`Resources.${id}: ${r.Type} needs Transform: ${SAM_TRANSFORM}`);
      }
    }
  }
  const { resources, refAliases, notes } = transformSam({
    stackName: opts.stackName,
    resources: kept,
    globals: isObject(t.Globals) ? t.Globals : {},
    evalNow,
  });

  // Every type and property known; references resolved to logical ids.
  const dependencies: Record<string, string[]> = {};
  for (const [id, r] of Object.entries(resources)) {
    const handler = RESOURCE_TYPES[r.Type];
    if (!handler) {
      throw new DeployError(
        `Resources.${r.From ?? id}: type ${r.Type} is not supported by lambent deploy (supported: AWS::Serverless::Function, AWS::Serverless::LayerVersion, ${Object.keys(RESOURCE_TYPES).join(", ")})`,
      );
    }
    for (const k of Object.keys(r.Properties)) {
      if (!handler.properties.includes(k)) {
        throw new DeployError(
          `Resources.${id} (${r.Type}): property ${k} is not supported (supported: ${handler.properties.join(", ")})`,
        );
      }
    }
    for (const k of handler.required) {
      if (r.Properties[k] === undefined && !(k === "Code" && r.Package) && !(k === "Content" && r.Package)) {
        throw new DeployError(`Resources.${id} (${r.Type}): ${k} is required`);
      }
    }
    const deps = new Set<string>(r.DependsOn);
    for (const ref of references(r.Properties)) deps.add(ref);
    const out: string[] = [];
    for (const d of deps) {
      if (d in params || d === "AWS::NoValue") continue;
      const target = refAliases[d] ?? d;
      if (!(target in resources)) {
        throw new DeployError(
          `Resources.${r.From ?? id}: refers to ${d}, which is not a parameter or a resource of this template`,
        );
      }
      out.push(target);
    }
    dependencies[id] = out;
  }
  const order = topologicalOrder(dependencies);

  const outputs: Record<string, LoadedOutput> = {};
  const outDecl = t.Outputs ?? {};
  if (!isObject(outDecl)) throw new DeployError(`${source}: Outputs must be a map`);
  for (const [name, raw] of Object.entries(outDecl)) {
    if (!isObject(raw) || raw.Value === undefined) throw new DeployError(`Outputs.${name}: needs Value`);
    for (const k of Object.keys(raw)) {
      if (k === "Export")
        throw new DeployError(`Outputs.${name}: Export (cross-stack references) is not supported`);
      if (!["Value", "Description", "Condition"].includes(k))
        throw new DeployError(`Outputs.${name}: ${k} is not an output property`);
    }
    if (raw.Condition !== undefined && conditions[String(raw.Condition)] === false) continue;
    for (const ref of references(raw.Value)) {
      if (!(ref in params) && ref !== "AWS::NoValue" && !((refAliases[ref] ?? ref) in resources)) {
        throw new DeployError(
          `Outputs.${name}: refers to ${ref}, which is not a parameter or a resource of this template`,
        );
      }
    }
    outputs[name] = {
      Value: raw.Value,
      ...(typeof raw.Description === "string" ? { Description: raw.Description } : {}),
    };
  }
  return {
    resources,
    order,
    dependencies,
    params,
    shownParams: shown,
    mappings,
    conditions,
    outputs,
    refAliases,
    notes,
  };
}

/** Resources ordered so each comes after what it depends on; a cycle is a DeployError naming it. */
export function topologicalOrder(deps: Record<string, string[]>): string[] {
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (id: string, path: string[]) => {
    const s = state.get(id);
    if (s === "done") return;
    if (s === "visiting") {
      const cycle = [...path.slice(path.indexOf(id)), id];
      throw new DeployError(`circular dependency between resources: ${cycle.join(" → ")}`);
    }
    state.set(id, "visiting");
    for (const d of deps[id] ?? []) visit(d, [...path, id]);
    state.set(id, "done");
    order.push(id);
  };
  for (const id of Object.keys(deps).sort()) visit(id, []);
  return order;
}
