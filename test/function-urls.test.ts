/**
 * Function URLs: the config API through the AWS SDK, and the HTTP front door with real clients
 * (fetch, curl): payload format 2.0 events, Lambda's response mapping, cookies, binary bodies, CORS,
 * AuthType NONE (resource policy) and AWS_IAM (SigV4), throttles, and RESPONSE_STREAM URLs whose first
 * bytes reach the client while the function still runs.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CloudWatchClient, GetMetricStatisticsCommand } from "@aws-sdk/client-cloudwatch";
import {
  AddPermissionCommand,
  CreateAliasCommand,
  CreateFunctionCommand,
  CreateFunctionUrlConfigCommand,
  DeleteFunctionCommand,
  DeleteFunctionConcurrencyCommand,
  DeleteFunctionUrlConfigCommand,
  GetFunctionUrlConfigCommand,
  InvokeCommand,
  ListFunctionUrlConfigsCommand,
  PublishVersionCommand,
  PutFunctionConcurrencyCommand,
  RemovePermissionCommand,
  UpdateFunctionUrlConfigCommand,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rejection } from "./helpers/control-plane.js";
import { type Gate, startGate } from "./helpers/gate.js";
import { lambdaClient, ROLE, startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

const run = promisify(execFile);

// biome-ignore lint/suspicious/noExplicitAny: events and answers are free-form JSON read field by field
type Json = Record<string, any>;

const ECHO = `
exports.handler = async (event, context) => {
  const q = event.queryStringParameters || {};
  switch (q.mode) {
    case "string": return "Hello, world!";
    case "object": return { message: "hi" };
    case "binary":
      return { statusCode: 200, headers: { "content-type": "image/png" },
               body: Buffer.from([0, 1, 2, 255]).toString("base64"), isBase64Encoded: true };
    case "cookies":
      return { statusCode: 201, headers: { "x-custom": "v", "content-type": "text/plain" },
               cookies: ["a=1; Path=/", "b=2; HttpOnly"], body: "made" };
    case "fail": throw new Error("boom");
    default:
      return { statusCode: 200, headers: { "content-type": "application/json" },
               body: JSON.stringify({ event, requestId: context.awsRequestId }) };
  }
};`;

const STREAMER = `
const http = require("node:http");
const wait = (url) => new Promise((resolve, reject) =>
  http.get(url, (res) => { res.resume(); res.on("end", resolve); }).on("error", reject));
exports.handler = awslambda.streamifyResponse(async (event, stream) => {
  const q = event.queryStringParameters || {};
  stream = awslambda.HttpResponseStream.from(stream, {
    statusCode: 202, headers: { "content-type": "text/plain", "x-streamed": "yes" }, cookies: ["s=1"],
  });
  stream.write("first\\n");
  if (q.gate) await wait(q.gate);
  if (q.fail) throw new Error("part-way");
  stream.end("second\\n");
});`;

let server: TestServer;
let gate: Gate;

async function deploy(name: string, source: string): Promise<void> {
  await server.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: source }]) },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

/** A public URL: AuthType NONE and the two resource-policy statements Lambda requires for it. */
async function publicUrl(name: string, extra: Record<string, unknown> = {}, qualifier?: string) {
  const out = await server.lambda.send(
    new CreateFunctionUrlConfigCommand({
      FunctionName: name,
      AuthType: "NONE",
      ...(qualifier ? { Qualifier: qualifier } : {}),
      ...extra,
    }),
  );
  await server.lambda.send(
    new AddPermissionCommand({
      FunctionName: name,
      StatementId: "FunctionURLAllowPublicAccess",
      Action: "lambda:InvokeFunctionUrl",
      Principal: "*",
      FunctionUrlAuthType: "NONE",
      ...(qualifier ? { Qualifier: qualifier } : {}),
    }),
  );
  // Since October 2025 Lambda also requires lambda:InvokeFunction for calls through a URL.
  await server.lambda.send(
    new AddPermissionCommand({
      FunctionName: name,
      StatementId: "FunctionURLInvokeAllowPublicAccess",
      Action: "lambda:InvokeFunction",
      Principal: "*",
      InvokedViaFunctionUrl: true,
      ...(qualifier ? { Qualifier: qualifier } : {}),
    }),
  );
  return out.FunctionUrl as string;
}

