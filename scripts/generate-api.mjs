#!/usr/bin/env node
/**
 * Generates src/api/generated/lambda-model.ts: Lambda's operations (HTTP
 * routes, success codes, input shapes) and the request shapes with every
 * constraint (required, min, max, pattern, enum, list/map sizes, types);
 * and src/api/generated/logs-model.ts: CloudWatch Logs' operations (JSON 1.1,
 * told apart by `X-Amz-Target: Logs_20140328.<Operation>`) and their request shapes,
 * from `logs-2014-03-28.service-2.json` beside it; and src/api/generated/scheduler-model.ts:
 * EventBridge Scheduler's operations (REST-JSON routes like Lambda's) and request shapes, from
 * `scheduler-2021-06-30.service-2.json` beside it; and src/api/generated/cloudwatch-model.ts:
 * CloudWatch's operations (smithy RPC v2 CBOR and the query protocol), their request shapes and
 * their errors' query codes, from `cloudwatch-2010-08-01.service-2.json` beside it.
 *
 * Sources, read at generate time (nothing is copied wholesale into the repo):
 *  - the botocore model `../shared/aws-models/lambda-2015-03-31.service-2.json`
 *    (or $LAMBENT_AWS_MODELS/lambda-2015-03-31.service-2.json): shapes, constraints, routes;
 *  - `@aws-sdk/client-lambda` in node_modules: the operation list the SDK we depend on
 *    ships. An SDK operation absent from the botocore model (the SDK may be newer)
 *    gets its route from the SDK's own schema, with no constraints.
 *
 * Usage: node scripts/generate-api.mjs [--check]
 *   --check: exit 1 if a committed file differs from what would be generated.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const modelsDir = process.env.LAMBENT_AWS_MODELS ?? resolve(root, "../shared/aws-models");
const modelPath = join(modelsDir, "lambda-2015-03-31.service-2.json");
const outPath = join(root, "src/api/generated/lambda-model.ts");
const logsModelPath = join(modelsDir, "logs-2014-03-28.service-2.json");
const logsOutPath = join(root, "src/api/generated/logs-model.ts");
const schedulerModelPath = join(modelsDir, "scheduler-2021-06-30.service-2.json");
const schedulerOutPath = join(root, "src/api/generated/scheduler-model.ts");
const cloudwatchModelPath = join(modelsDir, "cloudwatch-2010-08-01.service-2.json");
const cloudwatchOutPath = join(root, "src/api/generated/cloudwatch-model.ts");

if (process.argv.includes("--check") && !existsSync(modelPath)) {
  // A user's clone has no botocore models beside it; the generated file is committed. The check
  // runs where the models are (the developers' checkouts and CI, with shared/ beside the repo).
  console.log(`generate-api: skipped the check: no model at ${modelPath} (set LAMBENT_AWS_MODELS)`);
  process.exit(0);
}
const model = JSON.parse(readFileSync(modelPath, "utf8"));
const require = createRequire(join(root, "package.json"));
const sdkPkgPath = require.resolve("@aws-sdk/client-lambda/package.json");
const sdkVersion = JSON.parse(readFileSync(sdkPkgPath, "utf8")).version;
const sdkSource = readFileSync(join(dirname(sdkPkgPath), "dist-cjs/index.js"), "utf8");

// The SDK's operation schemas: `var X$ = [9, n0, _X, { [_h]: ["GET", "/path", 200] }, ...`.
const sdkOps = new Map();
for (const m of sdkSource.matchAll(
  /var (\w+)\$ = \[9, n0, _\w+,\s*\{[^}]*\[_h\]: \["(\w+)", "([^"]+)", (\d+)\]/g,
)) {
  sdkOps.set(m[1], { method: m[2], uri: m[3], status: Number(m[4]) });
}
if (sdkOps.size < 50) throw new Error(`found only ${sdkOps.size} operations in the SDK; its layout changed`);

const operations = {};
const roots = [];
for (const name of [...sdkOps.keys()].sort()) {
  const op = model.operations[name];
  const http = op ? op.http : sdkOps.get(name);
  const uri = op ? http.requestUri : http.uri;
  const [path, query] = uri.split("?");
  const entry = {
    method: http.method,
    path,
    status: op ? (http.responseCode ?? 200) : http.status,
  };
  if (query) {
    const [k, v] = query.split("=");
    entry.discriminator = [k, v];
  }
  if (op?.input) {
    entry.input = op.input.shape;
    roots.push(op.input.shape);
  }
  if (!op) entry.sdkOnly = true;
  operations[name] = entry;
}

/** The shapes reachable from `roots` in `model`, compacted to what validation needs. */
function compactShapes(model, roots) {
  const shapes = {};
  const unusablePatterns = [];
  function visit(name) {
    if (shapes[name]) return;
    const s = model.shapes[name];
    if (!s) throw new Error(`shape ${name} is missing from the model`);
    const out = { type: s.type };
    shapes[name] = out;
    for (const k of ["min", "max"]) if (s[k] !== undefined) out[k] = s[k];
    if (s.enum) out.enum = s.enum;
    if (s.sensitive) out.sensitive = true;
    if (s.pattern !== undefined) {
      // As src/api/validate.ts compiles them: Unicode mode, else plain mode when no \p{…} class needs Unicode.
      let ok = false;
      try {
        new RegExp(`^(?:${s.pattern})$`, "u");
        ok = true;
      } catch {
        try {
          new RegExp(`^(?:${s.pattern})$`);
          ok = !s.pattern.includes("\\p{");
        } catch {}
      }
      if (ok) out.pattern = s.pattern;
      else unusablePatterns.push(`${name}: ${s.pattern}`);
    }
    if (s.type === "list") {
      out.member = s.member.shape;
      visit(s.member.shape);
    } else if (s.type === "map") {
      out.key = s.key.shape;
      out.value = s.value.shape;
      visit(s.key.shape);
      visit(s.value.shape);
    } else if (s.type === "structure") {
      out.members = {};
      for (const [mn, m] of Object.entries(s.members)) {
        const member = { shape: m.shape };
        if (m.location) member.location = m.location;
        if (m.locationName && m.locationName !== mn) member.locationName = m.locationName;
        out.members[mn] = member;
        visit(m.shape);
      }
      if (s.required?.length) out.required = s.required;
      if (s.payload) out.payload = s.payload;
    }
  }
  for (const r of roots) visit(r);
  const sorted = Object.fromEntries(
    Object.keys(shapes)
      .sort()
      .map((k) => [k, shapes[k]]),
  );
  return { shapes: sorted, unusablePatterns };
}

