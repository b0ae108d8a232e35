/**
 * Lambda Managed Instances' multi-concurrency: capacity providers through the AWS SDK v3, and
 * functions on them served by environments that run several events at once, with real sandboxes
 * (process driver) and Lambent's Node.js and Python runtimes. "N invokes at once" is a fact the
 * gate (helpers/gate.ts) establishes: every handler holds its invoke until all N arrived.
 */
import { CloudWatchLogsClient, FilterLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
import {
  CreateCapacityProviderCommand,
  CreateFunctionCommand,
  type CreateFunctionCommandInput,
  DeleteCapacityProviderCommand,
  DeleteFunctionCommand,
  GetCapacityProviderCommand,
  GetFunctionConfigurationCommand,
  InvalidParameterValueException,
  type LambdaClient,
  ListCapacityProvidersCommand,
  ListFunctionVersionsByCapacityProviderCommand,
  ResourceConflictException,
  ResourceNotFoundException,
  UpdateCapacityProviderCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Gate, startGate } from "./helpers/gate.js";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

vi.setConfig({ testTimeout: 180_000 });

let server: TestServer;
let gate: Gate;
let providerArn: string;

const PROVIDER = {
  VpcConfig: { SubnetIds: ["subnet-0123456789abcdef0"], SecurityGroupIds: ["sg-0123456789abcdef0"] },
  PermissionsConfig: { CapacityProviderOperatorRoleArn: "arn:aws:iam::000000000000:role/operator" },
};

/** Waits at the gate, logs under its own request id, answers with what it ran in. */
const NODE_HANDLER = `
const http = require("node:http");
exports.handler = async (event, context) => {
  console.log("start", event.i);
  if (event.gate) await new Promise((resolve, reject) => http.get(event.gate, (res) => { res.resume(); res.on("end", resolve); }).on("error", reject));
  console.log("done", event.i);
  return { i: event.i, id: context.awsRequestId, stream: context.logStreamName, pid: process.pid, max: process.env.AWS_LAMBDA_MAX_CONCURRENCY ?? null };
};
`;

const PYTHON_HANDLER = `
import os, urllib.request
def handler(event, context):
    print("start", event["i"])
    if event.get("gate"):
        urllib.request.urlopen(event["gate"]).read()
    return {"i": event["i"], "id": context.aws_request_id, "stream": context.log_stream_name, "pid": os.getpid(), "max": os.environ.get("AWS_LAMBDA_MAX_CONCURRENCY")}
`;

type Answer = { i: number; id: string; stream: string; pid: number; max: string | null };

async function create(
  lambda: LambdaClient,
  name: string,
  extra: Partial<CreateFunctionCommandInput> = {},
  python = false,
): Promise<void> {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: python ? "python3.13" : "nodejs22.x",
      Handler: python ? "index.handler" : "index.handler",
      Role: ROLE,
      Timeout: 60,
      Code: {
        ZipFile: await zipEntries([
          python
            ? { name: "index.py", content: PYTHON_HANDLER }
            : { name: "index.js", content: NODE_HANDLER },
        ]),
      },
      ...extra,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 60 },
    { FunctionName: name },
  );
}

const onProvider = (n?: number) => ({
  CapacityProviderConfig: {
    LambdaManagedInstancesCapacityProviderConfig: {
      CapacityProviderArn: providerArn,
      ...(n !== undefined ? { PerExecutionEnvironmentMaxConcurrency: n } : {}),
    },
  },
});

/** `n` invokes at once: all held at the gate until every one of them runs, then let go. */
async function atOnce(name: string, n: number): Promise<Answer[]> {
  const calls = Array.from({ length: n }, (_, i) => invoke(server.lambda, name, { i, gate: gate.url }));
  await gate.waiting(n);
  gate.open();
  const out = await Promise.all(calls);
  for (const r of out) expect(r.functionError, r.text).toBeUndefined();
  return out.map((r) => r.json as Answer);
}

