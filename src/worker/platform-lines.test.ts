/** START/END/REPORT/INIT_REPORT lines, as Lambda prints them; one billing rule. */
import { describe, expect, it } from "vitest";
import {
  billedDurationMs,
  endLine,
  initReportLine,
  initStartLine,
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
});
