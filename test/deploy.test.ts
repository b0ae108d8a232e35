/**
 * `lambent deploy` against a real server, through its public APIs with signed
 * requests: SAM templates from test/fixtures/sam deployed, invoked (SDK and
 * Function URL), redeployed with changes (only what changed is touched),
 * shrunk, deleted; a deploy failing midway rolls back; schedules from
 * Schedule/ScheduleV2 events fire on a fast clock; hostile templates are
 * refused before anything changes.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GetAliasCommand,
  GetEventSourceMappingCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetFunctionEventInvokeConfigCommand,
  GetLayerVersionCommand,
  GetPolicyCommand,
  GetProvisionedConcurrencyConfigCommand,
  InvokeCommand,
  ListVersionsByFunctionCommand,
} from "@aws-sdk/client-lambda";
import { GetScheduleCommand, SchedulerClient } from "@aws-sdk/client-scheduler";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LambentClient } from "../src/deploy/api.js";
import { type DeployResult, deleteStack, deployStack } from "../src/deploy/deploy.js";
import { Collector } from "./helpers/collector.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";

const FIXTURES = join(import.meta.dirname, "fixtures", "sam");
const SPEED = 600;
const ANCHOR = Date.now();

let server: TestServer;
let client: LambentClient;
let scheduler: SchedulerClient;
let work: string;
let sink: Collector;

beforeAll(async () => {
  sink = await Collector.start();
  server = await startServer({ scheduleClock: { anchorMs: ANCHOR, speed: SPEED } });
  client = new LambentClient(server.url, "us-east-1", { accessKeyId: "test", secretAccessKey: "test" });
  scheduler = new SchedulerClient({
    endpoint: server.url,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  work = mkdtempSync(join(tmpdir(), "lambent-deploy-"));
});

afterAll(async () => {
  scheduler?.destroy();
  await server?.stop();
  await sink?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A fresh copy of a fixture project (tests edit their copy). */
