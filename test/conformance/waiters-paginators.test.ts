/**
 * Conformance: every waiter of lambda-2015-03-31.waiters-2.json succeeds
 * through the SDK's waitUntil… in the situation it is meant for, and every
 * paginator of lambda-2015-03-31.paginators-1.json that Lambent implements
 * walks all pages with the SDK's paginate… helpers.
 */
import {
  CreateAliasCommand,
  CreateEventSourceMappingCommand,
  type LambdaClient,
  ListFunctionsCommand,
  PublishLayerVersionCommand,
  PublishVersionCommand,
  PutFunctionEventInvokeConfigCommand,
  PutProvisionedConcurrencyConfigCommand,
  paginateListAliases,
  paginateListEventSourceMappings,
  paginateListFunctionEventInvokeConfigs,
  paginateListFunctions,
  paginateListLayers,
  paginateListLayerVersions,
  paginateListProvisionedConcurrencyConfigs,
  paginateListVersionsByFunction,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActive,
  waitUntilFunctionActiveV2,
  waitUntilFunctionExists,
  waitUntilFunctionUpdated,
  waitUntilFunctionUpdatedV2,
  waitUntilPublishedVersionActive,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFn, smallZip } from "../helpers/control-plane.js";
import { startServer, type TestServer } from "../helpers/server.js";
import { zipEntries } from "../helpers/zip.js";

let server: TestServer;
let lambda: LambdaClient;
let zip: Buffer;
// The model's delays are 1–5 s; the SDK lets a caller shorten them, which changes no acceptor.
const fast = () => ({ client: lambda, maxWaitTime: 60, minDelay: 0.1, maxDelay: 0.5 });

beforeAll(async () => {
  server = await startServer();
  lambda = server.lambda;
  zip = await smallZip("waiters");
});

afterAll(async () => {
  await server?.stop();
});

describe("waiters", () => {
  it("FunctionExists: waits through ResourceNotFoundException until the function is created", async () => {
    const waiting = waitUntilFunctionExists(fast(), { FunctionName: "w-exists" });
    // The waiter's first GetFunction is answered 404 before the create below.
    await new Promise((r) => setImmediate(r));
    await createFn(lambda, "w-exists", zip);
    expect((await waiting).state).toBe("SUCCESS");
  });

  it("FunctionActive and FunctionActiveV2: a new function turns Active", async () => {
    await createFn(lambda, "w-active", zip);
    expect((await waitUntilFunctionActive(fast(), { FunctionName: "w-active" })).state).toBe("SUCCESS");
    expect((await waitUntilFunctionActiveV2(fast(), { FunctionName: "w-active" })).state).toBe("SUCCESS");
  });

  it("FunctionUpdated and FunctionUpdatedV2: after a configuration and a code update", async () => {
    await createFn(lambda, "w-updated", zip);
    await waitUntilFunctionActiveV2(fast(), { FunctionName: "w-updated" });
    await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: "w-updated", Timeout: 9 }));
    expect((await waitUntilFunctionUpdated(fast(), { FunctionName: "w-updated" })).state).toBe("SUCCESS");
    await lambda.send(
      new UpdateFunctionCodeCommand({ FunctionName: "w-updated", ZipFile: await smallZip("waiters-2") }),
    );
    expect((await waitUntilFunctionUpdatedV2(fast(), { FunctionName: "w-updated" })).state).toBe("SUCCESS");
  });

  it("PublishedVersionActive: a published version, also through an alias", async () => {
    await createFn(lambda, "w-version", zip);
    await waitUntilFunctionActiveV2(fast(), { FunctionName: "w-version" });
    const v = await lambda.send(new PublishVersionCommand({ FunctionName: "w-version" }));
    expect(
      (await waitUntilPublishedVersionActive(fast(), { FunctionName: "w-version", Qualifier: v.Version }))
        .state,
    ).toBe("SUCCESS");
    await lambda.send(
      new CreateAliasCommand({ FunctionName: "w-version", Name: "prod", FunctionVersion: v.Version }),
    );
    expect(
      (await waitUntilFunctionActiveV2(fast(), { FunctionName: "w-version", Qualifier: "prod" })).state,
    ).toBe("SUCCESS");
  });
});

