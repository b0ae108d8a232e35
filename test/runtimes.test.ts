/**
 * Runtimes that are what they say: each identifier runs exactly its language version (process and
 * bwrap drivers), sees no host packages, carries the AWS SDK; runtimes that are not installed or not
 * available are refused at create with the command that installs them; deprecated ones warn.
 * The runtimes are installed by `npm ci` / `npm test` (scripts/test.sh → lambent runtimes install).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateFunctionCommand,
  type CreateFunctionCommandInput,
  PublishLayerVersionCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RuntimeStore } from "../src/runtimes/store.js";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { FIXTURES, type ZipEntry, zipEntries } from "./helpers/zip.js";

type Obj = Record<string, unknown>;

const NODE_PROBE = `
exports.handler = async (event) => {
  const out = { version: process.version, execPath: process.execPath };
  // A feature of each major: Promise.withResolvers (22, not 20), RegExp.escape (24, not 22).
  out.withResolvers = typeof Promise.withResolvers === "function";
  out.regExpEscape = typeof RegExp.escape === "function";
  try { require("@aws-sdk/client-lambda"); out.sdkRequire = true; } catch (e) { out.sdkRequire = String(e.code); }
  try { await import("@aws-sdk/client-lambda"); out.sdkImport = true; } catch (e) { out.sdkImport = String(e.code); }
  for (const host of ["npm", "corepack"]) {
    try { require(host); out[host] = true; } catch { out[host] = false; }
  }
  return out;
};`;

const PYTHON_PROBE = `
import sys

def handler(event, context):
    out = {"version": list(sys.version_info[:3]), "path": sys.path}
    for name in ("boto3", "botocore", "yaml", "requests_toolbelt", "apt", "debian"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", True)
        except ImportError:
            out[name] = False
    return out
`;

/** Version-only syntax: a module that does not even compile on an older interpreter. */
const PYTHON_312_SYNTAX = `
type Pair = tuple[int, int]

def handler(event, context):
    import copy, dataclasses
    @dataclasses.dataclass
    class P:
        x: int
    return {"replaced": copy.replace(P(1), x=2).x, "alias": Pair.__name__}
`;

