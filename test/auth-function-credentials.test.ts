/**
 * Credentials inside functions: every environment gets temporary credentials
 * for its execution role and AWS_ENDPOINT_URL_LAMBDA, so the AWS SDK with its
 * defaults (`new LambdaClient({})`) invokes another function with no code
 * change — allowed or denied by the role's policy, under the process driver
 * and inside an isolated bwrap sandbox (through the per-environment channel).
 *
 * The Node runtime here does not ship the AWS SDK for every version yet, so the
 * caller's zip carries @aws-sdk/client-lambda bundled with esbuild.
 * Python: python3.13 (the Debian trixie runtime) ships boto3 1.37, which honours
 * AWS_ENDPOINT_URL_LAMBDA: `boto3.client("lambda")` with no arguments.
 */
import { InvokeCommand, LambdaClient, ListFunctionsCommand } from "@aws-sdk/client-lambda";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectSandboxDriver } from "../src/sandbox/index.js";
import { rejection } from "./helpers/control-plane.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

const CALLER = `
const { LambdaClient, InvokeCommand } = require("@aws-sdk/client-lambda");
exports.handler = async (event) => {
  const env = {
    endpoint: process.env.AWS_ENDPOINT_URL_LAMBDA,
    keyId: process.env.AWS_ACCESS_KEY_ID,
    hasSecret: Boolean(process.env.AWS_SECRET_ACCESS_KEY),
    hasToken: Boolean(process.env.AWS_SESSION_TOKEN),
  };
  const client = new LambdaClient(event.dev ? { credentials: { accessKeyId: "test", secretAccessKey: "test" } } : {});
  try {
    const out = await client.send(new InvokeCommand({ FunctionName: event.target, Payload: JSON.stringify({ from: "caller" }) }));
    return { ok: true, env, payload: JSON.parse(Buffer.from(out.Payload).toString()) };
  } catch (e) {
    return { ok: false, env, name: e.name, message: e.message };
  }
};
`;

let callerZip: Buffer;

