/**
 * Response streaming: `awslambda.streamifyResponse` in the Node runtime streams over the Runtime API
 * (chunked, trailers for a failure part-way), and InvokeWithResponseStream hands each piece to the
 * AWS SDK v3's event-stream iterator as the function writes it.
 */

import { readFileSync } from "node:fs";
import {
  CreateFunctionCommand,
  InvokeWithResponseStreamCommand,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeMessages, encodeMessage } from "../src/api/event-stream.js";
import type { ServerOptions } from "../src/config.js";
import { detectSandboxDriver } from "../src/sandbox/index.js";
import { type Gate, startGate } from "./helpers/gate.js";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { drainAfterFirst, drainStream } from "./helpers/stream.js";
import { zipEntries } from "./helpers/zip.js";

const STREAMING = `
const http = require("node:http");
const wait = (url) => new Promise((resolve, reject) =>
  http.get(url, (res) => { res.resume(); res.on("end", resolve); }).on("error", reject));
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.mode === "http") {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: { "x-custom": "yes" }, cookies: ["a=1"],
    });
  } else {
    responseStream.setContentType("text/plain");
  }
  responseStream.write("first;");
  if (event.gate) await wait(event.gate);
  if (event.mode === "fail") throw new TypeError("broke part-way");
  if (event.mode === "big") {
    const piece = Buffer.alloc(64 * 1024, 120);
    for (let i = 0; i < 128; i++) {
      if (!responseStream.write(piece)) await new Promise((r) => responseStream.once("drain", r));
    }
    responseStream.end();
    return;
  }
  if (event.mode === "hang") await new Promise(() => setInterval(() => {}, 1000));
  responseStream.write("second;" + context.functionName);
  if (event.mode !== "noend") responseStream.end();
});
`;

const BUFFERED = `exports.handler = async (event) => {
  if (event.fail) throw new RangeError("not streaming, still failing");
  return { big: "x".repeat(event.size ?? 10) };
};`;

/** A custom runtime in bash (test/fixtures): its "stream" handlers speak the Runtime API's streaming mode. */
const SHELL_BOOTSTRAP = readFileSync(new URL("./fixtures/functions/provided-sh/bootstrap", import.meta.url));

async function deploy(
  server: TestServer,
  name: string,
  source: string,
  extra: { Timeout?: number; Runtime?: "provided.al2023"; Handler?: string } = {},
): Promise<void> {
  const code =
    extra.Runtime === "provided.al2023"
      ? { name: "bootstrap", content: SHELL_BOOTSTRAP, mode: 0o100755 }
      : { name: "index.js", content: source };
  await server.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: await zipEntries([code]) },
      ...extra,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

describe("event-stream framing", () => {
  it("round-trips a message with its CRCs, and refuses a damaged one", () => {
    const msg = encodeMessage({ ":event-type": "PayloadChunk" }, Buffer.from("hello"));
    const { messages, rest } = decodeMessages(Buffer.concat([msg, msg.subarray(0, 5)]));
    expect(messages).toHaveLength(1);
    expect(messages[0]?.headers[":event-type"]).toBe("PayloadChunk");
    expect(messages[0]?.payload.toString()).toBe("hello");
    expect(rest.length).toBe(5);
    const bad = Buffer.from(msg);
    bad.writeUInt8((bad.readUInt8(bad.length - 6) ^ 1) & 0xff, bad.length - 6);
    expect(() => decodeMessages(bad)).toThrow(/CRC/);
  });
});

/**
 * Every test runs under the process driver and under bwrap (host network there: the function waits on
 * a gate on the host's loopback; our Node runtime talks to the Runtime API over its Unix socket).
 */