/** The path form of a URL (no DNS needed): /_lambent/urls/<url-id>/. */
function pathForm(functionUrl: string): string {
  const id = new URL(functionUrl).hostname.split(".")[0];
  return `${server.url}/_lambent/urls/${id}`;
}

beforeAll(async () => {
  server = await startServer();
  gate = await startGate();
  await Promise.all([deploy("echo", ECHO), deploy("streamer", STREAMER), deploy("config", ECHO)]);
});

afterAll(async () => {
  await gate?.close();
  await server?.stop();
});

describe("the config API", () => {
  it("creates, gets, lists, updates and deletes a URL on $LATEST and on an alias, never a version", async () => {
    const created = await server.lambda.send(
      new CreateFunctionUrlConfigCommand({
        FunctionName: "config",
        AuthType: "AWS_IAM",
        Cors: { AllowOrigins: ["https://example.com"], MaxAge: 60 },
      }),
    );
    expect(created.$metadata.httpStatusCode).toBe(201);
    const port = new URL(server.url).port;
    expect(created.FunctionUrl).toMatch(
      new RegExp(`^http://[a-z0-9]{32}\\.lambda-url\\.us-east-1\\.localhost:${port}/$`),
    );
    expect(created.FunctionArn).toBe("arn:aws:lambda:us-east-1:000000000000:function:config");
    expect(created.AuthType).toBe("AWS_IAM");
    expect(created.InvokeMode).toBe("BUFFERED");
    expect(created.Cors).toEqual({ AllowOrigins: ["https://example.com"], MaxAge: 60 });
    expect(created.CreationTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    const again = await rejection(() =>
      server.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: "config", AuthType: "NONE" })),
    );
    expect(again.name).toBe("ResourceConflictException");
    expect(again.message).toBe(
      "Failed to create function url config for [functionArn = arn:aws:lambda:us-east-1:000000000000:function:config]. Error message:  FunctionUrlConfig exists for this Lambda function",
    );

    await server.lambda.send(new PublishVersionCommand({ FunctionName: "config" }));
    await server.lambda.send(
      new CreateAliasCommand({ FunctionName: "config", Name: "live", FunctionVersion: "1" }),
    );
    const onAlias = await server.lambda.send(
      new CreateFunctionUrlConfigCommand({
        FunctionName: "config",
        Qualifier: "live",
        AuthType: "NONE",
        InvokeMode: "RESPONSE_STREAM",
      }),
    );
    expect(onAlias.FunctionArn).toBe("arn:aws:lambda:us-east-1:000000000000:function:config:live");
    expect(onAlias.FunctionUrl).not.toBe(created.FunctionUrl);
    const version = await rejection(() =>
      server.lambda.send(
        new CreateFunctionUrlConfigCommand({ FunctionName: "config", Qualifier: "1", AuthType: "NONE" }),
      ),
    );
    expect(version.name).toBe("ValidationException");
    const noAlias = await rejection(() =>
      server.lambda.send(
        new CreateFunctionUrlConfigCommand({ FunctionName: "config", Qualifier: "nope", AuthType: "NONE" }),
      ),
    );
    expect(noAlias.name).toBe("ResourceNotFoundException");

    const got = await server.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: "config" }));
    expect(got.FunctionUrl).toBe(created.FunctionUrl);
    expect(got.LastModifiedTime).toBeDefined();

    const updated = await server.lambda.send(
      new UpdateFunctionUrlConfigCommand({ FunctionName: "config", AuthType: "NONE" }),
    );
    expect(updated.AuthType).toBe("NONE");
    expect(updated.Cors).toEqual({ AllowOrigins: ["https://example.com"], MaxAge: 60 });
    expect(updated.FunctionUrl).toBe(created.FunctionUrl);

    const noCors = await server.lambda.send(
      new UpdateFunctionUrlConfigCommand({ FunctionName: "config", Cors: {} }),
    );
    expect(noCors.Cors).toBeUndefined();
    expect(noCors.AuthType).toBe("NONE");

    const page1 = await server.lambda.send(
      new ListFunctionUrlConfigsCommand({ FunctionName: "config", MaxItems: 1 }),
    );
    expect(page1.FunctionUrlConfigs).toHaveLength(1);
    expect(page1.NextMarker).toBeDefined();
    const page2 = await server.lambda.send(
      new ListFunctionUrlConfigsCommand({ FunctionName: "config", Marker: page1.NextMarker }),
    );
    expect(page2.FunctionUrlConfigs).toHaveLength(1);
    expect(page2.NextMarker).toBeUndefined();

    await server.lambda.send(
      new DeleteFunctionUrlConfigCommand({ FunctionName: "config", Qualifier: "live" }),
    );
    const gone = await rejection(() =>
      server.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: "config", Qualifier: "live" })),
    );
    expect(gone.name).toBe("ResourceNotFoundException");
    const missing = await rejection(() =>
      server.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: "no-such-function" })),
    );
    expect(missing.name).toBe("ResourceNotFoundException");

    // The URL goes with its function.
    const before = await fetch(pathForm(created.FunctionUrl as string));
    expect(before.status).toBe(403); // NONE, but no resource policy allows it yet
    await server.lambda.send(new DeleteFunctionCommand({ FunctionName: "config" }));
    await deploy("config", ECHO);
    const after = await rejection(() =>
      server.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: "config" })),
    );
    expect(after.name).toBe("ResourceNotFoundException");
  });
});

