/**
 * ES module imports of NODE_PATH's packages (layers', the runtime's SDK), as CommonJS requires find
 * them: the bwrap driver links them at /node_modules (no resolve hook, no Node 20 hook thread); the
 * process driver keeps the runtime's resolve hook. Both drivers, with and without stem cells.
 */
import { PublishLayerVersionCommand } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

const esmPackage = (dir: string, name: string, body: string) => [
  {
    name: `${dir}/${name}/package.json`,
    content: JSON.stringify({ name, type: "module", exports: "./index.js" }),
  },
  { name: `${dir}/${name}/index.js`, content: body },
];
const cjsPackage = (dir: string, name: string, body: string) => [
  { name: `${dir}/${name}/package.json`, content: JSON.stringify({ name, main: "index.js" }) },
  { name: `${dir}/${name}/index.js`, content: body },
];

/** One layer: a package in node20/ and nodejs/ (node20's wins), a fake SDK client, a package importing the real SDK. */
async function layerZip(): Promise<Buffer> {
  return zipEntries([
    ...esmPackage("nodejs/node20/node_modules", "versioned-lib", 'export const where = "node20";'),
    ...esmPackage("nodejs/node_modules", "versioned-lib", 'export const where = "nodejs";'),
    // The layer's copy of an SDK package beats the runtime's; other @aws-sdk packages still come from the SDK.
    ...cjsPackage(
      "nodejs/node_modules",
      "@aws-sdk/client-lambda",
      'exports.LambdaClient = "layer"; exports.where = "layer";',
    ),
    // A layer's module resolves the SDK's packages too (its own folders' walk ends at /node_modules).
    ...esmPackage(
      "nodejs/node_modules",
      "layer-lib",
      'import * as types from "@aws-sdk/types"; import { __assign } from "tslib";\nexport const sdk = typeof types === "object" && typeof __assign === "function";',
    ),
  ]);
}

const ESM_HANDLER = `
import { where as versioned } from "versioned-lib";
import { LambdaClient } from "@aws-sdk/client-lambda";
import * as types from "@aws-sdk/types";
export const handler = async () => {
  const { sdk } = await import("layer-lib");
  const { __assign } = await import("tslib");
  return {
    versioned,
    client: LambdaClient,
    types: typeof types,
    layerSdk: sdk,
    tslib: typeof __assign,
    resolved: import.meta.resolve("versioned-lib"),
    sdkResolved: import.meta.resolve("@aws-sdk/types").includes("/@aws-sdk/types/"),
    view: process.argv.includes("--node-path-view"),
  };
};`;

const CJS_HANDLER = `
exports.handler = async () => {
  const { where: versioned } = await import("versioned-lib");
  return {
    versioned,
    required: require("@aws-sdk/client-lambda").where,
    requiredPath: require.resolve("@aws-sdk/client-lambda"),
    sdkRequired: typeof require("@aws-sdk/types"),
    imported: (await import("@aws-sdk/client-lambda")).where,
  };
};`;

for (const sandbox of ["bwrap", "process"] as const) {
  for (const prewarm of [0, 1]) {
    describe(`ES module imports of NODE_PATH packages (${sandbox}, ${prewarm ? "stem cells" : "no stem cells"})`, () => {
      let server: TestServer;
      let layer: string;
      beforeAll(async () => {
        server = await startServer({ sandbox, prewarm });
        const v = await server.lambda.send(
          new PublishLayerVersionCommand({ LayerName: "esm-libs", Content: { ZipFile: await layerZip() } }),
        );
        layer = v.LayerVersionArn as string;
      });
      afterAll(async () => {
        await server?.stop();
      });

      const deploy = async (name: string, file: string, content: string, layers = [layer]) => {
        const stems = server.platform.worker.stemCells;
        if (prewarm) await stems.whenReady("nodejs20.x");
        const taken = stems.stats.taken;
        await server.deploy(name, "node-cjs", {
          MemorySize: 512,
          Timeout: 30,
          Layers: layers,
          Code: { ZipFile: await zipEntries([{ name: file, content }]) },
        });
        const r = await invoke(server.lambda, name, {}, { LogType: "Tail" });
        expect(r.functionError, `${r.text}\n${r.log}`).toBeUndefined();
        expect(stems.stats.taken).toBe(prewarm ? taken + 1 : taken);
        return r.json as Record<string, unknown>;
      };

      it("static and dynamic imports, import.meta.resolve: the layer's node20/ first, its copy of an SDK package, the SDK", async () => {
        const out = await deploy("esm", "index.mjs", ESM_HANDLER);
        expect(out).toEqual({
          versioned: "node20",
          client: "layer",
          types: "object",
          layerSdk: true,
          tslib: "function",
          resolved: expect.stringMatching(
            /^file:\/\/\/.*\/nodejs\/node20\/node_modules\/versioned-lib\/index\.js$/,
          ),
          sdkResolved: true,
          view: sandbox === "bwrap",
        });
        // The module's real path: the package's own folder, not /node_modules.
        if (sandbox === "bwrap") {
          expect(out.resolved).toBe("file:///opt/nodejs/node20/node_modules/versioned-lib/index.js");
        }
      });

      it("without layers: the SDK's packages, statically and dynamically", async () => {
        const handler = `import * as types from "@aws-sdk/types";
export const handler = async () => ({ types: typeof types, tslib: typeof (await import("tslib")).__assign });`;
        expect(await deploy("sdk-only", "index.mjs", handler, [])).toEqual({
          types: "object",
          tslib: "function",
        });
      });

      it("CommonJS: require as before (NODE_PATH's order, real paths), import() from CommonJS alike", async () => {
        const out = await deploy("cjs", "index.js", CJS_HANDLER);
        expect(out).toMatchObject({
          versioned: "node20",
          required: "layer",
          sdkRequired: "object",
          imported: "layer",
        });
        expect(String(out.requiredPath)).toMatch(
          /\/nodejs\/node_modules\/@aws-sdk\/client-lambda\/index\.js$/,
        );
        if (sandbox === "bwrap") {
          expect(out.requiredPath).toBe("/opt/nodejs/node_modules/@aws-sdk/client-lambda/index.js");
        }
      });
    });
  }
}