const { shapes: sortedShapes, unusablePatterns } = compactShapes(model, roots);
const shapes = sortedShapes;
const relModel = (p) =>
  relative(root, p).startsWith("..") ? `../shared/aws-models/${p.split("/").pop()}` : relative(root, p);
const modelRel = relModel(modelPath);

const text = `// GENERATED FILE — do not edit by hand.
// Source: ${modelRel} (botocore model, apiVersion ${model.metadata.apiVersion})
//   and the operation list of @aws-sdk/client-lambda ${sdkVersion} (node_modules).
// Regenerate: node scripts/generate-api.mjs   (check: node scripts/generate-api.mjs --check)
// Operations: ${Object.keys(operations).length}; request shapes: ${Object.keys(shapes).length}.
${unusablePatterns.length ? `// Patterns JavaScript cannot compile (not checked): ${unusablePatterns.join("; ")}\n` : ""}
export interface OperationModel {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** The model's request URI without its query part, with {Member} placeholders. */
  path: string;
  /** A fixed query member that selects this operation (e.g. find=LayerVersion). */
  discriminator?: [string, string];
  status: number;
  /** The input structure's shape name. */
  input?: string;
  /** In the SDK but not in the botocore model: route known, constraints not. */
  sdkOnly?: true;
}

export interface MemberModel {
  shape: string;
  location?: "uri" | "querystring" | "header" | "headers" | "statusCode";
  locationName?: string;
}

