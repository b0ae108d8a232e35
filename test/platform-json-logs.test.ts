/**
 * LoggingConfig for the platform's own lines: with `LogFormat: JSON` the START/REPORT/INIT_START
 * lines are Telemetry-API-shaped records (`platform.start`, `platform.report`, `platform.initStart`),
 * and `SystemLogLevel` filters them (WARN keeps only failures), in Node and Python alike.
 */
import {
  CreateFunctionCommand,
  type CreateFunctionCommandInput,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

type Obj = Record<string, unknown>;
type Rec = { time?: string; type?: string; record?: Obj; level?: string; message?: unknown };

const records = (log: string | undefined): Rec[] =>
  (log ?? "")
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Rec);

const SOURCES: Record<
  string,
  { Runtime: CreateFunctionCommandInput["Runtime"]; Handler: string; name: string; content: string }
> = {
  node: {
    Runtime: "nodejs22.x",
    Handler: "index.handler",
    name: "index.js",
    content: `exports.handler = async (e) => {
  console.info("hello from node");
  if (e.fail) throw new Error("asked to fail");
  if (e.hang) await new Promise(() => setTimeout(() => {}, 60000));
  return "ok";
};`,
  },
  python: {
    Runtime: "python3.13",
    Handler: "app.handler",
    name: "app.py",
    content: `import logging, time
log = logging.getLogger()

def handler(event, context):
    log.info("hello from python")
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("hang"):
        time.sleep(60)
    return "ok"
`,
  },
};

describe("LoggingConfig: platform lines as JSON records, filtered by SystemLogLevel", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ prewarm: 0 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function create(name: string, lang: string, logging: Obj, timeout = 30) {
    const src = SOURCES[lang] as (typeof SOURCES)[string];
    await server.lambda.send(
      new CreateFunctionCommand({
        FunctionName: name,
        Role: ROLE,
        Runtime: src.Runtime,
        Handler: src.Handler,
        Timeout: timeout,
        LoggingConfig: logging,
        Code: { ZipFile: await zipEntries([{ name: src.name, content: src.content }]) },
      }),
    );
    await waitUntilFunctionActiveV2(
      { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
      { FunctionName: name },
    );
  }

  async function streamRecords(name: string): Promise<Rec[]> {
    await server.platform.logs.flush();
    const res = await signedFetch(`${server.url}/_lambent/logs/${name}`);
    const body = (await res.json()) as { events: Array<{ message: string }> };
    return records(body.events.map((e) => e.message).join("\n"));
  }

  for (const lang of ["node", "python"]) {
    it(`${lang}: INIT_START, START and REPORT are platform.initStart / platform.start / platform.report records`, async () => {
      const name = `sys-json-${lang}`;
      await create(name, lang, { LogFormat: "JSON" });
      const r = await invoke(server.lambda, name, {}, { LogType: "Tail" });
      expect(r.json).toBe("ok");
      const tail = records(r.log);
      const start = tail.find((x) => x.type === "platform.start") as Rec;
      expect(start.record).toEqual({
        requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        functionArn: expect.stringMatching(new RegExp(`:function:${name}$`)),
        version: "$LATEST",
      });
      expect(start.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const report = tail.find((x) => x.type === "platform.report") as Rec;
      expect(report.record).toMatchObject({ requestId: start.record?.requestId, status: "success" });
      const metrics = report.record?.metrics as Record<string, number>;
      expect(Object.keys(metrics).sort()).toEqual(
        ["billedDurationMs", "durationMs", "initDurationMs", "maxMemoryUsedMB", "memorySizeMB"].sort(),
      );
      expect(metrics.memorySizeMB).toBe(128);
      expect(metrics.billedDurationMs).toBe(Math.max(1, Math.ceil(metrics.durationMs as number)));
      // No text platform lines, no platform.end, and no platform.runtimeDone below DEBUG.
      const lines = (r.log ?? "").split("\n");
      expect(lines.filter((l) => /^(START|END|REPORT) RequestId/.test(l))).toEqual([]);
      expect(tail.map((x) => x.type)).not.toContain("platform.end");
      expect(tail.map((x) => x.type)).not.toContain("platform.runtimeDone");
      // The application's own record sits between them.
      expect(tail.find((x) => x.message === `hello from ${lang}`)).toMatchObject({ level: "INFO" });

      const stream = await streamRecords(name);
      const initStart = stream.find((x) => x.type === "platform.initStart") as Rec;
      expect(initStart.record).toMatchObject({
        initializationType: "on-demand",
        phase: "init",
        functionName: name,
        functionVersion: "$LATEST",
        instanceMaxMemory: 128 * 1024 * 1024,
      });
      expect(String(initStart.record?.runtimeVersion)).toMatch(
        lang === "node" ? /^nodejs:22/ : /^python:3\.13/,
      );
    });

    it(`${lang}: SystemLogLevel WARN drops START/REPORT of successes and keeps the report of a timeout`, async () => {
      const name = `sys-warn-${lang}`;
      await create(name, lang, { LogFormat: "JSON", SystemLogLevel: "WARN" }, 2);
      const ok = await invoke(server.lambda, name, {}, { LogType: "Tail" });
      expect(ok.json).toBe("ok");
      const okTypes = records(ok.log).map((x) => x.type);
      expect(okTypes).not.toContain("platform.start");
      expect(okTypes).not.toContain("platform.report");
      expect((ok.log ?? "").split("\n").filter((l) => /^(START|END|REPORT) /.test(l))).toEqual([]);
      // A handled error is still a failed invoke: its report stays, its start does not.
      const failed = await invoke(server.lambda, name, { fail: true }, { LogType: "Tail" });
      expect(failed.functionError).toBe("Unhandled");
      const failedRecs = records(failed.log);
      expect(failedRecs.map((x) => x.type)).not.toContain("platform.start");
      expect(failedRecs.find((x) => x.type === "platform.report")?.record).toMatchObject({ status: "error" });
      const hung = await invoke(server.lambda, name, { hang: true }, { LogType: "Tail" });
      expect(hung.functionError).toBe("Unhandled");
      const hungRecs = records(hung.log);
      expect(hungRecs.find((x) => x.type === "platform.fault")?.record).toMatch(
        /Task timed out after 2\.00 seconds/,
      );
      expect(hungRecs.find((x) => x.type === "platform.report")?.record).toMatchObject({
        status: "timeout",
        errorType: "Sandbox.Timedout",
      });
    });
  }

  it("SystemLogLevel DEBUG adds platform.runtimeDone; back to Text gives the text lines again", async () => {
    const name = "sys-debug-node";
    await create(name, "node", { LogFormat: "JSON", SystemLogLevel: "DEBUG" });
    const r = await invoke(server.lambda, name, {}, { LogType: "Tail" });
    const done = records(r.log).find((x) => x.type === "platform.runtimeDone") as Rec;
    expect(done.record).toMatchObject({ status: "success", metrics: { producedBytes: 4 } });
    await server.lambda.send(
      new UpdateFunctionConfigurationCommand({ FunctionName: name, LoggingConfig: { LogFormat: "Text" } }),
    );
    await waitUntilFunctionUpdatedV2(
      { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
      { FunctionName: name },
    );
    const text = await invoke(server.lambda, name, {}, { LogType: "Tail" });
    expect(text.log).toMatch(/^START RequestId: \S+ Version: \$LATEST$/m);
    expect(text.log).toMatch(/^REPORT RequestId: \S+\tDuration: /m);
    expect(records(text.log).filter((x) => x.type !== undefined)).toEqual([]);
  });
});
