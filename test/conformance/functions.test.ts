/**
 * Conformance: function reads and writes where Lambent used to differ from
 * responses recorded on real AWS (issue 14's list): qualified reads, ARN
 * qualifiers, LoggingConfig levels, RuntimeVersionConfig, RevisionId
 * changes, deletes of missing versions, and requests AWS rejects.
 */
import {
  CreateAliasCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetLayerVersionCommand,
  InvalidParameterValueException,
  type LambdaClient,
  ListVersionsByFunctionCommand,
  PublishVersionCommand,
  PutFunctionEventInvokeConfigCommand,
  PutProvisionedConcurrencyConfigCommand,
  ResourceConflictException,
  ResourceNotFoundException,
  TagResourceCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFn, expectError, rejection, smallZip } from "../helpers/control-plane.js";
import { startServer, type TestServer } from "../helpers/server.js";

const ACCOUNT = "000000000000";
const arn = (name: string, q?: string) =>
  `arn:aws:lambda:us-east-1:${ACCOUNT}:function:${name}${q ? `:${q}` : ""}`;

let server: TestServer;
let lambda: LambdaClient;
let zip: Buffer;

beforeAll(async () => {
  server = await startServer();
  lambda = server.lambda;
  zip = await smallZip("functions");
  await createFn(lambda, "fx", zip);
  await lambda.send(new PublishVersionCommand({ FunctionName: "fx" }));
  await lambda.send(new CreateAliasCommand({ FunctionName: "fx", Name: "live", FunctionVersion: "1" }));
});

afterAll(async () => {
  await server?.stop();
});

