/**
 * Conformance: every operation of the model is routed, and the model's
 * constraints answer AWS's ValidationException text before any handler runs.
 * Expected texts follow AWS's own responses as quoted in public threads
 * (cited at each assertion) and the constraints of
 * ../shared/aws-models/lambda-2015-03-31.service-2.json.
 */
import { readFileSync } from "node:fs";
import {
  GetDurableExecutionCommand,
  GetFunctionCommand,
  InvalidParameterValueException,
  InvokeCommand,
  type LambdaClient,
  ListFunctionsCommand,
  PutFunctionRecursionConfigCommand,
  ResourceNotFoundException,
  UpdateFunctionConfigurationCommand,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPERATIONS } from "../../src/api/generated/lambda-model.js";
import { DEFERRED, PERMISSION_OPERATIONS } from "../../src/api/operations.js";
import { createFn, expectError, rejection, smallZip } from "../helpers/control-plane.js";
import { lambdaClient, startServer, type TestServer } from "../helpers/server.js";
import { signedFetch } from "../helpers/signed.js";

const ACCOUNT = "000000000000";
const FN_PATTERN =
  "(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?";
const NAMESPACED_PATTERN =
  "(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:|(((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?(\\d{12}:)?))(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?";

let server: TestServer;
let lambda: LambdaClient;

beforeAll(async () => {
  server = await startServer();
  lambda = server.lambda;
  await createFn(lambda, "model-fn", await smallZip("model"));
  await createFn(lambda, "sweep-fn", await smallZip("sweep"));
});

afterAll(async () => {
  await server?.stop();
});

/** A raw request, for what the SDK would refuse to send. */
async function raw(method: string, path: string, body?: unknown) {
  const res = await signedFetch(`${server.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get("x-amzn-errortype"),
    json: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

/** A path of the operation with plausible values in its placeholders. */
function samplePath(name: string): string {
  const op = OPERATIONS[name]!;
  const values: Record<string, string> = {
    // A function of its own: the sweep sends DeleteFunction too.
    FunctionName: "sweep-fn",
    Name: "live",
    UUID: "00000000-0000-0000-0000-000000000000",
    LayerName: "some-layer",
    VersionNumber: "1",
    StatementId: "sid",
    Resource: encodeURIComponent(`arn:aws:lambda:us-east-1:${ACCOUNT}:function:model-fn`),
    ResourceArn: encodeURIComponent(`arn:aws:lambda:us-east-1:${ACCOUNT}:function:model-fn`),
    CodeSigningConfigArn: encodeURIComponent(
      `arn:aws:lambda:us-east-1:${ACCOUNT}:code-signing-config:csc-0123456789abcdef0`,
    ),
    CapacityProviderName: "cp",
    DurableExecutionArn: encodeURIComponent(
      `arn:aws:lambda:us-east-1:${ACCOUNT}:function:model-fn:1/durable-execution/run/abc`,
    ),
    CallbackId: "Y2FsbGJhY2s=",
  };
  const path = op.path.replace(/\{([^}+]+)\+?\}/g, (_, k: string) => values[k] ?? "x");
  return op.discriminator ? `${path}?${op.discriminator[0]}=${op.discriminator[1]}` : path;
}

describe("every operation of the SDK's model is routed", () => {
  it("the generated table holds the SDK's 88 operations", () => {
    // @aws-sdk/client-lambda 3.1164 ships 88 commands: the model's 85 plus Get/Put/DeleteResourcePolicy.
    expect(Object.keys(OPERATIONS).length).toBe(88);
    expect(OPERATIONS.GetFunctionCodeSigningConfig).toMatchObject({
      method: "GET",
      path: "/2020-06-30/functions/{FunctionName}/code-signing-config",
      status: 200,
    });
  });

  it("no operation but the permission ones (issue 13) answers UnknownOperationException", async () => {
    const unknown: string[] = [];
    for (const name of Object.keys(OPERATIONS)) {
      if (PERMISSION_OPERATIONS.has(name)) continue;
      const op = OPERATIONS[name]!;
      const body = op.method === "POST" || op.method === "PUT" ? {} : undefined;
      const res = await raw(op.method, samplePath(name), body);
      if (res.type === "UnknownOperationException") unknown.push(name);
      // Whatever the answer, it is AWS-shaped: a JSON body with Type and Message, never a 500.
      if (res.status >= 400) expect(res.json.Message ?? res.json.message, name).toBeTypeOf("string");
      expect(res.status, name).toBeLessThan(500);
    }
    expect(unknown).toEqual([]);
  });

  it("a deferred operation answers InvalidParameterValueException naming what is missing", async () => {
    const durable = await rejection(() =>
      lambda.send(
        new GetDurableExecutionCommand({
          DurableExecutionArn: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:model-fn:1/durable-execution/a/b`,
        }),
      ),
    );
    expectError(durable, InvalidParameterValueException, 400, /durable executions/);
  });

  it("the README's API coverage table lists every operation with its state", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const rows = new Map<string, string>();
    for (const m of readme.matchAll(/^\| `([A-Za-z]+)` +\| ([^|]+?) +\|/gm)) rows.set(m[1]!, m[2]!.trim());
    for (const name of Object.keys(OPERATIONS)) {
      expect(rows.has(name), `README row for ${name}`).toBe(true);
      if (DEFERRED[name]) expect(rows.get(name), name).toMatch(/not yet/);
      if (PERMISSION_OPERATIONS.has(name)) expect(rows.get(name), name).toMatch(/issue 13|✅/);
    }
  });
});

