/** `lambent queue`: the async invoke queue per function (waiting, running, outcomes). */
import type { Command } from "commander";
import type { AsyncFunctionStatus as QueueRow } from "../async/status.js";
import { signedFetch } from "./signed-fetch.js";

const COLUMNS: Array<[keyof QueueRow, string]> = [
  ["functionName", "FUNCTION"],
  ["waiting", "WAITING"],
  ["running", "RUNNING"],
  ["succeeded", "SUCCEEDED"],
  ["failed", "FAILED"],
  ["expired", "EXPIRED"],
  ["dropped", "DROPPED"],
  ["retries", "RETRIES"],
  ["throttles", "THROTTLES"],
  ["deliveriesWaiting", "DELIVERIES-WAITING"],
  ["delivered", "DELIVERED"],
  ["deliveryFailures", "DELIVERY-FAILURES"],
];

export function formatQueueTable(rows: QueueRow[]): string {
  const cells = [COLUMNS.map(([, h]) => h), ...rows.map((r) => COLUMNS.map(([k]) => String(r[k])))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((c) => (c[i] as string).length)));
  return cells
    .map((c) =>
      c.map((v, i) => (i === 0 ? v.padEnd(widths[i] as number) : v.padStart(widths[i] as number))).join("  "),
    )
    .join("\n");
}

export function registerQueueCommand(program: Command, defaultEndpoint: string): void {
  program
    .command("queue")
    .description("show the async invoke queue per function: waiting, running, succeeded, failed, dropped")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .option("--json", "print the raw JSON")
    .action(async (opts: { endpoint: string; json?: boolean }) => {
      const res = await signedFetch(`${opts.endpoint.replace(/\/+$/, "")}/_lambent/queue`);
      if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      const body = (await res.json()) as { functions: QueueRow[] };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
        return;
      }
      process.stdout.write(
        body.functions.length === 0 ? "no async events yet\n" : `${formatQueueTable(body.functions)}\n`,
      );
    });
}
