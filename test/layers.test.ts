import {
  CreateFunctionCommand,
  DeleteLayerVersionCommand,
  GetFunctionConfigurationCommand,
  GetLayerVersionByArnCommand,
  GetLayerVersionCommand,
  InvalidParameterValueException,
  ListLayersCommand,
  ListLayerVersionsCommand,
  PublishLayerVersionCommand,
  ResourceNotFoundException,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

const NODE_FN = `
const greet = require("greet");
const shared = require("shared");
exports.handler = async () => ({ greet: greet("node"), shared, path: process.env.PATH, tool: require("node:child_process").execFileSync("lambent-tool").toString().trim() });
`;
const PY_FN = `
import greet_py
import sitepkg
def handler(event, context):
    return {"greet": greet_py.greet("python"), "site": sitepkg.WHERE}
`;

async function baseLayer(): Promise<string> {
  return (
    await zipEntries([
      {
        name: "nodejs/node_modules/greet/index.js",
        content: 'module.exports = (w) => "hello " + w + " from layer 1";',
      },
      { name: "nodejs/node_modules/shared/index.js", content: 'module.exports = "from layer 1";' },
      {
        name: "python/greet_py/__init__.py",
        content: 'def greet(w):\n    return "hello " + w + " from layer 1"\n',
      },
      { name: "python/lib/python3.11/site-packages/sitepkg.py", content: 'WHERE = "site-packages"\n' },
      { name: "bin/lambent-tool", content: "#!/bin/sh\necho tool from /opt/bin\n", mode: 0o100755 },
    ])
  ).toString("base64");
}

async function overrideLayer(): Promise<string> {
  return (
    await zipEntries([
      { name: "nodejs/node_modules/shared/index.js", content: 'module.exports = "from layer 2";' },
    ])
  ).toString("base64");
}

describe("layers API", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ sandbox: "process" });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("publishes, gets, lists and deletes layer versions with Lambda's shapes and errors", async () => {
    const { lambda } = server;
    const zip = Buffer.from(await baseLayer(), "base64");
    const v1 = await lambda.send(
      new PublishLayerVersionCommand({
        LayerName: "api-layer",
        Description: "first",
        Content: { ZipFile: zip },
        CompatibleRuntimes: ["nodejs20.x", "python3.11"],
        CompatibleArchitectures: ["x86_64"],
        LicenseInfo: "MIT",
      }),
    );
    expect(v1.Version).toBe(1);
    expect(v1.LayerArn).toBe("arn:aws:lambda:us-east-1:000000000000:layer:api-layer");
    expect(v1.LayerVersionArn).toBe("arn:aws:lambda:us-east-1:000000000000:layer:api-layer:1");
    expect(v1.Content?.CodeSize).toBe(zip.length);
    expect(v1.Content?.CodeSha256).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(v1.CompatibleRuntimes).toEqual(["nodejs20.x", "python3.11"]);
    expect(v1.LicenseInfo).toBe("MIT");
    expect(v1.CreatedDate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);
    const v2 = await lambda.send(
      new PublishLayerVersionCommand({
        LayerName: "api-layer",
        Content: { ZipFile: zip },
        CompatibleRuntimes: ["python3.11"],
      }),
    );
    expect(v2.Version).toBe(2);

    const got = await lambda.send(new GetLayerVersionCommand({ LayerName: "api-layer", VersionNumber: 1 }));
    expect(got.Description).toBe("first");
    const byArn = await lambda.send(new GetLayerVersionByArnCommand({ Arn: v2.LayerVersionArn }));
    expect(byArn.Version).toBe(2);
    // The content can be downloaded from Content.Location.
    const download = await fetch(got.Content?.Location as string);
    expect(Buffer.from(await download.arrayBuffer()).equals(zip)).toBe(true);

    const versions = await lambda.send(new ListLayerVersionsCommand({ LayerName: "api-layer" }));
    expect(versions.LayerVersions?.map((v) => v.Version)).toEqual([2, 1]);
    const nodeOnly = await lambda.send(
      new ListLayerVersionsCommand({ LayerName: "api-layer", CompatibleRuntime: "nodejs20.x" }),
    );
    expect(nodeOnly.LayerVersions?.map((v) => v.Version)).toEqual([1]);
    const layers = await lambda.send(new ListLayersCommand({}));
    const mine = layers.Layers?.find((l) => l.LayerName === "api-layer");
    expect(mine?.LatestMatchingVersion?.Version).toBe(2);
    expect(mine?.LayerArn).toBe(v1.LayerArn);

    await lambda.send(new DeleteLayerVersionCommand({ LayerName: "api-layer", VersionNumber: 2 }));
    // Idempotent, as Lambda's.
    await lambda.send(new DeleteLayerVersionCommand({ LayerName: "api-layer", VersionNumber: 2 }));
    await expect(
      lambda.send(new GetLayerVersionCommand({ LayerName: "api-layer", VersionNumber: 2 })),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    const after = await lambda.send(new ListLayerVersionsCommand({ LayerName: "api-layer" }));
    expect(after.LayerVersions?.map((v) => v.Version)).toEqual([1]);
    // Numbers are never reused.
    const v3 = await lambda.send(
      new PublishLayerVersionCommand({ LayerName: "api-layer", Content: { ZipFile: zip } }),
    );
    expect(v3.Version).toBe(3);

    // A function's Layers are checked against existing versions.
    const code = await zipEntries([{ name: "index.js", content: "exports.handler = async () => 1;" }]);
    const create = (layers: string[], name = "layer-check") =>
      lambda.send(
        new CreateFunctionCommand({
          FunctionName: name,
          Runtime: "nodejs20.x",
          Handler: "index.handler",
          Role: ROLE,
          Code: { ZipFile: code },
          Layers: layers,
        }),
      );
    const missing = create([v2.LayerVersionArn as string]);
    await expect(missing).rejects.toBeInstanceOf(InvalidParameterValueException);
    await expect(missing).rejects.toThrow(`Layer version ${v2.LayerVersionArn} does not exist.`);
    await expect(create([v1.LayerVersionArn as string, v3.LayerVersionArn as string])).rejects.toBeInstanceOf(
      InvalidParameterValueException,
    );
    await expect(create(Array.from({ length: 6 }, () => v1.LayerVersionArn as string))).rejects.toThrow(
      "Cannot reference more than 5 layers.",
    );
    await create([v1.LayerVersionArn as string]);
    await expect(
      lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: "layer-check",
          Layers: ["arn:aws:lambda:us-east-1:000000000000:layer:nope:1"],
        }),
      ),
    ).rejects.toBeInstanceOf(InvalidParameterValueException);
    const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "layer-check" }));
    expect(cfg.Layers?.map((l) => l.Arn)).toEqual([v1.LayerVersionArn]);
  });

  it("counts layers in the 250 MB unzipped limit", async () => {
    const small = await startServer({
      sandbox: "process",
      limits: { ...server.platform.options.limits, unzippedBytes: 1000 },
    });
    try {
      const big = await zipEntries([{ name: "python/big.py", content: "x = 1\n".repeat(100) }]);
      const layer = await small.lambda.send(
        new PublishLayerVersionCommand({ LayerName: "big", Content: { ZipFile: big } }),
      );
      const code = await zipEntries([
        { name: "index.js", content: `// ${"x".repeat(600)}\nexports.handler = async () => 1;` },
      ]);
      const create = small.lambda.send(
        new CreateFunctionCommand({
          FunctionName: "too-big",
          Runtime: "nodejs20.x",
          Handler: "index.handler",
          Role: ROLE,
          Code: { ZipFile: code },
          Layers: [layer.LayerVersionArn as string],
        }),
      );
      await expect(create).rejects.toBeInstanceOf(InvalidParameterValueException);
      await expect(create).rejects.toThrow(
        /combined with layers exceeds the maximum allowed size of 1000 bytes/,
      );
    } finally {
      await small.stop();
    }
  });
});

