/**
 * Which IAM action and resource ARN a request needs. Lambda operations come
 * from the model (lambda-operations.ts): the action is `lambda:<Operation>`
 * except where IAM names it differently (Invoke and InvokeWithResponseStream
 * → lambda:InvokeFunction, GetLayerVersionByArn → lambda:GetLayerVersion); the
 * resource is the function (qualified when the request names a qualifier),
 * layer, layer version, event source mapping or ARN the path names, or `*`
 * for operations IAM authorizes on `*` (ListFunctions, ListLayers,
 * GetAccountSettings, CreateEventSourceMapping, …).
 *
 * Lambent's own endpoints map to actions too, so one policy language covers
 * everything: `/_lambent/keys` and `/_lambent/roles` → `iam:*Key*`/`iam:*Role*`
 * actions, logs → `logs:GetLogEvents`, the queue → `lambent:GetQueueStatus`, `GET /metrics`
 * (Prometheus) → `lambent:GetMetrics` on `*`, stacks →
 * `lambent:ListStacks` / `DescribeStack` / `PutStack` / `DeleteStack` on
 * `arn:aws:lambent:<region>:<account>:stack/<name>`, the environments → `lambent:GetEnvironmentStatus`.
 * A path nothing maps is `lambent:Unmapped` on `*`: only a principal allowed
 * everything reaches it.
 */
import { ACCOUNT_ID } from "../config.js";
import { LAMBDA_OPERATIONS } from "./lambda-operations.js";

const IAM_ACTION_EXCEPTIONS: Record<string, string> = {
  Invoke: "InvokeFunction",
  InvokeWithResponseStream: "InvokeFunction",
  GetLayerVersionByArn: "GetLayerVersion",
};

/** Operations IAM authorizes on `*` even though their path names something. */
const STAR_RESOURCE = new Set(["ListLayerVersions"]);

export interface RequiredPermission {
  /** The operation name (Lambda's, or Lambent's own). */
  operation: string;
  action: string;
  resource: string;
  /** The function this request is about (name, qualifier) — resource policies live there. */
  function?: { name: string; qualifier?: string };
  /** The layer version this request is about (layer resource policies). */
  layerVersion?: { name: string; version: number };
}

interface Matcher {
  name: string;
  method: string;
  re: RegExp;
  params: string[];
  query: Array<[string, string]>;
}

