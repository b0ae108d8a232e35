import { UpdateFunctionCodeCommand, waitUntilFunctionUpdatedV2 } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ prewarm: 2 });
});
afterAll(async () => {
  await server?.stop();
});

const LAMBDA_ENV = new Set([
  "PATH",
  "LD_LIBRARY_PATH",
  "LANG",
  "TZ",
  "LAMBDA_TASK_ROOT",
  "LAMBDA_RUNTIME_DIR",
  "NODE_PATH",
  "_HANDLER",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_EXECUTION_ENV",
  "AWS_LAMBDA_FUNCTION_NAME",
  "AWS_LAMBDA_FUNCTION_VERSION",
  "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
  "AWS_LAMBDA_LOG_GROUP_NAME",
  "AWS_LAMBDA_LOG_STREAM_NAME",
  "AWS_LAMBDA_INITIALIZATION_TYPE",
  "AWS_LAMBDA_RUNTIME_API",
  "_X_AMZN_TRACE_ID",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_ENDPOINT_URL_LAMBDA",
  "AWS_ENDPOINT_URL",
  "MY_VAR",
]);

describe("stem cells", () => {
  it("start a cold environment from a pre-started runtime with exactly the function's environment", async () => {
    const stems = server.platform.worker.stemCells;
    await stems.whenReady("nodejs20.x");
    const taken = stems.stats.taken;
    await server.deploy("stem-env", "node-errors", {
      Handler: "index.env",
      Environment: { Variables: { MY_VAR: "yes" } },
    });
    const r = await invoke(server.lambda, "stem-env", {}, { LogType: "Tail" });
    expect(stems.stats.taken).toBe(taken + 1);
    const env = r.json as Record<string, string>;
    expect(env.MY_VAR).toBe("yes");
    expect(env.AWS_LAMBDA_FUNCTION_NAME).toBe("stem-env");
    expect(env._HANDLER).toBe("index.env");
    expect(Object.keys(env).filter((k) => !LAMBDA_ENV.has(k))).toEqual([]);
    // Init Duration is what this invoke waited for the function's own Init.
    expect(r.log).toMatch(/Init Duration: [\d.]+ ms/);
    // The pool refills behind the taken cell.
    await stems.whenReady("nodejs20.x");
  });

  it("run the current code after an update, never older code", async () => {
    const stems = server.platform.worker.stemCells;
    const code = (v: string) =>
      zipEntries([{ name: "index.js", content: `exports.handler = async () => "${v}";` }]);
    await server.deploy("stem-upd", "node-cjs");
    await stems.whenReady("nodejs20.x");
    expect((await invoke(server.lambda, "stem-upd")).json).toMatchObject({ counter: 1 });
    for (const v of ["v2", "v3"]) {
      await server.lambda.send(
        new UpdateFunctionCodeCommand({ FunctionName: "stem-upd", ZipFile: await code(v) }),
      );
      await waitUntilFunctionUpdatedV2(
        { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
        { FunctionName: "stem-upd" },
      );
      await stems.whenReady("nodejs20.x");
      const taken = stems.stats.taken;
      expect((await invoke(server.lambda, "stem-upd")).json).toBe(v);
      expect(stems.stats.taken).toBe(taken + 1);
    }
  });

  it("resolve ES module imports through NODE_PATH (the SDK) once adopted, static and dynamic", async () => {
    const stems = server.platform.worker.stemCells;
    const sources = {
      "index.mjs": `import { LambdaClient } from "@aws-sdk/client-lambda";
export const handler = async () => ({ client: typeof LambdaClient });`,
      "index.js": `exports.handler = async () => {
  const { LambdaClient } = await import("@aws-sdk/client-lambda");
  return { client: typeof LambdaClient };
};`,
    };
    for (const [file, content] of Object.entries(sources)) {
      const name = `stem-sdk-${file.replace(".", "-")}`;
      await stems.whenReady("nodejs20.x");
      const taken = stems.stats.taken;
      await server.deploy(name, "node-cjs", {
        MemorySize: 1024,
        Timeout: 30,
        Code: { ZipFile: await zipEntries([{ name: file, content }]) },
      });
      const r = await invoke(server.lambda, name, {}, { LogType: "Tail" });
      expect(r.functionError, `${r.text}\n${r.log}`).toBeUndefined();
      expect(r.json).toEqual({ client: "function" });
      expect(stems.stats.taken).toBe(taken + 1);
    }
  });

  it("serve Python functions too", async () => {
    const stems = server.platform.worker.stemCells;
    await stems.whenReady("python3.11");
    const taken = stems.stats.taken;
    await server.deploy("stem-py", "python", { Handler: "handler.echo" });
    const r = await invoke(server.lambda, "stem-py", { p: 1 });
    expect(r.json).toMatchObject({ event: { p: 1 }, counter: 1, context: { function_name: "stem-py" } });
    expect(stems.stats.taken).toBe(taken + 1);
  });

  it("are off with --prewarm 0", async () => {
    const off = await startServer({ prewarm: 0 });
    try {
      await off.deploy("nostem", "node-cjs");
      expect((await invoke(off.lambda, "nostem")).json).toMatchObject({ counter: 1 });
      expect(off.platform.worker.stemCells.stats).toEqual({ started: 0, taken: 0, misses: 0 });
    } finally {
      await off.stop();
    }
  });
});