describe.each(["bwrap", "process"] as const)("layers under the %s sandbox driver", (sandbox) => {
  let server: TestServer;
  let arns: string[];
  beforeAll(async () => {
    server = await startServer({ sandbox });
    arns = [];
    for (const [name, zip] of [
      ["base", await baseLayer()],
      ["override", await overrideLayer()],
    ] as const) {
      const v = await server.lambda.send(
        new PublishLayerVersionCommand({ LayerName: name, Content: { ZipFile: Buffer.from(zip, "base64") } }),
      );
      arns.push(v.LayerVersionArn as string);
    }
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("merges layers in order under /opt: a Node module, /opt/bin on PATH, later layers override earlier ones", async () => {
    const stems = server.platform.worker.stemCells;
    await server.deploy("layered-node", "node-cjs", {
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: NODE_FN }]) },
      Layers: arns,
    });
    if (stems.enabled) await stems.whenReady("nodejs20.x");
    const taken = stems.stats.taken;
    const r = await invoke(server.lambda, "layered-node");
    expect(r.functionError).toBeUndefined();
    const out = r.json as Record<string, string>;
    expect(out.greet).toBe("hello node from layer 1");
    expect(out.shared).toBe("from layer 2");
    expect(out.tool).toBe("tool from /opt/bin");
    // Layers without extensions still start from a stem cell where the driver has them.
    if (stems.enabled) expect(stems.stats.taken).toBeGreaterThan(taken);
  });

  it("puts a layer's Python packages on sys.path (/opt/python and its site-packages)", async () => {
    await server.deploy("layered-py", "python", {
      Code: { ZipFile: await zipEntries([{ name: "app.py", content: PY_FN }]) },
      Handler: "app.handler",
      Layers: [arns[0] as string],
    });
    const r = await invoke(server.lambda, "layered-py");
    expect(r.functionError).toBeUndefined();
    expect(r.json).toEqual({ greet: "hello python from layer 1", site: "site-packages" });
  });

  it("keeps running a deleted layer version the function already uses; a new function cannot take it", async () => {
    await server.deploy("layered-keep", "node-cjs", {
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: NODE_FN }]) },
      Layers: [arns[0] as string],
    });
    await server.lambda.send(new DeleteLayerVersionCommand({ LayerName: "base", VersionNumber: 1 }));
    await server.lambda.send(
      new UpdateFunctionConfigurationCommand({ FunctionName: "layered-keep", MemorySize: 256 }),
    );
    await waitUntilFunctionUpdatedV2(
      { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
      { FunctionName: "layered-keep" },
    );
    const r = await invoke(server.lambda, "layered-keep");
    expect((r.json as Record<string, string>).greet).toBe("hello node from layer 1");
  });
});