async function create(s: TestServer, input: Partial<CreateFunctionCommandInput> & { FunctionName: string }) {
  await s.lambda.send(
    new CreateFunctionCommand({
      Role: ROLE,
      Handler: "index.handler",
      Code: { ZipFile: await zipEntries([{ name: "bootstrap", content: "#!/bin/sh\n" }]) },
      ...input,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: s.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
    { FunctionName: input.FunctionName },
  );
}

async function nodeFn(s: TestServer, name: string, runtime: string) {
  await create(s, {
    FunctionName: name,
    Runtime: runtime as CreateFunctionCommandInput["Runtime"],
    // Loading the SDK's client is a second of CPU at 128 MB's share.
    MemorySize: 1024,
    Timeout: 60,
    Code: { ZipFile: await zipEntries([{ name: "index.js", content: NODE_PROBE }]) },
  });
}

async function pythonFn(s: TestServer, name: string, runtime: string, code = PYTHON_PROBE) {
  await create(s, {
    FunctionName: name,
    Runtime: runtime as CreateFunctionCommandInput["Runtime"],
    Handler: "probe.handler",
    // Importing botocore is seconds of CPU at 128 MB's share.
    MemorySize: 1024,
    Timeout: 60,
    Code: { ZipFile: await zipEntries([{ name: "probe.py", content: code }]) },
  });
}

const store = new RuntimeStore();

for (const sandbox of ["process", "bwrap"] as const) {
  describe(`true versions (${sandbox} driver)`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startServer({ sandbox, prewarm: 0 });
    });
    afterAll(async () => {
      await server?.stop();
    });

    for (const [runtime, major] of [
      ["nodejs22.x", "22"],
      ["nodejs24.x", "24"],
    ] as const) {
      it(`${runtime} runs Node ${major} with the AWS SDK and no host packages`, async () => {
        expect(store.resolve(runtime), `${runtime} is installed by npm ci / npm test`).toBeDefined();
        await nodeFn(server, `v-${runtime.replace(".", "")}`, runtime);
        const r = await invoke(server.lambda, `v-${runtime.replace(".", "")}`, {}, { LogType: "Tail" });
        expect(r.functionError, `${r.text}\n${r.log}`).toBeUndefined();
        const out = r.json as Obj;
        expect(String(out.version)).toMatch(new RegExp(`^v${major}\\.`));
        expect(out.withResolvers).toBe(true);
        expect(out.regExpEscape).toBe(major === "24");
        expect(out.sdkRequire).toBe(true);
        expect(out.sdkImport).toBe(true);
        expect(out.npm).toBe(false);
        if (sandbox === "bwrap") expect(out.execPath).toBe("/var/lang/bin/node");
      });
    }

    it("nodejs20.x runs Node 20 (the system's), without Node 22's features", async () => {
      await nodeFn(server, "v-node20", "nodejs20.x");
      const out = (await invoke(server.lambda, "v-node20")).json as Obj;
      expect(String(out.version)).toMatch(/^v20\./);
      expect(out.withResolvers).toBe(false);
      expect(out.npm).toBe(false);
    });

    it("python3.13 runs Python 3.13 with boto3 >= 1.31 and nothing of the host's packages", async () => {
      expect(store.resolve("python3.13"), "python3.13 is installed by npm ci / npm test").toBeDefined();
      await pythonFn(server, "v-py313", "python3.13");
      const r = await invoke(server.lambda, "v-py313", {}, { LogType: "Tail" });
      expect(r.functionError, `${r.text}\n${r.log}`).toBeUndefined();
      const out = r.json as Obj;
      expect((out.version as number[]).slice(0, 2)).toEqual([3, 13]);
      const [maj, min] = String(out.botocore).split(".").map(Number);
      expect((maj as number) * 1000 + (min as number)).toBeGreaterThanOrEqual(1031);
      expect(out.yaml).toBe(false);
      expect(out.apt).toBe(false);
      expect(out.debian).toBe(false);
      expect((out.path as string[]).some((p) => p.startsWith("/usr/local/lib/python3.11"))).toBe(false);
      await pythonFn(server, "v-py313-syntax", "python3.13", PYTHON_312_SYNTAX);
      expect((await invoke(server.lambda, "v-py313-syntax")).json).toEqual({ replaced: 2, alias: "Pair" });
    });

    it("python3.11 runs Python 3.11, where 3.12 syntax is a syntax error, and sees no host dist-packages", async () => {
      await pythonFn(server, "v-py311", "python3.11");
      const r0 = await invoke(server.lambda, "v-py311", {}, { LogType: "Tail" });
      expect(r0.functionError, `${r0.text}\n${r0.log}`).toBeUndefined();
      const out = r0.json as Obj;
      expect((out.version as number[]).slice(0, 2)).toEqual([3, 11]);
      // The host's python3-yaml / python3-apt / botocore 1.29 stay invisible.
      expect(out.yaml).toBe(false);
      expect(out.apt).toBe(false);
      expect(out.botocore === false || !String(out.botocore).startsWith("1.29")).toBe(true);
      const foreign = (out.path as string[]).filter(
        (p) => /-packages/.test(p) && !p.startsWith(store.dir) && !p.startsWith("/var/runtime/"),
      );
      expect(foreign).toEqual([]);
      await pythonFn(server, "v-py311-syntax", "python3.11", PYTHON_312_SYNTAX);
      const r = await invoke(server.lambda, "v-py311-syntax");
      expect(r.json).toMatchObject({ errorType: "Runtime.UserCodeSyntaxError" });
    });
  });
}