function scenario(label: string, overrides: Partial<ServerOptions>) {
  describe(label, () => {
    let server: TestServer;
    let gate: Gate;

    beforeAll(async () => {
      server = await startServer(overrides);
      gate = await startGate();
      const shell = (handler: string) => ({ Runtime: "provided.al2023" as const, Handler: handler });
      await Promise.all([
        // 8 MB through a loaded CI machine can outlast the default 3 s timeout.
        deploy(server, "streamer", STREAMING, { Timeout: 60 }),
        deploy(server, "buffered", BUFFERED),
        deploy(server, "sh-stream", "", shell("stream")),
        deploy(server, "sh-stream-fail", "", shell("stream-fail")),
      ]);
    });

    afterAll(async () => {
      await gate?.close();
      await server?.stop();
    });

    const send = (name: string, event: unknown, extra: Record<string, unknown> = {}) =>
      server.lambda.send(
        new InvokeWithResponseStreamCommand({
          FunctionName: name,
          Payload: Buffer.from(JSON.stringify(event)),
          ...extra,
        }),
      );

    describe("InvokeWithResponseStream", () => {
      it("delivers the first chunk while the function still runs, then the rest and InvokeComplete", async () => {
        const out = await send("streamer", { gate: gate.url });
        expect(out.StatusCode).toBe(200);
        expect(out.ExecutedVersion).toBe("$LATEST");
        expect(out.ResponseStreamContentType).toBe("text/plain");
        const { first, rest } = await drainAfterFirst(out, async () => {
          // The function is still held at the gate: the first chunk came before it finished.
          await gate.waiting(1);
          gate.open();
        });
        expect(first).toBe("first;");
        expect(rest.text).toBe("second;streamer");
        expect(rest.complete).toEqual({});
      });

      it("reports a failure part-way in InvokeComplete, after the chunks written before it", async () => {
        const out = await send("streamer", { mode: "fail" }, { LogType: "Tail" });
        const got = await drainStream(out);
        expect(got.text).toBe("first;");
        expect(got.complete?.ErrorCode).toBe("TypeError");
        expect(got.complete?.ErrorDetails).toBe("broke part-way");
        const log = Buffer.from(got.complete?.LogResult ?? "", "base64").toString();
        expect(log).toContain("END RequestId:");
        expect(log).toContain("REPORT RequestId:");
      });

      it("streams past the 6 MB buffered limit (8 MB in 64 KB writes, with backpressure)", async () => {
        const out = await send("streamer", { mode: "big" });
        const got = await drainStream(out);
        expect(got.complete).toEqual({});
        expect(got.text.length).toBe(6 + 8 * 1024 * 1024);
        expect(got.text.replace(/x/g, "")).toBe("first;");
      });

      it("ends the stream with Sandbox.Timedout when the function runs past its timeout part-way", async () => {
        await deploy(server, "slow", STREAMING, { Timeout: 1 });
        const out = await send("slow", { mode: "hang" });
        const got = await drainStream(out);
        expect(got.text).toBe("first;");
        expect(got.complete?.ErrorCode).toBe("Sandbox.Timedout");
        expect(got.complete?.ErrorDetails).toMatch(/Task timed out after 1\.00 seconds/);
        // The environment was replaced: the next invoke streams in full.
        const next = await send("slow", {});
        const again = await drainStream(next);
        expect(again.text).toBe("first;second;slow");
      });

      it("ends the stream when the handler's promise settles without end()", async () => {
        const out = await send("streamer", { mode: "noend" });
        const got = await drainStream(out);
        expect(got.text).toBe("first;second;streamer");
        expect(got.complete).toEqual({});
      });

      it("passes HttpResponseStream's prelude and 8 NUL bytes through with its content type", async () => {
        const out = await send("streamer", { mode: "http" });
        expect(out.ResponseStreamContentType).toBe("application/vnd.awslambda.http-integration-response");
        const got = await drainStream(out);
        const prelude = JSON.stringify({ statusCode: 201, headers: { "x-custom": "yes" }, cookies: ["a=1"] });
        expect(got.text).toBe(`${prelude}${"\0".repeat(8)}first;second;streamer`);
      });

      it("returns a function that does not stream as chunks of its whole answer", async () => {
        const out = await send("buffered", { size: 200_000 });
        expect(out.ResponseStreamContentType).toBe("application/json");
        const got = await drainStream(out);
        expect(got.chunks).toBeGreaterThan(1);
        expect(JSON.parse(got.text)).toEqual({ big: "x".repeat(200_000) });
        expect(got.complete).toEqual({});

        const failed = await send("buffered", { fail: true });
        const f = await drainStream(failed);
        expect(f.text).toBe("");
        expect(f.complete?.ErrorCode).toBe("RangeError");
        expect(f.complete?.ErrorDetails).toBe("not streaming, still failing");
      });

      it("streams a custom runtime's chunked response as it arrives, and its error trailers", async () => {
        const out = await send("sh-stream", { gate: gate.url });
        expect(out.ResponseStreamContentType).toBe("text/plain");
        const { first, rest } = await drainAfterFirst(out, async () => {
          await gate.waiting(1); // the bootstrap is still between its chunks
          gate.open();
        });
        expect(first).toBe("first;");
        expect(rest.text).toMatch(/^second;[0-9a-f-]{36}$/);
        expect(rest.complete).toEqual({});

        const failed = await send("sh-stream-fail", {});
        const f = await drainStream(failed);
        expect(f.text).toBe("first;");
        expect(f.complete?.ErrorCode).toBe("ShellError");
        expect(f.complete?.ErrorDetails).toBe("broke part-way");
      });

      it("answers errors before the stream as AWS errors (unknown function, bad invocation type)", async () => {
        await expect(send("nope", {})).rejects.toMatchObject({ name: "ResourceNotFoundException" });
        await expect(send("streamer", {}, { InvocationType: "Event" })).rejects.toMatchObject({
          name: "ValidationException",
        });
        const dry = await send("streamer", {}, { InvocationType: "DryRun" });
        expect(dry.StatusCode).toBe(204);
      });
    });

    describe("a streaming function through the plain Invoke API", () => {
      it("answers the whole streamed body at once, and a failure part-way as a function error", async () => {
        const ok = await invoke(server.lambda, "streamer", {});
        expect(ok.functionError).toBeUndefined();
        expect(ok.text).toBe("first;second;streamer");
        const failed = await invoke(server.lambda, "streamer", { mode: "fail" });
        expect(failed.functionError).toBe("Unhandled");
        expect(failed.json).toMatchObject({ errorType: "TypeError", errorMessage: "broke part-way" });
      });
    });
  });
}

scenario("process driver", { sandbox: "process" });
const bwrapUsable = (await detectSandboxDriver("auto", {
  runDir: "/tmp",
  network: "host",
  adoptableRoots: [],
}).then(
  (d) => d.driver.name === "bwrap",
  () => false,
)) as boolean;
if (bwrapUsable) scenario("bwrap sandbox", { sandbox: "bwrap", sandboxNetwork: "host" });
