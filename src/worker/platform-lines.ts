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
  return `INIT_START Runtime Version: ${version}\tRuntime Version ARN: lambent:${runtime}:${version}`;
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
