/** Shared pieces of the event source mapping tests: a batch-reporting handler and small waits. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateFunctionCommand, type LambdaClient, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import type { Received } from "./collector.js";
import { ROLE } from "./server.js";
import { zipEntries } from "./zip.js";

/**
 * POSTs every batch it gets to REPORT_URL/batch as `{ records: [{ id, data }] }`.
 * A record `{ poison: true }` always fails; `{ failTimes: k }` fails its first k
 * runs. With MODE=partial failures are reported as batchItemFailures instead of thrown.
 */
export const BATCH_HANDLER = `
const fs = require("node:fs");
function records(event) {
  if (event.Records) return event.Records.map((r) => { return { id: r.kinesis.sequenceNumber, data: JSON.parse(Buffer.from(r.kinesis.data, "base64").toString()) }; });
  const out = [];
  for (const msgs of Object.values(event.rmqMessagesByQueue)) for (const m of msgs) out.push({ id: m.basicProperties.messageId, data: JSON.parse(Buffer.from(m.data, "base64").toString()) });
  return out;
}
exports.handler = async (event) => {
  const recs = records(event);
  await fetch(process.env.REPORT_URL + "/batch", { method: "POST", body: JSON.stringify({ records: recs }) });
  const partial = process.env.MODE === "partial";
  const failures = [];
  for (const r of recs) {
    const d = r.data || {};
    let fail = d.poison === true;
    if (d.failTimes) {
      const f = process.env.STATE_DIR + "/" + d.n;
      let c = 0;
      try { c = Number(fs.readFileSync(f, "utf8")); } catch {}
      fs.writeFileSync(f, String(c + 1));
      if (c < d.failTimes) fail = true;
    }
    if (fail) {
      if (!partial) throw new Error("record " + d.n + " failed");
      failures.push({ itemIdentifier: r.id });
    }
  }
  return partial ? { batchItemFailures: failures } : { ok: recs.length };
};
`;

export async function deployBatchFunction(
  lambda: LambdaClient,
  name: string,
  reportUrl: string,
  env: Record<string, string> = {},
): Promise<void> {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: BATCH_HANDLER }]) },
      Environment: {
        Variables: { REPORT_URL: reportUrl, STATE_DIR: mkdtempSync(join(tmpdir(), "lambent-src-")), ...env },
      },
      Timeout: 30,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

export interface Batch {
  records: Array<{ id: string; data: { n: number; [k: string]: unknown } }>;
}

export function batchesOf(received: Received[]): Batch[] {
  return received.filter((r) => r.path === "/batch").map((r) => r.body as Batch);
}

/** Every record number seen, in arrival order. */
export function numbersSeen(received: Received[]): number[] {
  return batchesOf(received).flatMap((b) => b.records.map((r) => r.data.n));
}

/** Poll `probe` until it returns a truthy value (for state owned by the server, not by a request). */
export async function until<T>(
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A JSON document a test inspects freely. */
// biome-ignore lint/suspicious/noExplicitAny: test assertions walk arbitrary JSON
export type Doc = Record<string, any>;
