/**
 * Schedules fire each tick exactly once across a kill -9 and restart (SQLite)
 * and across two servers on one PostgreSQL, on a test clock 120× faster than
 * real time (one minute = 500 ms). Every tick's invoke carries its tick
 * (`<aws.scheduler.scheduled-time>`) and its request id; a tick must have
 * exactly one request id (an async event run twice after a kill keeps its
 * id: that is the queue's at-least-once run, not a second firing), and the
 * ticks must follow each other without a gap (ticks missed while the server
 * was down fire when it is back, being younger than MaximumEventAgeInSeconds).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateFunctionCommand, type LambdaClient, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { CreateScheduleCommand, SchedulerClient, UpdateScheduleCommand } from "@aws-sdk/client-scheduler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fnArn, queueDrained } from "./helpers/async-fns.js";
import { buildAsync, type ChildServer, startChild } from "./helpers/child-server.js";
import { Collector } from "./helpers/collector.js";
import { createTestDatabase } from "./helpers/postgres.js";
import { lambdaClient, ROLE } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

// Not faster: the clock keeps ticking while a loaded machine restarts a server, and every tick is an invoke.
const SPEED = 120;
const HANDLER = `
exports.handler = async (event, context) => {
  await fetch(process.env.REPORT_URL, { method: "POST", body: JSON.stringify({ event, requestId: context.awsRequestId }) });
  return {};
};
`;

let sink: Collector;
const dirs: string[] = [];
const children: ChildServer[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "lambent-sched-"));
  dirs.push(d);
  return d;
}

async function child(dataDir: string, args: string[] = []): Promise<ChildServer> {
  const c = await startChild(dataDir, args);
  children.push(c);
  return c;
}

function schedulerClient(url: string): SchedulerClient {
  return new SchedulerClient({
    endpoint: url,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
}

async function deployReporter(lambda: LambdaClient, name: string, path: string): Promise<void> {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: HANDLER }]) },
      Environment: { Variables: { REPORT_URL: `${sink.url}${path}` } },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

function everyMinute(fn: string) {
  return {
    Name: `every-minute-${fn}`,
    ScheduleExpression: "rate(1 minute)",
    FlexibleTimeWindow: { Mode: "OFF" as const },
    Target: { Arn: fnArn(fn), RoleArn: ROLE, Input: '{"at":"<aws.scheduler.scheduled-time>"}' },
  };
}

/** Reports on `path`: request ids per tick. */
function ticksOn(path: string): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const r of sink.received) {
    if (r.path !== path) continue;
    const b = r.body as { event: { at: string }; requestId: string };
    const t = Date.parse(b.event.at);
    const ids = out.get(t) ?? new Set<string>();
    ids.add(b.requestId);
    out.set(t, ids);
  }
  return out;
}

/** Every tick once (one request id), one minute apart, no gap. Returns how many. */
function expectExactlyOnce(path: string): number {
  const ticks = ticksOn(path);
  const sorted = [...ticks.keys()].sort((a, b) => a - b);
  for (const [t, ids] of ticks) expect(ids.size, `tick ${new Date(t).toISOString()}`).toBe(1);
  for (let i = 1; i < sorted.length; i++) {
    expect((sorted[i] as number) - (sorted[i - 1] as number), `gap before tick ${i}`).toBe(60_000);
  }
  return sorted.length;
}

beforeAll(async () => {
  await buildAsync();
  sink = await Collector.start();
  process.env.LAMBENT_TEST_SCHEDULE_CLOCK = `${Date.now()},${SPEED}`;
}, 180_000);

afterAll(async () => {
  delete process.env.LAMBENT_TEST_SCHEDULE_CLOCK;
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) await c.kill9();
  await sink?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("schedules exactly once", () => {
  it("SQLite: a kill -9 mid-run and a restart neither lose nor double a tick", async () => {
    const dir = tempDir();
    let server = await child(dir);
    let lambda = lambdaClient(server.url);
    let scheduler = schedulerClient(server.url);
    await deployReporter(lambda, "sq", "/sq");
    await scheduler.send(new CreateScheduleCommand(everyMinute("sq")));
    await sink.waitFor((r) => r.path === "/sq", 5);
    await server.kill9();
    lambda.destroy();
    scheduler.destroy();
    const beforeRestart = ticksOn("/sq").size;

    server = await child(dir);
    lambda = lambdaClient(server.url);
    scheduler = schedulerClient(server.url);
    // The restart takes real time, so several minutes of the fast clock passed: those ticks fire now.
    // Distinct ticks, not reports: a tick whose invoke ran when the server was killed runs again.
    await sink.waitUntil(() => ticksOn("/sq").size >= beforeRestart + 15);
    await scheduler.send(new UpdateScheduleCommand({ ...everyMinute("sq"), State: "DISABLED" }));
    await queueDrained(server.url, "sq");
    const n = expectExactlyOnce("/sq");
    expect(n).toBeGreaterThanOrEqual(beforeRestart + 15);
    console.log(`SQLite: ${beforeRestart} ticks before kill -9, ${n} in all, each once, none missing`);
    lambda.destroy();
    scheduler.destroy();
    expect(await server.stop()).toBe(0);
  }, 180_000);

  it("PostgreSQL: two servers fire each tick once (and one of them is killed midway)", async () => {
    const db = await createTestDatabase();
    const database = db.url;
    const t0 = Date.now();
    // Where the time went, when a loaded machine makes this slow (each server start costs seconds of CPU).
    const step = (what: string) =>
      console.log(`pg +${Date.now() - t0} ms ${what} (${ticksOn("/pgs").size} ticks)`);
    try {
      const dirA = tempDir();
      let a = await child(dirA, ["--database", database]);
      step("a up");
      const b = await child(tempDir(), ["--database", database]);
      step("b up");
      const la = lambdaClient(a.url);
      const sb = schedulerClient(b.url);
      await deployReporter(la, "pgs", "/pgs");
      step("deployed");
      await sb.send(new CreateScheduleCommand(everyMinute("pgs")));
      await sink.waitFor((r) => r.path === "/pgs", 10);
      step("10 ticks");
      await a.kill9();
      la.destroy();
      const before = ticksOn("/pgs").size;
      a = await child(dirA, ["--database", database]);
      step("a restarted");
      await sink.waitUntil(() => ticksOn("/pgs").size >= before + 20);
      step("20 more");
      await sb.send(new UpdateScheduleCommand({ ...everyMinute("pgs"), State: "DISABLED" }));
      await queueDrained(a.url, "pgs");
      await queueDrained(b.url, "pgs");
      step("drained");
      const n = expectExactlyOnce("/pgs");
      console.log(
        `PostgreSQL: ${n} ticks over two servers (one killed and restarted), each once, none missing`,
      );
      sb.destroy();
      expect(await a.stop()).toBe(0);
      expect(await b.stop()).toBe(0);
    } finally {
      await db.drop();
    }
  }, 180_000);
});
