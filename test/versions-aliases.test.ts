import {
  CreateAliasCommand,
  CreateFunctionCommand,
  DeleteAliasCommand,
  DeleteFunctionCommand,
  GetAliasCommand,
  InvalidParameterValueException,
  ListAliasesCommand,
  ListVersionsByFunctionCommand,
  PreconditionFailedException,
  PublishVersionCommand,
  ResourceConflictException,
  ResourceNotFoundException,
  UpdateAliasCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

let server: TestServer;
const code = (answer: string) =>
  zipEntries([{ name: "index.js", content: `exports.handler = async () => ${JSON.stringify(answer)};` }]);
const wait = { minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 };

async function createFn(name: string, answer: string, publish = false) {
  const out = await server.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: await code(answer) },
      Publish: publish,
    }),
  );
  await waitUntilFunctionActiveV2({ client: server.lambda, ...wait }, { FunctionName: name });
  return out;
}

async function updateCode(name: string, answer: string, publish = false) {
  const out = await server.lambda.send(
    new UpdateFunctionCodeCommand({ FunctionName: name, ZipFile: await code(answer), Publish: publish }),
  );
  await waitUntilFunctionUpdatedV2({ client: server.lambda, ...wait }, { FunctionName: name });
  return out;
}

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server?.stop();
});

describe("versions", () => {
  it("publishes immutable versions that stay invocable by qualifier, name:N and ARN", async () => {
    await createFn("ver", "one", true);
    await updateCode("ver", "two");
    const v2 = await server.lambda.send(
      new PublishVersionCommand({ FunctionName: "ver", Description: "second" }),
    );
    expect(v2.Version).toBe("2");
    expect(v2.Description).toBe("second");
    expect(v2.FunctionArn).toBe("arn:aws:lambda:us-east-1:000000000000:function:ver:2");
    await updateCode("ver", "three");

    expect((await invoke(server.lambda, "ver", {}, { Qualifier: "1" })).json).toBe("one");
    const byName = await invoke(server.lambda, "ver:2");
    expect(byName.json).toBe("two");
    expect(byName.executedVersion).toBe("2");
    expect((await invoke(server.lambda, "arn:aws:lambda:us-east-1:000000000000:function:ver:1")).json).toBe(
      "one",
    );
    expect((await invoke(server.lambda, "ver")).json).toBe("three");

    const list = await server.lambda.send(new ListVersionsByFunctionCommand({ FunctionName: "ver" }));
    expect(list.Versions?.map((v) => v.Version)).toEqual(["$LATEST", "1", "2"]);

    await expect(
      server.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: "ver:1", Timeout: 10 })),
    ).rejects.toBeInstanceOf(InvalidParameterValueException);
  });

  it("returns the existing version when $LATEST has not changed, and honours CodeSha256 / RevisionId", async () => {
    const created = await createFn("same", "x");
    const a = await server.lambda.send(new PublishVersionCommand({ FunctionName: "same" }));
    const b = await server.lambda.send(new PublishVersionCommand({ FunctionName: "same" }));
    expect(b.Version).toBe(a.Version);
    await expect(
      server.lambda.send(new PublishVersionCommand({ FunctionName: "same", CodeSha256: "AAAA" })),
    ).rejects.toBeInstanceOf(InvalidParameterValueException);
    await updateCode("same", "y");
    await expect(
      server.lambda.send(new PublishVersionCommand({ FunctionName: "same", RevisionId: created.RevisionId })),
    ).rejects.toBeInstanceOf(PreconditionFailedException);
    const published = await updateCode("same", "z", true);
    // With Publish, the answer describes the version just published.
    expect(published.Version).toBe("2");
    const versions = await server.lambda.send(new ListVersionsByFunctionCommand({ FunctionName: "same" }));
    expect(versions.Versions?.map((v) => v.Version)).toEqual(["$LATEST", "1", "2"]);
  });

  it("deletes one version with DeleteFunction?Qualifier=N", async () => {
    await createFn("delv", "a", true);
    await server.lambda.send(new DeleteFunctionCommand({ FunctionName: "delv", Qualifier: "1" }));
    await expect(invoke(server.lambda, "delv:1")).rejects.toBeInstanceOf(ResourceNotFoundException);
    expect((await invoke(server.lambda, "delv")).json).toBe("a");
  });
});

