/**
 * SigV4 on every request, with the real AWS SDK v3 signing: the right key gets
 * in; a wrong key, a wrong secret, a date outside ±15 minutes, a tampered body,
 * an expired presigned URL and every malformed credential get AWS's own error.
 */
import { execFile } from "node:child_process";
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  GetFunctionCommand,
  InvokeCommand,
  LambdaClient,
  type LambdaServiceException,
  ListFunctionsCommand,
} from "@aws-sdk/client-lambda";
import { SignatureV4 } from "@smithy/signature-v4";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { amzDate, presignUrl, sha256Hex, signature, signingKey, signRequest } from "../src/auth/sigv4.js";
import { Platform } from "../src/platform.js";
import { rejection } from "./helpers/control-plane.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";

const run = promisify(execFile);

function bytes(d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof d === "string") return d;
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** The SDK signer's hash interface over Node's crypto. */
class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret ? createHmac("sha256", bytes(secret)) : createHash("sha256");
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}
const HttpRequest = class {
  constructor(o: Record<string, unknown>) {
    Object.assign(this, { query: {}, ...o });
  }
} as unknown as new (
  o: Record<string, unknown>,
) => {
  method: string;
  protocol: string;
  hostname: string;
  path: string;
  headers: Record<string, string>;
  query: Record<string, string>;
};
let server: TestServer;
let admin: { accessKeyId: string; secretAccessKey: string };

function client(
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  extra = {},
) {
  return new LambdaClient({
    endpoint: server.url,
    region: "us-east-1",
    credentials,
    maxAttempts: 1,
    ...extra,
  });
}

async function errorOf(res: Response): Promise<{ status: number; type: string | null; message: string }> {
  const body = (await res.json()) as { message?: string; Message?: string };
  return {
    status: res.status,
    type: res.headers.get("x-amzn-errortype"),
    message: body.message ?? body.Message ?? "",
  };
}

beforeAll(async () => {
  server = await startServer();
  await server.deploy("echo", "node-cjs");
  const k = await server.platform.auth.keys.create("alice", {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: ["*"], Resource: ["*"] }],
  });
  admin = { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey };
});
afterAll(async () => {
  await server?.stop();
});

