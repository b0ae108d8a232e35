/** START/END/REPORT/INIT_REPORT lines, as Lambda prints them; one billing rule. */
import { describe, expect, it } from "vitest";
import {
  billedDurationMs,
  endLine,
  initReportLine,
  initStartLine,
  invokeStatus,
  PlatformLines,
  reportLine,
  startLine,
} from "./platform-lines.js";

describe("platform log lines", () => {
  it("bill by the millisecond, rounded up, at least 1 ms", () => {
    expect(billedDurationMs(0)).toBe(1);
    expect(billedDurationMs(0.01)).toBe(1);
    expect(billedDurationMs(1)).toBe(1);
    expect(billedDurationMs(1.2)).toBe(2);
    expect(billedDurationMs(2999.999)).toBe(3000);
  });

  it("REPORT of a plain invoke, then with Init Duration", () => {
    const base = { requestId: "r1", durationMs: 12.345, memorySizeMb: 128, maxMemoryUsedMb: 40 };
    expect(reportLine(base)).toBe(
      "REPORT RequestId: r1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB",
    );
    expect(reportLine({ ...base, initDurationMs: 150.031 })).toBe(
      "REPORT RequestId: r1\tDuration: 12.35 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 40 MB\tInit Duration: 150.03 ms",
    );
  });

  it("REPORT of a failed environment names the status, and the error type unless it timed out", () => {
    const base = { requestId: "r2", durationMs: 3000, memorySizeMb: 256, maxMemoryUsedMb: 0 };
    expect(reportLine({ ...base, errorType: "Runtime.ExitError" })).toMatch(
      /\tMax Memory Used: 0 MB\tStatus: error\tError Type: Runtime\.ExitError$/,
    );
    expect(reportLine({ ...base, errorType: "Sandbox.Timedout" })).toMatch(
      /\tBilled Duration: 3000 ms\t.*\tStatus: timeout$/,
    );
  });

  it("INIT_REPORT of a success (with Lambent's phase breakdown), an error and a timeout", () => {
    expect(initReportLine({ durationMs: 80, status: "success" })).toBe(
      "INIT_REPORT Init Duration: 80.00 ms\tPhase: init\tStatus: success",
    );
    expect(
      initReportLine({
        durationMs: 80,
        status: "success",
        phases: { extensionsMs: 10, runtimeMs: 20, functionMs: 50 },
      }),
    ).toBe(
      "INIT_REPORT Init Duration: 80.00 ms\tPhase: init\tStatus: success\tExtensions: 10.00 ms\tRuntime: 20.00 ms\tFunction: 50.00 ms",
    );
    expect(initReportLine({ durationMs: 42.5, status: "failure", errorType: "Runtime.ExitError" })).toBe(
      "INIT_REPORT Init Duration: 42.50 ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError",
    );
    expect(initReportLine({ durationMs: 10000, status: "failure", errorType: "Sandbox.Timedout" })).toBe(
      "INIT_REPORT Init Duration: 10000.00 ms\tPhase: init\tStatus: timeout",
    );
  });

  it("START, END and INIT_START", () => {
    expect(startLine("r3", "$LATEST")).toBe("START RequestId: r3 Version: $LATEST");
    expect(endLine("r3")).toBe("END RequestId: r3");
    expect(initStartLine("nodejs22.x", "nodejs:22.22.0")).toBe(
      "INIT_START Runtime Version: nodejs:22.22.0\tRuntime Version ARN: lambent:nodejs22.x:nodejs:22.22.0",
    );
  });

  const at = () => new Date("2026-12-01T10:00:00.123Z");
  const report = {
    requestId: "r4",
    durationMs: 12.3456,
    memorySizeMb: 128,
    maxMemoryUsedMb: 60,
    status: "success" as const,
  };

  it("LogFormat Text: the text lines, nothing filtered (levels apply to JSON only)", () => {
    const text = new PlatformLines({ LogFormat: "Text", SystemLogLevel: "WARN" }, at);
    expect(text.start("r4", "$LATEST", "arn")).toBe("START RequestId: r4 Version: $LATEST");
    expect(text.end("r4")).toBe("END RequestId: r4");
    expect(text.report(report)).toBe(reportLine(report));
    expect(
      text.runtimeDone({ requestId: "r4", status: "success", durationMs: 1, producedBytes: 2 }),
    ).toBeUndefined();
  });

  it("LogFormat JSON: Telemetry-API-shaped records, no platform.end", () => {
    const json = new PlatformLines({ LogFormat: "JSON", SystemLogLevel: "INFO" }, at);
    expect(
      JSON.parse(json.start("r4", "$LATEST", "arn:aws:lambda:us-east-1:1:function:f") as string),
    ).toEqual({
      time: "2026-12-01T10:00:00.123Z",
      type: "platform.start",
      record: { requestId: "r4", functionArn: "arn:aws:lambda:us-east-1:1:function:f", version: "$LATEST" },
    });
    expect(json.end("r4")).toBeUndefined();
    expect(JSON.parse(json.report({ ...report, initDurationMs: 100.5 }) as string)).toEqual({
      time: "2026-12-01T10:00:00.123Z",
      type: "platform.report",
      record: {
        requestId: "r4",
        metrics: {
          durationMs: 12.346,
          billedDurationMs: 13,
          memorySizeMB: 128,
          maxMemoryUsedMB: 60,
          initDurationMs: 100.5,
        },
        status: "success",
      },
    });
    const init = JSON.parse(
      json.initStart({
        runtime: "nodejs22.x",
        runtimeVersion: "nodejs:22.v1",
        initializationType: "on-demand",
        functionName: "f",
        functionVersion: "$LATEST",
        instanceId: "2026/12/01/[$LATEST]abc",
        memorySizeMb: 256,
      }) as string,
    );
    expect(init).toMatchObject({
      type: "platform.initStart",
      record: {
        initializationType: "on-demand",
        phase: "init",
        runtimeVersion: "nodejs:22.v1",
        functionName: "f",
        functionVersion: "$LATEST",
        instanceMaxMemory: 256 * 1024 * 1024,
      },
    });
    const failed = JSON.parse(
      json.initReport(
        { durationMs: 40, status: "failure", errorType: "Runtime.ExitError" },
        "on-demand",
      ) as string,
    );
    expect(failed.record).toEqual({
      initializationType: "on-demand",
      phase: "init",
      status: "error",
      errorType: "Runtime.ExitError",
      metrics: { durationMs: 40 },
    });
  });

  it("SystemLogLevel: runtimeDone only at DEBUG; WARN keeps failures and drops start and success reports", () => {
    const debug = new PlatformLines({ LogFormat: "JSON", SystemLogLevel: "DEBUG" }, at);
    const done = {
      requestId: "r5",
      status: "error" as const,
      errorType: "Handled",
      durationMs: 2,
      producedBytes: 9,
    };
    expect(JSON.parse(debug.runtimeDone(done) as string)).toMatchObject({
      type: "platform.runtimeDone",
      record: { requestId: "r5", status: "error", errorType: "Handled", metrics: { producedBytes: 9 } },
    });
    const info = new PlatformLines({ LogFormat: "JSON" }, at);
    expect(info.runtimeDone(done)).toBeUndefined();
    expect(info.start("r5", "1", "arn")).toBeDefined();
    const warn = new PlatformLines({ LogFormat: "JSON", SystemLogLevel: "WARN" }, at);
    expect(warn.start("r5", "1", "arn")).toBeUndefined();
    expect(warn.report(report)).toBeUndefined();
    expect(warn.extension("ext", "Ready", ["INVOKE"])).toBeUndefined();
    const timedOut = warn.report({ ...report, status: "timeout", errorType: "Sandbox.Timedout" });
    expect(JSON.parse(timedOut as string).record).toMatchObject({
      status: "timeout",
      errorType: "Sandbox.Timedout",
    });
    expect(JSON.parse(warn.fault("Task timed out after 1.00 seconds") as string)).toMatchObject({
      type: "platform.fault",
      record: "Task timed out after 1.00 seconds",
    });
  });

  it("an invoke's status: success, error (handled), timeout, failure (the environment failed)", () => {
    expect(invokeStatus({ ok: true, fatal: false })).toBe("success");
    expect(invokeStatus({ ok: false, errorType: "Error", fatal: false })).toBe("error");
    expect(invokeStatus({ ok: false, errorType: "Sandbox.Timedout", fatal: true })).toBe("timeout");
    expect(invokeStatus({ ok: false, errorType: "Runtime.ExitError", fatal: true })).toBe("failure");
  });
});