const waitUpdated = (name: string) =>
  waitUntilFunctionUpdatedV2(
    { client: lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );

describe("qualified reads", () => {
  it("GetFunction / GetFunctionConfiguration with an alias answer the aliased version under the alias ARN", async () => {
    for (const [FunctionName, Qualifier] of [
      ["fx", "live"],
      [arn("fx", "live"), undefined],
      ["fx:live", undefined],
    ] as const) {
      const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName, Qualifier }));
      expect(cfg.FunctionArn).toBe(arn("fx", "live"));
      expect(cfg.Version).toBe("1");
      const fn = await lambda.send(new GetFunctionCommand({ FunctionName, Qualifier }));
      expect(fn.Configuration?.FunctionArn).toBe(arn("fx", "live"));
      expect(fn.Configuration?.Version).toBe("1");
    }
    const missing = await rejection(() =>
      lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx", Qualifier: "nope" })),
    );
    // "Function not found: arn:aws:lambda:us-east-1:123456789012:function:my-function" is Lambda's text
    // for every missing function, version or alias (AWS docs, ResourceNotFoundException examples).
    expectError(missing, ResourceNotFoundException, 404, `Function not found: ${arn("fx", "nope")}`);
  });

  it("a version or $LATEST qualifier shows in the ARN; none leaves it unqualified", async () => {
    expect((await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx" }))).FunctionArn).toBe(
      arn("fx"),
    );
    expect(
      (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx", Qualifier: "1" })))
        .FunctionArn,
    ).toBe(arn("fx", "1"));
    expect(
      (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx", Qualifier: "$LATEST" })))
        .FunctionArn,
    ).toBe(arn("fx", "$LATEST"));
  });

  it("ListVersionsByFunction lists $LATEST under …:$LATEST", async () => {
    const versions =
      (await lambda.send(new ListVersionsByFunctionCommand({ FunctionName: "fx" }))).Versions ?? [];
    expect(versions.map((v) => [v.Version, v.FunctionArn])).toEqual([
      ["$LATEST", arn("fx", "$LATEST")],
      ["1", arn("fx", "1")],
    ]);
  });
});

describe("SnapStart", () => {
  // AWS API reference, SnapStartResponse.OptimizationStatus: "When you provide a qualified ARN, this
  // response element indicates whether SnapStart is activated for the specified function version";
  // SnapStart works with "Java 11 and later, Python 3.12 and later, .NET 8 and later" (AWS docs,
  // "Improving startup performance with Lambda SnapStart"). Recorded on AWS (localstack's
  // test_lambda_api.snapshot.json, TestLambdaSnapStart::test_snapstart_lifecycle[java11/17/21]):
  // $LATEST {PublishedVersions, Off}, version 1 {PublishedVersions, On}; a function without the setting
  // answers {None, Off} everywhere.
  const on = { ApplyOn: "PublishedVersions", OptimizationStatus: "On" };
  const applyOnOff = { ApplyOn: "PublishedVersions", OptimizationStatus: "Off" };
  const none = { ApplyOn: "None", OptimizationStatus: "Off" };

  it("ApplyOn is stored; OptimizationStatus is On on the published versions only, never on $LATEST", async () => {
    const created = await createFn(lambda, "fx-snap", zip, {
      Runtime: "python3.13",
      Handler: "index.handler",
      SnapStart: { ApplyOn: "PublishedVersions" },
    });
    expect(created.SnapStart).toEqual(applyOnOff);
    expect(
      (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx-snap" }))).SnapStart,
    ).toEqual(applyOnOff);
    const v1 = await lambda.send(new PublishVersionCommand({ FunctionName: "fx-snap" }));
    expect(v1.SnapStart).toEqual(on);
    const got = await lambda.send(new GetFunctionCommand({ FunctionName: "fx-snap", Qualifier: "1" }));
    expect(got.Configuration?.SnapStart).toEqual(on);
    expect(
      (await lambda.send(new GetFunctionCommand({ FunctionName: "fx-snap" }))).Configuration?.SnapStart,
    ).toEqual(applyOnOff);
    // Turning it off changes $LATEST and what is published next; version 1 keeps its snapshot setting.
    const off = await lambda.send(
      new UpdateFunctionConfigurationCommand({ FunctionName: "fx-snap", SnapStart: { ApplyOn: "None" } }),
    );
    expect(off.SnapStart).toEqual(none);
    await waitUpdated("fx-snap");
    const v2 = await lambda.send(new PublishVersionCommand({ FunctionName: "fx-snap" }));
    expect(v2.Version).toBe("2");
    expect(v2.SnapStart).toEqual(none);
    const versions =
      (await lambda.send(new ListVersionsByFunctionCommand({ FunctionName: "fx-snap" }))).Versions ?? [];
    expect(versions.map((v) => [v.Version, v.SnapStart])).toEqual([
      ["$LATEST", none],
      ["1", on],
      ["2", none],
    ]);
  });

  it("on a runtime SnapStart does not support, the setting is kept but never On", async () => {
    await createFn(lambda, "fx-snap-node", zip, { SnapStart: { ApplyOn: "PublishedVersions" } });
    const v1 = await lambda.send(new PublishVersionCommand({ FunctionName: "fx-snap-node" }));
    expect(v1.SnapStart).toEqual(applyOnOff);
    // An update that does not name SnapStart keeps it.
    const updated = await lambda.send(
      new UpdateFunctionConfigurationCommand({ FunctionName: "fx-snap-node", Description: "kept" }),
    );
    expect(updated.SnapStart).toEqual(applyOnOff);
  });
});

describe("CreateFunction with Publish", () => {
  it("answers the unqualified FunctionArn with Version 1", async () => {
    const created = await createFn(lambda, "fx-published", zip, { Publish: true });
    expect(created.FunctionArn).toBe(arn("fx-published"));
    expect(created.Version).toBe("1");
  });
});

describe("configuration fields", () => {
  it("LoggingConfig: JSON defaults both levels to INFO; sent levels are stored and returned; Text drops them", async () => {
    await createFn(lambda, "fx-logs", zip);
    const text = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx-logs" }));
    expect(text.LoggingConfig).toEqual({ LogFormat: "Text", LogGroup: "/aws/lambda/fx-logs" });

    const json = await lambda.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: "fx-logs",
        LoggingConfig: { LogFormat: "JSON" },
      }),
    );
    expect(json.LoggingConfig).toEqual({
      LogFormat: "JSON",
      ApplicationLogLevel: "INFO",
      SystemLogLevel: "INFO",
      LogGroup: "/aws/lambda/fx-logs",
    });
    await waitUpdated("fx-logs");
    await lambda.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: "fx-logs",
        LoggingConfig: { ApplicationLogLevel: "DEBUG", SystemLogLevel: "WARN", LogGroup: "/custom/group" },
      }),
    );
    await waitUpdated("fx-logs");
    const stored = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx-logs" }));
    expect(stored.LoggingConfig).toEqual({
      LogFormat: "JSON",
      ApplicationLogLevel: "DEBUG",
      SystemLogLevel: "WARN",
      LogGroup: "/custom/group",
    });
    const badLevel = await rejection(() =>
      lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: "fx-logs",
          // biome-ignore lint/suspicious/noExplicitAny: outside the enum on purpose
          LoggingConfig: { SystemLogLevel: "TRACE" as any },
        }),
      ),
    );
    expect(badLevel.message).toBe(
      "1 validation error detected: Value 'TRACE' at 'loggingConfig.systemLogLevel' failed to satisfy constraint: Member must satisfy enum value set: [DEBUG, INFO, WARN]",
    );
    const textWithLevel = await rejection(() =>
      lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: "fx-logs",
          LoggingConfig: { LogFormat: "Text", ApplicationLogLevel: "INFO" },
        }),
      ),
    );
    expect(textWithLevel).toBeInstanceOf(InvalidParameterValueException);
    await lambda.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: "fx-logs",
        LoggingConfig: { LogFormat: "Text" },
      }),
    );
    await waitUpdated("fx-logs");
    expect(
      (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx-logs" }))).LoggingConfig,
    ).toEqual({
      LogFormat: "Text",
      LogGroup: "/custom/group",
    });
  });

  it("RuntimeVersionConfig names a runtime version ARN", async () => {
    const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx" }));
    expect(cfg.RuntimeVersionConfig?.RuntimeVersionArn).toMatch(
      /^arn:aws:lambda:us-east-1::runtime:[0-9a-f]{64}$/,
    );
  });
});