beforeAll(async () => {
  server = await startServer({ accountConcurrency: 200 });
  gate = await startGate();
  const out = await server.lambda.send(
    new CreateCapacityProviderCommand({ CapacityProviderName: "mc", ...PROVIDER }),
  );
  providerArn = out.CapacityProvider?.CapacityProviderArn as string;
});
afterAll(async () => {
  await gate?.close();
  await server?.stop();
});

describe("capacity providers (API)", () => {
  it("creates, gets, lists, updates and deletes a provider with Lambda's shapes", async () => {
    const created = await server.lambda.send(
      new CreateCapacityProviderCommand({
        CapacityProviderName: "crud",
        ...PROVIDER,
        InstanceRequirements: { Architectures: ["x86_64"] },
        Tags: { team: "a" },
      }),
    );
    expect(created.$metadata.httpStatusCode).toBe(202);
    expect(created.CapacityProvider).toMatchObject({
      CapacityProviderArn: "arn:aws:lambda:us-east-1:000000000000:capacity-provider:crud",
      State: "Active",
      VpcConfig: PROVIDER.VpcConfig,
      PermissionsConfig: PROVIDER.PermissionsConfig,
      InstanceRequirements: { Architectures: ["x86_64"] },
    });
    const got = await server.lambda.send(new GetCapacityProviderCommand({ CapacityProviderName: "crud" }));
    expect(got.CapacityProvider?.CapacityProviderArn).toBe(created.CapacityProvider?.CapacityProviderArn);
    // By ARN too.
    const byArn = await server.lambda.send(
      new GetCapacityProviderCommand({ CapacityProviderName: created.CapacityProvider?.CapacityProviderArn }),
    );
    expect(byArn.CapacityProvider?.State).toBe("Active");

    const updated = await server.lambda.send(
      new UpdateCapacityProviderCommand({
        CapacityProviderName: "crud",
        CapacityProviderScalingConfig: { ScalingMode: "Manual", MaxVCpuCount: 64 },
      }),
    );
    expect(updated.CapacityProvider?.CapacityProviderScalingConfig).toEqual({
      ScalingMode: "Manual",
      MaxVCpuCount: 64,
    });

    const page1 = await server.lambda.send(new ListCapacityProvidersCommand({ MaxItems: 1 }));
    expect(page1.CapacityProviders).toHaveLength(1);
    expect(page1.NextMarker).toBeDefined();
    const page2 = await server.lambda.send(new ListCapacityProvidersCommand({ Marker: page1.NextMarker }));
    const names = [...(page1.CapacityProviders ?? []), ...(page2.CapacityProviders ?? [])].map((c) =>
      c.CapacityProviderArn?.split(":").pop(),
    );
    expect(names).toEqual(["crud", "mc"]);
    const pending = await server.lambda.send(new ListCapacityProvidersCommand({ State: "Pending" }));
    expect(pending.CapacityProviders).toEqual([]);

    const deleted = await server.lambda.send(
      new DeleteCapacityProviderCommand({ CapacityProviderName: "crud" }),
    );
    expect(deleted.CapacityProvider?.State).toBe("Deleting");
    await expect(
      server.lambda.send(new GetCapacityProviderCommand({ CapacityProviderName: "crud" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("refuses duplicates, unknown names and hostile values with AWS-shaped errors", async () => {
    await expect(
      server.lambda.send(new CreateCapacityProviderCommand({ CapacityProviderName: "mc", ...PROVIDER })),
    ).rejects.toBeInstanceOf(ResourceConflictException);
    await expect(
      server.lambda.send(new DeleteCapacityProviderCommand({ CapacityProviderName: "nope" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    const hostile: Array<Record<string, unknown>> = [
      { CapacityProviderName: "bad name!", ...PROVIDER },
      { CapacityProviderName: "x".repeat(141), ...PROVIDER },
      { CapacityProviderName: "novpc", PermissionsConfig: PROVIDER.PermissionsConfig },
      {
        CapacityProviderName: "role",
        ...PROVIDER,
        PermissionsConfig: { CapacityProviderOperatorRoleArn: "not-a-role" },
      },
      { CapacityProviderName: "vcpu", ...PROVIDER, CapacityProviderScalingConfig: { MaxVCpuCount: 1 } },
      {
        CapacityProviderName: "mode",
        ...PROVIDER,
        CapacityProviderScalingConfig: { ScalingMode: "Sometimes" },
      },
      { CapacityProviderName: "subnets", ...PROVIDER, VpcConfig: { SubnetIds: [], SecurityGroupIds: [] } },
    ];
    for (const input of hostile) {
      const err = await server.lambda
        // biome-ignore lint/suspicious/noExplicitAny: hostile input on purpose
        .send(new CreateCapacityProviderCommand(input as any))
        .catch((e: { name: string; $metadata: { httpStatusCode: number } }) => e);
      expect(err, JSON.stringify(input)).toMatchObject({ name: "ValidationException" });
      expect((err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);
    }
    for (const MaxItems of [0, 51]) {
      await expect(server.lambda.send(new ListCapacityProvidersCommand({ MaxItems }))).rejects.toMatchObject({
        name: "ValidationException",
      });
    }
    await expect(
      server.lambda.send(
        new GetCapacityProviderCommand({
          CapacityProviderName: "arn:aws:lambda:us-east-1:111111111111:capacity-provider:mc",
        }),
      ),
    ).rejects.toBeInstanceOf(InvalidParameterValueException);
  });

  it("checks a function's capacity provider config: the provider, the runtime, the ranges", async () => {
    const bad: Array<[Partial<CreateFunctionCommandInput>, string]> = [
      [onProvider(0), "ValidationException"],
      [onProvider(1601), "ValidationException"],
      [
        {
          CapacityProviderConfig: {
            LambdaManagedInstancesCapacityProviderConfig: {
              CapacityProviderArn: providerArn,
              ExecutionEnvironmentMemoryGiBPerVCpu: 1,
            },
          },
        },
        "ValidationException",
      ],
      [
        {
          CapacityProviderConfig: {
            LambdaManagedInstancesCapacityProviderConfig: {
              CapacityProviderArn: "arn:aws:lambda:us-east-1:000000000000:capacity-provider:missing",
            },
          },
        },
        "InvalidParameterValueException",
      ],
      [
        {
          CapacityProviderConfig: {
            LambdaManagedInstancesCapacityProviderConfig: { CapacityProviderArn: "x" },
          },
        },
        "ValidationException",
      ],
      [{ ...onProvider(4), Runtime: "nodejs20.x" }, "InvalidParameterValueException"],
    ];
    for (const [extra, type] of bad) {
      const err = await create(server.lambda, "bad-config", extra).catch((e: { name: string }) => e);
      expect(err, JSON.stringify(extra)).toMatchObject({ name: type });
    }
  });
});

describe("multi-concurrency environments", () => {
  it("serves 16 concurrent invokes from one Node.js environment (N=16), each under its own request id", async () => {
    await create(server.lambda, "node16", onProvider(16));
    const conf = await server.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "node16" }));
    expect(conf.CapacityProviderConfig?.LambdaManagedInstancesCapacityProviderConfig).toEqual({
      CapacityProviderArn: providerArn,
      PerExecutionEnvironmentMaxConcurrency: 16,
      ExecutionEnvironmentMemoryGiBPerVCpu: 2,
    });
    const answers = await atOnce("node16", 16);
    expect(new Set(answers.map((a) => a.stream)).size).toBe(1);
    expect(new Set(answers.map((a) => a.pid)).size).toBe(1);
    expect(new Set(answers.map((a) => a.id)).size).toBe(16);
    expect(answers.every((a) => a.max === "16")).toBe(true);

    // One REPORT per invoke, and each handler's lines under its own request id.
    await server.platform.logs.flush();
    const logs = new CloudWatchLogsClient({
      endpoint: server.url,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
    const events = [];
    let nextToken: string | undefined;
    do {
      const page = await logs.send(
        new FilterLogEventsCommand({
          logGroupName: "/aws/lambda/node16",
          ...(nextToken ? { nextToken } : {}),
        }),
      );
      events.push(...(page.events ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    logs.destroy();
    const messages = events.map((e) => e.message ?? "");
    for (const a of answers) {
      expect(messages.filter((m) => m.startsWith(`REPORT RequestId: ${a.id}`))).toHaveLength(1);
      expect(messages.filter((m) => m.includes(`\t${a.id}\tINFO\tstart ${a.i}`))).toHaveLength(1);
      expect(messages.filter((m) => m.includes(`\t${a.id}\tINFO\tdone ${a.i}`))).toHaveLength(1);
    }
  });

  it("starts a second environment only when every slot is taken (N=8, 16 clients → 2 environments)", async () => {
    await create(server.lambda, "node8", onProvider(8));
    const answers = await atOnce("node8", 16);
    const streams = new Map<string, number>();
    for (const a of answers) streams.set(a.stream, (streams.get(a.stream) ?? 0) + 1);
    expect([...streams.values()].sort()).toEqual([8, 8]);
    // Warm now: the next 16 fit in the same two.
    const again = await atOnce("node8", 16);
    for (const a of again) expect(streams.has(a.stream)).toBe(true);
  });

  it("runs the Python runtime as N processes of one environment (N=4)", async () => {
    await create(server.lambda, "py4", onProvider(4), true);
    const answers = await atOnce("py4", 4);
    expect(new Set(answers.map((a) => a.stream)).size).toBe(1);
    expect(new Set(answers.map((a) => a.pid)).size).toBe(4);
    expect(answers.every((a) => a.max === "4")).toBe(true);
  });

  it("gives a function that is not on a provider one event per environment, whatever its variables say", async () => {
    await create(server.lambda, "plain", {
      Environment: { Variables: { AWS_LAMBDA_MAX_CONCURRENCY: "16" } },
    });
    const calls = [0, 1].map((i) => invoke(server.lambda, "plain", { i, gate: gate.url }));
    await gate.waiting(2);
    gate.open();
    const answers = (await Promise.all(calls)).map((r) => r.json as Answer);
    expect(new Set(answers.map((a) => a.stream)).size).toBe(2);
    expect(answers.every((a) => a.max === null)).toBe(true);
  });

  it("takes the largest N the model allows", async () => {
    await create(server.lambda, "huge", onProvider(1600));
    const answers = await atOnce("huge", 4);
    expect(new Set(answers.map((a) => a.stream)).size).toBe(1);
    expect(answers[0]?.max).toBe("1600");
  });

  it("lists the versions on a provider and refuses to delete a provider in use", async () => {
    const out = await server.lambda.send(
      new ListFunctionVersionsByCapacityProviderCommand({ CapacityProviderName: "mc" }),
    );
    expect(out.CapacityProviderArn).toBe(providerArn);
    const arns = (out.FunctionVersions ?? []).map((v) => v.FunctionArn);
    expect(arns).toContain("arn:aws:lambda:us-east-1:000000000000:function:node16:$LATEST");
    expect(out.FunctionVersions?.every((v) => v.State === "Active")).toBe(true);
    await expect(
      server.lambda.send(new DeleteCapacityProviderCommand({ CapacityProviderName: "mc" })),
    ).rejects.toBeInstanceOf(ResourceConflictException);

    // Changing N takes effect for new environments.
    await server.lambda.send(
      new UpdateFunctionConfigurationCommand({ FunctionName: "huge", ...onProvider(2) }),
    );
    await waitUntilFunctionUpdatedV2(
      { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
      { FunctionName: "huge" },
    );
    const after = await atOnce("huge", 4);
    expect(new Set(after.map((a) => a.stream)).size).toBe(2);
    expect(after[0]?.max).toBe("2");

    await server.lambda.send(new DeleteFunctionCommand({ FunctionName: "huge" }));
    const left = await server.lambda.send(
      new ListFunctionVersionsByCapacityProviderCommand({ CapacityProviderName: "mc" }),
    );
    expect((left.FunctionVersions ?? []).map((v) => v.FunctionArn)).not.toContain(
      "arn:aws:lambda:us-east-1:000000000000:function:huge:$LATEST",
    );
  });
});