function compile(name: string, method: string, uri: string): Matcher {
  const [path = "", q = ""] = uri.split("?");
  const params: string[] = [];
  const body = path
    .replace(/\/+$/, "")
    .split("/")
    .map((seg) => {
      const m = /^\{(\w+)\+?\}$/.exec(seg);
      if (m) {
        params.push(m[1] as string);
        return "([^/]+)";
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  const query = q
    .split("&")
    .filter(Boolean)
    .map((p) => p.split("=") as [string, string]);
  return { name, method, re: new RegExp(`^${body}/?$`), params, query };
}

const MATCHERS: Matcher[] = LAMBDA_OPERATIONS.map(([n, m, u]) => compile(n, m, u))
  // Operations told apart by a query parameter are tried first.
  .sort((a, b) => b.query.length - a.query.length);

const LAMBENT_ROUTES: Array<{
  method: string;
  re: RegExp;
  make: (m: RegExpExecArray, region: string) => RequiredPermission;
}> = [
  {
    method: "GET",
    re: /^\/_lambent\/code\/[^/]+$/,
    make: (_m, r) => ({
      operation: "GetFunction",
      action: "lambda:GetFunction",
      resource: `arn:aws:lambda:${r}:${ACCOUNT_ID}:function:*`,
    }),
  },
  {
    method: "GET",
    re: /^\/_lambent\/layers\/[^/]+$/,
    make: (_m, r) => ({
      operation: "GetLayerVersion",
      action: "lambda:GetLayerVersion",
      resource: `arn:aws:lambda:${r}:${ACCOUNT_ID}:layer:*`,
    }),
  },
  {
    method: "GET",
    re: /^\/_lambent\/logs\/([^/]+)$/,
    make: (m, r) => {
      const fn = functionNameOf(decode(m[1] as string));
      return {
        operation: "GetLogEvents",
        action: "logs:GetLogEvents",
        resource: `arn:aws:logs:${r}:${ACCOUNT_ID}:log-group:/aws/lambda/${fn.name}:*`,
      };
    },
  },
  {
    method: "GET",
    re: /^\/metrics$/,
    make: () => ({ operation: "GetMetrics", action: "lambent:GetMetrics", resource: "*" }),
  },
  {
    method: "GET",
    re: /^\/_lambent\/queue$/,
    make: () => ({ operation: "GetQueueStatus", action: "lambent:GetQueueStatus", resource: "*" }),
  },
  {
    method: "GET",
    re: /^\/_lambent\/environments$/,
    make: () => ({
      operation: "GetEnvironmentStatus",
      action: "lambent:GetEnvironmentStatus",
      resource: "*",
    }),
  },
  {
    method: "GET",
    re: /^\/_lambent\/event-source-mappings\/stats$/,
    make: () => ({
      operation: "ListEventSourceMappings",
      action: "lambda:ListEventSourceMappings",
      resource: "*",
    }),
  },
  ...stackRoutes(),
  {
    method: "GET",
    re: /^\/_lambent\/keys$/,
    make: () => ({ operation: "ListAccessKeys", action: "iam:ListAccessKeys", resource: "*" }),
  },
  {
    method: "POST",
    re: /^\/_lambent\/keys$/,
    make: () => ({ operation: "CreateAccessKey", action: "iam:CreateAccessKey", resource: "*" }),
  },
  {
    method: "DELETE",
    re: /^\/_lambent\/keys\/([^/]+)$/,
    make: () => ({ operation: "DeleteAccessKey", action: "iam:DeleteAccessKey", resource: "*" }),
  },
  {
    method: "GET",
    re: /^\/_lambent\/keys\/([^/]+)\/policy$/,
    make: () => ({ operation: "GetUserPolicy", action: "iam:GetUserPolicy", resource: "*" }),
  },
  {
    method: "PUT",
    re: /^\/_lambent\/keys\/([^/]+)\/policy$/,
    make: () => ({ operation: "PutUserPolicy", action: "iam:PutUserPolicy", resource: "*" }),
  },
  {
    method: "GET",
    re: /^\/_lambent\/roles$/,
    make: () => ({ operation: "ListRoles", action: "iam:ListRoles", resource: "*" }),
  },
  {
    method: "GET",
    re: /^\/_lambent\/roles\/([^/]+)$/,
    make: (m) => ({
      operation: "GetRolePolicy",
      action: "iam:GetRolePolicy",
      resource: roleArn(m[1] as string),
    }),
  },
  {
    method: "PUT",
    re: /^\/_lambent\/roles\/([^/]+)$/,
    make: (m) => ({
      operation: "PutRolePolicy",
      action: "iam:PutRolePolicy",
      resource: roleArn(m[1] as string),
    }),
  },
  {
    method: "DELETE",
    re: /^\/_lambent\/roles\/([^/]+)$/,
    make: (m) => ({
      operation: "DeleteRolePolicy",
      action: "iam:DeleteRolePolicy",
      resource: roleArn(m[1] as string),
    }),
  },
  {
    method: "PUT",
    re: /^\/_lambent\/dev-mounts\/([^/]+)$/,
    make: (m, r) => ({
      operation: "PutDevMount",
      action: "lambent:DevMount",
      resource: `arn:aws:lambda:${r}:${ACCOUNT_ID}:function:${functionNameOf(decode(m[1] as string)).name}`,
    }),
  },
  {
    method: "DELETE",
    re: /^\/_lambent\/dev-mounts\/([^/]+)$/,
    make: (m, r) => ({
      operation: "DeleteDevMount",
      action: "lambent:DevMount",
      resource: `arn:aws:lambda:${r}:${ACCOUNT_ID}:function:${functionNameOf(decode(m[1] as string)).name}`,
    }),
  },
];

/** `/_lambent/stacks[/<name>]` → lambent:ListStacks / DescribeStack / PutStack / DeleteStack. */
function stackRoutes() {
  const stack = (verb: string, method: string) => ({
    method,
    re: /^\/_lambent\/stacks\/([^/]+)$/,
    make: (m: RegExpExecArray, r: string): RequiredPermission => ({
      operation: `${verb}Stack`,
      action: `lambent:${verb}Stack`,
      resource: `arn:aws:lambent:${r}:${ACCOUNT_ID}:stack/${decode(m[1] as string)}`,
    }),
  });
  return [
    {
      method: "GET",
      re: /^\/_lambent\/stacks$/,
      make: (): RequiredPermission => ({
        operation: "ListStacks",
        action: "lambent:ListStacks",
        resource: "*",
      }),
    },
    stack("Describe", "GET"),
    stack("Put", "PUT"),
    stack("Delete", "DELETE"),
  ];
}

function roleArn(raw: string): string {
  return `arn:aws:iam::${ACCOUNT_ID}:role/${decode(raw)}`;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** name[:qualifier] from any FunctionName form (name, partial ARN, ARN); lenient — routes validate. */
export function functionNameOf(raw: string): { name: string; qualifier?: string } {
  const parts = raw.split(":");
  let name = raw;
  let qualifier: string | undefined;
  const fi = parts.indexOf("function");
  if (fi >= 0 && fi + 1 < parts.length) {
    name = parts[fi + 1] as string;
    qualifier = parts[fi + 2];
  } else if (parts.length === 2) {
    name = parts[0] as string;
    qualifier = parts[1];
  }
  return qualifier ? { name, qualifier } : { name };
}

function layerNameOf(raw: string): string {
  const m = /:layer:([^:]+)/.exec(raw);
  return m ? (m[1] as string) : raw;
}

/** The permission a request needs. `query` is the parsed query string. */
export function requiredPermission(
  method: string,
  rawPath: string,
  query: Array<[string, string]>,
  region: string,
): RequiredPermission {
  const path = rawPath.length > 1 ? rawPath.replace(/\/+$/, "") : rawPath;
  const q = new Map(query);
  for (const m of MATCHERS) {
    if (m.method !== method) continue;
    const hit = m.re.exec(path);
    if (!hit) continue;
    if (m.query.some(([k, v]) => q.get(k) !== v)) continue;
    const p: Record<string, string> = {};
    m.params.forEach((name, i) => {
      p[name] = decode(hit[i + 1] as string);
    });
    return describe(m.name, p, q, region);
  }
  const scheduler = schedulerPermission(method, path, q, region);
  if (scheduler) return scheduler;
  for (const r of LAMBENT_ROUTES) {
    if (r.method !== method) continue;
    const hit = r.re.exec(path);
    if (hit) return r.make(hit, region);
  }
  return { operation: "Unmapped", action: "lambent:Unmapped", resource: "*" };
}

function describe(
  operation: string,
  p: Record<string, string>,
  q: Map<string, string>,
  region: string,
): RequiredPermission {
  const action = `lambda:${IAM_ACTION_EXCEPTIONS[operation] ?? operation}`;
  const base = `arn:aws:lambda:${region}:${ACCOUNT_ID}`;
  const out: RequiredPermission = { operation, action, resource: "*" };
  if (STAR_RESOURCE.has(operation)) return out;
  if (p.FunctionName !== undefined) {
    const ref = functionNameOf(p.FunctionName);
    const qualifier = q.get("Qualifier") ?? ref.qualifier;
    out.function = qualifier ? { name: ref.name, qualifier } : { name: ref.name };
    out.resource = `${base}:function:${ref.name}${qualifier ? `:${qualifier}` : ""}`;
  } else if (p.LayerName !== undefined) {
    const name = layerNameOf(p.LayerName);
    if (p.VersionNumber !== undefined) {
      out.resource = `${base}:layer:${name}:${p.VersionNumber}`;
      const v = Number(p.VersionNumber);
      if (Number.isInteger(v)) out.layerVersion = { name, version: v };
    } else out.resource = `${base}:layer:${name}`;
  } else if (operation === "GetLayerVersionByArn") {
    const arn = q.get("Arn") ?? "*";
    out.resource = arn;
    const m = /:layer:([^:]+):(\d+)$/.exec(arn);
    if (m) out.layerVersion = { name: m[1] as string, version: Number(m[2]) };
  } else if (p.UUID !== undefined) {
    out.resource = `${base}:event-source-mapping:${p.UUID}`;
  } else if (p.Resource !== undefined) {
    out.resource = p.Resource;
    const m = /:function:([^:]+)(?::([^:]+))?$/.exec(p.Resource);
    if (m) out.function = m[2] ? { name: m[1] as string, qualifier: m[2] } : { name: m[1] as string };
  } else if (p.CodeSigningConfigArn !== undefined) {
    out.resource = p.CodeSigningConfigArn;
  } else if (p.CapacityProviderName !== undefined) {
    out.resource = `${base}:capacity-provider:${p.CapacityProviderName}`;
  } else if (p.DurableExecutionArn !== undefined) {
    out.resource = p.DurableExecutionArn;
  }
  return out;
}

/** Operations on one log stream: their resource is the stream's ARN. */
const LOGS_STREAM_OPERATIONS = new Set([
  "PutLogEvents",
  "GetLogEvents",
  "CreateLogStream",
  "DeleteLogStream",
]);

/**
 * The permission a CloudWatch Logs request needs: `logs:<Operation>` on the log group
 * (`arn:aws:logs:<region>:<account>:log-group:<name>:*`, the form AWS's `arn` field gives for
 * policies), the stream (`…:log-group:<name>:log-stream:<stream>`) for stream operations, the
 * resource ARN for the tagging operations, `…:log-group:*` when no group is named.
 */
export function logsPermission(operation: string, body: unknown, region: string): RequiredPermission {
  const b = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
  const action = `logs:${operation}`;
  const base = `arn:aws:logs:${region}:${ACCOUNT_ID}:log-group:`;
  if (typeof b.resourceArn === "string") return { operation, action, resource: b.resourceArn };
  let group = typeof b.logGroupName === "string" ? b.logGroupName : undefined;
  if (group === undefined && typeof b.logGroupIdentifier === "string") {
    const m = /:log-group:([^:]+)(?::\*)?$/.exec(b.logGroupIdentifier);
    group = m ? m[1] : b.logGroupIdentifier;
  }
  if (group === undefined) return { operation, action, resource: `${base}*` };
  if (LOGS_STREAM_OPERATIONS.has(operation) && typeof b.logStreamName === "string") {
    return { operation, action, resource: `${base}${group}:log-stream:${b.logStreamName}` };
  }
  return { operation, action, resource: `${base}${group}:*` };
}

/** CloudWatch's operations: `cloudwatch:<Operation>` on `*` (its metric reads take no resource). */
export function cloudwatchPermission(operation: string): RequiredPermission {
  return { operation, action: `cloudwatch:${operation}`, resource: "*" };
}

/**
 * EventBridge Scheduler's operations: `scheduler:<Operation>` on the schedule
 * (`arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>`, the group from `groupName`, else
 * `default`), the schedule group, the tagged resource, or `*` for the list operations.
 */
function schedulerPermission(
  method: string,
  path: string,
  q: Map<string, string>,
  region: string,
): RequiredPermission | undefined {
  const base = `arn:aws:scheduler:${region}:${ACCOUNT_ID}`;
  const m = /^\/(schedules|schedule-groups|tags)(?:\/([^/]+))?$/.exec(path);
  if (!m) return undefined;
  const [, kind, rawName] = m;
  const name = rawName === undefined ? undefined : decode(rawName);
  const verbs: Record<string, string> = { POST: "Create", PUT: "Update", GET: "Get", DELETE: "Delete" };
  const make = (operation: string, resource: string): RequiredPermission => ({
    operation,
    action: `scheduler:${operation}`,
    resource,
  });
  if (kind === "tags" && name !== undefined) {
    const op = { GET: "ListTagsForResource", POST: "TagResource", DELETE: "UntagResource" }[method];
    return op ? make(op, name) : undefined;
  }
  if (name === undefined) {
    if (method !== "GET") return undefined;
    return make(kind === "schedules" ? "ListSchedules" : "ListScheduleGroups", "*");
  }
  const verb = verbs[method];
  if (!verb) return undefined;
  if (kind === "schedules") {
    if (verb === "Update" || verb === "Get" || verb === "Delete" || verb === "Create") {
      return make(`${verb}Schedule`, `${base}:schedule/${q.get("groupName") ?? "default"}/${name}`);
    }
  }
  if (verb === "Update") return undefined;
  return make(`${verb}ScheduleGroup`, `${base}:schedule-group/${name}`);
}