function project(name: string): string {
  const dir = join(work, `${name}-${Math.random().toString(36).slice(2, 8)}`);
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

function deploy(
  dir: string,
  stackName: string,
  extra: { overrides?: Record<string, string>; dryRun?: boolean; template?: string } = {},
): Promise<DeployResult> {
  const lines: string[] = [];
  return deployStack(
    {
      client,
      templateFile: join(dir, extra.template ?? "template.yaml"),
      stackName,
      ...(extra.overrides ? { parameterOverrides: extra.overrides } : {}),
      ...(extra.dryRun ? { dryRun: true } : {}),
    },
    (l) => lines.push(l),
  );
}

function actions(r: DeployResult): Record<string, string> {
  return Object.fromEntries(r.plan.map((s) => [s.logicalId, s.action]));
}

async function invokeJson(name: string, qualifier?: string): Promise<Record<string, unknown>> {
  const out = await server.lambda.send(
    new InvokeCommand({ FunctionName: name, ...(qualifier ? { Qualifier: qualifier } : {}) }),
  );
  expect(out.FunctionError).toBeUndefined();
  return JSON.parse(Buffer.from(out.Payload ?? []).toString("utf8"));
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

describe("hello world (HttpApi → Function URL)", () => {
  it("deploys, serves the URL, redeploys only what changed, and deletes", async () => {
    const dir = project("hello-world");
    const dry = await deploy(dir, "hello", { dryRun: true });
    expect(actions(dry)).toEqual({
      HelloWorldFunction: "create",
      HelloWorldFunctionUrl: "create",
      HelloWorldFunctionUrlPublicPermissions: "create",
      HelloWorldFunctionURLInvokeAllowPublicAccess: "create",
    });
    expect(await client.getStack("hello")).toBeUndefined();

    const first = await deploy(dir, "hello");
    expect(first.status).toBe("CREATE_COMPLETE");
    const name = String(first.outputs.HelloWorldFunctionName?.Value);
    expect(name).toMatch(/^hello-HelloWorldFunction-[A-Z0-9]{12}$/);
    expect(first.outputs.HelloWorldFunction?.Value).toBe(
      `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
    );
    const url = String(first.outputs.HelloWorldApi?.Value);
    expect(url).toMatch(/^http:\/\/[a-z0-9]{32}\.lambda-url\.us-east-1\.localhost:\d+\/$/);
    // The URL's path form (no DNS needed for *.localhost here).
    const path = `${server.url}/_lambent/urls/${url.slice(7, 39)}`;
    const res = await fetch(`${path}/hello`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      message: "hello world",
      stage: "dev",
      where: "us-east-1/hello/aws/000000000000",
      prodOnly: null,
      memory: "128",
      path: "/hello",
      version: 1,
    });
    const stack = await client.getStack("hello");
    expect(stack?.Status).toBe("CREATE_COMPLETE");
    expect(stack?.Parameters).toEqual({ Stage: "dev", Greeting: "****" });

    const again = await deploy(dir, "hello");
    expect(again.changed).toBe(false);
    expect(Object.values(actions(again))).toEqual(["none", "none", "none", "none"]);

    // A parameter changes the function's configuration only; the URL stays.
    const prod = await deploy(dir, "hello", { overrides: { Stage: "prod" } });
    expect(actions(prod)).toMatchObject({ HelloWorldFunction: "update", HelloWorldFunctionUrl: "none" });
    expect(prod.plan.find((s) => s.logicalId === "HelloWorldFunction")?.changed?.sort()).toEqual([
      "Environment",
      "MemorySize",
    ]);
    expect(prod.outputs.HelloWorldApi?.Value).toBe(url);
    const cfg = await server.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name }));
    expect(cfg.MemorySize).toBe(256);
    expect(cfg.Environment?.Variables).toMatchObject({ STAGE: "prod", PROD_ONLY: "yes" });

    // An edit to the code: only the code is uploaded again.
    const app = join(dir, "hello-world", "app.mjs");
    writeFileSync(app, readFileSync(app, "utf8").replace("version: 1", "version: 2"));
    const before = (await server.lambda.send(new GetFunctionCommand({ FunctionName: name }))).Configuration;
    const edited = await deploy(dir, "hello", { overrides: { Stage: "prod" } });
    expect(edited.plan.find((s) => s.logicalId === "HelloWorldFunction")).toMatchObject({
      action: "update",
      changed: ["Code"],
    });
    const after = (await server.lambda.send(new GetFunctionCommand({ FunctionName: name }))).Configuration;
    expect(after?.CodeSha256).not.toBe(before?.CodeSha256);
    expect(((await (await fetch(`${path}/hello`)).json()) as { version: number }).version).toBe(2);

    await deleteStack(client, "hello");
    expect(await client.getStack("hello")).toBeUndefined();
    const gone = await rejection(server.lambda.send(new GetFunctionCommand({ FunctionName: name })));
    expect(gone.name).toBe("ResourceNotFoundException");
  });
});

describe("a failure midway rolls back", () => {
  it("a new stack whose third function is refused leaves nothing behind (ROLLBACK_COMPLETE)", async () => {
    const dir = project("multi");
    const err = await rejection(deploy(dir, "multi-new", { overrides: { ThirdRuntime: "nodejs0.x" } }));
    expect(err.message).toMatch(/ThirdFunction: .*InvalidParameterValueException/);
    const stack = await client.getStack("multi-new");
    expect(stack?.Status).toBe("ROLLBACK_COMPLETE");
    expect(stack?.Resources).toEqual({});
    // The same stack deploys once the template is fixed.
    const ok = await deploy(dir, "multi-new");
    expect(ok.status).toBe("CREATE_COMPLETE");
    expect(Object.keys(ok.resources).sort()).toEqual(["FirstFunction", "SecondFunction", "ThirdFunction"]);
    await deleteStack(client, "multi-new");
  });

  it("an update that fails on the third function puts the first two back (code and configuration)", async () => {
    const dir = project("multi");
    const v1 = await deploy(dir, "multi");
    const first = v1.resources.FirstFunction?.PhysicalId as string;
    const second = v1.resources.SecondFunction?.PhysicalId as string;
    expect(await invokeJson(second)).toEqual({ who: "second", first, code: "v1" });

    const src = join(dir, "src", "index.js");
    writeFileSync(src, readFileSync(src, "utf8").replace('code: "v1"', 'code: "v2"'));
    const err = await rejection(deploy(dir, "multi", { overrides: { ThirdRuntime: "nodejs0.x" } }));
    expect(err.message).toMatch(/ThirdFunction/);
    const stack = await client.getStack("multi");
    expect(stack?.Status).toBe("UPDATE_ROLLBACK_COMPLETE");
    expect(await invokeJson(first)).toEqual({ who: "first", first: null, code: "v1" });
    expect(await invokeJson(second)).toEqual({ who: "second", first, code: "v1" });
    const third = v1.resources.ThirdFunction?.PhysicalId as string;
    expect(await invokeJson(third)).toEqual({ who: "third", first: null, code: "v1" });

    // A resource the template no longer has (its Condition is now false) is deleted; the others stay.
    const shrunk = await deploy(dir, "multi", { overrides: { WithThird: "no" } });
    expect(actions(shrunk)).toEqual({
      FirstFunction: "update",
      SecondFunction: "update",
      ThirdFunction: "delete",
    });
    expect(shrunk.status).toBe("UPDATE_COMPLETE");
    const gone = await rejection(server.lambda.send(new GetFunctionCommand({ FunctionName: third })));
    expect(gone.name).toBe("ResourceNotFoundException");
    expect(await invokeJson(first)).toMatchObject({ code: "v2" });
    await deleteStack(client, "multi");
  });
});

describe("AutoPublishAlias with provisioned concurrency", () => {
  it("publishes a version per change and moves the alias; provisioned concurrency is READY", async () => {
    const dir = project("alias-pc");
    const v1 = await deploy(dir, "counter");
    const fn = v1.resources.CounterFunction?.PhysicalId as string;
    expect(v1.outputs.Alias?.Value).toBe(`arn:aws:lambda:us-east-1:000000000000:function:${fn}:live`);
    expect(v1.outputs.Version?.Value).toBe("1");
    const pc = await server.lambda.send(
      new GetProvisionedConcurrencyConfigCommand({ FunctionName: fn, Qualifier: "live" }),
    );
    expect(pc.Status).toBe("READY");
    expect(await invokeJson(fn, "live")).toMatchObject({ version: "1", code: "v1" });

    const src = join(dir, "src", "index.js");
    writeFileSync(src, readFileSync(src, "utf8").replace('code: "v1"', 'code: "v2"'));
    const v2 = await deploy(dir, "counter");
    const a = actions(v2);
    expect(a.CounterFunction).toBe("update");
    expect(a.CounterFunctionAliaslive).toBe("update");
    // The Version resource's CodeSha256 changed: it is replaced (a new version is published).
    expect(Object.entries(a).filter(([id]) => id.startsWith("CounterFunctionVersion"))).toEqual([
      [expect.stringMatching(/^CounterFunctionVersion[0-9a-f]{10}$/), "replace"],
    ]);
    expect(v2.outputs.Version?.Value).toBe("2");
    const alias = await server.lambda.send(new GetAliasCommand({ FunctionName: fn, Name: "live" }));
    expect(alias.FunctionVersion).toBe("2");
    expect(await invokeJson(fn, "live")).toMatchObject({ version: "2", code: "v2" });
    // SAM keeps old versions (DeletionPolicy Retain).
    const versions = await server.lambda.send(new ListVersionsByFunctionCommand({ FunctionName: fn }));
    expect(versions.Versions?.map((v) => v.Version)).toEqual(["$LATEST", "1", "2"]);
    await deleteStack(client, "counter");
  });
});

describe("a layer and a TypeScript function bundled with esbuild", () => {
  it("publishes the layer, bundles the handler, and a layer change publishes a new version the function moves to", async () => {
    const dir = project("layers-ts");
    const v1 = await deploy(dir, "layers");
    const fn = v1.resources.GreetFunction?.PhysicalId as string;
    const layer1 = String(v1.outputs.LayerVersion?.Value);
    expect(layer1).toBe("arn:aws:lambda:us-east-1:000000000000:layer:greeting:1");
    const cfg = await server.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn }));
    expect(cfg.Layers?.map((l) => l.Arn)).toEqual([layer1]);
    const out = await server.lambda.send(
      new InvokeCommand({ FunctionName: fn, Payload: Buffer.from(JSON.stringify({ name: "sam" })) }),
    );
    expect(JSON.parse(Buffer.from(out.Payload ?? []).toString())).toEqual({
      message: "hello sam from the layer (v1)",
      typed: true,
    });

    const mod = join(dir, "layer", "nodejs", "node_modules", "greeting", "index.js");
    writeFileSync(mod, readFileSync(mod, "utf8").replace("(v1)", "(v2)"));
    const v2 = await deploy(dir, "layers");
    expect(actions(v2)).toEqual({ GreetingLayer: "replace", GreetFunction: "update" });
    expect(v2.plan.find((x) => x.logicalId === "GreetFunction")?.changed).toEqual(["Layers"]);
    expect(v2.outputs.LayerVersion?.Value).toBe("arn:aws:lambda:us-east-1:000000000000:layer:greeting:2");
    expect(await invokeJson(fn)).toEqual({ message: "hello world from the layer (v2)", typed: true });
    // RetentionPolicy: Delete — the replaced version is deleted once the function moved on.
    const old = await rejection(
      server.lambda.send(new GetLayerVersionCommand({ LayerName: "greeting", VersionNumber: 1 })),
    );
    expect(old.name).toBe("ResourceNotFoundException");
    await deleteStack(client, "layers");
  });
});

describe("plain AWS::Lambda::* resources", () => {
  it("Function (ZipFile), Version, Alias, Url, Permission, EventInvokeConfig and a Redis stream mapping", async () => {
    const stream = `deploy-${Date.now()}`;
    const dir = mkdtempSync(join(work, "plain-"));
    writeFileSync(
      join(dir, "template.yaml"),
      `AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  ReportUrl: {Type: String}
  Stream: {Type: String}
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: nodejs20.x
      Handler: index.handler
      Role: arn:aws:iam::000000000000:role/plain
      Timeout: 30
      Environment: {Variables: {REPORT_URL: !Ref ReportUrl}}
      Code:
        ZipFile: |
          exports.handler = async (event) => {
            await fetch(process.env.REPORT_URL, { method: "POST", body: JSON.stringify(event) });
            return { ok: true };
          };
  Ver:
    Type: AWS::Lambda::Version
    Properties: {FunctionName: !Ref Fn, Description: first}
  Live:
    Type: AWS::Lambda::Alias
    Properties: {FunctionName: !Ref Fn, Name: live, FunctionVersion: !GetAtt Ver.Version}
  LiveUrl:
    Type: AWS::Lambda::Url
    Properties: {TargetFunctionArn: !Ref Live, AuthType: AWS_IAM}
  Allow:
    Type: AWS::Lambda::Permission
    Properties: {FunctionName: !Ref Live, Action: lambda:InvokeFunction, Principal: "111122223333"}
  Async:
    Type: AWS::Lambda::EventInvokeConfig
    Properties: {FunctionName: !Ref Fn, Qualifier: live, MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 120}
    DependsOn: Live
  Source:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Live
      EventSourceArn: redis://127.0.0.1:6379
      Topics: [!Ref Stream]
      StartingPosition: TRIM_HORIZON
      BatchSize: 10
Outputs:
  Url: {Value: !GetAtt LiveUrl.FunctionUrl}
  Mapping: {Value: !Ref Source}
`,
    );
    const r = await deploy(dir, "plain", { overrides: { ReportUrl: `${sink.url}/plain`, Stream: stream } });
    const fn = r.resources.Fn?.PhysicalId as string;
    expect(fn).toMatch(/^plain-Fn-[A-Z0-9]{12}$/);
    expect(
      (await server.lambda.send(new GetAliasCommand({ FunctionName: fn, Name: "live" }))).FunctionVersion,
    ).toBe("1");
    expect(
      await server.lambda.send(
        new GetFunctionEventInvokeConfigCommand({ FunctionName: fn, Qualifier: "live" }),
      ),
    ).toMatchObject({ MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 120 });
    const policy = await server.lambda.send(new GetPolicyCommand({ FunctionName: fn, Qualifier: "live" }));
    expect(policy.Policy).toContain("111122223333");
    expect(String(r.outputs.Url?.Value)).toMatch(/^http:\/\/[a-z0-9]{32}\.lambda-url\./);
    const mapping = await server.lambda.send(
      new GetEventSourceMappingCommand({ UUID: String(r.outputs.Mapping?.Value) }),
    );
    expect(mapping.FunctionArn).toBe(`arn:aws:lambda:us-east-1:000000000000:function:${fn}:live`);
    // A record on the stream reaches the function through the mapping the template made.
    const redis = new Redis("redis://127.0.0.1:6379");
    try {
      await redis.xadd(stream, "*", "data", JSON.stringify({ hello: "stream" }));
      const [got] = await sink.onPath("/plain");
      expect(JSON.stringify(got?.body)).toContain(
        Buffer.from(JSON.stringify({ hello: "stream" })).toString("base64"),
      );
      await deleteStack(client, "plain");
      const gone = await rejection(server.lambda.send(new GetFunctionCommand({ FunctionName: fn })));
      expect(gone.name).toBe("ResourceNotFoundException");
    } finally {
      await redis.del(stream);
      redis.disconnect();
    }
  });
});

describe("SAM Policies", () => {
  it("inline statements become the execution role's identity policy; removing them deletes it", async () => {
    const dir = mkdtempSync(join(work, "policies-"));
    const template = (policies: string) => `Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      InlineCode: "exports.handler = async () => 1;"
      Handler: index.handler
      Runtime: nodejs20.x
${policies}`;
    writeFileSync(
      join(dir, "template.yaml"),
      template(`      Policies:
        - AWSLambdaBasicExecutionRole
        - Statement:
            - Effect: Allow
              Action: lambda:GetFunction
              Resource: !Sub "arn:aws:lambda:\${AWS::Region}:\${AWS::AccountId}:function:*"
`),
    );
    const r = await deploy(dir, "pol");
    expect(r.notes).toContain(
      "Fn.Policies: AWSLambdaBasicExecutionRole grants nothing Lambent needs granted (logs are always written)",
    );
    const cfg = await server.lambda.send(
      new GetFunctionConfigurationCommand({ FunctionName: r.resources.Fn?.PhysicalId as string }),
    );
    expect(cfg.Role).toBe("arn:aws:iam::000000000000:role/pol-FnRole");
    const role = await signedFetch(`${server.url}/_lambent/roles/pol-FnRole`);
    expect(JSON.parse(((await role.json()) as { Policy: string }).Policy)).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: ["lambda:GetFunction"],
          Resource: ["arn:aws:lambda:us-east-1:000000000000:function:*"],
        },
      ],
    });
    writeFileSync(join(dir, "template.yaml"), template(""));
    const r2 = await deploy(dir, "pol");
    expect(actions(r2)).toEqual({ Fn: "none", FnRole: "delete" });
    expect((await signedFetch(`${server.url}/_lambent/roles/pol-FnRole`)).status).toBe(404);
    await deleteStack(client, "pol");
  });
});

describe("Schedule and ScheduleV2 events", () => {
  it("become Scheduler schedules that fire; removing an event deletes its schedule only", async () => {
    const dir = project("scheduled");
    const r = await deploy(dir, "cron", { overrides: { ReportUrl: `${sink.url}/tick` } });
    const fnArn = `arn:aws:lambda:us-east-1:000000000000:function:${r.resources.TickFunction?.PhysicalId}`;
    const every = r.resources.TickFunctionEveryMinute?.Attributes.Name as string;
    expect(r.outputs.EveryMinuteSchedule?.Value).toBe(
      `arn:aws:scheduler:us-east-1:000000000000:schedule/default/${every}`,
    );
    const s = await scheduler.send(new GetScheduleCommand({ Name: every }));
    expect(s).toMatchObject({
      ScheduleExpression: "rate(1 minute)",
      State: "ENABLED",
      FlexibleTimeWindow: { Mode: "OFF" },
      Target: {
        Arn: fnArn,
        Input: '{"source": "Schedule"}',
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 300 },
      },
    });
    const nightly = r.resources.TickFunctionNightly?.Attributes.Name as string;
    const n = await scheduler.send(new GetScheduleCommand({ Name: nightly }));
    expect(n).toMatchObject({
      ScheduleExpression: "cron(0 3 * * ? *)",
      ScheduleExpressionTimezone: "Europe/Paris",
      State: "DISABLED",
      FlexibleTimeWindow: { Mode: "FLEXIBLE", MaximumWindowInMinutes: 15 },
      Target: { Input: '{"source": "ScheduleV2", "stack": "cron"}' },
    });
    // The test clock runs 600× faster: a minute's tick arrives within a fraction of a second.
    const [tick] = await sink.waitFor((x) => x.path === "/tick");
    expect(tick?.body).toEqual({ source: "Schedule" });

    const t = join(dir, "template.yaml");
    const text = readFileSync(t, "utf8");
    writeFileSync(
      t,
      text.slice(0, text.indexOf("        Nightly:")) + text.slice(text.indexOf("\nOutputs:")),
    );
    const shrunk = await deploy(dir, "cron", { overrides: { ReportUrl: `${sink.url}/tick` } });
    expect(actions(shrunk)).toEqual({
      TickFunction: "none",
      TickFunctionEveryMinute: "none",
      TickFunctionNightly: "delete",
    });
    const gone = await rejection(scheduler.send(new GetScheduleCommand({ Name: nightly })));
    expect(gone.name).toBe("ResourceNotFoundException");
    await deleteStack(client, "cron");
    const gone2 = await rejection(scheduler.send(new GetScheduleCommand({ Name: every })));
    expect(gone2.name).toBe("ResourceNotFoundException");
  });
});

describe("hostile and unsupported templates are refused before anything changes", () => {
  const cases: Array<[string, string, RegExp]> = [
    [
      "billion laughs",
      `a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
Resources: {X: {Type: AWS::Lambda::Function, Properties: {Role: r, Code: {ZipFile: x}, Tags: *g}}}
`,
      /expands to more than 200000 values/,
    ],
    ["deep nesting", `Resources: ${"[".repeat(500)}${"]".repeat(500)}`, /nested deeper than 64 levels/],
    [
      "circular references",
      `Transform: AWS::Serverless-2016-10-31
Resources:
  A: {Type: AWS::Serverless::Function, Properties: {InlineCode: x, Handler: index.handler, Runtime: nodejs20.x, Environment: {Variables: {B: !Ref B}}}}
  B: {Type: AWS::Serverless::Function, Properties: {InlineCode: x, Handler: index.handler, Runtime: nodejs20.x, Environment: {Variables: {A: !GetAtt A.Arn}}}}
`,
      /circular dependency between resources: A → B → A/,
    ],
    [
      "CodeUri climbing out of the project",
      `Transform: AWS::Serverless-2016-10-31
Resources:
  F: {Type: AWS::Serverless::Function, Properties: {CodeUri: ../../etc, Handler: index.handler, Runtime: nodejs20.x}}
`,
      /outside the template's folder/,
    ],
    [
      "an unknown resource type",
      "Resources:\n  Bucket: {Type: AWS::S3::Bucket}\n",
      /Bucket: type AWS::S3::Bucket is not supported by lambent deploy/,
    ],
    [
      "an unsupported property",
      `Transform: AWS::Serverless-2016-10-31
Resources:
  F: {Type: AWS::Serverless::Function, Properties: {InlineCode: x, Handler: index.handler, Runtime: nodejs20.x, VpcConfig: {SubnetIds: []}}}
`,
      /property VpcConfig is not supported: Lambent functions have no VPC/,
    ],
    [
      "DeploymentPreference",
      `Transform: AWS::Serverless-2016-10-31
Resources:
  F: {Type: AWS::Serverless::Function, Properties: {InlineCode: x, Handler: index.handler, Runtime: nodejs20.x, AutoPublishAlias: live, DeploymentPreference: {Type: Canary10Percent5Minutes}}}
`,
      /property DeploymentPreference is not supported: gradual \(CodeDeploy\) deployments/,
    ],
    ["an unknown tag", "Resources: !Bogus x\n", /unknown tag !Bogus/],
    [
      "a Ref to nothing",
      `Transform: AWS::Serverless-2016-10-31
Resources:
  F: {Type: AWS::Serverless::Function, Properties: {InlineCode: x, Handler: index.handler, Runtime: nodejs20.x, Environment: {Variables: {X: !Ref Nope}}}}
`,
      /refers to Nope, which is not a parameter or a resource/,
    ],
    [
      "a value outside AllowedValues",
      `Parameters: {Stage: {Type: String, Default: qa, AllowedValues: [dev, prod]}}
Resources: {X: {Type: AWS::Lambda::Function, Properties: {Role: r, Code: {ZipFile: x}}}}
`,
      /Parameter Stage: value 'qa' is not one of AllowedValues \[dev, prod\]/,
    ],
    [
      "Fn::Select out of range",
      `Transform: AWS::Serverless-2016-10-31
Resources:
  F: {Type: AWS::Serverless::Function, Properties: {InlineCode: x, Handler: index.handler, Runtime: !Select [5, [a, b]]}}
`,
      /index 5 is out of range \(2 items\)/,
    ],
    ["a __proto__ key", 'Resources: {"__proto__": {Type: x}}\n', /key __proto__ .* is not allowed/],
    ["not YAML", "Resources: [unclosed\n", /not valid YAML/],
    [
      "another transform",
      "Transform: AWS::Include\nResources: {}\n",
      /Transform "AWS::Include" is not supported/,
    ],
    [
      "an Api event with its own RestApiId",
      `Transform: AWS::Serverless-2016-10-31
Resources:
  F: {Type: AWS::Serverless::Function, Properties: {InlineCode: x, Handler: index.handler, Runtime: nodejs20.x, Events: {E: {Type: Api, Properties: {Path: /, Method: get, RestApiId: x}}}}}
`,
      /property RestApiId is not supported/,
    ],
    [
      "a SAM policy template",
      `Transform: AWS::Serverless-2016-10-31
Resources:
  F: {Type: AWS::Serverless::Function, Properties: {InlineCode: x, Handler: index.handler, Runtime: nodejs20.x, Policies: [{S3ReadPolicy: {BucketName: b}}]}}
`,
      /F.Policies: S3ReadPolicy is not supported \(SAM policy templates are not expanded\)/,
    ],
    [
      "an SQS event",
      `Transform: AWS::Serverless-2016-10-31
Resources:
  F: {Type: AWS::Serverless::Function, Properties: {InlineCode: x, Handler: index.handler, Runtime: nodejs20.x, Events: {Q: {Type: SQS, Properties: {Queue: arn}}}}}
`,
      /event type SQS is not supported/,
    ],
  ];
  for (const [what, text, expected] of cases) {
    it(what, async () => {
      const dir = mkdtempSync(join(work, "hostile-"));
      writeFileSync(join(dir, "template.yaml"), text);
      const err = await rejection(deploy(dir, "hostile"));
      expect(err.message).toMatch(expected);
      expect(await client.getStack("hostile")).toBeUndefined();
    });
  }

  it("a template over 1 MB", async () => {
    const dir = mkdtempSync(join(work, "huge-"));
    writeFileSync(join(dir, "template.yaml"), `Description: "${"x".repeat(1024 * 1024)}"\nResources: {}\n`);
    const err = await rejection(deploy(dir, "hostile"));
    expect(err.message).toMatch(/larger than 1048576 bytes/);
  });
});