describe("RevisionId", () => {
  it("changes on Pending → Active and on PublishVersion", async () => {
    const created = await createFn(lambda, "fx-rev", zip);
    const active = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx-rev" }));
    expect(active.State).toBe("Active");
    expect(active.RevisionId).not.toBe(created.RevisionId);
    const published = await lambda.send(new PublishVersionCommand({ FunctionName: "fx-rev" }));
    const after = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "fx-rev" }));
    expect(after.RevisionId).not.toBe(active.RevisionId);
    expect(published.RevisionId).not.toBe(after.RevisionId);
    // Nothing changed since: publishing again answers the same version.
    const again = await lambda.send(new PublishVersionCommand({ FunctionName: "fx-rev" }));
    expect(again.Version).toBe(published.Version);
    // The stale RevisionId is refused.
    const stale = await rejection(() =>
      lambda.send(new PublishVersionCommand({ FunctionName: "fx-rev", RevisionId: active.RevisionId })),
    );
    expect(stale.name).toBe("PreconditionFailedException");
  });
});

describe("deletes and requests AWS rejects", () => {
  it("DeleteFunction of a missing version of an existing function is 204; of a missing function 404", async () => {
    const res = await lambda.send(new DeleteFunctionCommand({ FunctionName: "fx", Qualifier: "42" }));
    expect(res.$metadata.httpStatusCode).toBe(204);
    const gone = await rejection(() =>
      lambda.send(new DeleteFunctionCommand({ FunctionName: "ghost", Qualifier: "1" })),
    );
    expectError(gone, ResourceNotFoundException, 404, `Function not found: ${arn("ghost")}`);
  });

  it("SnapStart.ApplyOn outside its enum is a ValidationException", async () => {
    const err = await rejection(() =>
      lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: "fx",
          // biome-ignore lint/suspicious/noExplicitAny: outside the enum on purpose
          SnapStart: { ApplyOn: "invalidOption" as any },
        }),
      ),
    );
    expect(err.message).toBe(
      "1 validation error detected: Value 'invalidOption' at 'snapStart.applyOn' failed to satisfy constraint: Member must satisfy enum value set: [PublishedVersions, None]",
    );
  });

  it("TagResource with no tags, or on a non-function ARN, is InvalidParameterValueException", async () => {
    const empty = await rejection(() =>
      lambda.send(new TagResourceCommand({ Resource: arn("fx"), Tags: {} })),
    );
    // Lambda's text for empty tags: localstack's Lambda provider (provider.py tag_resource), kept in step
    // with responses recorded on AWS; no recorded AWS response for it was found.
    expectError(
      empty,
      InvalidParameterValueException,
      400,
      "An error occurred and the request cannot be processed.",
    );
    const notFn = await rejection(() =>
      lambda.send(new TagResourceCommand({ Resource: "arn:aws:s3:::bucket", Tags: { a: "b" } })),
    );
    expect(notFn).toBeInstanceOf(InvalidParameterValueException);
  });

  it("an OnSuccess destination naming a missing function is rejected", async () => {
    const err = await rejection(() =>
      lambda.send(
        new PutFunctionEventInvokeConfigCommand({
          FunctionName: "fx",
          DestinationConfig: { OnSuccess: { Destination: arn("no-such-destination") } },
        }),
      ),
    );
    // Lambda's text: localstack's Lambda provider (provider.py _validate_destination_config), kept in step
    // with responses recorded on AWS; no recorded AWS response for it was found.
    expectError(
      err,
      InvalidParameterValueException,
      400,
      `The destination ARN ${arn("no-such-destination")} is invalid.`,
    );
    const ok = await lambda.send(
      new PutFunctionEventInvokeConfigCommand({
        FunctionName: "fx",
        DestinationConfig: { OnSuccess: { Destination: arn("fx-published") } },
      }),
    );
    expect(ok.DestinationConfig?.OnSuccess?.Destination).toBe(arn("fx-published"));
  });

  it("an alias weight on a missing version is 404", async () => {
    const err = await rejection(() =>
      lambda.send(
        new CreateAliasCommand({
          FunctionName: "fx",
          Name: "canary",
          FunctionVersion: "1",
          RoutingConfig: { AdditionalVersionWeights: { "7": 0.1 } },
        }),
      ),
    );
    expectError(err, ResourceNotFoundException, 404, `Function not found: ${arn("fx", "7")}`);
  });

  it("provisioned concurrency on both an alias and the version it points to is refused", async () => {
    await lambda.send(
      new PutProvisionedConcurrencyConfigCommand({
        FunctionName: "fx",
        Qualifier: "live",
        ProvisionedConcurrentExecutions: 1,
      }),
    );
    const err = await rejection(() =>
      lambda.send(
        new PutProvisionedConcurrencyConfigCommand({
          FunctionName: "fx",
          Qualifier: "1",
          ProvisionedConcurrentExecutions: 1,
        }),
      ),
    );
    // Lambda's texts, one for each side: localstack's Lambda provider (provider.py
    // put_provisioned_concurrency_config), kept in step with responses recorded on AWS; no recorded AWS
    // response for them was found.
    expectError(err, ResourceConflictException, 409, "Version is pointed by a Provisioned Concurrency alias");
    // The other way round: the version first, then an alias pointing to it.
    await createFn(lambda, "fx-pc", zip);
    await lambda.send(new PublishVersionCommand({ FunctionName: "fx-pc" }));
    await lambda.send(new CreateAliasCommand({ FunctionName: "fx-pc", Name: "live", FunctionVersion: "1" }));
    await lambda.send(
      new PutProvisionedConcurrencyConfigCommand({
        FunctionName: "fx-pc",
        Qualifier: "1",
        ProvisionedConcurrentExecutions: 1,
      }),
    );
    const viaAlias = await rejection(() =>
      lambda.send(
        new PutProvisionedConcurrencyConfigCommand({
          FunctionName: "fx-pc",
          Qualifier: "live",
          ProvisionedConcurrentExecutions: 1,
        }),
      ),
    );
    expectError(
      viaAlias,
      ResourceConflictException,
      409,
      "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version",
    );
  });

  // Lambda's text: localstack's Lambda provider (provider.py get_layer_version / delete_layer_version),
  // kept in step with responses recorded on AWS; no recorded AWS response for it was found.
  it("layer version 0 and -1: 'Layer Version Cannot be less than 1'", async () => {
    for (const VersionNumber of [0, -1]) {
      const err = await rejection(() =>
        lambda.send(new GetLayerVersionCommand({ LayerName: "some-layer", VersionNumber })),
      );
      expectError(err, InvalidParameterValueException, 400, "Layer Version Cannot be less than 1");
    }
  });
});
