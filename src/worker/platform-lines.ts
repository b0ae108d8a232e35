/**
 * The platform's lines in a function's log stream, formatted as Lambda writes
 * them (tab-separated `Key: value` fields): START, END, REPORT, INIT_START and
 * INIT_REPORT. Every such line is built here, so billing and the status fields
 * are the same wherever an invoke or an Init ends.
 */
import { failureStatus } from "../protocol/errors.js";
import type { InitPhases } from "./environment.js";

/** Milliseconds with two decimals, as Lambda prints durations. */
export function ms(n: number): string {
  return n.toFixed(2);
}

/** Lambda bills every invoke by the millisecond, rounded up, at least 1 ms. */
export function billedDurationMs(durationMs: number): number {
  return Math.max(1, Math.ceil(durationMs));
}

export function startLine(requestId: string, version: string): string {
  return `START RequestId: ${requestId} Version: ${version}`;
}

export function endLine(requestId: string): string {
  return `END RequestId: ${requestId}`;
}

/** `version` is the runtime's own version label (e.g. `nodejs:22.v41`); the ARN names the runtime and that version. */
export function initStartLine(runtime: string, version: string): string {
  return `INIT_START Runtime Version: ${version}\tRuntime Version ARN: ${runtimeVersionArn(runtime, version)}`;
}

export interface ReportFields {
  requestId: string;
  durationMs: number;
  memorySizeMb: number;
  maxMemoryUsedMb: number;
  /** The Init this environment ran before its first invoke (reported once). */
  initDurationMs?: number;
  /** Set when the run ended in a failure of the environment (timeout, crash, Init failure). */
  errorType?: string;
}

/** `REPORT RequestId: …\tDuration: …\tBilled Duration: …\tMemory Size: …\tMax Memory Used: …[\tInit Duration: …][\tStatus: …\tError Type: …]` */
export function reportLine(r: ReportFields): string {
  let line =
    `REPORT RequestId: ${r.requestId}\tDuration: ${ms(r.durationMs)} ms\tBilled Duration: ${billedDurationMs(r.durationMs)} ms` +
    `\tMemory Size: ${r.memorySizeMb} MB\tMax Memory Used: ${r.maxMemoryUsedMb} MB`;
  if (r.initDurationMs !== undefined) line += `\tInit Duration: ${ms(r.initDurationMs)} ms`;
  if (r.errorType !== undefined) {
    const status = failureStatus(r.errorType);
    line += status === "timeout" ? "\tStatus: timeout" : `\tStatus: error\tError Type: ${r.errorType}`;
  }
  return line;
}

export type InitReport =
  | { durationMs: number; status: "success"; phases?: InitPhases }
  | { durationMs: number; status: "failure"; errorType: string };

/** `INIT_REPORT Init Duration: …\tPhase: init\tStatus: success|error|timeout[\tError Type: …]` */
export function initReportLine(r: InitReport): string {
  const head = `INIT_REPORT Init Duration: ${ms(r.durationMs)} ms\tPhase: init`;
  if (r.status === "success") {
    const p = r.phases;
    return p
      ? `${head}\tStatus: success\tExtensions: ${ms(p.extensionsMs)} ms\tRuntime: ${ms(p.runtimeMs)} ms\tFunction: ${ms(p.functionMs)} ms`
      : `${head}\tStatus: success`;
  }
  return failureStatus(r.errorType) === "timeout"
    ? `${head}\tStatus: timeout`
    : `${head}\tStatus: error\tError Type: ${r.errorType}`;
}

/** The levels `SystemLogLevel` takes, most detail first. */
const SYSTEM_LEVELS = ["DEBUG", "INFO", "WARN"] as const;
export type SystemLevel = (typeof SYSTEM_LEVELS)[number];

/** How a finished invoke is named in `platform.runtimeDone` / `platform.report` (Telemetry API `Status`). */
export type InvokeStatus = "success" | "error" | "timeout" | "failure";

export function invokeStatus(o: { ok: boolean; errorType?: string; fatal: boolean }): InvokeStatus {
  if (o.ok) return "success";
  if (failureStatus(o.errorType) === "timeout") return "timeout";
  return o.fatal ? "failure" : "error";
}

/** What `platform.initStart` says about the environment. */
export interface InitStartFields {
  runtime: string;
  /** The runtime's version label (`nodejs:22.v41`). */
  runtimeVersion: string;
  initializationType: "on-demand" | "provisioned-concurrency";
  functionName: string;
  functionVersion: string;
  /** The environment's log stream name. */
  instanceId: string;
  memorySizeMb: number;
}

export interface RuntimeDoneFields {
  requestId: string;
  status: InvokeStatus;
  errorType?: string;
  durationMs: number;
  producedBytes: number;
}

