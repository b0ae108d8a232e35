/** Tiny handlers for async invoke tests, deployed from inline zips. */
import {
  CreateFunctionCommand,
  type CreateFunctionCommandInput,
  type LambdaClient,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import type { AsyncFunctionStatus, AsyncStatus } from "../../src/async/status.js";
import { ROLE } from "./server.js";
import { signedFetch } from "./signed.js";
import { zipEntries } from "./zip.js";

/**
 * Counts its runs in COUNT_FILE (if set), reports each run to REPORT_URL (if
 * set) as `{ run, event }`, sleeps SLEEP_MS, waits for GATE_URL to answer (if
 * set), and fails while run <= FAIL_TIMES.
 */
export const PROBE_HANDLER = `
const fs = require("node:fs");
exports.handler = async (event) => {
  let run = 0;
  if (process.env.COUNT_FILE) {
    fs.appendFileSync(process.env.COUNT_FILE, "x");
    run = fs.readFileSync(process.env.COUNT_FILE, "utf8").length;
  }
  const sleep = Number(process.env.SLEEP_MS || 0);
  if (sleep > 0) await new Promise((r) => setTimeout(r, sleep));
  if (process.env.REPORT_URL) {
    await fetch(process.env.REPORT_URL, { method: "POST", body: JSON.stringify({ run, event }) });
  }
  if (process.env.GATE_URL) await (await fetch(process.env.GATE_URL)).text();
  const fails = Number(process.env.FAIL_TIMES || 0);
  if (fails > 0 && run <= fails) throw new Error("fail #" + run);
  return { runs: run };
};
`;

export async function deployProbe(
  lambda: LambdaClient,
  name: string,
  env: Record<string, string>,
  extra: Partial<CreateFunctionCommandInput> = {},
): Promise<void> {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: PROBE_HANDLER }]) },
      Environment: { Variables: env },
      Timeout: 30,
      ...extra,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

export function fnArn(name: string, qualifier?: string): string {
  const base = `arn:aws:lambda:us-east-1:000000000000:function:${name}`;
  return qualifier ? `${base}:${qualifier}` : base;
}

/**
 * Polls `GET /_lambent/queue` until nothing waits or runs for `fn` (a finish is not pushed to the
 * test); returns that function's counters. `listed`: also wait until the queue lists `fn` at all
 * (for a caller that knows its events were accepted).
 */
export async function queueDrained(
  url: string,
  fn: string,
  { listed = false } = {},
): Promise<AsyncFunctionStatus | undefined> {
  for (;;) {
    const res = await signedFetch(`${url}/_lambent/queue`);
    const body = (await res.json()) as AsyncStatus;
    const s = body.functions.find((f) => f.functionName === fn);
    if (s ? s.waiting === 0 && s.running === 0 : !listed) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}
