import {
  PublishLayerVersionCommand,
  UpdateFunctionCodeCommand,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Collector, type Received } from "./helpers/collector.js";
import { invoke } from "./helpers/invoke.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

/**
 * An external extension (Node script): registers for INVOKE and SHUTDOWN, reports every event it gets
 * to the collector (REPORT_URL), and with SUBSCRIBE=1 subscribes to the Telemetry API and forwards
 * each platform.report it receives.
 */
const EXTENSION = `#!/usr/bin/node
const http = require("node:http");
const api = process.env.AWS_LAMBDA_RUNTIME_API;
const report = (body) => new Promise((resolve) => {
  const req = http.request(process.env.REPORT_URL + "/ext", { method: "POST", headers: { "content-type": "application/json" } }, (res) => { res.resume(); res.on("end", resolve); });
  req.on("error", resolve);
  req.end(JSON.stringify({ fn: process.env.AWS_LAMBDA_FUNCTION_NAME, ...body }));
});
function call(method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const [host, port] = api.split(":");
    const req = http.request({ host, port, method, path, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}
(async () => {
  const reg = await call("POST", "/2020-01-01/extension/register", { "Lambda-Extension-Name": "recorder" }, JSON.stringify({ events: ["INVOKE", "SHUTDOWN"] }));
  const id = reg.headers["lambda-extension-identifier"];
  await report({ kind: "registered", status: reg.status, body: JSON.parse(reg.body), hasId: typeof id === "string" });
  if (process.env.SUBSCRIBE === "1") {
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on("data", (c) => chunks.push(c));
      req.on("end", async () => {
        for (const e of JSON.parse(Buffer.concat(chunks).toString())) if (e.type === "platform.report") await report({ kind: "telemetry", event: e });
        res.end("ok");
      });
    });
    await new Promise((r) => server.listen(4243, process.env.LISTEN_HOST || "0.0.0.0", r));
    const sub = await call("PUT", "/2022-07-01/telemetry", { "Lambda-Extension-Identifier": id, "content-type": "application/json" }, JSON.stringify({
      schemaVersion: "2022-12-13",
      destination: { protocol: "HTTP", URI: "http://sandbox.localdomain:4243/telemetry" },
      types: ["platform"],
      buffering: { maxItems: 1000, maxBytes: 262144, timeoutMs: 25 },
    }));
    await report({ kind: "subscribed", status: sub.status });
  }
  for (;;) {
    const next = await call("GET", "/2020-01-01/extension/event/next", { "Lambda-Extension-Identifier": id });
    const event = JSON.parse(next.body);
    console.log("recorder got " + event.eventType + " " + (event.requestId || event.shutdownReason));
    await report({ kind: "event", event });
    if (event.eventType === "SHUTDOWN") process.exit(0);
  }
})();
`;

const FN = `exports.handler = async (event) => {
  if (event.sleep) await new Promise((r) => setTimeout(r, event.sleep));
  if (event.hogMb) { const keep = []; for (let i = 0; i < event.hogMb; i++) keep.push(Buffer.alloc(1024 * 1024, 1)); }
  return { ok: true, v: process.env.V || "1" };
};`;

const events = (fn: string, type: string) => (r: Received) =>
  r.path === "/ext" &&
  (r.body as { fn: string }).fn === fn &&
  (r.body as { kind: string; event?: { eventType: string } }).event?.eventType === type;

