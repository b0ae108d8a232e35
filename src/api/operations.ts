/**
 * Every operation of the API model, mapped onto the routes: which operation
 * a request is (for model validation before any handler runs), and an
 * AWS-shaped answer for the operations Lambent does not implement yet, so no
 * operation of the SDK ever meets UnknownOperationException.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { ACCOUNT_ID } from "../config.js";
import { InvalidParameterValue, LambdaError, ResourceNotFound } from "../errors.js";
import { OPERATIONS, type OperationModel, SHAPES } from "./generated/lambda-model.js";
import { jsonBody, requestRegion } from "./request.js";
import { validateRequest } from "./validate.js";

/**
 * Operations whose substance belongs to other work, by reason. They are
 * routed, model-validated, and answer 400 InvalidParameterValueException
 * "<Operation> is not supported by Lambent yet (<reason>)." until implemented.
 */
export const DEFERRED: Record<string, string> = {
  CheckpointDurableExecution: "durable executions",
  GetDurableExecution: "durable executions",
  GetDurableExecutionHistory: "durable executions",
  GetDurableExecutionState: "durable executions",
  ListDurableExecutionsByFunction: "durable executions",
  SendDurableExecutionCallbackFailure: "durable executions",
  SendDurableExecutionCallbackHeartbeat: "durable executions",
  SendDurableExecutionCallbackSuccess: "durable executions",
  StopDurableExecution: "durable executions",
  GetResourcePolicy: "resource-based policies",
  PutResourcePolicy: "resource-based policies",
  DeleteResourcePolicy: "resource-based policies",
};

/**
 * Permission operations: owned by the SigV4/policies work. Lambent leaves
 * them to that work's routes and registers nothing for them here.
 */
export const PERMISSION_OPERATIONS = new Set([
  "AddPermission",
  "RemovePermission",
  "GetPolicy",
  "AddLayerVersionPermission",
  "RemoveLayerVersionPermission",
  "GetLayerVersionPolicy",
]);

const normalise = (path: string) =>
  path.replace(/\{[^}]+\}|:[A-Za-z0-9_]+/g, "{}").replace(/\/+$/, "") || "/";

/** Route key (METHOD + normalised path) → the operations answering there. */
const BY_ROUTE = new Map<string, [string, OperationModel][]>();
for (const [name, op] of Object.entries(OPERATIONS)) {
  const key = `${op.method} ${normalise(op.path)}`;
  const list = BY_ROUTE.get(key) ?? [];
  list.push([name, op]);
  BY_ROUTE.set(key, list);
}

/** Route (METHOD + fastify's route url) → its candidates: the routes are fixed, so normalised once each. */
const BY_REGISTERED_ROUTE = new Map<string, [string, OperationModel][] | undefined>();

function candidatesOf(method: string, url: string): [string, OperationModel][] | undefined {
  const key = `${method} ${url}`;
  if (BY_REGISTERED_ROUTE.has(key)) return BY_REGISTERED_ROUTE.get(key);
  const found = BY_ROUTE.get(`${method} ${normalise(url)}`);
  BY_REGISTERED_ROUTE.set(key, found);
  return found;
}

/** The model operation a routed request is, if any. */
export function operationOf(req: FastifyRequest): [string, OperationModel] | undefined {
  const url = req.routeOptions.url;
  if (!url) return undefined;
  const candidates = candidatesOf(req.method, url);
  if (!candidates) return undefined;
  const query = req.query as Record<string, unknown>;
  return (
    candidates.find(([, op]) => op.discriminator && query[op.discriminator[0]] === op.discriminator[1]) ??
    candidates.find(([, op]) => !op.discriminator)
  );
}

/** Per operation, what its requests need from the model: worked out on its first request. */
const PREPARED = new WeakMap<OperationModel, { hasBodyMembers: boolean; placeholders: string[] }>();

function prepared(op: OperationModel): { hasBodyMembers: boolean; placeholders: string[] } {
  let p = PREPARED.get(op);
  if (p === undefined) {
    const shape = op.input ? SHAPES[op.input] : undefined;
    p = {
      hasBodyMembers: Object.entries(shape?.members ?? {}).some(
        ([n, m]) => m.location === undefined && shape?.payload !== n,
      ),
      // The path placeholders' names in the model's order.
      placeholders: [...op.path.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => m[1] as string),
    };
    PREPARED.set(op, p);
  }
  return p;
}