/**
 * The platform's lines for one function configuration. With `LogFormat: Text` they are Lambda's text
 * lines (START, END, REPORT, INIT_START, INIT_REPORT, EXTENSION, notes) and nothing is filtered. With
 * `LogFormat: JSON` each is a Telemetry-API-shaped record `{"time","type","record"}` at a level, and
 * records below `SystemLogLevel` are left out (a method answers undefined):
 *
 * | level | records |
 * |---|---|
 * | DEBUG | `platform.runtimeDone` |
 * | INFO | `platform.initStart`, `platform.start`, `platform.report` (success), `platform.initReport` (success), `platform.extension`, `platform.shutdown` |
 * | WARN | `platform.report` / `platform.initReport` with another status, `platform.fault` (timeouts, a runtime that exited), `platform.logsDropped` |
 *
 * In JSON there is no `platform.end` (Lambda writes none to the log stream).
 */
export class PlatformLines {
  readonly json: boolean;
  private readonly min: number;

  constructor(
    config: { LogFormat?: string; SystemLogLevel?: string },
    private readonly now: () => Date = () => new Date(),
  ) {
    this.json = config.LogFormat === "JSON";
    const at = SYSTEM_LEVELS.indexOf((config.SystemLogLevel ?? "INFO").toUpperCase() as SystemLevel);
    this.min = at < 0 ? 1 : at;
  }

  private record(level: SystemLevel, type: string, record: unknown): string | undefined {
    if (SYSTEM_LEVELS.indexOf(level) < this.min) return undefined;
    return JSON.stringify({ time: this.now().toISOString(), type, record });
  }

  initStart(f: InitStartFields): string | undefined {
    if (!this.json) return initStartLine(f.runtime, f.runtimeVersion);
    return this.record("INFO", "platform.initStart", {
      initializationType: f.initializationType,
      phase: "init",
      runtimeVersion: f.runtimeVersion,
      runtimeVersionArn: runtimeVersionArn(f.runtime, f.runtimeVersion),
      functionName: f.functionName,
      functionVersion: f.functionVersion,
      instanceId: f.instanceId,
      instanceMaxMemory: f.memorySizeMb * 1024 * 1024,
    });
  }

  initReport(r: InitReport, initializationType: "on-demand" | "provisioned-concurrency"): string | undefined {
    if (!this.json) return initReportLine(r);
    const failed = r.status === "failure";
    return this.record(failed ? "WARN" : "INFO", "platform.initReport", {
      initializationType,
      phase: "init",
      status: failed ? failureStatus(r.errorType) : "success",
      ...(failed ? { errorType: r.errorType } : {}),
      metrics: { durationMs: round3(r.durationMs) },
    });
  }

  start(requestId: string, version: string, functionArn: string): string | undefined {
    if (!this.json) return startLine(requestId, version);
    return this.record("INFO", "platform.start", { requestId, functionArn, version });
  }

  /** Only in JSON, at DEBUG (the text format has no such line). */
  runtimeDone(f: RuntimeDoneFields): string | undefined {
    if (!this.json) return undefined;
    return this.record("DEBUG", "platform.runtimeDone", {
      requestId: f.requestId,
      status: f.status,
      ...(f.errorType !== undefined && f.status !== "success" ? { errorType: f.errorType } : {}),
      metrics: { durationMs: round3(f.durationMs), producedBytes: f.producedBytes },
    });
  }

  end(requestId: string): string | undefined {
    return this.json ? undefined : endLine(requestId);
  }

  /** `status` names the outcome in JSON; the text line names only failures of the environment (`errorType`). */
  report(r: ReportFields & { status: InvokeStatus; invokeErrorType?: string }): string | undefined {
    if (!this.json) return reportLine(r);
    const metrics: Record<string, number> = {
      durationMs: round3(r.durationMs),
      billedDurationMs: billedDurationMs(r.durationMs),
      memorySizeMB: r.memorySizeMb,
      maxMemoryUsedMB: r.maxMemoryUsedMb,
    };
    if (r.initDurationMs !== undefined) metrics.initDurationMs = round3(r.initDurationMs);
    const errorType = r.invokeErrorType ?? r.errorType;
    return this.record(r.status === "success" ? "INFO" : "WARN", "platform.report", {
      requestId: r.requestId,
      metrics,
      status: r.status,
      ...(r.status !== "success" && errorType !== undefined ? { errorType } : {}),
    });
  }

  extension(name: string, state: string, events: string[]): string | undefined {
    if (!this.json) return `EXTENSION\tName: ${name}\tState: ${state}\tEvents: [${events.join(",")}]`;
    return this.record("INFO", "platform.extension", { name, state, events });
  }

  /** The platform's word on a run that failed (a timeout, a runtime that exited). */
  fault(text: string): string | undefined {
    return this.json ? this.record("WARN", "platform.fault", text) : text;
  }

  logsDropped(text: string, droppedRecords: number, droppedBytes: number): string | undefined {
    if (!this.json) return text;
    return this.record("WARN", "platform.logsDropped", { reason: text, droppedRecords, droppedBytes });
  }

  shutdown(reason: string, durationMs: number): string | undefined {
    if (!this.json) return `SHUTDOWN Reason: ${reason}\tDuration: ${ms(durationMs)} ms`;
    return this.record("INFO", "platform.shutdown", {
      shutdownReason: reason,
      metrics: { durationMs: round3(durationMs) },
    });
  }
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function runtimeVersionArn(runtime: string, version: string): string {
  return `lambent:${runtime}:${version}`;
}