describe("the front door", () => {
  let echo: string;
  beforeAll(async () => {
    echo = await publicUrl("echo", {
      Cors: {
        AllowOrigins: ["https://app.example"],
        AllowMethods: ["GET", "POST"],
        AllowHeaders: ["x-token"],
        ExposeHeaders: ["x-custom"],
        AllowCredentials: true,
        MaxAge: 300,
      },
    });
  });

  it("builds a payload format 2.0 event as Lambda does", async () => {
    const res = await fetch(`${pathForm(echo)}/some/path?a=1&a=2&b=x%20y`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie: "c1=v1; c2=v2", "X-Multi": "one" },
      body: JSON.stringify({ hello: "world" }),
    });
    expect(res.status).toBe(200);
    const { event, requestId } = (await res.json()) as { event: Json; requestId: string };
    expect(res.headers.get("x-amzn-requestid")).toBe(requestId);
    expect(event).toMatchObject({
      version: "2.0",
      routeKey: "$default",
      rawPath: "/some/path",
      rawQueryString: "a=1&a=2&b=x%20y",
      cookies: ["c1=v1", "c2=v2"],
      queryStringParameters: { a: "1,2", b: "x y" },
      body: JSON.stringify({ hello: "world" }),
      isBase64Encoded: false,
    });
    expect(event.headers["x-multi"]).toBe("one");
    expect(event.headers.cookie).toBeUndefined();
    expect(event.headers["content-type"]).toBe("application/json");
    const id = new URL(echo).hostname.split(".")[0];
    expect(event.requestContext).toMatchObject({
      accountId: "anonymous",
      apiId: id,
      domainPrefix: id,
      http: { method: "POST", path: "/some/path", protocol: "HTTP/1.1", sourceIp: "127.0.0.1" },
      requestId,
      routeKey: "$default",
      stage: "$default",
    });
    expect(event.requestContext.authorizer).toBeUndefined();
    expect(event.requestContext.time).toMatch(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/);
  });

  it("answers at http://<url-id>.lambda-url.<region>.localhost:<port>/ (curl)", async () => {
    const { stdout } = await run("curl", ["-s", "-i", `${echo}hello?mode=cookies`]);
    expect(stdout).toMatch(/^HTTP\/1\.1 201/);
    expect(stdout).toMatch(/\r\nset-cookie: a=1; Path=\/\r\n/i);
    expect(stdout).toMatch(/\r\nset-cookie: b=2; HttpOnly\r\n/i);
    expect(stdout).toMatch(/\r\nx-custom: v\r\n/i);
    expect(stdout.endsWith("\r\n\r\nmade")).toBe(true);
    const { stdout: ev } = await run("curl", ["-s", `${echo}p`]);
    const { event } = JSON.parse(ev) as { event: Json };
    expect(event.requestContext.domainName).toBe(new URL(echo).hostname);
    expect(event.headers.host).toBe(new URL(echo).host);
  });

  it("maps answers without a statusCode, binary bodies both ways, and function errors", async () => {
    const str = await fetch(`${pathForm(echo)}/?mode=string`);
    expect(str.status).toBe(200);
    expect(str.headers.get("content-type")).toBe("application/json");
    expect(await str.text()).toBe('"Hello, world!"');
    const obj = await fetch(`${pathForm(echo)}/?mode=object`);
    expect(await obj.json()).toEqual({ message: "hi" });

    const bin = await fetch(`${pathForm(echo)}/?mode=binary`);
    expect(bin.headers.get("content-type")).toBe("image/png");
    expect(Buffer.from(await bin.arrayBuffer())).toEqual(Buffer.from([0, 1, 2, 255]));

    const upload = Buffer.from([0xff, 0x00, 0x10, 0x80]);
    const sent = await fetch(`${pathForm(echo)}/up`, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: upload,
    });
    const { event } = (await sent.json()) as { event: Json };
    expect(event.isBase64Encoded).toBe(true);
    expect(Buffer.from(event.body, "base64")).toEqual(upload);

    const failed = await fetch(`${pathForm(echo)}/?mode=fail`);
    expect(failed.status).toBe(502);
    expect(await failed.json()).toEqual({ Message: "Internal Server Error" });
  });

  it("answers CORS preflights itself and adds CORS headers to answers", async () => {
    const pre = await fetch(`${pathForm(echo)}/x`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "x-token",
      },
    });
    expect(pre.status).toBe(200);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(pre.headers.get("access-control-allow-methods")).toBe("GET,POST");
    expect(pre.headers.get("access-control-allow-headers")).toBe("x-token");
    expect(pre.headers.get("access-control-allow-credentials")).toBe("true");
    expect(pre.headers.get("access-control-max-age")).toBe("300");

    const other = await fetch(`${pathForm(echo)}/x`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();

    const res = await fetch(`${pathForm(echo)}/?mode=cookies`, {
      headers: { origin: "https://app.example" },
    });
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(res.headers.get("access-control-expose-headers")).toBe("x-custom");
  });

  it("NONE needs the resource policy; an unknown URL id is 403 as well", async () => {
    const url = (
      await server.lambda.send(
        new CreateFunctionUrlConfigCommand({ FunctionName: "config", AuthType: "NONE" }),
      )
    ).FunctionUrl as string;
    const denied = await fetch(pathForm(url));
    expect(denied.status).toBe(403);
    expect(await denied.json()).toEqual({ Message: "Forbidden" });
    // A statement for another auth type does not open a NONE URL.
    await server.lambda.send(
      new AddPermissionCommand({
        FunctionName: "config",
        StatementId: "iam-only",
        Action: "lambda:InvokeFunctionUrl",
        Principal: "*",
        FunctionUrlAuthType: "AWS_IAM",
      }),
    );
    expect((await fetch(pathForm(url))).status).toBe(403);
    // lambda:InvokeFunctionUrl for NONE alone is not enough (Lambda's model since October 2025)…
    await server.lambda.send(
      new AddPermissionCommand({
        FunctionName: "config",
        StatementId: "url",
        Action: "lambda:InvokeFunctionUrl",
        Principal: "*",
        FunctionUrlAuthType: "NONE",
      }),
    );
    expect((await fetch(pathForm(url))).status).toBe(403);
    // …with lambda:InvokeFunction under lambda:InvokedViaFunctionUrl it opens; that statement does not
    // open the plain Invoke API to anyone.
    await server.lambda.send(
      new AddPermissionCommand({
        FunctionName: "config",
        StatementId: "via-url",
        Action: "lambda:InvokeFunction",
        Principal: "*",
        InvokedViaFunctionUrl: true,
      }),
    );
    expect((await fetch(pathForm(url))).status).toBe(200);
    expect((await fetch(`${server.url}/_lambent/urls/${"a".repeat(32)}/`)).status).toBe(403);
  });

  it("AWS_IAM needs a SigV4 request from an allowed principal, and fills requestContext.authorizer.iam", async () => {
    const url = (
      await server.lambda.send(
        new UpdateFunctionUrlConfigCommand({ FunctionName: "config", AuthType: "AWS_IAM" }),
      )
    ).FunctionUrl as string;
    const unsigned = await fetch(pathForm(url));
    expect(unsigned.status).toBe(403);
    const signed = await signedFetch(`${pathForm(url)}/who?x=1`, { method: "POST", body: "hi" });
    expect(signed.status).toBe(200);
    const { event } = (await signed.json()) as { event: Json };
    expect(event.requestContext.accountId).toBe("000000000000");
    expect(event.requestContext.authorizer.iam).toMatchObject({
      accessKey: "test",
      accountId: "000000000000",
      userArn: "arn:aws:iam::000000000000:root",
    });
    const wrong = await signedFetch(
      `${pathForm(url)}/`,
      {},
      { accessKeyId: "test", secretAccessKey: "wrong" },
    );
    expect(wrong.status).toBe(403);

    // A key whose policy says nothing may not; one allowed lambda:InvokeFunctionUrl may.
    const key = async (name: string, statements: unknown[] | null) => {
      const res = await signedFetch(`${server.url}/_lambent/keys`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          UserName: name,
          ...(statements ? { Policy: JSON.stringify({ Version: "2012-10-17", Statement: statements }) } : {}),
        }),
      });
      const k = ((await res.json()) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } })
        .AccessKey;
      return { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey };
    };
    const nobody = await key("nobody", null);
    // The statement the test before added (principal *, AuthType AWS_IAM) lets any signed caller in.
    expect((await signedFetch(`${pathForm(url)}/`, {}, nobody)).status).toBe(200);
    await server.lambda.send(
      new RemovePermissionCommand({ FunctionName: "config", StatementId: "iam-only" }),
    );
    expect((await signedFetch(`${pathForm(url)}/`, {}, nobody)).status).toBe(403);
    // The lambda:InvokedViaFunctionUrl statement (principal *) does not open the Invoke API to that key.
    const asNobody = lambdaClient(server.url);
    asNobody.config.credentials = async () => nobody;
    const invokeDenied = await rejection(() => asNobody.send(new InvokeCommand({ FunctionName: "config" })));
    expect(invokeDenied.name).toBe("AccessDeniedException");
    asNobody.destroy();
    const caller = await key("caller", [
      {
        Effect: "Allow",
        Action: ["lambda:InvokeFunctionUrl", "lambda:InvokeFunction"],
        Resource: "arn:aws:lambda:us-east-1:000000000000:function:config",
      },
    ]);
    const ok = await signedFetch(`${pathForm(url)}/`, {}, caller);
    expect(ok.status).toBe(200);
    const seen = ((await ok.json()) as { event: Json }).event;
    expect(seen.requestContext.authorizer.iam.userArn).toBe("arn:aws:iam::000000000000:user/caller");
  });

  it("goes through the one invoke path: throttled with 429 when no concurrency is left; START/END/REPORT logged", async () => {
    await server.lambda.send(
      new PutFunctionConcurrencyCommand({ FunctionName: "echo", ReservedConcurrentExecutions: 0 }),
    );
    await server.platform.frontend.reservationsLoaded;
    const res = await fetch(`${pathForm(echo)}/`);
    expect(res.status).toBe(429);
    await server.lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: "echo" }));
    await server.platform.frontend.reservationsLoaded;
    const ok = await fetch(`${pathForm(echo)}/`);
    expect(ok.status).toBe(200);
    // START/END/REPORT under the request id the client was given.
    const requestId = ok.headers.get("x-amzn-requestid");
    await server.platform.logs.flush();
    const logs = (await (await signedFetch(`${server.url}/_lambent/logs/echo`)).json()) as {
      events: Array<{ message: string }>;
    };
    const lines = logs.events.map((e) => e.message);
    expect(lines).toContain(`END RequestId: ${requestId}`);
    expect(lines.some((l) => l.startsWith(`START RequestId: ${requestId} Version: $LATEST`))).toBe(true);
    expect(lines.some((l) => l.startsWith(`REPORT RequestId: ${requestId}\t`))).toBe(true);
    // ... and measured like any invoke: the throttle and the invoke in AWS/Lambda (CloudWatch API).
    await server.platform.metrics.flush();
    const cw = new CloudWatchClient({
      endpoint: server.url,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    try {
      const sum = async (MetricName: string) => {
        const out = await cw.send(
          new GetMetricStatisticsCommand({
            Namespace: "AWS/Lambda",
            MetricName,
            Dimensions: [{ Name: "FunctionName", Value: "echo" }],
            StartTime: new Date(Date.now() - 3_600_000),
            EndTime: new Date(Date.now() + 60_000),
            Period: 3600,
            Statistics: ["Sum"],
          }),
        );
        return (out.Datapoints ?? []).reduce((n, d) => n + (d.Sum ?? 0), 0);
      };
      expect(await sum("Throttles")).toBeGreaterThanOrEqual(1);
      expect(await sum("Invocations")).toBeGreaterThanOrEqual(1);
    } finally {
      cw.destroy();
    }
  });

  it("refuses a body over the 6 MB limit with 413", async () => {
    const res = await fetch(`${pathForm(echo)}/`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "x".repeat(6 * 1024 * 1024 + 1),
    });
    expect(res.status).toBe(413);
  });
});