export interface ShapeModel {
  type: "structure" | "list" | "map" | "string" | "integer" | "long" | "double" | "boolean" | "blob" | "timestamp";
  min?: number;
  max?: number;
  pattern?: string;
  enum?: string[];
  sensitive?: true;
  member?: string;
  key?: string;
  value?: string;
  members?: Record<string, MemberModel>;
  required?: string[];
  payload?: string;
}

export const SDK_VERSION = ${JSON.stringify(sdkVersion)};

export const OPERATIONS: Record<string, OperationModel> = {
${Object.entries(operations)
  .map(([k, v]) => `  ${k}: ${JSON.stringify(v)},`)
  .join("\n")}
};

export const SHAPES: Record<string, ShapeModel> = {
${Object.entries(sortedShapes)
  .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`)
  .join("\n")}
};
`;

const logs = JSON.parse(readFileSync(logsModelPath, "utf8"));
const logsOperations = {};
const logsRoots = [];
for (const name of Object.keys(logs.operations).sort()) {
  const op = logs.operations[name];
  const entry = {};
  if (op.input) {
    entry.input = op.input.shape;
    logsRoots.push(op.input.shape);
  }
  logsOperations[name] = entry;
}
const logsShapes = compactShapes(logs, logsRoots);
const logsText = `// GENERATED FILE — do not edit by hand.
// Source: ${relModel(logsModelPath)} (botocore model, apiVersion ${logs.metadata.apiVersion})
// Regenerate: node scripts/generate-api.mjs   (check: node scripts/generate-api.mjs --check)
// Operations: ${Object.keys(logsOperations).length}; request shapes: ${Object.keys(logsShapes.shapes).length}.
${logsShapes.unusablePatterns.length ? `// Patterns JavaScript cannot compile (not checked): ${logsShapes.unusablePatterns.join("; ")}\n` : ""}
import type { ShapeModel } from "./lambda-model.js";

/** JSON 1.1: every operation is \`POST /\` with \`X-Amz-Target: <prefix>.<Operation>\`. */
export const LOGS_TARGET_PREFIX = ${JSON.stringify(logs.metadata.targetPrefix)};

export const LOGS_OPERATIONS: Record<string, { input?: string }> = {
${Object.entries(logsOperations)
  .map(([k, v]) => `  ${k}: ${JSON.stringify(v)},`)
  .join("\n")}
};

export const LOGS_SHAPES: Record<string, ShapeModel> = {
${Object.entries(logsShapes.shapes)
  .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`)
  .join("\n")}
};
`;

const scheduler = JSON.parse(readFileSync(schedulerModelPath, "utf8"));
const schedulerOperations = {};
const schedulerRoots = [];
for (const name of Object.keys(scheduler.operations).sort()) {
  const op = scheduler.operations[name];
  const entry = { method: op.http.method, path: op.http.requestUri, status: op.http.responseCode ?? 200 };
  if (op.input) {
    entry.input = op.input.shape;
    schedulerRoots.push(op.input.shape);
  }
  schedulerOperations[name] = entry;
}
const schedulerShapes = compactShapes(scheduler, schedulerRoots);
const schedulerText = `// GENERATED FILE — do not edit by hand.
// Source: ${relModel(schedulerModelPath)} (botocore model, apiVersion ${scheduler.metadata.apiVersion})
// Regenerate: node scripts/generate-api.mjs   (check: node scripts/generate-api.mjs --check)
// Operations: ${Object.keys(schedulerOperations).length}; request shapes: ${Object.keys(schedulerShapes.shapes).length}.
${schedulerShapes.unusablePatterns.length ? `// Patterns JavaScript cannot compile (not checked): ${schedulerShapes.unusablePatterns.join("; ")}\n` : ""}
import type { OperationModel, ShapeModel } from "./lambda-model.js";

/** REST-JSON, signed for service \`${scheduler.metadata.signingName}\`. */
export const SCHEDULER_SIGNING_NAME = ${JSON.stringify(scheduler.metadata.signingName)};

export const SCHEDULER_OPERATIONS: Record<string, OperationModel> = {
${Object.entries(schedulerOperations)
  .map(([k, v]) => `  ${k}: ${JSON.stringify(v)},`)
  .join("\n")}
};

export const SCHEDULER_SHAPES: Record<string, ShapeModel> = {
${Object.entries(schedulerShapes.shapes)
  .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`)
  .join("\n")}
};
`;

const cloudwatch = JSON.parse(readFileSync(cloudwatchModelPath, "utf8"));
const cloudwatchOperations = {};
const cloudwatchRoots = [];
for (const name of Object.keys(cloudwatch.operations).sort()) {
  const op = cloudwatch.operations[name];
  const entry = {};
  if (op.input) {
    entry.input = op.input.shape;
    cloudwatchRoots.push(op.input.shape);
  }
  cloudwatchOperations[name] = entry;
}
const cloudwatchShapes = compactShapes(cloudwatch, cloudwatchRoots);
/** Error shape → [query protocol code, sender fault], for `x-amzn-query-error` and XML errors. */
const cloudwatchErrors = {};
for (const name of Object.keys(cloudwatch.shapes).sort()) {
  const s = cloudwatch.shapes[name];
  if (s.exception) cloudwatchErrors[name] = [s.error?.code ?? name, s.error?.senderFault === true];
}
const cloudwatchText = `// GENERATED FILE — do not edit by hand.
// Source: ${relModel(cloudwatchModelPath)} (botocore model, apiVersion ${cloudwatch.metadata.apiVersion})
// Regenerate: node scripts/generate-api.mjs   (check: node scripts/generate-api.mjs --check)
// Operations: ${Object.keys(cloudwatchOperations).length}; request shapes: ${Object.keys(cloudwatchShapes.shapes).length}.
${cloudwatchShapes.unusablePatterns.length ? `// Patterns JavaScript cannot compile (not checked): ${cloudwatchShapes.unusablePatterns.join("; ")}\n` : ""}
import type { ShapeModel } from "./lambda-model.js";

/** Smithy RPC v2 CBOR: every operation is \`POST /service/<prefix>/operation/<Operation>\`. */
export const CLOUDWATCH_TARGET_PREFIX = ${JSON.stringify(cloudwatch.metadata.targetPrefix)};
export const CLOUDWATCH_XML_NAMESPACE = ${JSON.stringify(cloudwatch.metadata.xmlNamespace)};
export const CLOUDWATCH_API_VERSION = ${JSON.stringify(cloudwatch.metadata.apiVersion)};

export const CLOUDWATCH_OPERATIONS: Record<string, { input?: string }> = {
${Object.entries(cloudwatchOperations)
  .map(([k, v]) => `  ${k}: ${JSON.stringify(v)},`)
  .join("\n")}
};

/** Error shape → [its query protocol code, whether the sender is at fault]. */
export const CLOUDWATCH_ERRORS: Record<string, [string, boolean]> = {
${Object.entries(cloudwatchErrors)
  .map(([k, v]) => `  ${k}: ${JSON.stringify(v)},`)
  .join("\n")}
};

export const CLOUDWATCH_SHAPES: Record<string, ShapeModel> = {
${Object.entries(cloudwatchShapes.shapes)
  .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)},`)
  .join("\n")}
};
`;
let stale = false;
for (const [path, content, what] of [
  [outPath, text, `${Object.keys(operations).length} operations, ${Object.keys(shapes).length} shapes`],
  [
    logsOutPath,
    logsText,
    `${Object.keys(logsOperations).length} operations, ${Object.keys(logsShapes.shapes).length} shapes`,
  ],
  [
    cloudwatchOutPath,
    cloudwatchText,
    `${Object.keys(cloudwatchOperations).length} operations, ${Object.keys(cloudwatchShapes.shapes).length} shapes`,
  ],
  [
    schedulerOutPath,
    schedulerText,
    `${Object.keys(schedulerOperations).length} operations, ${Object.keys(schedulerShapes.shapes).length} shapes`,
  ],
]) {
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(path, "utf8");
    } catch {}
    if (current !== content) {
      console.error(`${relative(root, path)} is stale: run node scripts/generate-api.mjs`);
      stale = true;
    } else console.log(`${relative(root, path)} is up to date`);
  } else {
    writeFileSync(path, content);
    console.log(`wrote ${relative(root, path)}: ${what}`);
  }
}
if (stale) process.exit(1);
