/**
 * A subset of the conformance suite through other real clients than the JS SDK: the AWS CLI v2
 * (Debian's `awscli`, botocore's own Lambda model of its release) and boto3 (Debian's
 * `python3-boto3`), both installed by `scripts/install-system.sh --test`. They sign with SigV4,
 * send their own paths and headers, and parse our errors into their own exception classes.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLE, startServer, type TestServer } from "../helpers/server.js";
import { zipEntries } from "../helpers/zip.js";

const run = promisify(execFile);
let server: TestServer;
let work: string;

const env = () => ({
  PATH: "/usr/bin:/bin",
  HOME: work,
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_DEFAULT_REGION: "us-east-1",
  AWS_PAGER: "",
});

/** Runs Debian's AWS CLI v2 against the server; resolves with exit code, stdout and stderr. */
async function aws(args: string[], extraEnv: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run("/usr/bin/aws", ["--endpoint-url", server.url, ...args], {
      env: { ...env(), ...extraEnv },
    });
    return { code: 0, out: stdout, err: stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

async function boto3(script: string): Promise<unknown> {
  const { stdout } = await run(
    "/usr/bin/python3",
    [
      "-c",
      `import boto3, json, sys\nlam = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1")\n${script}`,
      server.url,
    ],
    { env: env() },
  );
  return JSON.parse(stdout);
}

beforeAll(async () => {
  server = await startServer({ sandbox: "process" });
  work = mkdtempSync(join(tmpdir(), "lambent-cli-"));
  writeFileSync(
    join(work, "fn.zip"),
    await zipEntries([{ name: "index.js", content: "exports.handler = async (e) => ({ echo: e });" }]),
  );
});
afterAll(async () => {
  await server?.stop();
});

describe("the AWS CLI v2", () => {
  it("creates, waits for, invokes, lists and deletes a function", async () => {
    const created = await aws([
      "lambda",
      "create-function",
      "--function-name",
      "cli-fn",
      "--runtime",
      "nodejs20.x",
      "--handler",
      "index.handler",
      "--role",
      ROLE,
      "--zip-file",
      `fileb://${join(work, "fn.zip")}`,
    ]);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.out)).toMatchObject({
      FunctionName: "cli-fn",
      FunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:cli-fn",
    });
    expect((await aws(["lambda", "wait", "function-active-v2", "--function-name", "cli-fn"])).code).toBe(0);
    const out = join(work, "out.json");
    const invoked = await aws([
      "lambda",
      "invoke",
      "--function-name",
      "cli-fn",
      "--cli-binary-format",
      "raw-in-base64-out",
      "--payload",
      '{"a":1}',
      out,
    ]);
    expect(invoked.code).toBe(0);
    expect(JSON.parse(invoked.out)).toMatchObject({ StatusCode: 200, ExecutedVersion: "$LATEST" });
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual({ echo: { a: 1 } });
    const listed = JSON.parse((await aws(["lambda", "list-functions"])).out) as {
      Functions: { FunctionName: string }[];
    };
    expect(listed.Functions.map((f) => f.FunctionName)).toContain("cli-fn");
    expect((await aws(["lambda", "delete-function", "--function-name", "cli-fn"])).code).toBe(0);
  });

  it("names AWS's error types: a missing function, a bad parameter, a wrong secret", async () => {
    const missing = await aws(["lambda", "get-function", "--function-name", "nope"]);
    expect(missing.code).toBe(254);
    expect(missing.err).toContain("(ResourceNotFoundException) when calling the GetFunction operation");
    const bad = await aws(["lambda", "get-function", "--function-name", "bad name!"]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/\(ValidationException\).*failed to satisfy constraint/);
    const { code, err } = await aws(["lambda", "list-functions"], { AWS_SECRET_ACCESS_KEY: "wrong" });
    expect(code).not.toBe(0);
    expect(err).toContain("(InvalidSignatureException)");
  });
});

describe("boto3", () => {
  it("creates, invokes, pages through and deletes functions, and raises the SDK's exception classes", async () => {
    const zip = join(work, "fn.zip");
    const result = (await boto3(`
zip = open(${JSON.stringify(zip)}, "rb").read()
for i in range(3):
    lam.create_function(FunctionName=f"py-{i}", Runtime="nodejs20.x", Handler="index.handler",
                        Role=${JSON.stringify(ROLE)}, Code={"ZipFile": zip})
lam.get_waiter("function_active_v2").wait(FunctionName="py-0", WaiterConfig={"Delay": 1})
r = lam.invoke(FunctionName="py-0", Payload=b'{"b":2}')
names = [f["FunctionName"] for page in lam.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}) for f in page["Functions"]]
try:
    lam.get_function(FunctionName="py-missing")
    err = None
except lam.exceptions.ResourceNotFoundException as e:
    err = e.response["Error"]["Code"]
for i in range(3):
    lam.delete_function(FunctionName=f"py-{i}")
print(json.dumps({"status": r["StatusCode"], "payload": json.loads(r["Payload"].read()), "names": names, "err": err}))
`)) as { status: number; payload: unknown; names: string[]; err: string };
    expect(result.status).toBe(200);
    expect(result.payload).toEqual({ echo: { b: 2 } });
    expect(result.names.filter((n) => n.startsWith("py-")).sort()).toEqual(["py-0", "py-1", "py-2"]);
    expect(result.err).toBe("ResourceNotFoundException");
  });
});