/** Members that name a function (or a function-owned resource) by ARN. */
const FUNCTION_MEMBERS = new Set(["FunctionName", "Resource"]);
const ARN_SCOPE_RE = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:/;
const PARTIAL_SCOPE_RE = /^(?:([a-z]{2}(?:-gov)?-[a-z]+-\d):)?(\d{12}):function:/;

/**
 * A function ARN of another region or account is never acted on: AWS answers
 * 404 "Functions from 'eu-central-1' are not reachable in this region
 * ('us-east-1')" (quoted in public issue threads, e.g. a Lambda Invoke from
 * ap-southeast-2 with a us-east-1 ARN) and 403 AccessDeniedException for
 * another account's function, whose body carries no message: `{"Message":null}`
 * (localstack's test_lambda_api.snapshot.json, TestLambdaFunction::test_function_arns,
 * "function_arn_other_account_exc" recorded on AWS: Code AccessDeniedException,
 * Message null, no Type).
 */
function checkScope(opName: string, value: unknown, region: string): void {
  if (typeof value !== "string") return;
  const m = ARN_SCOPE_RE.exec(value) ?? PARTIAL_SCOPE_RE.exec(value);
  if (!m) return;
  const [, arnRegion, account] = m;
  if (account !== ACCOUNT_ID) {
    throw new LambdaError(
      "AccessDeniedException",
      403,
      // Kept for logs; the body's members below replace the usual Type/Message/message.
      `lambda:${opName} on another account's function: ${value}`,
      { Type: undefined, Message: null, message: undefined },
    );
  }
  if (arnRegion && arnRegion !== region) {
    throw ResourceNotFound(`Functions from '${arnRegion}' are not reachable in this region ('${region}')`);
  }
}

/** Validate every model operation's request against the model before its handler runs. */
export function registerModelValidation(app: FastifyInstance, defaultRegion: string): void {
  app.addHook("preHandler", async (req) => {
    const found = operationOf(req);
    if (!found) return;
    const [opName, op] = found;
    const values = Object.values((req.params ?? {}) as Record<string, string>);
    const params: Record<string, string> = {};
    const { placeholders, hasBodyMembers } = prepared(op);
    placeholders.forEach((name, i) => {
      if (values[i] !== undefined) params[name] = values[i] as string;
    });
    const body = hasBodyMembers ? jsonBody(req) : undefined;
    validateRequest(op, {
      params,
      query: (req.query ?? {}) as Record<string, unknown>,
      headers: req.headers as Record<string, unknown>,
      body,
      hasBody: Buffer.isBuffer(req.body) && req.body.length > 0,
    });
    const region = requestRegion(req, defaultRegion);
    for (const member of FUNCTION_MEMBERS) checkScope(opName, params[member] ?? body?.[member], region);
  });
}

const fastifyPath = (path: string) => path.replace(/\{([^}+]+)\+?\}/g, ":$1");

/**
 * Route every model operation nothing else routed: deferred ones answer their
 * AWS-shaped error. Call after every other route is registered. Returns the
 * names it routed.
 */
export function registerUnimplementedOperations(app: FastifyInstance): string[] {
  const routed: string[] = [];
  const done = new Set<string>();
  for (const [name, op] of Object.entries(OPERATIONS)) {
    if (PERMISSION_OPERATIONS.has(name)) continue;
    const url = fastifyPath(op.path);
    const key = `${op.method} ${url}`;
    if (done.has(key) || app.hasRoute({ method: op.method, url })) continue;
    const reason = DEFERRED[name] ?? "not implemented";
    done.add(key);
    app.route({
      method: op.method,
      url,
      handler: async (req) => {
        const [which] = operationOf(req) ?? [name];
        throw InvalidParameterValue(
          `${which} is not supported by Lambent yet (${DEFERRED[which] ?? reason}).`,
        );
      },
    });
    routed.push(name);
  }
  return routed;
}