describe("paginators", () => {
  async function collect<T>(pages: AsyncIterable<T>, items: (page: T) => unknown[] | undefined) {
    const out: unknown[] = [];
    let count = 0;
    for await (const page of pages) {
      count++;
      out.push(...(items(page) ?? []));
    }
    return { out, pages: count };
  }

  it("ListFunctions (also FunctionVersion=ALL) and ListVersionsByFunction", async () => {
    for (const n of ["p-a", "p-b", "p-c"]) await createFn(lambda, n, zip);
    await lambda.send(new PublishVersionCommand({ FunctionName: "p-a" }));
    const all = await collect(paginateListFunctions({ client: lambda, pageSize: 1 }, {}), (p) => p.Functions);
    const names = all.out.map((f) => (f as { FunctionName: string }).FunctionName);
    expect(names.filter((n) => n.startsWith("p-"))).toEqual(["p-a", "p-b", "p-c"]);
    expect(all.pages).toBeGreaterThanOrEqual(3);
    const versions = await collect(
      paginateListFunctions({ client: lambda, pageSize: 2 }, { FunctionVersion: "ALL" }),
      (p) => p.Functions,
    );
    const pa = versions.out
      .map((f) => f as { FunctionName: string; Version: string })
      .filter((f) => f.FunctionName === "p-a")
      .map((f) => f.Version);
    expect(pa).toEqual(["$LATEST", "1"]);
    const byFn = await collect(
      paginateListVersionsByFunction({ client: lambda, pageSize: 1 }, { FunctionName: "p-a" }),
      (p) => p.Versions,
    );
    expect(byFn.out.map((v) => (v as { Version: string }).Version)).toEqual(["$LATEST", "1"]);
    expect(byFn.pages).toBe(2);
  });

  it("ListFunctions: MasterRegion needs FunctionVersion=ALL and matches no Lambent function", async () => {
    const none = await lambda.send(
      new ListFunctionsCommand({ MasterRegion: "us-east-1", FunctionVersion: "ALL" }),
    );
    expect(none.Functions).toEqual([]);
    await expect(lambda.send(new ListFunctionsCommand({ MasterRegion: "us-east-1" }))).rejects.toMatchObject({
      name: "InvalidParameterValueException",
    });
    await expect(lambda.send(new ListFunctionsCommand({ MasterRegion: "mars-1" }))).rejects.toMatchObject({
      name: "ValidationException",
    });
  });

  it("ListAliases, ListFunctionEventInvokeConfigs, ListProvisionedConcurrencyConfigs", async () => {
    await createFn(lambda, "p-q", zip);
    const v1 = await lambda.send(new PublishVersionCommand({ FunctionName: "p-q" }));
    await lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: "p-q", Description: "second" }));
    await waitUntilFunctionUpdatedV2(fast(), { FunctionName: "p-q" });
    const v2 = await lambda.send(new PublishVersionCommand({ FunctionName: "p-q" }));
    for (const [Name, FunctionVersion] of [
      ["a1", v1.Version],
      ["a2", v2.Version],
    ] as const) {
      await lambda.send(new CreateAliasCommand({ FunctionName: "p-q", Name, FunctionVersion }));
      await lambda.send(
        new PutFunctionEventInvokeConfigCommand({
          FunctionName: "p-q",
          Qualifier: Name,
          MaximumRetryAttempts: 0,
        }),
      );
    }
    await lambda.send(
      new PutFunctionEventInvokeConfigCommand({ FunctionName: "p-q", MaximumRetryAttempts: 1 }),
    );
    const aliases = await collect(
      paginateListAliases({ client: lambda, pageSize: 1 }, { FunctionName: "p-q" }),
      (p) => p.Aliases,
    );
    expect(aliases.out.map((a) => (a as { Name: string }).Name)).toEqual(["a1", "a2"]);
    const configs = await collect(
      paginateListFunctionEventInvokeConfigs({ client: lambda, pageSize: 1 }, { FunctionName: "p-q" }),
      (p) => p.FunctionEventInvokeConfigs,
    );
    expect(configs.out).toHaveLength(3);
    expect(configs.pages).toBe(3);
    for (const Qualifier of [v1.Version, "a2"]) {
      await lambda.send(
        new PutProvisionedConcurrencyConfigCommand({
          FunctionName: "p-q",
          Qualifier,
          ProvisionedConcurrentExecutions: 1,
        }),
      );
    }
    const pcs = await collect(
      paginateListProvisionedConcurrencyConfigs({ client: lambda, pageSize: 1 }, { FunctionName: "p-q" }),
      (p) => p.ProvisionedConcurrencyConfigs,
    );
    expect(pcs.out).toHaveLength(2);
    expect(pcs.pages).toBe(2);
  });

  it("ListLayers and ListLayerVersions", async () => {
    const content = await zipEntries([{ name: "lib/x.js", content: "module.exports = 1;\n" }]);
    for (const LayerName of ["layer-a", "layer-b"]) {
      for (let i = 0; i < 2; i++) {
        await lambda.send(new PublishLayerVersionCommand({ LayerName, Content: { ZipFile: content } }));
      }
    }
    const layers = await collect(paginateListLayers({ client: lambda, pageSize: 1 }, {}), (p) => p.Layers);
    expect(layers.out.map((l) => (l as { LayerName: string }).LayerName)).toEqual(["layer-a", "layer-b"]);
    const versions = await collect(
      paginateListLayerVersions({ client: lambda, pageSize: 1 }, { LayerName: "layer-a" }),
      (p) => p.LayerVersions,
    );
    expect(versions.out.map((v) => (v as { Version: number }).Version)).toEqual([2, 1]);
  });

  it("ListEventSourceMappings", async () => {
    await createFn(lambda, "p-esm", zip);
    for (const queue of ["q1", "q2", "q3"]) {
      await lambda.send(
        new CreateEventSourceMappingCommand({
          FunctionName: "p-esm",
          EventSourceArn: "amqp://guest:guest@127.0.0.1:1/",
          Queues: [queue],
          Enabled: false,
        }),
      );
    }
    const mappings = await collect(
      paginateListEventSourceMappings({ client: lambda, pageSize: 2 }, { FunctionName: "p-esm" }),
      (p) => p.EventSourceMappings,
    );
    expect(mappings.out).toHaveLength(3);
    expect(mappings.pages).toBe(2);
  });
});
