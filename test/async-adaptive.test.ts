/**
 * The async poller's adaptive in-flight limits on a real server (process sandbox): a handler that
 * waits on I/O still gets every async slot, and a no-op handler's backlog drains completely, each
 * event run once.
 */
import {
  CreateFunctionCommand,
  InvokeCommand,
  type LambdaClient,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queueDrained } from "./helpers/async-fns.js";
import { Collector } from "./helpers/collector.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

/** Reports its start, sleeps SLEEP_MS, reports its end (each with the event's n). */
const HANDLER = `
exports.handler = async (event) => {
  const post = (path) => fetch(process.env.REPORT_URL + path, { method: "POST", body: JSON.stringify({ n: event.n }) });
  const sleep = Number(process.env.SLEEP_MS || 0);
  if (sleep > 0) await post("/start");
  if (sleep > 0) await new Promise((r) => setTimeout(r, sleep));
  await post("/end");
  return {};
};
`;

async function deploy(lambda: LambdaClient, name: string, env: Record<string, string>): Promise<void> {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: HANDLER }]) },
      Environment: { Variables: env },
      Timeout: 30,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

let server: TestServer;
let sink: Collector;

beforeAll(async () => {
  sink = await Collector.start();
  server = await startServer({ asyncAdaptive: true });
});

afterAll(async () => {
  await server?.stop();
  await sink?.close();
});

async function send(fn: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 25)
    await Promise.all(
      Array.from({ length: Math.min(25, count - i) }, (_, j) =>
        server.lambda.send(
          new InvokeCommand({
            FunctionName: fn,
            InvocationType: "Event",
            Payload: Buffer.from(JSON.stringify({ n: i + j })),
          }),
        ),
      ),
    );
}

describe("adaptive async in-flight limits (real server)", () => {
  it("a handler that sleeps 200 ms still runs 16 events at once", async () => {
    await deploy(server.lambda, "sleeper", { REPORT_URL: `${sink.url}/s`, SLEEP_MS: "200" });
    await send("sleeper", 400);
    await sink.onPath("/s/end", 400);
    // Starts and ends in the order they reached the sink: a lower bound of the events running at once.
    let running = 0;
    let most = 0;
    for (const r of sink.received) {
      if (r.path === "/s/start") most = Math.max(most, ++running);
      else if (r.path === "/s/end") running--;
    }
    expect(most).toBe(16);
    const ends = sink.received.filter((r) => r.path === "/s/end").map((r) => (r.body as { n: number }).n);
    expect(new Set(ends).size).toBe(400);
  }, 120_000);

  it("a no-op handler's backlog of 1500 drains completely, each event run once", async () => {
    await deploy(server.lambda, "noop", { REPORT_URL: `${sink.url}/n` });
    await send("noop", 1500);
    await sink.onPath("/n/end", 1500);
    const status = await queueDrained(server.url, "noop", { listed: true });
    expect(status?.succeeded).toBe(1500);
    const ns = sink.received.filter((r) => r.path === "/n/end").map((r) => (r.body as { n: number }).n);
    expect(ns).toHaveLength(1500);
    expect(new Set(ns).size).toBe(1500);
  }, 120_000);
});