describe("model constraints answer AWS's ValidationException", () => {
  it("a pattern: the exact AWS message, member in lowerCamel", async () => {
    // "1 validation error detected: Value 'Not Installed' at 'functionName' failed to satisfy constraint:
    // Member must satisfy regular expression pattern: …" (github.com/awslabs/aws-gov-cloud-import/issues/21)
    const err = await rejection(() => lambda.send(new GetFunctionCommand({ FunctionName: "bad name!" })));
    expect(err.name).toBe("ValidationException");
    expect(err.$metadata.httpStatusCode).toBe(400);
    expect(err.message).toBe(
      `1 validation error detected: Value 'bad name!' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: ${NAMESPACED_PATTERN}`,
    );
  });

  it("a number range and an enum in one request: N validation errors joined by '; '", async () => {
    const err = await rejection(() =>
      lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: "model-fn",
          Timeout: 0,
          // biome-ignore lint/suspicious/noExplicitAny: a value outside the enum on purpose
          TracingConfig: { Mode: "Sometimes" as any },
        }),
      ),
    );
    expect(err.name).toBe("ValidationException");
    expect(err.message).toBe(
      "2 validation errors detected: " +
        "Value '0' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to 1; " +
        "Value 'Sometimes' at 'tracingConfig.mode' failed to satisfy constraint: Member must satisfy enum value set: [Active, PassThrough]",
    );
  });

  it("a list's length and its members' constraints", async () => {
    const layers = await rejection(() =>
      lambda.send(
        new UpdateFunctionConfigurationCommand({ FunctionName: "model-fn", Layers: ["not-an-arn"] }),
      ),
    );
    // "Value '[]' at 'layers' failed to satisfy constraint: Member must satisfy constraint: [Member must have
    // length less than or equal to 2048, Member must have length greater than or equal to 1, Member must
    // satisfy regular expression pattern: …, Member must not be null]" (github.com/appleboy/lambda-action/issues/83)
    expect(layers.message).toMatch(
      /^1 validation error detected: Value '\[not-an-arn\]' at 'layers' failed to satisfy constraint: Member must satisfy constraint: \[Member must have length less than or equal to 2048, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: .*, Member must not be null\]$/,
    );
    const memory = await rejection(() =>
      lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: "model-fn", MemorySize: 40000 })),
    );
    expect(memory.message).toBe(
      "1 validation error detected: Value '40000' at 'memorySize' failed to satisfy constraint: Member must have value less than or equal to 32768",
    );
  });

  it("a missing required member is `Value null`", async () => {
    const res = await raw("PUT", "/2024-08-31/functions/model-fn/recursion-config", {});
    expect(res.status).toBe(400);
    expect(res.type).toBe("ValidationException");
    expect(res.json.message).toBe(
      "1 validation error detected: Value null at 'recursiveLoop' failed to satisfy constraint: Member must not be null",
    );
    const bad = await rejection(() =>
      lambda.send(
        // biome-ignore lint/suspicious/noExplicitAny: outside the enum on purpose
        new PutFunctionRecursionConfigCommand({ FunctionName: "model-fn", RecursiveLoop: "Never" as any }),
      ),
    );
    expect(bad.message).toBe(
      "1 validation error detected: Value 'Never' at 'recursiveLoop' failed to satisfy constraint: Member must satisfy enum value set: [Allow, Terminate]",
    );
  });

  it("query and header members are validated under their lowerCamel names", async () => {
    const max = await rejection(() => lambda.send(new ListFunctionsCommand({ MaxItems: 0 })));
    expect(max.message).toBe(
      "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    const inv = await rejection(() =>
      // biome-ignore lint/suspicious/noExplicitAny: outside the enum on purpose
      lambda.send(new InvokeCommand({ FunctionName: "model-fn", InvocationType: "Later" as any })),
    );
    expect(inv.message).toBe(
      "1 validation error detected: Value 'Later' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
    );
  });

  it("a map's keys: sensitive values are not echoed", async () => {
    const err = await rejection(() =>
      lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: "model-fn",
          Environment: { Variables: { "1bad": "secret-value" } },
        }),
      ),
    );
    expect(err.name).toBe("ValidationException");
    expect(err.message).toMatch(
      /^1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: \[.*Member must satisfy regular expression pattern: \[a-zA-Z\]\(\[a-zA-Z0-9_\]\)\+\]$/,
    );
    expect(err.message).not.toContain("secret-value");
  });

  it("a JSON value of the wrong type is InvalidRequestContentException, never a 500", async () => {
    const res = await raw("PUT", "/2015-03-31/functions/model-fn/configuration", { Timeout: "soon" });
    expect(res.status).toBe(400);
    expect(res.type).toBe("InvalidRequestContentException");
    for (const hostile of [
      { Environment: "x" },
      { Layers: { a: 1 } },
      { MemorySize: 1.5 },
      { TracingConfig: "Active" },
      { DeadLetterConfig: { TargetArn: 7 } },
    ]) {
      const r = await raw("PUT", "/2015-03-31/functions/model-fn/configuration", hostile);
      expect(r.status, JSON.stringify(hostile)).toBe(400);
    }
    const garbage = await raw("PUT", "/2015-03-31/functions/model-fn/configuration", "{not json");
    expect(garbage.type).toBe("InvalidRequestContentException");
  });

  it("the model's FunctionName pattern is the one of the operation (FunctionName vs NamespacedFunctionName)", async () => {
    const res = await raw("PUT", "/2015-03-31/functions/bad%20name/configuration", {});
    expect(res.json.message).toBe(
      `1 validation error detected: Value 'bad name' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: ${FN_PATTERN}`,
    );
  });
});

