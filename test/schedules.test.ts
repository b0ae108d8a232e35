/**
 * EventBridge Scheduler through @aws-sdk/client-scheduler against a real
 * server: schedule and group CRUD, AWS's errors, pagination and filters, and
 * firing on a test clock 600× faster than real time (a minute passes in 100 ms):
 * every tick of a rate() schedule is one async invoke; at() fires once and
 * ActionAfterCompletion DELETE removes the schedule.
 */

import { PutFunctionConcurrencyCommand } from "@aws-sdk/client-lambda";
import {
  ConflictException,
  CreateScheduleCommand,
  type CreateScheduleCommandInput,
  CreateScheduleGroupCommand,
  DeleteScheduleCommand,
  DeleteScheduleGroupCommand,
  GetScheduleCommand,
  GetScheduleGroupCommand,
  ListScheduleGroupsCommand,
  ListSchedulesCommand,
  ListTagsForResourceCommand,
  ResourceNotFoundException,
  SchedulerClient,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateScheduleCommand,
  ValidationException,
} from "@aws-sdk/client-scheduler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployProbe, fnArn } from "./helpers/async-fns.js";
import { Collector } from "./helpers/collector.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { createAccessKey, signedFetch } from "./helpers/signed.js";

const SPEED = 600;
const ANCHOR = Date.now();
/** The schedules' clock in this test (the server's is the same function of real time). */
const virtualNow = () => ANCHOR + (Date.now() - ANCHOR) * SPEED;

let server: TestServer;
let sink: Collector;
let scheduler: SchedulerClient;