describe("aliases", () => {
  it("creates, reads, lists, updates and deletes aliases", async () => {
    await createFn("al", "v1", true);
    await updateCode("al", "v2", true);
    const created = await server.lambda.send(
      new CreateAliasCommand({ FunctionName: "al", Name: "live", FunctionVersion: "1", Description: "prod" }),
    );
    expect(created).toMatchObject({
      AliasArn: "arn:aws:lambda:us-east-1:000000000000:function:al:live",
      Name: "live",
      FunctionVersion: "1",
      Description: "prod",
    });
    expect((await invoke(server.lambda, "al", {}, { Qualifier: "live" })).json).toBe("v1");
    const got = await server.lambda.send(new GetAliasCommand({ FunctionName: "al", Name: "live" }));
    expect(got.RevisionId).toBe(created.RevisionId);
    await expect(
      server.lambda.send(
        new UpdateAliasCommand({
          FunctionName: "al",
          Name: "live",
          FunctionVersion: "2",
          RevisionId: "stale",
        }),
      ),
    ).rejects.toBeInstanceOf(PreconditionFailedException);
    await server.lambda.send(
      new UpdateAliasCommand({ FunctionName: "al", Name: "live", FunctionVersion: "2" }),
    );
    const r = await invoke(server.lambda, "al:live");
    expect(r.json).toBe("v2");
    expect(r.executedVersion).toBe("2");
    await server.lambda.send(
      new CreateAliasCommand({ FunctionName: "al", Name: "beta", FunctionVersion: "$LATEST" }),
    );
    const list = await server.lambda.send(new ListAliasesCommand({ FunctionName: "al" }));
    expect(list.Aliases?.map((a) => a.Name)).toEqual(["beta", "live"]);
    const onlyV2 = await server.lambda.send(
      new ListAliasesCommand({ FunctionName: "al", FunctionVersion: "2" }),
    );
    expect(onlyV2.Aliases?.map((a) => a.Name)).toEqual(["live"]);
    await expect(
      server.lambda.send(new DeleteFunctionCommand({ FunctionName: "al", Qualifier: "2" })),
    ).rejects.toMatchObject({
      name: "ResourceConflictException",
      message: "Unable to delete version because the following aliases reference it: [live]",
    });
    await server.lambda.send(new DeleteAliasCommand({ FunctionName: "al", Name: "beta" }));
    await expect(invoke(server.lambda, "al:beta")).rejects.toBeInstanceOf(ResourceNotFoundException);
    // Deleting the function deletes its aliases.
    await server.lambda.send(new DeleteFunctionCommand({ FunctionName: "al" }));
    await createFn("al", "again");
    await expect(
      server.lambda.send(new GetAliasCommand({ FunctionName: "al", Name: "live" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("rejects what Lambda rejects", async () => {
    await createFn("alerr", "v1", true);
    const send = (input: ConstructorParameters<typeof CreateAliasCommand>[0]) =>
      server.lambda.send(new CreateAliasCommand(input));
    await send({ FunctionName: "alerr", Name: "a", FunctionVersion: "1" });
    await expect(send({ FunctionName: "alerr", Name: "a", FunctionVersion: "1" })).rejects.toBeInstanceOf(
      ResourceConflictException,
    );
    await expect(send({ FunctionName: "alerr", Name: "b", FunctionVersion: "9" })).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    await expect(send({ FunctionName: "nofn", Name: "b", FunctionVersion: "1" })).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
    await expect(
      send({
        FunctionName: "alerr",
        Name: "c",
        FunctionVersion: "$LATEST",
        RoutingConfig: { AdditionalVersionWeights: { "1": 0.5 } },
      }),
    ).rejects.toBeInstanceOf(InvalidParameterValueException);
    await expect(
      send({
        FunctionName: "alerr",
        Name: "d",
        FunctionVersion: "1",
        RoutingConfig: { AdditionalVersionWeights: { "1": 0.5 } },
      }),
    ).rejects.toBeInstanceOf(InvalidParameterValueException);
    await expect(send({ FunctionName: "alerr", Name: "123", FunctionVersion: "1" })).rejects.toMatchObject({
      name: "ValidationException",
      $metadata: { httpStatusCode: 400 },
    });
    await expect(
      server.lambda.send(new GetAliasCommand({ FunctionName: "alerr", Name: "zz" })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });

  it("splits invokes between two versions by weight and reports which ran", async () => {
    await createFn("split", "one", true);
    await updateCode("split", "two", true);
    await server.lambda.send(
      new CreateAliasCommand({
        FunctionName: "split",
        Name: "canary",
        FunctionVersion: "1",
        RoutingConfig: { AdditionalVersionWeights: { "2": 0.3 } },
      }),
    );
    const n = 200;
    let twos = 0;
    for (let i = 0; i < n; i++) {
      const r = await invoke(server.lambda, "split:canary");
      expect(r.json).toBe(r.executedVersion === "2" ? "two" : "one");
      if (r.executedVersion === "2") twos++;
    }
    // Binomial(200, 0.3): mean 60, sd 6.5; five sd either side.
    expect(twos).toBeGreaterThan(60 - 32);
    expect(twos).toBeLessThan(60 + 32);
  });
});