describe("ARNs of another region or account", () => {
  it("another region's ARN is 404 'not reachable in this region' and acts on nothing", async () => {
    // "ResourceNotFoundException: Functions from 'us-east-1' are not reachable in this region
    // ('ap-southeast-2')" — a real Invoke answer quoted in public code comments.
    const other = `arn:aws:lambda:eu-central-1:${ACCOUNT}:function:model-fn`;
    const err = await rejection(() => lambda.send(new GetFunctionCommand({ FunctionName: other })));
    expectError(
      err,
      ResourceNotFoundException,
      404,
      "Functions from 'eu-central-1' are not reachable in this region ('us-east-1')",
    );
    const del = await raw("DELETE", `/2015-03-31/functions/${encodeURIComponent(other)}`);
    expect(del.status).toBe(404);
    expect(
      (await lambda.send(new GetFunctionCommand({ FunctionName: "model-fn" }))).Configuration,
    ).toBeDefined();
  });

  it("the request's region (its SigV4 scope) decides", async () => {
    const eu = lambdaClient(server.url, "eu-central-1");
    try {
      const got = await eu.send(
        new GetFunctionCommand({ FunctionName: `arn:aws:lambda:eu-central-1:${ACCOUNT}:function:model-fn` }),
      );
      expect(got.Configuration?.FunctionArn).toBe(`arn:aws:lambda:eu-central-1:${ACCOUNT}:function:model-fn`);
    } finally {
      eu.destroy();
    }
  });

  it("another account's ARN is 403 AccessDeniedException with no message", async () => {
    for (const name of [
      "arn:aws:lambda:us-east-1:123456789012:function:model-fn",
      "123456789012:function:model-fn",
    ]) {
      const err = await rejection(() => lambda.send(new GetFunctionCommand({ FunctionName: name })));
      expect(err.name).toBe("AccessDeniedException");
      expect(err.$metadata.httpStatusCode).toBe(403);
      // Recorded on AWS (localstack's test_lambda_api.snapshot.json, TestLambdaFunction::test_function_arns,
      // "function_arn_other_account_exc"): Code AccessDeniedException, Message null, and no Type member.
      const res = await raw("GET", `/2015-03-31/functions/${encodeURIComponent(name)}`);
      expect(res.status).toBe(403);
      expect(res.type).toBe("AccessDeniedException");
      expect(res.json).toEqual({ Message: null });
    }
  });
});
