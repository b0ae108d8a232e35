/** `lambent sources`: event source mappings with state, lag, throughput and counters. */
import type { Command } from "commander";
import type { MappingStatus } from "../sources/status.js";
import { signedFetch } from "./signed-fetch.js";

/** One row: what the stats route answers (a plain-data shape, imported as a type). */
type SourceRow = MappingStatus;

const COLUMNS: Array<[string, (r: SourceRow) => string]> = [
  ["UUID", (r) => r.UUID],
  ["FUNCTION", (r) => r.FunctionName],
  ["SOURCE", (r) => `${r.Source}:${r.Target}`],
  ["STATE", (r) => r.State],
  ["LAG", (r) => (r.lag === null ? "-" : String(r.lag))],
  ["REC/S", (r) => String(r.recordsPerSecond)],
  ["PROCESSED", (r) => String(r.recordsProcessed)],
  ["FILTERED", (r) => String(r.recordsFiltered)],
  ["FAILED", (r) => String(r.recordsFailed)],
  ["RETRIES", (r) => String(r.retries)],
  ["THROTTLES", (r) => String(r.throttles)],
  ["LOOPS STOPPED", (r) => String(r.recursiveLoopsStopped ?? 0)],
  ["RECONNECTS", (r) => String(r.reconnects)],
  ["LAST RESULT", (r) => r.LastProcessingResult],
];

export function formatSourcesTable(rows: SourceRow[]): string {
  const cells = [COLUMNS.map(([h]) => h), ...rows.map((r) => COLUMNS.map(([, f]) => f(r)))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((c) => (c[i] as string).length)));
  return cells
    .map((c) =>
      c
        .map((v, i) => v.padEnd(widths[i] as number))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function registerSourcesCommand(program: Command, defaultEndpoint: string): void {
  program
    .command("sources")
    .description("show event source mappings: state, lag, records per second, processed / filtered / failed")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .option("--json", "print the raw JSON")
    .action(async (opts: { endpoint: string; json?: boolean }) => {
      const res = await signedFetch(
        `${opts.endpoint.replace(/\/+$/, "")}/_lambent/event-source-mappings/stats`,
      );
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      const body = (await res.json()) as { mappings: SourceRow[] };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        body.mappings.length === 0 ? "no event source mappings\n" : `${formatSourcesTable(body.mappings)}\n`,
      );
    });
}
