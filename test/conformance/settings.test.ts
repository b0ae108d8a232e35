/**
 * Conformance: code signing configs, recursion, runtime management and
 * scaling configs — what Terraform's aws_lambda_function reads on every
 * refresh. Shapes follow the model's output shapes; messages cite their source.
 */
import {
  CodeSigningConfigNotFoundException,
  CreateCodeSigningConfigCommand,
  DeleteCodeSigningConfigCommand,
  DeleteFunctionCodeSigningConfigCommand,
  DeleteFunctionCommand,
  GetCodeSigningConfigCommand,
  GetFunctionCodeSigningConfigCommand,
  GetFunctionRecursionConfigCommand,
  GetFunctionScalingConfigCommand,
  GetRuntimeManagementConfigCommand,
  InvalidParameterValueException,
  type LambdaClient,
  PublishVersionCommand,
  PutFunctionCodeSigningConfigCommand,
  PutFunctionRecursionConfigCommand,
  PutFunctionScalingConfigCommand,
  PutRuntimeManagementConfigCommand,
  paginateListCodeSigningConfigs,
  paginateListFunctionsByCodeSigningConfig,
  ResourceConflictException,
  ResourceNotFoundException,
  UpdateCodeSigningConfigCommand,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFn, expectError, rejection, smallZip } from "../helpers/control-plane.js";
import { startServer, type TestServer } from "../helpers/server.js";

const ACCOUNT = "000000000000";
const fnArn = (name: string, q?: string) =>
  `arn:aws:lambda:us-east-1:${ACCOUNT}:function:${name}${q ? `:${q}` : ""}`;
const PROFILE = `arn:aws:signer:us-east-1:${ACCOUNT}:/signing-profiles/prof/abcdef1234`;

let server: TestServer;
let lambda: LambdaClient;
let zip: Buffer;

beforeAll(async () => {
  server = await startServer();
  lambda = server.lambda;
  zip = await smallZip("settings");
  await createFn(lambda, "csc-fn", zip);
});

afterAll(async () => {
  await server?.stop();
});