describe("SigV4 with the AWS SDK", () => {
  it("a created key signs every operation; the development credentials work on loopback", async () => {
    const c = client(admin);
    const fns = await c.send(new ListFunctionsCommand({}));
    expect(fns.Functions?.map((f) => f.FunctionName)).toContain("echo");
    const out = await c.send(
      new InvokeCommand({ FunctionName: "echo", Payload: Buffer.from('{"a":"é ü"}') }),
    );
    expect(JSON.parse(Buffer.from(out.Payload as Uint8Array).toString())).toMatchObject({
      event: { a: "é ü" },
    });
    // Qualifiers with $ travel escaped in the query; the canonical query must agree with the SDK's.
    await c.send(new GetFunctionCommand({ FunctionName: "echo", Qualifier: "$LATEST" }));
    await c.send(
      new GetFunctionCommand({ FunctionName: "arn:aws:lambda:us-east-1:000000000000:function:echo" }),
    );
    c.destroy();
  });

  it("an unknown access key is UnrecognizedClientException (403)", async () => {
    const c = client({ accessKeyId: "AKIAAAAAAAAAAAAAAAAA", secretAccessKey: "x" });
    const err = await rejection(() => c.send(new ListFunctionsCommand({})));
    expect(err.name).toBe("UnrecognizedClientException");
    expect(err.$metadata.httpStatusCode).toBe(403);
    expect(err.message).toBe("The security token included in the request is invalid.");
    c.destroy();
  });

  it("a wrong secret is InvalidSignatureException (403)", async () => {
    const c = client({ accessKeyId: admin.accessKeyId, secretAccessKey: `${admin.secretAccessKey}x` });
    const err = await rejection(() => c.send(new ListFunctionsCommand({})));
    expect(err.name).toBe("InvalidSignatureException");
    expect(err.$metadata.httpStatusCode).toBe(403);
    expect(err.message).toBe(
      "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    );
    c.destroy();
  });

  it("a date more than 15 minutes old or ahead is refused with AWS's 'Signature expired' message", async () => {
    for (const [offset, re] of [
      [
        -16 * 60_000,
        /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$/,
      ],
      [
        16 * 60_000,
        /^Signature not yet current: \d{8}T\d{6}Z is still later than \d{8}T\d{6}Z \(\d{8}T\d{6}Z \+ 15 min\.\)$/,
      ],
    ] as const) {
      const c = client(admin, { systemClockOffset: offset });
      const err = await rejection(() => c.send(new ListFunctionsCommand({})));
      expect(err.name).toBe("InvalidSignatureException");
      expect(err.$metadata.httpStatusCode).toBe(403);
      expect(err.message).toMatch(re);
      c.destroy();
    }
    // 14 minutes off is still accepted.
    const ok = client(admin, { systemClockOffset: -14 * 60_000 });
    await ok.send(new ListFunctionsCommand({}));
    ok.destroy();
  });

  it("the development credentials are refused when turned off", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lambent-auth-"));
    const p = await Platform.start({
      port: 0,
      quiet: true,
      sandbox: "process",
      dataDir: dir,
      devCredentials: false,
    });
    try {
      const c = new LambdaClient({
        endpoint: p.url,
        region: "us-east-1",
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
        maxAttempts: 1,
      });
      const err = await rejection(() => c.send(new ListFunctionsCommand({})));
      expect(err.name).toBe("UnrecognizedClientException");
      c.destroy();
    } finally {
      await p.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("requests signed by hand", () => {
  const url = () => new URL(`${server.url}/2015-03-31/functions/echo/invocations`);

  it("no credentials at all is MissingAuthenticationTokenException", async () => {
    const e = await errorOf(await fetch(`${server.url}/2015-03-31/functions`));
    expect(e).toEqual({
      status: 403,
      type: "MissingAuthenticationTokenException",
      message: "Missing Authentication Token",
    });
    // /health stays open.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it("an Authorization header that is not SigV4 is IncompleteSignatureException naming what is missing", async () => {
    const e = await errorOf(
      await fetch(`${server.url}/2015-03-31/functions`, { headers: { authorization: "Bearer abc.def" } }),
    );
    expect(e.status).toBe(403);
    expect(e.type).toBe("IncompleteSignatureException");
    expect(e.message).toBe(
      "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=Bearer abc.def",
    );
    const noEq = await errorOf(
      await fetch(`${server.url}/2015-03-31/functions`, {
        headers: { authorization: "AWS4-HMAC-SHA256 Credential", "x-amz-date": amzDate(Date.now()) },
      }),
    );
    expect(noEq.type).toBe("IncompleteSignatureException");
    expect(noEq.message).toMatch(/not a valid key=value pair \(missing equal-sign\)/);
  });

  it("a tampered body is InvalidSignatureException; the untouched one is accepted", async () => {
    const body = '{"n":1}';
    const headers = signRequest({
      method: "POST",
      url: url(),
      body,
      region: "us-east-1",
      credentials: admin,
    });
    const ok = await fetch(url(), { method: "POST", headers, body });
    expect(ok.status).toBe(200);
    const bad = await errorOf(await fetch(url(), { method: "POST", headers, body: '{"n":2}' }));
    expect(bad.status).toBe(403);
    expect(bad.type).toBe("InvalidSignatureException");
    // Without the x-amz-content-sha256 header the server hashes the body itself.
    const { "x-amz-content-sha256": _drop, ...rest } = headers;
    const resigned = signRequest({
      method: "POST",
      url: url(),
      body,
      region: "us-east-1",
      credentials: admin,
    });
    delete resigned["x-amz-content-sha256"];
    const unsignedHash = await errorOf(await fetch(url(), { method: "POST", headers: resigned, body }));
    expect(unsignedHash.type).toBe("InvalidSignatureException"); // signed with the header, sent without it
    expect(rest).toBeDefined();
  });

  it("a signature for another path, method or query is refused", async () => {
    const headers = signRequest({
      method: "GET",
      url: new URL(`${server.url}/2015-03-31/functions`),
      region: "us-east-1",
      credentials: admin,
    });
    for (const [method, path] of [
      ["GET", "/2015-03-31/functions?MaxItems=1"],
      ["DELETE", "/2015-03-31/functions"],
      ["GET", "/2015-03-31/functions/echo"],
    ] as const) {
      const e = await errorOf(await fetch(`${server.url}${path}`, { method, headers }));
      expect(e.type).toBe("InvalidSignatureException");
    }
  });

  it("UNSIGNED-PAYLOAD is honoured when the client signs it", async () => {
    const u = url();
    const date = amzDate(Date.now());
    const scope = `${date.slice(0, 8)}/us-east-1/lambda/aws4_request`;
    const signer = new SignatureV4({
      credentials: admin,
      region: "us-east-1",
      service: "lambda",
      sha256: Sha256,
    });
    const req = new HttpRequest({
      method: "POST",
      protocol: "http:",
      hostname: u.hostname,
      port: Number(u.port),
      path: u.pathname,
      headers: { host: u.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
      body: '{"u":1}',
    });
    const signed = await signer.sign(req);
    expect(String(signed.headers.authorization)).toContain(scope);
    const res = await fetch(u, {
      method: "POST",
      headers: signed.headers as Record<string, string>,
      body: '{"u":1}',
    });
    expect(res.status).toBe(200);
  });

  it("an aws-chunked streaming body is verified chunk by chunk and decoded", async () => {
    const u = url();
    const now = Date.now();
    const date = amzDate(now);
    const scope = `${date.slice(0, 8)}/us-east-1/lambda/aws4_request`;
    const payload = Buffer.from(JSON.stringify({ chunked: "x".repeat(100) }));
    const chunks = [payload.subarray(0, 64), payload.subarray(64), Buffer.alloc(0)];
    const headers: Record<string, string> = {
      host: u.host,
      "x-amz-date": date,
      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "content-encoding": "aws-chunked",
      "x-amz-decoded-content-length": String(payload.length),
    };
    const signed = Object.keys(headers).sort();
    const canonical = [
      "POST",
      u.pathname,
      "",
      `${signed.map((h) => `${h}:${headers[h]}`).join("\n")}\n`,
      signed.join(";"),
      "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    ].join("\n");
    const key = signingKey(admin.secretAccessKey, date.slice(0, 8), "us-east-1", "lambda");
    const seed = signature(key, `AWS4-HMAC-SHA256\n${date}\n${scope}\n${sha256Hex(canonical)}`);
    const build = (tamper: boolean) => {
      let prev = seed;
      const parts: Buffer[] = [];
      for (const c of chunks) {
        const data = tamper && c.length > 0 ? Buffer.from(c.toString().replace("x", "y")) : c;
        const sig = signature(
          key,
          ["AWS4-HMAC-SHA256-PAYLOAD", date, scope, prev, sha256Hex(""), sha256Hex(c)].join("\n"),
        );
        prev = sig;
        parts.push(
          Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`),
          data,
          Buffer.from("\r\n"),
        );
      }
      return Buffer.concat(parts);
    };
    const send = (body: Buffer) =>
      fetch(u, {
        method: "POST",
        headers: {
          ...headers,
          authorization: `AWS4-HMAC-SHA256 Credential=${admin.accessKeyId}/${scope}, SignedHeaders=${signed.join(";")}, Signature=${seed}`,
        },
        body: new Uint8Array(body),
      });
    const ok = await send(build(false));
    expect(ok.status).toBe(200);
    expect(JSON.parse(await ok.text())).toMatchObject({ event: { chunked: "x".repeat(100) } });
    const bad = await errorOf(await send(build(true)));
    expect(bad.type).toBe("InvalidSignatureException");
  });
});

describe("presigned URLs", () => {
  it("Code.Location is presigned for 10 minutes and works without other credentials", async () => {
    const got = await server.lambda.send(new GetFunctionCommand({ FunctionName: "echo" }));
    const loc = new URL(got.Code?.Location as string);
    expect(loc.searchParams.get("X-Amz-Expires")).toBe("600");
    expect(loc.searchParams.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
    const res = await fetch(loc);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/zip");
    // The link's signature covers its path: another package's path is refused.
    const other = new URL(loc);
    other.pathname = other.pathname.replace(/[0-9a-f]{64}/, "0".repeat(64));
    expect((await errorOf(await fetch(other))).type).toBe("InvalidSignatureException");
    // The presigning credential downloads packages and nothing else.
    const sneaky = new URL(loc);
    sneaky.pathname = "/2015-03-31/functions";
    expect((await fetch(sneaky)).status).toBe(403);
  });

  it("an expired presigned URL is refused", async () => {
    const u = new URL(`${server.url}/2015-03-31/functions`);
    const fresh = presignUrl(u, { region: "us-east-1", credentials: admin, expiresSeconds: 60 });
    expect((await fetch(fresh)).status).toBe(200);
    const old = presignUrl(u, {
      region: "us-east-1",
      credentials: admin,
      expiresSeconds: 60,
      now: Date.now() - 120_000,
    });
    const e = await errorOf(await fetch(old));
    expect(e.status).toBe(403);
    expect(e.type).toBe("InvalidSignatureException");
    expect(e.message).toMatch(/^Signature expired: /);
    const tampered = fresh.replace(
      /X-Amz-Signature=([0-9a-f])/,
      (_m, c: string) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`,
    );
    expect((await errorOf(await fetch(tampered))).type).toBe("InvalidSignatureException");
    const noExpiry = fresh.replace(/X-Amz-Expires=\d+/, "X-Amz-Expires=999999999");
    expect((await errorOf(await fetch(noExpiry))).type).toBe("IncompleteSignatureException");
  });

  it("the SDK's own presigner (@smithy/signature-v4) is accepted", async () => {
    const u = new URL(`${server.url}/2015-03-31/functions`);
    const signer = new SignatureV4({
      credentials: admin,
      region: "us-east-1",
      service: "lambda",
      sha256: Sha256,
    });
    const presigned = await signer.presign(
      new HttpRequest({
        method: "GET",
        protocol: "http:",
        hostname: u.hostname,
        port: Number(u.port),
        path: u.pathname,
        headers: { host: u.host },
      }),
      { expiresIn: 300 },
    );
    const q = new URLSearchParams(presigned.query as Record<string, string>);
    const res = await fetch(`${server.url}${presigned.path}?${q}`);
    expect(res.status).toBe(200);
  });
});

describe("lambent endpoints and the CLI", () => {
  it("/_lambent routes need a signature too", async () => {
    for (const path of [
      "/_lambent/queue",
      "/_lambent/logs/echo",
      "/_lambent/keys",
      "/_lambent/event-source-mappings/stats",
    ]) {
      expect((await errorOf(await fetch(`${server.url}${path}`))).type).toBe(
        "MissingAuthenticationTokenException",
      );
      expect((await signedFetch(`${server.url}${path}`)).status).toBe(200);
    }
  });

  it("a server bound beyond loopback refuses to start without keys, and starts once `keys create --bootstrap` made one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lambent-auth-"));
    try {
      await expect(
        Platform.start({ host: "0.0.0.0", port: 0, quiet: true, sandbox: "process", dataDir: dir }),
      ).rejects.toThrow(
        /refusing to listen on 0\.0\.0\.0: no access keys exist.*lambent keys create --bootstrap --data-dir/,
      );
      const { stdout } = await run(
        process.execPath,
        ["bin/lambent.js", "keys", "create", "--bootstrap", "--data-dir", dir, "--json"],
        {
          env: { PATH: process.env.PATH ?? "" },
        },
      );
      const key = (JSON.parse(stdout) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string } })
        .AccessKey;
      expect(key.AccessKeyId).toMatch(/^AKIA[A-Z2-7]{16}$/);
      expect(statSync(join(dir, "server.key")).mode & 0o777).toBe(0o600);
      const p = await Platform.start({
        host: "0.0.0.0",
        port: 0,
        quiet: true,
        sandbox: "process",
        dataDir: dir,
      });
      try {
        const port = new URL(p.url).port;
        const mk = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
          new LambdaClient({
            endpoint: `http://127.0.0.1:${port}`,
            region: "us-east-1",
            credentials,
            maxAttempts: 1,
          });
        const good = mk({ accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey });
        await good.send(new ListFunctionsCommand({}));
        good.destroy();
        // Beyond loopback the development credentials do not work.
        const dev = mk({ accessKeyId: "test", secretAccessKey: "test" });
        const err = (await dev
          .send(new ListFunctionsCommand({}))
          .catch((e: unknown) => e)) as LambdaServiceException;
        expect(err.name).toBe("UnrecognizedClientException");
        dev.destroy();
      } finally {
        await p.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