describe("RESPONSE_STREAM URLs", () => {
  it("send the prelude's status, headers and cookies, then the first bytes while the function still runs", async () => {
    const url = await publicUrl("streamer", { InvokeMode: "RESPONSE_STREAM" });
    const res = await fetch(`${pathForm(url)}/?gate=${encodeURIComponent(gate.url)}`);
    expect(res.status).toBe(202);
    expect(res.headers.get("x-streamed")).toBe("yes");
    expect(res.headers.get("set-cookie")).toBe("s=1");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value ?? []).toString()).toBe("first\n");
    // The function is still held at the gate: the first bytes came before it finished.
    await gate.waiting(1);
    gate.open();
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += Buffer.from(value).toString();
    }
    expect(rest).toBe("second\n");
  });

  it("cut the connection when the function fails after its first bytes (the client sees an incomplete answer)", async () => {
    const url = (await server.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: "streamer" })))
      .FunctionUrl as string;
    const res = await fetch(`${pathForm(url)}/?fail=1`);
    expect(res.status).toBe(202);
    await expect(res.text()).rejects.toThrow();
    // The URL still serves the next request.
    expect(await (await fetch(`${pathForm(url)}/`)).text()).toBe("first\nsecond\n");
  });
});

/** A handler bundled with its npm dependencies (from this repository's node_modules) into one file. */
async function bundled(name: string, source: string): Promise<void> {
  const out = await build({
    stdin: { contents: source, resolveDir: fileURLToPath(new URL("..", import.meta.url)), loader: "js" },
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    write: false,
    logLevel: "silent",
  });
  await server.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      MemorySize: 256,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: out.outputFiles[0]?.text ?? "" }]) },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