describe("code signing configs", () => {
  it("GetFunctionCodeSigningConfig of a function without one answers an empty ARN (Terraform's read)", async () => {
    const got = await lambda.send(new GetFunctionCodeSigningConfigCommand({ FunctionName: "csc-fn" }));
    expect(got.CodeSigningConfigArn).toBe("");
    expect(got.FunctionName).toBe("csc-fn");
    const missing = await rejection(() =>
      lambda.send(new GetFunctionCodeSigningConfigCommand({ FunctionName: "no-such-fn" })),
    );
    expectError(missing, ResourceNotFoundException, 404, `Function not found: ${fnArn("no-such-fn")}`);
  });

  it("create, get, update, list, attach, list functions, detach, delete", async () => {
    const created = await lambda.send(
      new CreateCodeSigningConfigCommand({
        Description: "release builds",
        AllowedPublishers: { SigningProfileVersionArns: [PROFILE] },
      }),
    );
    const csc = created.CodeSigningConfig!;
    expect(created.$metadata.httpStatusCode).toBe(201);
    expect(csc.CodeSigningConfigId).toMatch(/^csc-[a-z0-9]{17}$/);
    expect(csc.CodeSigningConfigArn).toBe(
      `arn:aws:lambda:us-east-1:${ACCOUNT}:code-signing-config:${csc.CodeSigningConfigId}`,
    );
    // CodeSigningPolicies defaults to Warn (AWS docs: UntrustedArtifactOnDeployment, default Warn).
    expect(csc.CodeSigningPolicies).toEqual({ UntrustedArtifactOnDeployment: "Warn" });
    expect(csc.AllowedPublishers).toEqual({ SigningProfileVersionArns: [PROFILE] });
    expect(csc.LastModified).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);

    const arn = csc.CodeSigningConfigArn!;
    const got = await lambda.send(new GetCodeSigningConfigCommand({ CodeSigningConfigArn: arn }));
    expect(got.CodeSigningConfig).toEqual(csc);

    const updated = await lambda.send(
      new UpdateCodeSigningConfigCommand({
        CodeSigningConfigArn: arn,
        CodeSigningPolicies: { UntrustedArtifactOnDeployment: "Enforce" },
      }),
    );
    expect(updated.CodeSigningConfig?.CodeSigningPolicies?.UntrustedArtifactOnDeployment).toBe("Enforce");
    expect(updated.CodeSigningConfig?.Description).toBe("release builds");

    const put = await lambda.send(
      new PutFunctionCodeSigningConfigCommand({ FunctionName: "csc-fn", CodeSigningConfigArn: arn }),
    );
    expect(put).toMatchObject({ CodeSigningConfigArn: arn, FunctionName: "csc-fn" });
    expect(
      (await lambda.send(new GetFunctionCodeSigningConfigCommand({ FunctionName: fnArn("csc-fn") })))
        .CodeSigningConfigArn,
    ).toBe(arn);

    // CreateFunction's CodeSigningConfigArn attaches too.
    await createFn(lambda, "csc-fn-2", zip, { CodeSigningConfigArn: arn });
    const fns: string[] = [];
    for await (const page of paginateListFunctionsByCodeSigningConfig(
      { client: lambda, pageSize: 1 },
      { CodeSigningConfigArn: arn },
    )) {
      fns.push(...(page.FunctionArns ?? []));
    }
    expect(fns).toEqual([fnArn("csc-fn"), fnArn("csc-fn-2")]);

    // In use: the config cannot be deleted.
    const inUse = await rejection(() =>
      lambda.send(new DeleteCodeSigningConfigCommand({ CodeSigningConfigArn: arn })),
    );
    expectError(inUse, ResourceConflictException, 409, /cannot be deleted/);

    await lambda.send(new DeleteFunctionCodeSigningConfigCommand({ FunctionName: "csc-fn" }));
    await lambda.send(new DeleteFunctionCommand({ FunctionName: "csc-fn-2" }));
    expect(
      (await lambda.send(new GetFunctionCodeSigningConfigCommand({ FunctionName: "csc-fn" })))
        .CodeSigningConfigArn,
    ).toBe("");
    const del = await lambda.send(new DeleteCodeSigningConfigCommand({ CodeSigningConfigArn: arn }));
    expect(del.$metadata.httpStatusCode).toBe(204);
    const gone = await rejection(() =>
      lambda.send(new GetCodeSigningConfigCommand({ CodeSigningConfigArn: arn })),
    );
    // Reading a missing config: ResourceNotFoundException with this text (localstack's Lambda provider,
    // localstack/localstack localstack-core/localstack/services/lambda_/provider.py get_code_signing_config,
    // kept in step with responses recorded on AWS; no recorded AWS response for it was found).
    expectError(
      gone,
      ResourceNotFoundException,
      404,
      `The Lambda code signing configuration ${arn} can not be found.`,
    );
  });

  it("attaching a missing config is CodeSigningConfigNotFoundException; a malformed ARN is a ValidationException", async () => {
    const arn = `arn:aws:lambda:us-east-1:${ACCOUNT}:code-signing-config:csc-00000000000000000`;
    const err = await rejection(() =>
      lambda.send(
        new PutFunctionCodeSigningConfigCommand({ FunctionName: "csc-fn", CodeSigningConfigArn: arn }),
      ),
    );
    // Attaching a missing config: CodeSigningConfigNotFoundException (same source as above:
    // put_function_code_signing_config in localstack's Lambda provider).
    expectError(
      err,
      CodeSigningConfigNotFoundException,
      404,
      `The code signing configuration cannot be found. Check that the provided configuration is not deleted: ${arn}.`,
    );
    const create = await rejection(() => createFn(lambda, "csc-fn-3", zip, { CodeSigningConfigArn: arn }));
    expect(create.name).toBe("CodeSigningConfigNotFoundException");
    const bad = await rejection(() =>
      lambda.send(new GetCodeSigningConfigCommand({ CodeSigningConfigArn: "csc-nope" })),
    );
    expect(bad.name).toBe("ValidationException");
    expect(bad.message).toMatch(
      /at 'codeSigningConfigArn' failed to satisfy constraint: Member must satisfy regular expression pattern/,
    );
    const noPublishers = await rejection(() =>
      lambda.send(
        new CreateCodeSigningConfigCommand({ AllowedPublishers: { SigningProfileVersionArns: [] } }),
      ),
    );
    expect(noPublishers.message).toBe(
      "1 validation error detected: Value '[]' at 'allowedPublishers.signingProfileVersionArns' failed to satisfy constraint: Member must have length greater than or equal to 1",
    );
  });

  it("ListCodeSigningConfigs pages with the SDK paginator", async () => {
    const arns: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await lambda.send(
        new CreateCodeSigningConfigCommand({ AllowedPublishers: { SigningProfileVersionArns: [PROFILE] } }),
      );
      arns.push(c.CodeSigningConfig!.CodeSigningConfigArn!);
    }
    const seen: string[] = [];
    let pages = 0;
    for await (const page of paginateListCodeSigningConfigs({ client: lambda, pageSize: 2 }, {})) {
      pages++;
      seen.push(...(page.CodeSigningConfigs ?? []).map((c) => c.CodeSigningConfigArn!));
    }
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(seen.sort()).toEqual(arns.sort());
  });
});

