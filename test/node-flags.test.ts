/**
 * The flags Lambda's Node.js runtimes start `node` with: `--expose-gc --max-http-header-size 81920`
 * and V8 heap limits from the function's memory (new space = mem/10, semi space half of it, old
 * space the rest). Both drivers; a stem cell is started before its function's memory is known, so
 * it has the first two and V8's default heap limits (README, "Cold starts and stem cells").
 * Also: the Node 20 resolve hook thread starts for a CommonJS module that imports, however deep.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

const FLAGS_HANDLER = `
const v8 = require("node:v8");
exports.handler = async () => {
  let collected = false;
  if (typeof global.gc === "function") { global.gc(); collected = true; }
  return {
    gc: typeof global.gc,
    collected,
    execArgv: process.execArgv,
    heapLimitMb: v8.getHeapStatistics().heap_size_limit / 1048576,
    maxHeaderSize: require("node:http").maxHeaderSize,
  };
};`;

// A CommonJS handler without the word itself, requiring a module of its own that imports a
// NODE_PATH package (the runtime's SDK) dynamically; and one requiring the SDK's Lambda client, whose
// modules import only node:async_hooks (the Node 20 hook thread need not start; the client works).
const NESTED_HANDLER = `
const lib = require("./lib/loader.js");
exports.handler = async () => ({ types: await lib.load() });`;
// Its first import is a builtin's (that alone needs no hook), then a package's.
const NESTED_LIB = `
exports.load = async () => {
  const { EOL } = await import("node:os");
  return EOL === "\\n" ? typeof (await import("@aws-sdk/types")) : "no EOL";
};`;

for (const sandbox of ["process", "bwrap"] as const) {
  for (const prewarm of [0, 1]) {
    describe(`node flags (${sandbox}, ${prewarm ? "stem cells" : "no stem cells"})`, () => {
      let server: TestServer;
      beforeAll(async () => {
        server = await startServer({ sandbox, prewarm });
      });
      afterAll(async () => {
        await server?.stop();
      });

      const run = async (name: string, files: Array<{ name: string; content: string }>, memory = 128) => {
        const stems = server.platform.worker.stemCells;
        if (prewarm) await stems.whenReady("nodejs20.x");
        const taken = stems.stats.taken;
        await server.deploy(name, "node-cjs", {
          MemorySize: memory,
          Timeout: 30,
          Code: { ZipFile: await zipEntries(files) },
        });
        const r = await invoke(server.lambda, name, {}, { LogType: "Tail" });
        expect(r.functionError, `${r.text}\n${r.log}`).toBeUndefined();
        expect(stems.stats.taken).toBe(prewarm ? taken + 1 : taken);
        return r.json as Record<string, unknown>;
      };

      for (const [memory, semi, old, limit] of [
        [128, 6, 116, [120, 200]],
        [1024, 51, 922, [1000, 1300]],
      ] as const) {
        it(`${memory} MB: global.gc, the header limit${prewarm ? "" : " and the heap limits"}`, async () => {
          const out = await run(`flags-${memory}`, [{ name: "index.js", content: FLAGS_HANDLER }], memory);
          expect(out.gc).toBe("function");
          expect(out.collected).toBe(true);
          expect(out.maxHeaderSize).toBe(81920);
          const base = ["--expose-gc", "--max-http-header-size", "81920"];
          if (prewarm) {
            expect(out.execArgv).toEqual(base);
          } else {
            expect(out.execArgv).toEqual([
              ...base,
              `--max-semi-space-size=${semi}`,
              `--max-old-space-size=${old}`,
            ]);
            expect(out.heapLimitMb).toBeGreaterThan(limit[0]);
            expect(out.heapLimitMb).toBeLessThan(limit[1]);
          }
        });
      }

      // Only where the sandbox shows NODE_PATH's packages at /node_modules: Node 20's off-thread
      // resolve hook (the process driver) is not consulted for require(esm)'s imports (nor was it before).
      if (sandbox === "bwrap")
        it("a CommonJS handler requires an ES module that imports a NODE_PATH package", async () => {
          const out = await run("require-esm", [
            {
              name: "index.js",
              content:
                'const lib = require("./lib/esm.mjs");\nexports.handler = async () => ({ types: lib.types });',
            },
            {
              name: "lib/esm.mjs",
              content: 'import * as t from "@aws-sdk/types";\nexport const types = typeof t;',
            },
          ]);
          expect(out).toEqual({ types: "object" });
        });

      it("code preloaded by NODE_OPTIONS --require imports a NODE_PATH package later (never a stem cell)", async () => {
        const stems = server.platform.worker.stemCells;
        if (prewarm) await stems.whenReady("nodejs20.x");
        const taken = stems.stats.taken;
        await server.deploy("preload", "node-cjs", {
          Timeout: 30,
          Environment: { Variables: { NODE_OPTIONS: "--require ./pre.js" } },
          Code: {
            ZipFile: await zipEntries([
              {
                name: "pre.js",
                content: 'globalThis.later = async () => typeof (await import("@aws-sdk/types"));',
              },
              {
                name: "index.js",
                content: "exports.handler = async () => ({ types: await globalThis.later() });",
              },
            ]),
          },
        });
        const r = await invoke(server.lambda, "preload", {}, { LogType: "Tail" });
        expect(r.functionError, `${r.text}\n${r.log}`).toBeUndefined();
        expect(r.json).toEqual({ types: "object" });
        // node reads NODE_OPTIONS when it starts: a stem cell started before cannot run this function.
        expect(stems.stats.taken).toBe(taken);
      });

      it("a CommonJS handler requires the SDK", async () => {
        const out = await run("require-sdk", [
          {
            name: "index.js",
            content:
              'const { LambdaClient } = require("@aws-sdk/client-lambda");\nexports.handler = async () => ({ client: typeof LambdaClient });',
          },
        ]);
        expect(out).toEqual({ client: "function" });
      });

      it("a CommonJS handler's own module imports a NODE_PATH package", async () => {
        const out = await run("nested-import", [
          { name: "index.js", content: NESTED_HANDLER },
          { name: "lib/loader.js", content: NESTED_LIB },
        ]);
        expect(out).toEqual({ types: "object" });
      });
    });
  }
}