describe.each(["bwrap", "process"] as const)("extensions under the %s sandbox driver", (sandbox) => {
  let server: TestServer;
  let collector: Collector;
  let layerArn: string;
  let crashArn: string;

  beforeAll(async () => {
    collector = await Collector.start();
    // Isolated sandboxes reach the host's loopback only where the operator opened it.
    server = await startServer({
      sandbox,
      idleTimeoutSeconds: 1,
      sandboxAllowHostPorts: [Number(new URL(collector.url).port)],
    });
    const layer = await server.lambda.send(
      new PublishLayerVersionCommand({
        LayerName: "recorder",
        Content: {
          ZipFile: await zipEntries([{ name: "extensions/recorder", content: EXTENSION, mode: 0o100755 }]),
        },
      }),
    );
    layerArn = layer.LayerVersionArn as string;
    const crash = await server.lambda.send(
      new PublishLayerVersionCommand({
        LayerName: "crasher",
        Content: {
          ZipFile: await zipEntries([
            {
              name: "extensions/crasher",
              content: "#!/bin/sh\necho crasher giving up\nexit 3\n",
              mode: 0o100755,
            },
          ]),
        },
      }),
    );
    crashArn = crash.LayerVersionArn as string;
  });
  afterAll(async () => {
    await server?.stop();
    await collector?.close();
  });

  const deploy = async (name: string, extra: Record<string, string> = {}) =>
    server.deploy(name, "node-cjs", {
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: FN }]) },
      Layers: [layerArn],
      Timeout: 1,
      Environment: { Variables: { REPORT_URL: collector.url, FN_NAME: name, ...extra } },
    });

  it("registers, gets each INVOKE after Init, and SHUTDOWN (spindown) at idle shutdown", async () => {
    await deploy("ext-idle");
    const before = collector.received.length;
    // The extension logs its INVOKE while the function runs: the line may land after the answer.
    const extensionLogged = new Promise<void>((resolve) => {
      const onLine = (e: { message: string }) => {
        if (!/recorder got INVOKE/.test(e.message)) return;
        server.platform.logs.live.off("event", onLine);
        resolve();
      };
      server.platform.logs.live.on("event", onLine);
    });
    const r1 = await invoke(server.lambda, "ext-idle");
    expect(r1.json).toEqual({ ok: true, v: "1" });
    await extensionLogged;
    await server.platform.logs.flush();
    const logs = (await (await signedFetch(`${server.url}/_lambent/logs/ext-idle`)).json()) as {
      events: Array<{ message: string }>;
    };
    const text = logs.events.map((e) => e.message).join("\n");
    expect(text).toMatch(/EXTENSION\tName: recorder\tState: Ready\tEvents: \[INVOKE,SHUTDOWN\]/);
    expect(text).toMatch(
      /INIT_REPORT Init Duration: [\d.]+ ms\tPhase: init\tStatus: success\tExtensions: [\d.]+ ms/,
    );
    expect(text).toMatch(/recorder got INVOKE/);
    const r2 = await invoke(server.lambda, "ext-idle");
    expect(r2.json).toEqual({ ok: true, v: "1" });
    const mine = (r: Received) => collector.received.indexOf(r) >= before;
    const invokes = await collector.waitFor((r) => mine(r) && events("ext-idle", "INVOKE")(r), 2);
    const registered = collector.received.find(
      (r) => mine(r) && (r.body as { kind: string }).kind === "registered",
    );
    expect(((registered as Received).body as { body: unknown }).body).toEqual({
      functionName: "ext-idle",
      functionVersion: "$LATEST",
      handler: "index.handler",
    });
    const first = ((invokes[0] as Received).body as { event: Record<string, unknown> }).event;
    expect(first).toMatchObject({
      eventType: "INVOKE",
      invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:ext-idle",
      tracing: { type: "X-Amzn-Trace-Id" },
    });
    expect(typeof first.requestId).toBe("string");
    expect(first.deadlineMs as number).toBeGreaterThan(Date.now() - 10_000);
    const envs = server.platform.worker.environmentsOf("ext-idle");
    expect(envs.length).toBe(1);
    expect(envs[0]?.initPhases.extensionsMs).toBeGreaterThan(0);
    const dead = new Promise<void>((r) => envs[0]?.onDead(r));
    const shutdown = await collector.waitFor((r) => mine(r) && events("ext-idle", "SHUTDOWN")(r));
    await dead;
    expect(((shutdown[0] as Received).body as { event: Record<string, unknown> }).event).toMatchObject({
      eventType: "SHUTDOWN",
      shutdownReason: "spindown",
    });
    expect(envs[0]?.shutdownReason).toBe("spindown");
  });

  it("sends SHUTDOWN (spindown) when the code is updated", async () => {
    await deploy("ext-update");
    await invoke(server.lambda, "ext-update");
    const before = collector.received.length;
    await server.lambda.send(
      new UpdateFunctionCodeCommand({
        FunctionName: "ext-update",
        ZipFile: await zipEntries([{ name: "index.js", content: FN.replace('"1"', '"2"') }]),
      }),
    );
    await waitUntilFunctionUpdatedV2(
      { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
      { FunctionName: "ext-update" },
    );
    const shutdown = await collector.waitFor(
      (r) => collector.received.indexOf(r) >= before && events("ext-update", "SHUTDOWN")(r),
    );
    expect(((shutdown[0] as Received).body as { event: Record<string, unknown> }).event.shutdownReason).toBe(
      "spindown",
    );
    expect((await invoke(server.lambda, "ext-update")).json).toEqual({ ok: true, v: "2" });
  });

  // Only the bwrap driver limits an environment's memory: the process driver has no OOM to report.
  if (sandbox === "bwrap") {
    it("reports Runtime.OutOfMemory when the memory limit kills the runtime", async () => {
      await server.deploy("ext-oom", "node-cjs", {
        Code: { ZipFile: await zipEntries([{ name: "index.js", content: FN }]) },
        Layers: [layerArn],
        Timeout: 30,
        Environment: { Variables: { REPORT_URL: collector.url, FN_NAME: "ext-oom" } },
      });
      const r = await invoke(server.lambda, "ext-oom", { hogMb: 300 });
      expect(r.functionError).toBe("Unhandled");
      expect(r.json).toMatchObject({ errorType: "Runtime.OutOfMemory" });
      expect((await invoke(server.lambda, "ext-oom")).json).toEqual({ ok: true, v: "1" });
    });
  }

  it("sends SHUTDOWN (timeout) after a timed-out invoke", async () => {
    await deploy("ext-timeout");
    const before = collector.received.length;
    const r = await invoke(server.lambda, "ext-timeout", { sleep: 3000 });
    expect(r.functionError).toBe("Unhandled");
    const shutdown = await collector.waitFor(
      (x) => collector.received.indexOf(x) >= before && events("ext-timeout", "SHUTDOWN")(x),
    );
    expect(((shutdown[0] as Received).body as { event: Record<string, unknown> }).event.shutdownReason).toBe(
      "timeout",
    );
  });

  it("fails Init with Extension.Crash when an extension exits without registering", async () => {
    await server.deploy("ext-crash", "node-cjs", {
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: FN }]) },
      Layers: [crashArn],
    });
    const r = await invoke(server.lambda, "ext-crash", {}, { LogType: "Tail" });
    expect(r.functionError).toBe("Unhandled");
    expect((r.json as { errorType: string }).errorType).toBe("Extension.Crash");
    expect((r.json as { errorMessage: string }).errorMessage).toMatch(/exit status 3/);
  });

  it("delivers platform.report for each invoke to a Telemetry API subscriber", async () => {
    await deploy("ext-telemetry", {
      SUBSCRIBE: "1",
      ...(sandbox === "bwrap" ? { LISTEN_HOST: "sandbox.localdomain" } : {}),
    });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const out = await invoke(server.lambda, "ext-telemetry");
      expect(out.json).toEqual({ ok: true, v: "1" });
    }
    const reports = await collector.waitFor(
      (r) => r.path === "/ext" && (r.body as { kind: string }).kind === "telemetry" && true,
      3,
    );
    for (const r of reports) {
      const e = (
        r.body as { event: { type: string; record: { requestId: string; metrics: { durationMs: number } } } }
      ).event;
      expect(e.type).toBe("platform.report");
      expect(e.record.metrics.durationMs).toBeGreaterThanOrEqual(0);
      ids.push(e.record.requestId);
    }
    // The extension reports each INVOKE on its own: it may arrive after the telemetry of that invoke.
    const invokedIds = (await collector.waitFor(events("ext-telemetry", "INVOKE"), 3)).map(
      (r) => (r.body as { event: { requestId: string } }).event.requestId,
    );
    for (const id of ids) expect(invokedIds).toContain(id);
    expect(new Set(ids).size).toBe(3);
  });
});