describe("runtime availability at create and update", () => {
  let server: TestServer;
  let blocking: TestServer;
  const empty = mkdtempSync(join(tmpdir(), "lambent-no-runtimes-"));
  beforeAll(async () => {
    server = await startServer({ runtimesDir: empty });
    blocking = await startServer({ blockDeprecatedRuntimes: true });
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), blocking?.stop()]);
    rmSync(empty, { recursive: true, force: true });
  });

  const attempt = async (s: TestServer, name: string, runtime: string) =>
    s.lambda
      .send(
        new CreateFunctionCommand({
          FunctionName: name,
          Runtime: runtime as CreateFunctionCommandInput["Runtime"],
          Role: ROLE,
          Handler: "index.handler",
          Code: { ZipFile: await zipEntries([{ name: "bootstrap", content: "#!/bin/sh\n" }]) },
        }),
      )
      .then(
        () => undefined,
        (e: { name: string; message: string }) => e,
      );

  it("refuses a runtime that is not installed, naming the command that installs it", async () => {
    const err = await attempt(server, "not-installed", "nodejs24.x");
    expect(err?.name).toBe("InvalidParameterValueException");
    expect(err?.message).toContain("lambent runtimes install nodejs24.x");
  });

  it("refuses runtimes no source provides, saying why", async () => {
    for (const runtime of ["python3.12", "python3.10"]) {
      const err = await attempt(server, "unavailable", runtime);
      expect(err?.name).toBe("InvalidParameterValueException");
      expect(err?.message).toMatch(/no Debian release ships Python 3\.1[02]/);
    }
  });

  it("refuses the change in UpdateFunctionConfiguration too, and keeps the old runtime", async () => {
    await create(server, {
      FunctionName: "upd-rt",
      Runtime: "provided.al2023",
      Handler: "x",
    });
    const err = await server.lambda
      .send(new UpdateFunctionConfigurationCommand({ FunctionName: "upd-rt", Runtime: "python3.13" }))
      .catch((e: Error) => e);
    expect((err as Error).name).toBe("InvalidParameterValueException");
    expect((err as Error).message).toContain("lambent runtimes install python3.13");
    await waitUntilFunctionUpdatedV2({ client: server.lambda, maxWaitTime: 10 }, { FunctionName: "upd-rt" });
  });

  it("accepts a deprecated runtime with a Warning header, or refuses it when the operator blocks them", async () => {
    let warning: string | undefined;
    server.lambda.middlewareStack.add(
      (next) => async (args) => {
        const out = await next(args);
        warning ??= (out.response as { headers: Record<string, string> }).headers.warning;
        return out;
      },
      { step: "deserialize", name: "captureWarning" },
    );
    await create(server, { FunctionName: "old-node", Runtime: "provided.al2", Handler: "x" });
    expect(warning).toMatch(
      /^299 lambent "The runtime provided\.al2 was deprecated by AWS Lambda on 2026-06-30/,
    );
    server.lambda.middlewareStack.remove("captureWarning");

    const err = await attempt(blocking, "blocked", "nodejs20.x");
    expect(err?.name).toBe("InvalidParameterValueException");
    expect(err?.message).toBe(
      "The runtime parameter of nodejs20.x is no longer supported for creating or updating AWS Lambda functions. We recommend you use a supported runtime while creating or updating functions.",
    );
    // Not deprecated: fine with the blocking option too.
    expect(await attempt(blocking, "current", "provided.al2023")).toBeUndefined();
  });
});