beforeAll(async () => {
  sink = await Collector.start();
  server = await startServer({ scheduleClock: { anchorMs: ANCHOR, speed: SPEED } });
  scheduler = new SchedulerClient({
    endpoint: server.url,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
  await deployProbe(server.lambda, "tick", { REPORT_URL: `${sink.url}/tick` });
});

afterAll(async () => {
  scheduler?.destroy();
  await server?.stop();
  await sink?.close();
});

function schedule(name: string, extra: Partial<CreateScheduleCommandInput> = {}): CreateScheduleCommandInput {
  return {
    Name: name,
    ScheduleExpression: "rate(1 day)",
    FlexibleTimeWindow: { Mode: "OFF" },
    Target: { Arn: fnArn("tick"), RoleArn: ROLE },
    ...extra,
  };
}

async function rejection(p: Promise<unknown>): Promise<Error & { name: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

describe("schedule groups", () => {
  it("default exists; create, get, tag, list with prefix and pages, delete", async () => {
    const def = await scheduler.send(new GetScheduleGroupCommand({ Name: "default" }));
    expect(def.Arn).toBe("arn:aws:scheduler:us-east-1:000000000000:schedule-group/default");
    expect(def.State).toBe("ACTIVE");
    for (const n of ["team-a", "team-b", "team-c"]) {
      const r = await scheduler.send(
        new CreateScheduleGroupCommand({ Name: n, Tags: [{ Key: "k", Value: n }] }),
      );
      expect(r.ScheduleGroupArn).toBe(`arn:aws:scheduler:us-east-1:000000000000:schedule-group/${n}`);
    }
    const dup = await rejection(scheduler.send(new CreateScheduleGroupCommand({ Name: "team-a" })));
    expect(dup).toBeInstanceOf(ConflictException);
    expect(dup.message).toBe("Schedule group team-a already exists.");

    const arn = "arn:aws:scheduler:us-east-1:000000000000:schedule-group/team-a";
    await scheduler.send(new TagResourceCommand({ ResourceArn: arn, Tags: [{ Key: "env", Value: "dev" }] }));
    await scheduler.send(new UntagResourceCommand({ ResourceArn: arn, TagKeys: ["k"] }));
    expect((await scheduler.send(new ListTagsForResourceCommand({ ResourceArn: arn }))).Tags).toEqual([
      { Key: "env", Value: "dev" },
    ]);

    const first = await scheduler.send(new ListScheduleGroupsCommand({ NamePrefix: "team-", MaxResults: 2 }));
    expect(first.ScheduleGroups?.map((g) => g.Name)).toEqual(["team-a", "team-b"]);
    const second = await scheduler.send(
      new ListScheduleGroupsCommand({ NamePrefix: "team-", MaxResults: 2, NextToken: first.NextToken }),
    );
    expect(second.ScheduleGroups?.map((g) => g.Name)).toEqual(["team-c"]);
    expect(second.NextToken).toBeUndefined();

    await scheduler.send(new DeleteScheduleGroupCommand({ Name: "team-c" }));
    const gone = await rejection(scheduler.send(new GetScheduleGroupCommand({ Name: "team-c" })));
    expect(gone).toBeInstanceOf(ResourceNotFoundException);
    expect(gone.message).toBe("Schedule group team-c does not exist.");
    expect(
      await rejection(scheduler.send(new DeleteScheduleGroupCommand({ Name: "default" }))),
    ).toBeInstanceOf(ValidationException);
  });
});

describe("schedules", () => {
  it("create, get, update, list (filters, pages), delete, with AWS's errors", async () => {
    const created = await scheduler.send(
      new CreateScheduleCommand(
        schedule("nightly", {
          ScheduleExpression: "cron(0 2 ? * MON-FRI *)",
          ScheduleExpressionTimezone: "Europe/Berlin",
          Description: "every weekday",
          Target: {
            Arn: fnArn("tick"),
            RoleArn: ROLE,
            Input: '{"a":1}',
            RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 600 },
          },
        }),
      ),
    );
    expect(created.ScheduleArn).toBe("arn:aws:scheduler:us-east-1:000000000000:schedule/default/nightly");
    const got = await scheduler.send(new GetScheduleCommand({ Name: "nightly" }));
    expect(got).toMatchObject({
      Name: "nightly",
      GroupName: "default",
      ScheduleExpression: "cron(0 2 ? * MON-FRI *)",
      ScheduleExpressionTimezone: "Europe/Berlin",
      Description: "every weekday",
      State: "ENABLED",
      ActionAfterCompletion: "NONE",
      FlexibleTimeWindow: { Mode: "OFF" },
      Target: {
        Arn: fnArn("tick"),
        RoleArn: ROLE,
        Input: '{"a":1}',
        RetryPolicy: { MaximumRetryAttempts: 3, MaximumEventAgeInSeconds: 600 },
      },
    });
    expect(got.CreationDate).toBeInstanceOf(Date);

    const dup = await rejection(scheduler.send(new CreateScheduleCommand(schedule("nightly"))));
    expect(dup).toBeInstanceOf(ConflictException);
    expect(dup.message).toBe("Schedule nightly already exists.");

    await scheduler.send(new UpdateScheduleCommand({ ...schedule("nightly"), State: "DISABLED" }));
    const updated = await scheduler.send(new GetScheduleCommand({ Name: "nightly" }));
    expect(updated.State).toBe("DISABLED");
    expect(updated.ScheduleExpression).toBe("rate(1 day)");
    expect(updated.Description).toBeUndefined();

    const missing = await rejection(scheduler.send(new GetScheduleCommand({ Name: "nope" })));
    expect(missing).toBeInstanceOf(ResourceNotFoundException);
    expect(missing.message).toBe("Schedule nope does not exist.");
    expect(await rejection(scheduler.send(new UpdateScheduleCommand(schedule("nope"))))).toBeInstanceOf(
      ResourceNotFoundException,
    );
    expect(
      await rejection(
        scheduler.send(new CreateScheduleCommand(schedule("x", { GroupName: "no-such-group" }))),
      ),
    ).toBeInstanceOf(ResourceNotFoundException);

    const bad = await rejection(
      scheduler.send(new CreateScheduleCommand(schedule("bad", { ScheduleExpression: "cron(0 2 * * * *)" }))),
    );
    expect(bad).toBeInstanceOf(ValidationException);
    expect(bad.message).toBe("Invalid Schedule Expression cron(0 2 * * * *).");
    const badName = await rejection(scheduler.send(new CreateScheduleCommand(schedule("bad name!"))));
    expect(badName).toBeInstanceOf(ValidationException);
    expect(badName.message).toContain(
      "at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern",
    );
    const badTarget = await rejection(
      scheduler.send(
        new CreateScheduleCommand(
          schedule("sqs", { Target: { Arn: "arn:aws:sqs:us-east-1:000000000000:q", RoleArn: ROLE } }),
        ),
      ),
    );
    expect(badTarget).toBeInstanceOf(ValidationException);
    expect(
      await rejection(
        scheduler.send(
          new CreateScheduleCommand(schedule("tz", { ScheduleExpressionTimezone: "Mars/Olympus_Mons" })),
        ),
      ),
    ).toBeInstanceOf(ValidationException);

    await scheduler.send(new CreateScheduleGroupCommand({ Name: "pages" }));
    for (let i = 0; i < 5; i++) {
      await scheduler.send(
        new CreateScheduleCommand(
          schedule(`p-${i}`, { GroupName: "pages", State: i % 2 === 0 ? "ENABLED" : "DISABLED" }),
        ),
      );
    }
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await scheduler.send(
        new ListSchedulesCommand({ GroupName: "pages", MaxResults: 2, NextToken: token }),
      );
      expect((page.Schedules ?? []).length).toBeLessThanOrEqual(2);
      names.push(...(page.Schedules ?? []).map((s) => s.Name as string));
      token = page.NextToken;
    } while (token);
    expect(names).toEqual(["p-0", "p-1", "p-2", "p-3", "p-4"]);
    const disabled = await scheduler.send(
      new ListSchedulesCommand({ GroupName: "pages", State: "DISABLED" }),
    );
    expect(disabled.Schedules?.map((s) => s.Name)).toEqual(["p-1", "p-3"]);
    const prefixed = await scheduler.send(new ListSchedulesCommand({ NamePrefix: "night" }));
    expect(prefixed.Schedules?.map((s) => [s.Name, s.GroupName, s.Target?.Arn])).toEqual([
      ["nightly", "default", fnArn("tick")],
    ]);

    await scheduler.send(new DeleteScheduleCommand({ Name: "p-0", GroupName: "pages" }));
    expect(
      await rejection(scheduler.send(new DeleteScheduleCommand({ Name: "p-0", GroupName: "pages" }))),
    ).toBeInstanceOf(ResourceNotFoundException);
    // Deleting a group deletes its schedules.
    await scheduler.send(new DeleteScheduleGroupCommand({ Name: "pages" }));
    const left = await scheduler.send(new ListSchedulesCommand({ NamePrefix: "p-" }));
    expect(left.Schedules).toEqual([]);
  });
});

describe("firing (test clock: 1 minute = 100 ms)", () => {
  it("a rate(1 minute) schedule invokes once per tick, with the tick in its Input", async () => {
    const start = virtualNow();
    await scheduler.send(
      new CreateScheduleCommand(
        schedule("every-minute", {
          ScheduleExpression: "rate(1 minute)",
          Target: {
            Arn: fnArn("tick"),
            RoleArn: ROLE,
            Input:
              '{"schedule":"every-minute","at":"<aws.scheduler.scheduled-time>","id":"<aws.scheduler.execution-id>"}',
          },
        }),
      ),
    );
    const isMine = (r: { body: unknown }) =>
      (r.body as { event?: { schedule?: string } }).event?.schedule === "every-minute";
    await sink.waitFor(isMine, 6);
    await scheduler.send(
      new UpdateScheduleCommand({
        ...schedule("every-minute", { ScheduleExpression: "rate(1 minute)" }),
        State: "DISABLED",
      }),
    );
    // Every invoke that was enqueued has run once the queue is empty.
    await waitForQueueEmpty();
    const events = sink.received
      .filter(isMine)
      .map((r) => (r.body as { event: { at: string; id: string } }).event);
    const ticks = events.map((e) => Date.parse(e.at));
    expect(new Set(ticks).size).toBe(ticks.length); // no tick twice
    expect(new Set(events.map((e) => e.id)).size).toBe(ticks.length);
    const sorted = [...ticks].sort((a, b) => a - b);
    for (let i = 1; i < sorted.length; i++)
      expect((sorted[i] as number) - (sorted[i - 1] as number)).toBe(60_000);
    expect(sorted[0] as number).toBeGreaterThan(start);
    const counts = await server.platform.schedules.counts("default", "every-minute");
    expect(counts).toEqual({ fired: ticks.length, dropped: 0 });
  });

  it("at() fires once; ActionAfterCompletion DELETE removes the schedule after it", async () => {
    const at = new Date(virtualNow() + 3 * 60_000);
    const wall = at.toISOString().slice(0, 19);
    await scheduler.send(
      new CreateScheduleCommand(
        schedule("once", {
          ScheduleExpression: `at(${wall})`,
          ScheduleExpressionTimezone: "UTC",
          ActionAfterCompletion: "DELETE",
          Target: {
            Arn: fnArn("tick"),
            RoleArn: ROLE,
            Input: '{"schedule":"once","at":"<aws.scheduler.scheduled-time>"}',
          },
        }),
      ),
    );
    const [hit] = await sink.waitFor(
      (r) => (r.body as { event?: { schedule?: string } }).event?.schedule === "once",
    );
    expect((hit?.body as { event: { at: string } } | undefined)?.event.at).toBe(`${wall}Z`);
    await waitUntil(async () => (await server.platform.schedules.find("default", "once")) === undefined);
    expect(await rejection(scheduler.send(new GetScheduleCommand({ Name: "once" })))).toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it("FLEXIBLE windows fire each tick once, within the window", async () => {
    await scheduler.send(
      new CreateScheduleCommand(
        schedule("flex", {
          ScheduleExpression: "rate(10 minutes)",
          FlexibleTimeWindow: { Mode: "FLEXIBLE", MaximumWindowInMinutes: 5 },
          Target: {
            Arn: fnArn("tick"),
            RoleArn: ROLE,
            Input: '{"schedule":"flex","at":"<aws.scheduler.scheduled-time>"}',
          },
        }),
      ),
    );
    const isFlex = (r: { body: unknown }) =>
      (r.body as { event?: { schedule?: string } }).event?.schedule === "flex";
    await sink.waitFor(isFlex, 3);
    await scheduler.send(new DeleteScheduleCommand({ Name: "flex" }));
    await waitForQueueEmpty();
    const ticks = sink.received.filter(isFlex).map((r) => (r.body as { event: { at: string } }).event.at);
    expect(new Set(ticks).size).toBe(ticks.length);
  });
});

describe("start and end, missed ticks, missing targets", () => {
  const of = (name: string) => (r: { body: unknown }) =>
    (r.body as { event?: { schedule?: string } }).event?.schedule === name;
  const ticksOf = (name: string) =>
    sink.received.filter(of(name)).map((r) => Date.parse((r.body as { event: { at: string } }).event.at));

  it("StartDate and EndDate bound a recurring schedule: ticks from StartDate, none at or after EndDate", async () => {
    const start = Math.ceil((virtualNow() + 5 * 60_000) / 1000) * 1000;
    const end = start + 3 * 60_000;
    await scheduler.send(
      new CreateScheduleCommand(
        schedule("bounded", {
          ScheduleExpression: "rate(1 minute)",
          StartDate: new Date(start),
          EndDate: new Date(end),
          Target: {
            Arn: fnArn("tick"),
            RoleArn: ROLE,
            Input: '{"schedule":"bounded","at":"<aws.scheduler.scheduled-time>"}',
          },
        }),
      ),
    );
    const got = await scheduler.send(new GetScheduleCommand({ Name: "bounded" }));
    expect(got.StartDate?.getTime()).toBe(start);
    expect(got.EndDate?.getTime()).toBe(end);
    await waitUntil(
      async () => (await server.platform.schedules.find("default", "bounded"))?.next_tick_at === null,
    );
    await waitForQueueEmpty();
    expect(ticksOf("bounded").sort((a, b) => a - b)).toEqual([start, start + 60_000, start + 120_000]);
    expect(await server.platform.schedules.counts("default", "bounded")).toEqual({ fired: 3, dropped: 0 });
  });

  it("ticks missed longer than MaximumEventAgeInSeconds are dropped; younger ones fire late", async () => {
    const poller = server.platform.schedulePoller;
    await poller.stop();
    const created = virtualNow();
    await scheduler.send(
      new CreateScheduleCommand(
        schedule("missed", {
          ScheduleExpression: "rate(1 minute)",
          Target: {
            Arn: fnArn("tick"),
            RoleArn: ROLE,
            Input: '{"schedule":"missed","at":"<aws.scheduler.scheduled-time>"}',
            RetryPolicy: { MaximumEventAgeInSeconds: 120 },
          },
        }),
      ),
    );
    // No poller runs while 8 minutes pass on the schedules' clock.
    while (virtualNow() < created + 8 * 60_000) await new Promise((r) => setTimeout(r, 20));
    poller.start();
    await waitUntil(
      async () => ((await server.platform.schedules.counts("default", "missed"))?.fired ?? 0) >= 4,
    );
    expect((await server.platform.schedules.counts("default", "missed"))?.dropped).toBeGreaterThanOrEqual(5);
    await scheduler.send(new DeleteScheduleCommand({ Name: "missed" }));
    await waitForQueueEmpty();
    const ticks = ticksOf("missed").sort((a, b) => a - b);
    // Ticks 1..5 were over two minutes old when the poller came back.
    expect(ticks[0]).toBeGreaterThan(created + 5 * 60_000);
    expect(new Set(ticks).size).toBe(ticks.length);
  });

  it("a tick whose function does not exist goes to the schedule's dead-letter target and counts as dropped", async () => {
    await scheduler.send(
      new CreateScheduleCommand(
        schedule("ghost", {
          ScheduleExpression: "rate(1 minute)",
          Target: {
            Arn: fnArn("no-such-function"),
            RoleArn: ROLE,
            Input: '{"schedule":"ghost"}',
            DeadLetterConfig: { Arn: `${sink.url}/dlq` },
          },
        }),
      ),
    );
    const [dead] = await sink.onPath("/dlq");
    expect(dead?.body).toEqual({ schedule: "ghost" });
    expect(dead?.headers.error_code).toBe("ResourceNotFoundException");
    expect(dead?.headers.schedule_arn).toBe(
      "arn:aws:scheduler:us-east-1:000000000000:schedule/default/ghost",
    );
    expect(dead?.headers.target_arn).toBe(fnArn("no-such-function"));
    expect((await server.platform.schedules.counts("default", "ghost"))?.dropped).toBeGreaterThanOrEqual(1);
    await scheduler.send(new DeleteScheduleCommand({ Name: "ghost" }));
  });
});

describe("ClientToken", () => {
  it("a create or update repeated with its ClientToken answers as the first did and changes nothing", async () => {
    const input = schedule("idem", { ClientToken: "token-create-1" });
    const first = await scheduler.send(new CreateScheduleCommand(input));
    const again = await scheduler.send(new CreateScheduleCommand(input));
    expect(again.ScheduleArn).toBe(first.ScheduleArn);
    // The same token with a different request, or no token: the schedule exists.
    const other = await rejection(
      scheduler.send(new CreateScheduleCommand({ ...input, ScheduleExpression: "rate(2 days)" })),
    );
    expect(other).toBeInstanceOf(ConflictException);
    const fresh = await rejection(
      scheduler.send(new CreateScheduleCommand({ ...input, ClientToken: "another" })),
    );
    expect(fresh).toBeInstanceOf(ConflictException);

    const update = {
      ...schedule("idem", { ScheduleExpression: "rate(3 days)" }),
      ClientToken: "token-update-1",
    };
    await scheduler.send(new UpdateScheduleCommand(update));
    const updated = await scheduler.send(new GetScheduleCommand({ Name: "idem" }));
    await scheduler.send(new UpdateScheduleCommand(update));
    const repeated = await scheduler.send(new GetScheduleCommand({ Name: "idem" }));
    expect(repeated.ScheduleExpression).toBe("rate(3 days)");
    expect(repeated.LastModificationDate).toEqual(updated.LastModificationDate);
    // A new token applies the update again.
    await scheduler.send(new UpdateScheduleCommand({ ...update, ClientToken: "token-update-2" }));
    const reapplied = await scheduler.send(new GetScheduleCommand({ Name: "idem" }));
    expect(reapplied.LastModificationDate?.getTime()).toBeGreaterThan(
      updated.LastModificationDate?.getTime() ?? 0,
    );
    await scheduler.send(new DeleteScheduleCommand({ Name: "idem" }));
  });
});

describe("the target's RetryPolicy and DeadLetterConfig", () => {
  it("a tick whose invoke is throttled is retried MaximumRetryAttempts times, then sent to the dead-letter target", async () => {
    await deployProbe(server.lambda, "busy", { REPORT_URL: `${sink.url}/busy-ran` });
    // Reserved concurrency 0: every invoke of it is throttled.
    await server.lambda.send(
      new PutFunctionConcurrencyCommand({ FunctionName: "busy", ReservedConcurrentExecutions: 0 }),
    );
    for (const [name, attempts] of [
      ["busy-2", 2],
      ["busy-0", 0],
    ] as const) {
      await scheduler.send(
        new CreateScheduleCommand(
          schedule(name, {
            ScheduleExpression: "rate(1 minute)",
            Target: {
              Arn: fnArn("busy"),
              RoleArn: ROLE,
              Input: `{"schedule":"${name}"}`,
              RetryPolicy: { MaximumRetryAttempts: attempts, MaximumEventAgeInSeconds: 3600 },
              DeadLetterConfig: { Arn: `${sink.url}/${name}` },
            },
          }),
        ),
      );
      const [dead] = await sink.onPath(`/${name}`);
      await scheduler.send(new DeleteScheduleCommand({ Name: name }));
      expect(dead?.body).toEqual({ schedule: name });
      expect(dead?.headers.error_code).toBe("TooManyRequestsException");
      expect(dead?.headers.exhausted_retry_condition).toBe("MaximumRetryAttempts");
      expect(dead?.headers.retry_attempts).toBe(String(attempts));
      expect(dead?.headers.schedule_arn).toBe(
        `arn:aws:scheduler:us-east-1:000000000000:schedule/default/${name}`,
      );
      expect(dead?.headers.target_arn).toBe(fnArn("busy"));
      expect(dead?.headers.execution_id).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/,
      );
    }
    expect(sink.received.filter((r) => r.path === "/busy-ran")).toEqual([]);
  });
});

describe("signing and policies", () => {
  it("requests must be signed for 'scheduler'", async () => {
    const res = await signedFetch(`${server.url}/schedules`);
    expect(res.status).toBe(403);
    expect(res.headers.get("x-amzn-errortype")).toBe("InvalidSignatureException");
    expect(((await res.json()) as { message: string }).message).toBe(
      "Credential should be scoped to correct service: 'scheduler'. ",
    );
  });

  it("policies name scheduler:<Operation> on schedule ARNs", async () => {
    const key = await createAccessKey(server.url, "schedule-reader", [
      {
        Effect: "Allow",
        Action: "scheduler:GetSchedule",
        Resource: "arn:aws:scheduler:us-east-1:000000000000:schedule/default/*",
      },
    ]);
    const reader = new SchedulerClient({
      endpoint: server.url,
      region: "us-east-1",
      credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      maxAttempts: 1,
    });
    await scheduler.send(new CreateScheduleCommand(schedule("readable")));
    expect((await reader.send(new GetScheduleCommand({ Name: "readable" }))).Name).toBe("readable");
    const denied = await rejection(reader.send(new DeleteScheduleCommand({ Name: "readable" })));
    expect(denied.name).toBe("AccessDeniedException");
    expect(denied.message).toBe(
      `User: ${key.arn} is not authorized to perform: scheduler:DeleteSchedule on resource: arn:aws:scheduler:us-east-1:000000000000:schedule/default/readable because no identity-based policy allows the scheduler:DeleteSchedule action`,
    );
    expect((await rejection(reader.send(new ListSchedulesCommand({})))).name).toBe("AccessDeniedException");
    reader.destroy();
  });
});

async function waitUntil(cond: () => Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 20));
}

async function waitForQueueEmpty(): Promise<void> {
  await waitUntil(async () => (await server.platform.asyncInvoke.queue.depth()).length === 0);
}