describe("recursion, runtime management and scaling configs", () => {
  it("recursion config defaults to Terminate and stores Allow", async () => {
    expect(
      (await lambda.send(new GetFunctionRecursionConfigCommand({ FunctionName: "csc-fn" }))).RecursiveLoop,
    ).toBe("Terminate");
    const put = await lambda.send(
      new PutFunctionRecursionConfigCommand({ FunctionName: "csc-fn", RecursiveLoop: "Allow" }),
    );
    expect(put.RecursiveLoop).toBe("Allow");
    expect(
      (await lambda.send(new GetFunctionRecursionConfigCommand({ FunctionName: "csc-fn" }))).RecursiveLoop,
    ).toBe("Allow");
    await lambda.send(
      new PutFunctionRecursionConfigCommand({ FunctionName: "csc-fn", RecursiveLoop: "Terminate" }),
    );
    const missing = await rejection(() =>
      lambda.send(new GetFunctionRecursionConfigCommand({ FunctionName: "ghost" })),
    );
    expectError(missing, ResourceNotFoundException, 404, `Function not found: ${fnArn("ghost")}`);
  });

  it("runtime management config: Auto by default, Manual needs a RuntimeVersionArn", async () => {
    const got = await lambda.send(new GetRuntimeManagementConfigCommand({ FunctionName: "csc-fn" }));
    expect(got.UpdateRuntimeOn).toBe("Auto");
    expect(got.FunctionArn).toBe(fnArn("csc-fn", "$LATEST"));
    const manualWithout = await rejection(() =>
      lambda.send(
        new PutRuntimeManagementConfigCommand({ FunctionName: "csc-fn", UpdateRuntimeOn: "Manual" }),
      ),
    );
    expectError(manualWithout, InvalidParameterValueException, 400, /RuntimeVersionArn/);
    const rv = "arn:aws:lambda:us-east-1::runtime:0123456789abcdef";
    const put = await lambda.send(
      new PutRuntimeManagementConfigCommand({
        FunctionName: "csc-fn",
        UpdateRuntimeOn: "Manual",
        RuntimeVersionArn: rv,
      }),
    );
    expect(put).toMatchObject({ UpdateRuntimeOn: "Manual", RuntimeVersionArn: rv });
    const again = await lambda.send(new GetRuntimeManagementConfigCommand({ FunctionName: "csc-fn" }));
    expect(again).toMatchObject({ UpdateRuntimeOn: "Manual", RuntimeVersionArn: rv });
    const badArn = await rejection(() =>
      lambda.send(
        new PutRuntimeManagementConfigCommand({
          FunctionName: "csc-fn",
          UpdateRuntimeOn: "Manual",
          RuntimeVersionArn: "arn:aws:lambda:us-east-1:runtime:x-too-short-but-26-chars",
        }),
      ),
    );
    expect(badArn.name).toBe("ValidationException");
    const missingVersion = await rejection(() =>
      lambda.send(new GetRuntimeManagementConfigCommand({ FunctionName: "csc-fn", Qualifier: "9" })),
    );
    expectError(
      missingVersion,
      ResourceNotFoundException,
      404,
      `Function not found: ${fnArn("csc-fn", "9")}`,
    );
  });

  it("scaling config is stored per published version", async () => {
    const v = await lambda.send(new PublishVersionCommand({ FunctionName: "csc-fn" }));
    const put = await lambda.send(
      new PutFunctionScalingConfigCommand({
        FunctionName: "csc-fn",
        Qualifier: v.Version,
        FunctionScalingConfig: { MinExecutionEnvironments: 1, MaxExecutionEnvironments: 4 },
      }),
    );
    expect(put.$metadata.httpStatusCode).toBe(202);
    expect(put.FunctionState).toBe("Active");
    const got = await lambda.send(
      new GetFunctionScalingConfigCommand({ FunctionName: "csc-fn", Qualifier: v.Version }),
    );
    expect(got.RequestedFunctionScalingConfig).toEqual({
      MinExecutionEnvironments: 1,
      MaxExecutionEnvironments: 4,
    });
    expect(got.FunctionArn).toBe(fnArn("csc-fn", v.Version));
    const inverted = await rejection(() =>
      lambda.send(
        new PutFunctionScalingConfigCommand({
          FunctionName: "csc-fn",
          Qualifier: v.Version,
          FunctionScalingConfig: { MinExecutionEnvironments: 5, MaxExecutionEnvironments: 1 },
        }),
      ),
    );
    expectError(inverted, InvalidParameterValueException, 400, /MinExecutionEnvironments/);
    const tooMany = await rejection(() =>
      lambda.send(
        new PutFunctionScalingConfigCommand({
          FunctionName: "csc-fn",
          Qualifier: v.Version,
          FunctionScalingConfig: { MaxExecutionEnvironments: 15001 },
        }),
      ),
    );
    expect(tooMany.message).toBe(
      "1 validation error detected: Value '15001' at 'functionScalingConfig.maxExecutionEnvironments' failed to satisfy constraint: Member must have value less than or equal to 15000",
    );
  });

  it("settings go with the function", async () => {
    await createFn(lambda, "short-lived", zip);
    await lambda.send(
      new PutFunctionRecursionConfigCommand({ FunctionName: "short-lived", RecursiveLoop: "Allow" }),
    );
    await lambda.send(new DeleteFunctionCommand({ FunctionName: "short-lived" }));
    await createFn(lambda, "short-lived", zip);
    expect(
      (await lambda.send(new GetFunctionRecursionConfigCommand({ FunctionName: "short-lived" })))
        .RecursiveLoop,
    ).toBe("Terminate");
  });
});
