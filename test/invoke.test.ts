import { randomUUID } from "node:crypto";
import {
  InvokeCommand,
  RequestTooLargeException,
  ResourceConflictException,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

type Obj = Record<string, unknown>;

let server: TestServer;

// The same functions must behave the same under both sandbox drivers.
describe.each(["process", "bwrap"] as const)("with the %s sandbox driver", (sandbox) => {
  beforeAll(async () => {
    process.env.LAMBENT_TEST_SECRET = "must-not-leak";
    server = await startServer({ sandbox });
    await Promise.all([
      server.deploy("cjs", "node-cjs"),
      server.deploy("esm", "node-esm"),
      server.deploy("typemodule", "node-esm-typemodule"),
      server.deploy("callback", "node-callback"),
      server.deploy("errors", "node-errors", { Handler: "index.throws", Timeout: 1 }),
      server.deploy("importerror", "node-import-error"),
      server.deploy("py", "python", { Handler: "handler.echo" }),
      server.deploy("pyimport", "python-import-error", { Handler: "handler.handler" }),
      server.deploy("sh", "provided-sh", { Handler: "echo" }),
    ]);
  });

  afterAll(async () => {
    await server?.stop();
  });

  const withHandler = async (name: string, handler: string, timeout?: number) => {
    await server.lambda.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: name,
        Handler: handler,
        ...(timeout ? { Timeout: timeout } : {}),
      }),
    );
    await waitUntilFunctionUpdatedV2(
      { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
      { FunctionName: name },
    );
  };

  describe("Node.js runtime", () => {
    it("runs a CommonJS handler with Lambda's context and reuses the warm environment", async () => {
      const first = await invoke(server.lambda, "cjs", { hello: "world" }, { LogType: "Tail" });
      expect(first.status).toBe(200);
      expect(first.functionError).toBeUndefined();
      expect(first.executedVersion).toBe("$LATEST");
      const body = first.json as Obj & { context: Obj };
      expect(body.event).toEqual({ hello: "world" });
      expect(body.counter).toBe(1);
      expect(body.context).toMatchObject({
        functionName: "cjs",
        functionVersion: "$LATEST",
        invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:cjs",
        memoryLimitInMB: "128",
        logGroupName: "/aws/lambda/cjs",
        callbackWaitsForEmptyEventLoop: true,
      });
      expect(body.context.logStreamName).toMatch(/^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/);
      expect(body.context.remainingTimeInMillis).toBeGreaterThan(0);
      expect(body.context.remainingTimeInMillis).toBeLessThanOrEqual(3000);
      expect(String(body.traceId)).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};/);

      const requestId = body.context.awsRequestId as string;
      const log = first.log as string;
      expect(log).toContain(`START RequestId: ${requestId} Version: $LATEST`);
      expect(log).toMatch(
        new RegExp(`\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\t${requestId}\\tINFO\\tinvoke 1 ${requestId}`),
      );
      expect(log).toContain(`END RequestId: ${requestId}`);
      expect(log).toMatch(
        new RegExp(
          `REPORT RequestId: ${requestId}\\tDuration: [\\d.]+ ms\\tBilled Duration: \\d+ ms\\tMemory Size: 128 MB\\tMax Memory Used: \\d+ MB\\tInit Duration: [\\d.]+ ms`,
        ),
      );

      const second = await invoke(server.lambda, "cjs", {}, { LogType: "Tail" });
      expect((second.json as Obj).counter).toBe(2);
      expect(((second.json as Obj).context as Obj).logStreamName).toBe(body.context.logStreamName);
      // Init is reported once per environment.
      expect(second.log).not.toContain("Init Duration");
    });

    it("runs ESM handlers (.mjs and type: module)", async () => {
      for (const name of ["esm", "typemodule"]) {
        const r = await invoke(server.lambda, name, { n: 1 });
        expect(r.functionError).toBeUndefined();
        expect((r.json as Obj).event).toEqual({ n: 1 });
      }
    });

    it("answers callback handlers once the event loop is empty, or at once without waiting", async () => {
      const r = await invoke(server.lambda, "callback", { timerMs: 50 }, { LogType: "Tail" });
      expect((r.json as Obj).waited).toBe("until the timer");
      expect(r.log).toMatch(/timer fired after \d+ ms/);
      await withHandler("callback", "index.noWait");
      const r2 = await invoke(server.lambda, "callback", { timerMs: 5000 });
      expect((r2.json as Obj).waited).toBe(false);
    });

    it("passes X-Amz-Client-Context to the function", async () => {
      const ctx = { custom: { tenant: "acme" }, env: { locale: "en" }, client: { app_title: "t" } };
      const r = await invoke(
        server.lambda,
        "cjs",
        {},
        { ClientContext: Buffer.from(JSON.stringify(ctx)).toString("base64") },
      );
      expect(((r.json as Obj).context as Obj).clientContext).toMatchObject({ custom: { tenant: "acme" } });
    });

    it("gives the runtime exactly Lambda's environment and nothing of the server's", async () => {
      await withHandler("errors", "index.env");
      const r = await invoke(server.lambda, "errors");
      const env = r.json as Record<string, string>;
      expect(env.LAMBENT_TEST_SECRET).toBeUndefined();
      expect(env.NODE_EXTRA_CA_CERTS).toBeUndefined();
      expect(env).toMatchObject({
        _HANDLER: "index.env",
        AWS_LAMBDA_FUNCTION_NAME: "errors",
        AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "128",
        AWS_LAMBDA_LOG_GROUP_NAME: "/aws/lambda/errors",
        AWS_REGION: "us-east-1",
        AWS_EXECUTION_ENV: "AWS_Lambda_nodejs20.x",
        AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
        TZ: ":UTC",
        LANG: "en_US.UTF-8",
      });
      expect(env.LAMBDA_TASK_ROOT).toBeTruthy();
      expect(env.AWS_LAMBDA_RUNTIME_API).toMatch(/^127\.0\.0\.1:\d+$/);
      if (sandbox === "bwrap") {
        expect(env.LAMBDA_TASK_ROOT).toBe("/var/task");
        expect(env.AWS_LAMBDA_RUNTIME_API).toBe("127.0.0.1:9001");
      }
      expect(env.PATH).toContain("/usr/bin");
      expect(env.NODE_PATH).toContain(env.LAMBDA_TASK_ROOT);
      expect(env.AWS_LAMBDA_LOG_STREAM_NAME).toMatch(/\[\$LATEST\][0-9a-f]{32}$/);
    });

    it("reports handler errors with Lambda's error payload", async () => {
      await withHandler("errors", "index.throws");
      const r = await invoke(server.lambda, "errors", { message: "boom" });
      expect(r.status).toBe(200);
      expect(r.functionError).toBe("Unhandled");
      const e = r.json as Obj;
      expect(e.errorType).toBe("CustomError");
      expect(e.errorMessage).toBe("boom");
      expect(Array.isArray(e.trace) || Array.isArray(e.stackTrace)).toBe(true);
    });

    it("reports an error whose name no HTTP header can carry (the runtime does not exit)", async () => {
      await withHandler("errors", "index.throwsBadName");
      for (let i = 0; i < 2; i++) {
        const r = await invoke(server.lambda, "errors", {});
        expect(r.status).toBe(200);
        expect(r.functionError).toBe("Unhandled");
        expect(r.json).toMatchObject({ errorType: "Bad\nName\u2603", errorMessage: "bad name" });
      }
    });

    it("reports Runtime.HandlerNotFound and Runtime.ImportModuleError", async () => {
      await withHandler("errors", "index.nope");
      const nf = await invoke(server.lambda, "errors");
      expect(nf.functionError).toBe("Unhandled");
      expect((nf.json as Obj).errorType).toBe("Runtime.HandlerNotFound");
      expect((nf.json as Obj).errorMessage).toBe("index.nope is undefined or not exported");

      const ie = await invoke(server.lambda, "importerror");
      expect(ie.functionError).toBe("Unhandled");
      expect((ie.json as Obj).errorType).toBe("Runtime.ImportModuleError");
      expect(String((ie.json as Obj).errorMessage)).toContain("Cannot find module");
      // Init failures are retried: the next invoke runs Init again and fails the same way.
      const again = await invoke(server.lambda, "importerror", {}, { LogType: "Tail" });
      expect((again.json as Obj).errorType).toBe("Runtime.ImportModuleError");
      // The REPORT of a failed Init bills like any other and carries the time Init ran.
      expect(again.log).toMatch(
        /REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: [1-9]\d* ms\tMemory Size: \d+ MB\tMax Memory Used: \d+ MB\tInit Duration: (?!0\.00 ms)[\d.]+ ms\tStatus: error\tError Type: Runtime\.ImportModuleError/,
      );
      await server.platform.logs.flush();
      const logs = (await (await signedFetch(`${server.url}/_lambent/logs/importerror`)).json()) as {
        events: Array<{ message: string }>;
      };
      const initReports = logs.events.map((e) => e.message).filter((m) => m.startsWith("INIT_REPORT"));
      expect(initReports.length).toBeGreaterThanOrEqual(2);
      for (const line of initReports) {
        expect(line).toMatch(
          /^INIT_REPORT Init Duration: (?!0\.00 ms)[\d.]+ ms\tPhase: init\tStatus: error\tError Type: Runtime\.ImportModuleError$/,
        );
      }
    });

    it("reports an unhandled rejection and gives the next invoke a fresh environment", async () => {
      await withHandler("errors", "index.unhandled");
      const r = await invoke(server.lambda, "errors");
      expect(r.functionError).toBe("Unhandled");
      expect((r.json as Obj).errorType).toBe("Runtime.UnhandledPromiseRejection");
      await withHandler("errors", "index.sleep");
      const ok = await invoke(server.lambda, "errors", { ms: 1 });
      expect(ok.json).toEqual({ slept: 1 });
    });

    it("reports a runtime that exits mid-invoke as Runtime.ExitError and recovers", async () => {
      await server.deploy("crashy", "node-errors", { Handler: "index.crash" });
      const r = await invoke(server.lambda, "crashy", {}, { LogType: "Tail" });
      expect(r.functionError).toBe("Unhandled");
      expect((r.json as Obj).errorType).toBe("Runtime.ExitError");
      expect((r.json as Obj).errorMessage).toMatch(/Runtime exited with error: exit status 1/);
      expect(r.log).toContain("exiting mid-invoke");
      expect(server.platform.worker.environmentsOf("crashy")).toHaveLength(0);
      await withHandler("crashy", "index.sleep");
      expect((await invoke(server.lambda, "crashy", { ms: 0 })).json).toEqual({ slept: 0 });
    });

    it("enforces the timeout and destroys the environment", async () => {
      await server.deploy("slow", "node-errors", { Handler: "index.sleep", Timeout: 1 });
      const r = await invoke(server.lambda, "slow", { ms: 5000 }, { LogType: "Tail" });
      expect(r.functionError).toBe("Unhandled");
      const e = r.json as Obj;
      expect(e.errorType).toBe("Sandbox.Timedout");
      expect(e.errorMessage).toMatch(/^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds$/);
      expect(r.log).toContain("Task timed out after 1.00 seconds");
      expect(server.platform.worker.environmentsOf("slow")).toHaveLength(0);
      expect((await invoke(server.lambda, "slow", { ms: 1 })).json).toEqual({ slept: 1 });
    });

    it("rejects a request over 6 MB and reports a response over 6 MB", async () => {
      const big = { data: "x".repeat(6 * 1024 * 1024) };
      await expect(invoke(server.lambda, "cjs", big)).rejects.toBeInstanceOf(RequestTooLargeException);
      // Far over the limit (past the HTTP body limit too): the same exception.
      const huge = { data: "x".repeat(13 * 1024 * 1024) };
      await expect(invoke(server.lambda, "cjs", huge)).rejects.toBeInstanceOf(RequestTooLargeException);
      // 7 MB built and sent at a 128 MB function's CPU share can outlast the default 3 s on a busy machine.
      await server.deploy("bigresp", "node-errors", { Handler: "index.big", Timeout: 30 });
      const r = await invoke(server.lambda, "bigresp", { bytes: 7 * 1024 * 1024 });
      expect(r.functionError).toBe("Unhandled");
      expect((r.json as Obj).errorType).toBe("Function.ResponseSizeTooLarge");
      const ok = await invoke(server.lambda, "bigresp", { bytes: 1024 });
      expect(ok.json).toBe("x".repeat(1024));
    });

    it("answers DryRun with 204 and runs nothing", async () => {
      const out = await server.lambda.send(
        new InvokeCommand({ FunctionName: "cjs", InvocationType: "DryRun" }),
      );
      expect(out.StatusCode).toBe(204);
    });

    it("refuses to invoke a function that is not Active", async () => {
      await server.deploy("pending", "node-cjs");
      await server.platform.store.db
        .updateTable("function_versions")
        .set({ state: "Pending" })
        .where("function_name", "=", "pending")
        .execute();
      await expect(invoke(server.lambda, "pending")).rejects.toBeInstanceOf(ResourceConflictException);
    });

    it("runs parallel invokes in distinct environments", async () => {
      const code = `exports.handler = async (e, ctx) => { await new Promise((r) => setTimeout(r, e.ms)); return ctx.logStreamName; };`;
      await server.lambda.send(
        new (await import("@aws-sdk/client-lambda")).CreateFunctionCommand({
          FunctionName: "parallel",
          Runtime: "nodejs20.x",
          Handler: "index.handler",
          Role: ROLE,
          Code: { ZipFile: await zipEntries([{ name: "index.js", content: code }]) },
        }),
      );
      const results = await Promise.all(
        [1, 2, 3, 4].map(() => invoke(server.lambda, "parallel", { ms: 300 })),
      );
      const streams = new Set(results.map((r) => r.json));
      expect(streams.size).toBe(4);
      expect(server.platform.worker.environmentsOf("parallel")).toHaveLength(4);
    });

    it("retires old environments when the code changes and runs the new code", async () => {
      await server.deploy("updating", "node-cjs");
      expect((await invoke(server.lambda, "updating")).json).toMatchObject({ counter: 1 });
      const [old] = server.platform.worker.environmentsOf("updating");
      const retired = new Promise<void>((resolve) => old?.onDead(resolve));
      await server.lambda.send(
        new UpdateFunctionCodeCommand({
          FunctionName: "updating",
          ZipFile: await zipEntries([{ name: "index.js", content: "exports.handler = async () => 'v2';" }]),
        }),
      );
      await waitUntilFunctionUpdatedV2(
        { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
        { FunctionName: "updating" },
      );
      expect((await invoke(server.lambda, "updating")).json).toBe("v2");
      await retired;
    });

    it("serves each run's log lines through the logs endpoint", async () => {
      const id = randomUUID();
      await invoke(server.lambda, "cjs", { id });
      const res = await signedFetch(`${server.url}/_lambent/logs/cjs`);
      const body = (await res.json()) as { events: Array<{ message: string }> };
      const lines = body.events.map((e) => e.message);
      expect(lines.some((l) => l.startsWith("START RequestId:"))).toBe(true);
      expect(lines.some((l) => l.startsWith("REPORT RequestId:"))).toBe(true);
    });
  });

  describe("Python runtime", () => {
    it("runs handler(event, context) with Lambda's context and a warm counter", async () => {
      const r = await invoke(server.lambda, "py", { a: 1 }, { LogType: "Tail" });
      expect(r.functionError).toBeUndefined();
      const body = r.json as Obj & { context: Obj };
      expect(body.event).toEqual({ a: 1 });
      expect(body.counter).toBe(1);
      expect(body.context).toMatchObject({
        function_name: "py",
        function_version: "$LATEST",
        memory_limit_in_mb: "128",
      });
      expect(r.log).toMatch(/\[INFO\]\t\S+Z\t[0-9a-f-]{36}\tinvoke 1/);
      expect(r.log).toContain("printed line 1");
      expect(((await invoke(server.lambda, "py")).json as Obj).counter).toBe(2);
    });

    it("reports exceptions and import errors with Lambda's shape", async () => {
      await withHandler("py", "handler.raises");
      const r = await invoke(server.lambda, "py", { message: "bad" });
      expect(r.functionError).toBe("Unhandled");
      const e = r.json as Obj;
      expect(e).toMatchObject({ errorType: "CustomError", errorMessage: "bad" });
      expect(Array.isArray(e.stackTrace)).toBe(true);
      const ie = await invoke(server.lambda, "pyimport");
      expect((ie.json as Obj).errorType).toBe("Runtime.ImportModuleError");
    });
  });

  describe("provided runtime", () => {
    it("runs the package's own shell-script bootstrap", async () => {
      const r = await invoke(server.lambda, "sh", { x: 42 });
      expect(r.functionError).toBeUndefined();
      expect(r.json).toMatchObject({ echo: { x: 42 } });
    });
  });
});
