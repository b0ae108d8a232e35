/**
 * Attacks on the HTTP front door (issue 12, finding 9): slow headers and slow
 * bodies are cut off, one client address cannot hold more than its share of
 * connections, the Host header never reaches Code.Location, and every
 * malformed request gets an AWS-shaped error (status, x-amzn-ErrorType, JSON
 * body), never a 500 or a framework's default body.
 */
import { request as httpRequest } from "node:http";
import { connect, type Socket } from "node:net";
import { GetFunctionCommand, PublishLayerVersionCommand } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRequest } from "../../src/auth/sigv4.js";
import { DEFAULT_HTTP, DEFAULT_LIMITS } from "../../src/config.js";
import { Platform } from "../../src/platform.js";
import { lambdaClient, startServer, type TestServer } from "../helpers/server.js";
import { DEV_CREDENTIALS } from "../helpers/signed.js";
import { zipEntries } from "../helpers/zip.js";

/**
 * The head of a SigV4-signed HTTP/1.1 request (the server authenticates every request), signed for
 * `body` and the Host of `url`, whatever is then really sent.
 */
function signedHead(method: string, url: string, body = "", headers: Record<string, string> = {}): string {
  const u = new URL(url);
  const signed = signRequest({
    method,
    url: u,
    headers,
    body,
    region: "us-east-1",
    credentials: DEV_CREDENTIALS,
  });
  const lines = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`];
  for (const [k, v] of Object.entries(signed)) lines.push(`${k}: ${v}`);
  return `${lines.join("\r\n")}\r\n`;
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parse(raw: string): RawAnswer {
  const split = raw.indexOf("\r\n\r\n");
  const [statusLine = "", ...lines] = raw.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1]), headers, body: raw.slice(split + 4) };
}

/** Send bytes on a fresh connection and read everything until the server closes it. */
function rawExchange(
  url: string,
  bytes: string | Buffer,
  opts: { endWrite?: boolean } = {},
): Promise<string> {
  const { port, hostname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let out = "";
    socket.on("data", (d: Buffer) => {
      out += d.toString("latin1");
    });
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
    if (opts.endWrite === false) socket.write(bytes);
    else socket.end(bytes);
  });
}

function expectAwsError(a: RawAnswer, status: number, type: string, message?: RegExp): void {
  expect(a.status).toBe(status);
  expect(a.headers["x-amzn-errortype"]).toBe(type);
  expect(a.headers["content-type"]).toMatch(/^application\/json/);
  const body = JSON.parse(a.body) as Record<string, unknown>;
  expect(body.Type).toBe("User");
  expect(typeof body.message).toBe("string");
  if (message) expect(body.message).toMatch(message);
  // Nothing of the framework's default body.
  expect(body).not.toHaveProperty("statusCode");
  expect(body).not.toHaveProperty("code");
}

describe("malformed requests get AWS-shaped errors", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  const send = async (bytes: string) => parse(await rawExchange(server.url, bytes));
  const close = "Host: x\r\nConnection: close\r\n";

  it("bad URL encoding in the path", async () => {
    for (const path of ["/2015-03-31/functions/%E0%A4%A", "/2015-03-31/functions/a%zz/configuration"]) {
      const a = await send(`GET ${path} HTTP/1.1\r\n${close}\r\n`);
      expectAwsError(a, 400, "InvalidRequestContentException", /The request URL is not valid/);
      expect(a.headers["x-amzn-requestid"]).toBeTruthy();
    }
  });

  it("a path parameter over the router's limit", async () => {
    const a = await send(`GET /2015-03-31/functions/${"a".repeat(3000)} HTTP/1.1\r\n${close}\r\n`);
    expectAwsError(a, 400, "ValidationException", /path parameter .* is too long/);
    expect(a.body.length).toBeLessThan(1000);
  });

  it("headers over Node's limit", async () => {
    const a = await send(
      `GET /2015-03-31/functions HTTP/1.1\r\n${close}X-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    expectAwsError(a, 431, "InvalidRequestContentException", /headers are larger than/);
  });

  it("invalid JSON, with and without a content type", async () => {
    for (const ct of [{ "content-type": "application/json" }, {}]) {
      const head = signedHead("POST", `${server.url}/2015-03-31/functions`, "{bad}", ct);
      const a = await send(`${head}Connection: close\r\nContent-Length: 5\r\n\r\n{bad}`);
      expectAwsError(a, 400, "InvalidRequestContentException", /Could not parse request body into json/);
    }
  });

  it("an unparseable media type", async () => {
    const head = signedHead("POST", `${server.url}/2015-03-31/functions`, "{}", { "content-type": ";;;" });
    const a = await send(`${head}Connection: close\r\nContent-Length: 2\r\n\r\n{}`);
    expectAwsError(a, 415, "UnsupportedMediaTypeException");
  });

  it("a body over the limit, announced by Content-Length", async () => {
    const head = signedHead("POST", `${server.url}/2015-03-31/functions`, "{}");
    const a = await send(`${head}Connection: close\r\nContent-Length: 999999999\r\n\r\n{}`);
    expectAwsError(a, 413, "RequestEntityTooLargeException", /Request must be smaller than/);
  });

  it("requests that are not HTTP/1.1 at all, or smuggle a body", async () => {
    const cases = [
      "HELLO\r\n\r\n",
      `POST /2015-03-31/functions HTTP/1.1\r\n${close}Content-Length: abc\r\n\r\n{}`,
      `POST /2015-03-31/functions HTTP/1.1\r\n${close}Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      `GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n`,
      "GET /\0 HTTP/1.1\r\n\r\n",
    ];
    for (const c of cases) expectAwsError(await send(c), 400, "InvalidRequestContentException");
  });

  it("the server still answers normally afterwards", async () => {
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
  });
});

describe("Code.Location comes from the server's URL, never the Host header", () => {
  let server: TestServer;
  let layerArn: string;
  beforeAll(async () => {
    server = await startServer({ publicUrl: "https://lambda.example.com:8443/" });
    await server.deploy("loc", "node-cjs");
    const zip = await zipEntries([{ name: "lib/x.js", content: "1" }]);
    const v = await server.lambda.send(
      new PublishLayerVersionCommand({ LayerName: "loc", Content: { ZipFile: zip } }),
    );
    layerArn = v.LayerVersionArn as string;
  });
  afterAll(async () => {
    await server?.stop();
  });

  function get(path: string, host: string): Promise<Record<string, unknown>> {
    const { port } = new URL(server.url);
    return new Promise((resolve, reject) => {
      const signed = signRequest({
        method: "GET",
        url: new URL(`http://${host}${path}`),
        region: "us-east-1",
        credentials: DEV_CREDENTIALS,
      });
      const req = httpRequest(
        { host: "127.0.0.1", port, path, headers: { ...signed, Host: host } },
        (res) => {
          let body = "";
          res.on("data", (d: Buffer) => {
            body += d;
          });
          res.on("end", () => resolve(JSON.parse(body) as Record<string, unknown>));
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  it("GetFunction and GetLayerVersion links use --public-url whatever Host says", async () => {
    for (const host of ["evil.example:666", "evil.example", "127.0.0.1.evil.example:9000"]) {
      const fn = await get("/2015-03-31/functions/loc", host);
      expect((fn.Code as { Location: string }).Location).toMatch(
        /^https:\/\/lambda\.example\.com:8443\/_lambent\/code\/[0-9a-f]{64}\.zip(\?|$)/,
      );
      const layer = await get(`/2018-10-31/layers/loc/versions/1`, host);
      expect((layer.Content as { Location: string }).Location).toMatch(
        /^https:\/\/lambda\.example\.com:8443\/_lambent\/layers\/[0-9a-f]{64}\.zip(\?|$)/,
      );
      expect(JSON.stringify([fn, layer])).not.toContain("evil");
    }
    expect(layerArn).toMatch(/:layer:loc:1$/);
  });

  it("without --public-url the links use the address the server listens on", async () => {
    const plain = await startServer();
    try {
      await plain.deploy("loc2", "node-cjs");
      const out = await lambdaClient(plain.url).send(new GetFunctionCommand({ FunctionName: "loc2" }));
      expect(out.Code?.Location?.startsWith(`${plain.platform.url}/_lambent/code/`)).toBe(true);
    } finally {
      await plain.stop();
    }
  });

  it("a --public-url that is not an http(s) URL is refused at start", async () => {
    for (const bad of ["ftp://x", "not a url", "https://x/?q=1"]) {
      await expect(
        Platform.start({ port: 0, quiet: true, sandbox: "process", publicUrl: bad }),
      ).rejects.toThrow(/public URL/);
    }
  });
});

describe("slow and greedy clients", () => {
  let server: TestServer;
  const http = {
    ...DEFAULT_HTTP,
    headersTimeoutMs: 500,
    requestTimeoutMs: 1_000,
  };
  beforeAll(async () => {
    server = await startServer({ http, limits: { ...DEFAULT_LIMITS } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  /** A connection that sends `head`, then one byte of `drip` every 100 ms until the server closes it. */
  function slowClient(head: string, drip: string): Promise<string> {
    const { port, hostname } = new URL(server.url);
    return new Promise((resolve) => {
      const socket: Socket = connect(Number(port), hostname);
      let out = "";
      socket.on("data", (d: Buffer) => {
        out += d.toString("latin1");
      });
      const timer = setInterval(() => {
        if (!socket.destroyed && socket.writable) socket.write(drip);
      }, 100);
      socket.on("error", () => {});
      socket.on("close", () => {
        clearInterval(timer);
        resolve(out);
      });
      socket.write(head);
    });
  }

  it("slow headers, slow bodies and silent connections are answered 408 and closed", async () => {
    const clients = [
      slowClient(signedHead("GET", `${server.url}/2015-03-31/functions`), "X: y\r\n"),
      slowClient("", ""),
      // 50 slow bodies at once (the finding: 1,000 of them still open after 330 s).
      ...Array.from({ length: 50 }, () =>
        slowClient(
          `${signedHead("POST", `${server.url}/2015-03-31/functions`, "a".repeat(100_000))}Content-Length: 100000\r\n\r\n`,
          "a",
        ),
      ),
    ];
    for (const out of await Promise.all(clients)) {
      expectAwsError(parse(out), 408, "RequestTimeoutException", /not received in time/);
    }
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });
});

describe("connections per client address", () => {
  let server: TestServer;
  const http = { ...DEFAULT_HTTP, maxConnectionsPerClient: 20 };
  beforeAll(async () => {
    server = await startServer({ http });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("one client address cannot hold more connections than the cap; a closed one frees its place", async () => {
    const { port, hostname } = new URL(server.url);
    // Hold the allowed number of connections open.
    const held: Socket[] = [];
    for (let i = 0; i < http.maxConnectionsPerClient; i++) {
      const s = connect(Number(port), hostname);
      s.on("error", () => {});
      await new Promise((r) => s.once("connect", r));
      held.push(s);
    }
    const refused = parse(await rawExchange(server.url, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
    expectAwsError(refused, 429, "TooManyRequestsException", /Too many open connections/);
    expect(JSON.parse(refused.body).Reason).toBe("ConnectionLimitExceeded");
    // Free one place: the next request is served.
    const one = held.pop() as Socket;
    await new Promise((r) => {
      one.once("close", r);
      one.destroy();
    });
    await expect
      .poll(
        async () =>
          parse(await rawExchange(server.url, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
            .status,
      )
      .toBe(200);
    for (const s of held) s.destroy();
  });
});