const EXPRESS_APP = `
const express = require("express");
const serverless = require("serverless-http");
const app = express();
app.use(express.json());
app.get("/hello/:name", (req, res) => {
  res.cookie("seen", "yes", { httpOnly: true });
  res.json({ hello: req.params.name, q: req.query, cookie: req.headers.cookie ?? null });
});
app.post("/items", (req, res) => res.status(201).json({ created: req.body }));
app.get("/bytes", (req, res) => res.type("application/octet-stream").send(Buffer.from([0, 1, 2, 250])));
exports.handler = serverless(app, { binary: ["application/octet-stream"] });
`;

const POWERTOOLS_APP = `
const { Router } = require("@aws-lambda-powertools/event-handler/http");
const app = new Router();
app.get("/todos/:id", ({ params }) => ({ id: params.id, title: "write tests" }));
app.post("/todos", async ({ req }) => ({ statusCode: 201, body: { saved: await req.json() } }));
exports.handler = (event, context) => app.resolve(event, context);
`;

describe("web frameworks behind a URL", () => {
  it("an Express app through serverless-http: routes, JSON bodies, cookies both ways, binary answers", async () => {
    await bundled("express", EXPRESS_APP);
    const url = pathForm(await publicUrl("express"));
    const hello = await fetch(`${url}/hello/ada?x=1`, { headers: { cookie: "a=1; b=2" } });
    expect(hello.status).toBe(200);
    expect(await hello.json()).toEqual({ hello: "ada", q: { x: "1" }, cookie: "a=1; b=2" });
    expect(hello.headers.get("set-cookie")).toBe("seen=yes; Path=/; HttpOnly");

    const created = await fetch(`${url}/items`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "pen" }),
    });
    expect(created.status).toBe(201);
    expect(await created.json()).toEqual({ created: { name: "pen" } });

    const bytes = await fetch(`${url}/bytes`);
    expect(bytes.headers.get("content-type")).toBe("application/octet-stream");
    expect(Buffer.from(await bytes.arrayBuffer())).toEqual(Buffer.from([0, 1, 2, 250]));
    expect((await fetch(`${url}/nowhere`)).status).toBe(404);
  });

  it("a Powertools event-handler router", async () => {
    await bundled("powertools", POWERTOOLS_APP);
    const url = pathForm(await publicUrl("powertools"));
    const got = await fetch(`${url}/todos/7`);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual({ id: "7", title: "write tests" });
    const saved = await fetch(`${url}/todos`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ title: "ship" }),
    });
    expect(saved.status).toBe(201);
    expect(await saved.json()).toEqual({ saved: { title: "ship" } });
    expect((await fetch(`${url}/missing`)).status).toBe(404);
  });
});