describe("custom runtimes (provided.al2023)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ sandbox: "bwrap", prewarm: 0 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const fixtureBootstrap = readFileSync(join(FIXTURES, "provided-sh", "bootstrap"));

  async function provided(name: string, files: ZipEntry[], layers: string[] = []) {
    await create(server, {
      FunctionName: name,
      Runtime: "provided.al2023",
      Handler: "echo",
      Code: { ZipFile: await zipEntries(files) },
      Layers: layers,
    });
  }

  it("answer Runtime.InvalidEntrypoint with Lambda's messages for a missing or unusable bootstrap", async () => {
    await provided("no-bootstrap", [{ name: "main.sh", content: "#!/bin/sh\n", mode: 0o100755 }]);
    await provided("not-executable", [{ name: "bootstrap", content: fixtureBootstrap, mode: 0o100644 }]);
    await provided("not-a-program", [{ name: "bootstrap", content: "just text", mode: 0o100755 }]);
    const cases: Array<[string, string]> = [
      ["no-bootstrap", "Error: Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"],
      ["not-executable", "Error: fork/exec /var/task/bootstrap: permission denied"],
      ["not-a-program", "Error: fork/exec /var/task/bootstrap: exec format error"],
    ];
    for (const [name, message] of cases) {
      const r = await invoke(server.lambda, name, {}, { LogType: "Tail" });
      expect(r.functionError).toBe("Unhandled");
      const body = r.json as Obj;
      expect(body.errorType).toBe("Runtime.InvalidEntrypoint");
      expect(body.errorMessage).toMatch(/^RequestId: [0-9a-f-]{36} /);
      expect(String(body.errorMessage).replace(/^RequestId: \S+ /, "")).toBe(message);
      expect(r.log).toContain(`${message}\rRuntime.InvalidEntrypoint`);
      expect(r.log).toMatch(/Status: error\tError Type: Runtime\.InvalidEntrypoint/);
    }
  });

  it("use a layer's /opt/bootstrap when the package has none", async () => {
    const layer = await server.lambda.send(
      new PublishLayerVersionCommand({
        LayerName: "bash-runtime",
        Content: {
          ZipFile: await zipEntries([{ name: "bootstrap", content: fixtureBootstrap, mode: 0o100755 }]),
        },
      }),
    );
    await provided(
      "opt-bootstrap",
      [{ name: "README", content: "code only" }],
      [layer.LayerVersionArn as string],
    );
    const r = await invoke(server.lambda, "opt-bootstrap", { hi: 1 }, { LogType: "Tail" });
    expect(r.functionError, `${r.text}\n${r.log}`).toBeUndefined();
    expect(r.json).toMatchObject({ echo: { hi: 1 } });
  });

  it("resolve ES module imports as Lambda does: the function, /opt/nodejs/nodeXX/node_modules, /opt/nodejs/node_modules, the SDK", async () => {
    const pkg = (name: string, where: string) => [
      {
        name: `nodejs/${where}/${name}/package.json`,
        content: JSON.stringify({ name, type: "module", exports: "./index.js" }),
      },
      { name: `nodejs/${where}/${name}/index.js`, content: `export const where = ${JSON.stringify(where)};` },
    ];
    const layer = await server.lambda.send(
      new PublishLayerVersionCommand({
        LayerName: "esm-libs",
        Content: {
          ZipFile: await zipEntries([
            ...pkg("shared-lib", "node_modules"),
            ...pkg("versioned-lib", "node22/node_modules"),
            ...pkg("versioned-lib", "node_modules"),
            ...pkg("own-lib", "node_modules"),
          ]),
        },
      }),
    );
    const handler = `
import { where as shared } from "shared-lib";
import { where as versioned } from "versioned-lib";
import { where as own } from "own-lib";
import { LambdaClient } from "@aws-sdk/client-lambda";
export const handler = async () => ({ shared, versioned, own, sdk: typeof LambdaClient });`;
    for (const runtime of ["nodejs22.x", "nodejs20.x"] as const) {
      const name = `esm-${runtime.replace(".", "")}`;
      await create(server, {
        FunctionName: name,
        Runtime: runtime,
        Handler: "index.handler",
        MemorySize: 1024,
        Timeout: 60,
        Layers: [layer.LayerVersionArn as string],
        Code: {
          ZipFile: await zipEntries([
            { name: "index.mjs", content: handler },
            {
              name: "node_modules/own-lib/package.json",
              content: '{"name":"own-lib","type":"module","exports":"./index.js"}',
            },
            { name: "node_modules/own-lib/index.js", content: 'export const where = "function";' },
          ]),
        },
      });
      const r = await invoke(server.lambda, name, {}, { LogType: "Tail" });
      expect(r.functionError, `${r.text}\n${r.log}`).toBeUndefined();
      expect(r.json).toEqual({
        shared: "node_modules",
        versioned: runtime === "nodejs22.x" ? "node22/node_modules" : "node_modules",
        own: "function",
        sdk: "function",
      });
    }
  });
});