async function callerPackage(): Promise<Buffer> {
  const out = await build({
    stdin: { contents: CALLER, resolveDir: process.cwd(), loader: "js" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    write: false,
    logLevel: "silent",
  });
  return zipEntries([{ name: "index.js", content: Buffer.from(out.outputFiles[0]?.contents ?? []) }]);
}

async function putRole(server: TestServer, name: string, statements: unknown[]): Promise<void> {
  const res = await signedFetch(`${server.url}/_lambent/roles/${name}`, {
    method: "PUT",
    body: JSON.stringify({ Version: "2012-10-17", Statement: statements }),
  });
  expect(res.status).toBe(200);
}

async function call(server: TestServer, fn: string, target: string, dev = false) {
  const out = await server.lambda.send(
    new InvokeCommand({ FunctionName: fn, Payload: Buffer.from(JSON.stringify({ target, dev })) }),
  );
  expect(out.FunctionError).toBeUndefined();
  return JSON.parse(Buffer.from(out.Payload as Uint8Array).toString()) as {
    ok: boolean;
    env: { endpoint?: string; keyId?: string; hasSecret: boolean; hasToken: boolean };
    payload?: { event?: unknown };
    name?: string;
    message?: string;
  };
}

const PY_CALLER = `
import json, boto3, botocore.exceptions
def handler(event, context):
    try:
        out = boto3.client("lambda").invoke(FunctionName=event["target"], Payload=json.dumps({"from": "python"}))
        return {"ok": True, "payload": json.loads(out["Payload"].read())}
    except botocore.exceptions.ClientError as e:
        return {"ok": False, "name": e.response["Error"]["Code"], "message": e.response["Error"]["Message"]}
`;

const ROLE_ARN = (name: string) => `arn:aws:iam::000000000000:role/${name}`;
const FN_ARN = (name: string) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`;

function scenario(label: string, sandbox: "process" | "bwrap") {
  describe(`functions call Lambda with their role's credentials (${label})`, () => {
    let server: TestServer;
    beforeAll(async () => {
      callerZip ??= await callerPackage();
      server = await startServer({ sandbox });
      await server.deploy("callee", "node-cjs");
      await server.deploy("secret", "node-cjs");
      await putRole(server, "invoker", [
        { Effect: "Allow", Action: "lambda:InvokeFunction", Resource: FN_ARN("callee") },
      ]);
      for (const [fn, role] of [
        ["caller", "invoker"],
        ["powerless", "powerless"],
      ] as const) {
        await server.lambda.send(
          new (await import("@aws-sdk/client-lambda")).CreateFunctionCommand({
            FunctionName: fn,
            Runtime: "nodejs20.x",
            Handler: "index.handler",
            Role: ROLE_ARN(role),
            Timeout: 30,
            Code: { ZipFile: callerZip },
          }),
        );
        await (await import("@aws-sdk/client-lambda")).waitUntilFunctionActiveV2(
          { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
          { FunctionName: fn },
        );
      }
      const { CreateFunctionCommand, waitUntilFunctionActiveV2 } = await import("@aws-sdk/client-lambda");
      await server.lambda.send(
        new CreateFunctionCommand({
          FunctionName: "pycaller",
          Runtime: "python3.13",
          Handler: "app.handler",
          Role: ROLE_ARN("invoker"),
          Timeout: 30,
          Code: { ZipFile: await zipEntries([{ name: "app.py", content: PY_CALLER }]) },
        }),
      );
      await waitUntilFunctionActiveV2(
        { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
        { FunctionName: "pycaller" },
      );
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('boto3.client("lambda") inside a Python function invokes what its role allows, and is denied the rest', async () => {
      const allowed = await call(server, "pycaller", "callee");
      expect(allowed).toMatchObject({ ok: true, payload: { event: { from: "python" } } });
      const denied = await call(server, "pycaller", "secret");
      expect(denied).toMatchObject({ ok: false, name: "AccessDeniedException" });
      expect(denied.message).toContain(
        "assumed-role/invoker/pycaller is not authorized to perform: lambda:InvokeFunction",
      );
    });

    it("new LambdaClient({}) inside a function invokes another function its role allows", async () => {
      const r = await call(server, "caller", "callee");
      expect(r.env.keyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
      expect(r.env.hasSecret && r.env.hasToken).toBe(true);
      expect(r.env.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(r).toMatchObject({ ok: true, payload: { event: { from: "caller" } } });
    });

    if (sandbox === "bwrap") {
      it("through its own channel a function is recognised only with its own session credentials: the development key is refused", async () => {
        const r = await call(server, "caller", "callee", true);
        expect(r).toMatchObject({ ok: false, name: "UnrecognizedClientException" });
        expect(r.message).toBe("The security token included in the request is invalid.");
      });
    }

    it("a call the role does not allow is AccessDeniedException naming the assumed role", async () => {
      const r = await call(server, "caller", "secret");
      expect(r.ok).toBe(false);
      expect(r.name).toBe("AccessDeniedException");
      expect(r.message).toBe(
        `User: arn:aws:sts::000000000000:assumed-role/invoker/caller is not authorized to perform: lambda:InvokeFunction on resource: ${FN_ARN("secret")} because no identity-based policy allows the lambda:InvokeFunction action`,
      );
      const p = await call(server, "powerless", "callee");
      expect(p).toMatchObject({ ok: false, name: "AccessDeniedException" });
    });
  });
}

scenario("process driver", "process");
const bwrapUsable = (await detectSandboxDriver("auto", {
  runDir: "/tmp",
  network: "isolated",
  adoptableRoots: [],
}).then(
  (d) => d.driver.name === "bwrap",
  () => false,
)) as boolean;
if (bwrapUsable) scenario("isolated bwrap sandbox", "bwrap");

describe("session credentials", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
    await putRole(server, "lister", [{ Effect: "Allow", Action: "lambda:ListFunctions", Resource: "*" }]);
  });
  afterAll(async () => {
    await server?.stop();
  });

  const client = (c: { accessKeyId: string; secretAccessKey: string; sessionToken: string }) =>
    new LambdaClient({
      endpoint: server.url,
      region: "us-east-1",
      credentials: {
        accessKeyId: c.accessKeyId,
        secretAccessKey: c.secretAccessKey,
        sessionToken: c.sessionToken,
      },
      maxAttempts: 1,
    });

  it("work until they expire; an expired token is ExpiredTokenException; a forged one is unrecognized", async () => {
    const keys = server.platform.auth.keys;
    const live = keys.issueSession(ROLE_ARN("lister"), "fn");
    const c = client(live);
    await c.send(new ListFunctionsCommand({}));
    c.destroy();
    const old = keys.issueSession(ROLE_ARN("lister"), "fn", -1000);
    const e = client(old);
    const err = await rejection(() => e.send(new ListFunctionsCommand({})));
    expect(err.name).toBe("ExpiredTokenException");
    expect(err.$metadata.httpStatusCode).toBe(403);
    e.destroy();
    // Another session's token, or a token with a flipped byte, does not open this key.
    const other = keys.issueSession(ROLE_ARN("lister"), "fn");
    for (const token of [other.sessionToken, `${live.sessionToken.slice(0, -2)}AA`, "garbage"]) {
      const f = client({ ...live, sessionToken: token });
      expect((await rejection(() => f.send(new ListFunctionsCommand({})))).name).toBe(
        "UnrecognizedClientException",
      );
      f.destroy();
    }
    // Without a token at all.
    const n = new LambdaClient({
      endpoint: server.url,
      region: "us-east-1",
      credentials: { accessKeyId: live.accessKeyId, secretAccessKey: live.secretAccessKey },
      maxAttempts: 1,
    });
    expect((await rejection(() => n.send(new ListFunctionsCommand({})))).name).toBe(
      "UnrecognizedClientException",
    );
    n.destroy();
  });
});