describe("LoggingConfig: JSON records and application log levels", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ prewarm: 0 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const records = (log: string | undefined) =>
    (log ?? "")
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Obj);

  it("Node.js: records as JSON, below ApplicationLogLevel dropped, a thrown error with errorType/errorMessage/stackTrace", async () => {
    await create(server, {
      FunctionName: "json-node",
      Runtime: "nodejs22.x",
      LoggingConfig: { LogFormat: "JSON", ApplicationLogLevel: "WARN" },
      Code: {
        ZipFile: await zipEntries([
          {
            name: "index.js",
            content: `exports.handler = async (e) => {
  console.debug("debug line"); console.info("info line"); console.warn("warn line", 42);
  console.error({ structured: true });
  if (e.fail) throw new TypeError("bad input");
  return "ok";
};`,
          },
        ]),
      },
    });
    const r = await invoke(server.lambda, "json-node", { fail: true }, { LogType: "Tail" });
    const recs = records(r.log);
    const messages = recs.map((x) => x.message);
    expect(messages).not.toContain("debug line");
    expect(messages).not.toContain("info line");
    const warn = recs.find((x) => x.message === "warn line 42") as Obj;
    expect(warn).toMatchObject({ level: "WARN" });
    expect(String(warn.timestamp)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(warn.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(recs.find((x) => x.level === "ERROR" && (x.message as Obj)?.structured === true)).toBeDefined();
    // An error logged alone is the record's message, as {errorType, errorMessage, stackTrace}.
    const thrown = recs.find((x) => (x.message as Obj)?.errorType === "TypeError") as Obj;
    expect(thrown).toMatchObject({ level: "ERROR", message: { errorMessage: "bad input" } });
    expect(Array.isArray((thrown.message as Obj).stackTrace)).toBe(true);
  });

  it("Python: logging records as JSON with Lambda's fields, levels filtered, the invoke error as JSON", async () => {
    await create(server, {
      FunctionName: "json-py",
      Runtime: "python3.13",
      Handler: "app.handler",
      LoggingConfig: { LogFormat: "JSON", ApplicationLogLevel: "INFO" },
      Code: {
        ZipFile: await zipEntries([
          {
            name: "app.py",
            content: `import logging
log = logging.getLogger()

def handler(event, context):
    log.debug("debug line")
    log.info("info line", extra={"orderId": 7})
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("caught")
    raise ValueError("bad input")
`,
          },
        ]),
      },
    });
    const r = await invoke(server.lambda, "json-py", {}, { LogType: "Tail" });
    const recs = records(r.log);
    expect(recs.map((x) => x.message)).not.toContain("debug line");
    const info = recs.find((x) => x.message === "info line") as Obj;
    expect(info).toMatchObject({ level: "INFO", logger: "root", orderId: 7 });
    expect(info.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(String(info.timestamp)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(recs.find((x) => x.message === "caught")).toMatchObject({
      level: "ERROR",
      errorType: "ZeroDivisionError",
      errorMessage: "division by zero",
    });
    const failed = recs.find((x) => x.errorType === "ValueError") as Obj;
    expect(failed).toMatchObject({ level: "ERROR", errorMessage: "bad input", requestId: info.requestId });
    expect(Array.isArray(failed.stackTrace)).toBe(true);
  });
});
