/**
 * The CloudWatch Logs API through the AWS SDK v3's CloudWatchLogsClient and Debian's AWS CLI v2,
 * against a real function's logs: groups and streams, GetLogEvents' tokens both ways,
 * FilterLogEvents' patterns and pages, PutLogEvents read back, retention enforced by the pruner,
 * tags, errors in JSON 1.1's shape, SigV4 scoped to `logs`, policies on `logs:*` actions, and
 * `aws logs tail` (once, and --follow while a new line is written).
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  CloudWatchLogsClient,
  CloudWatchLogsServiceException,
  CreateLogGroupCommand,
  CreateLogStreamCommand,
  DeleteLogGroupCommand,
  DeleteRetentionPolicyCommand,
  DescribeLogGroupsCommand,
  DescribeLogStreamsCommand,
  DescribeMetricFiltersCommand,
  DescribeSubscriptionFiltersCommand,
  FilterLogEventsCommand,
  GetLogEventsCommand,
  ListTagsForResourceCommand,
  ListTagsLogGroupCommand,
  type OutputLogEvent,
  PutLogEventsCommand,
  PutRetentionPolicyCommand,
  paginateDescribeLogGroups,
  paginateFilterLogEvents,
  StartQueryCommand,
  TagResourceCommand,
  TestMetricFilterCommand,
  UntagResourceCommand,
} from "@aws-sdk/client-cloudwatch-logs";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogPruner } from "../src/logs/log-pruner.js";
import { createTestDatabase } from "./helpers/postgres.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { createAccessKey, signedFetch } from "./helpers/signed.js";

const run = promisify(execFile);
const FN = "logger";
const GROUP = `/aws/lambda/${FN}`;
const DAY = 24 * 3600 * 1000;
let server: TestServer;
let logs: CloudWatchLogsClient;
let work: string;

async function rejection(fn: () => Promise<unknown>): Promise<CloudWatchLogsServiceException> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CloudWatchLogsServiceException);
    return err as CloudWatchLogsServiceException;
  }
  throw new Error("expected the call to fail");
}

function logsClient(credentials = { accessKeyId: "test", secretAccessKey: "test" }) {
  return new CloudWatchLogsClient({ endpoint: server.url, region: "us-east-1", credentials, maxAttempts: 1 });
}

async function invoke(lines: string[], fn = FN, group = `/aws/lambda/${fn}`): Promise<void> {
  const out = await server.lambda.send(
    new InvokeCommand({ FunctionName: fn, Payload: Buffer.from(JSON.stringify({ lines })) }),
  );
  expect(out.FunctionError).toBeUndefined();
  // END/REPORT follow the answer: wait until the REPORT line is stored (listening before looking).
  const since = Date.now() - 60_000;
  const live = server.platform.logs.live;
  for (;;) {
    let onEvent = () => {};
    const next = new Promise<void>((resolve) => {
      onEvent = resolve;
      live.once("event", onEvent);
    });
    await server.platform.logs.flush();
    const rows = await server.platform.logs.query({ group, since, limit: 10000 });
    if (
      rows.some((r) => r.message.startsWith("REPORT") && r.message.includes(out.$metadata.requestId ?? ""))
    ) {
      live.off("event", onEvent);
      return;
    }
    await next;
  }
}

const APP_LINES = [
  "[ERROR] Caught IllegalArgumentException",
  "[ERROR] Exiting with code 1",
  "[WARN] disk almost full",
  '{"level":"ERROR","latency":250,"user":"u-17"}',
  '{"level":"INFO","latency":12,"user":"u-2"}',
];

beforeAll(async () => {
  server = await startServer({ sandbox: "process", logRetentionDays: 0 });
  await server.platform.logPruner.stop();
  logs = logsClient();
  work = mkdtempSync(join(tmpdir(), "lambent-logs-cli-"));
  await server.deploy(FN, "node-logger");
  await invoke(APP_LINES);
});
afterAll(async () => {
  logs?.destroy();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function streamOf(group: string): Promise<string> {
  const out = await logs.send(new DescribeLogStreamsCommand({ logGroupName: group }));
  return out.logStreams?.[0]?.logStreamName as string;
}

describe("groups and streams", () => {
  it("a function's group and its environment's stream are described as CloudWatch does", async () => {
    const out = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: "/aws/lambda/log" }));
    expect(out.logGroups).toHaveLength(1);
    const g = out.logGroups?.[0];
    expect(g?.logGroupName).toBe(GROUP);
    expect(g?.arn).toBe(`arn:aws:logs:us-east-1:000000000000:log-group:${GROUP}:*`);
    expect(g?.logGroupArn).toBe(`arn:aws:logs:us-east-1:000000000000:log-group:${GROUP}`);
    expect(g?.retentionInDays).toBeUndefined();
    expect(g?.storedBytes).toBeGreaterThan(0);
    const streams = await logs.send(
      new DescribeLogStreamsCommand({ logGroupName: GROUP, orderBy: "LastEventTime", descending: true }),
    );
    const s = streams.logStreams?.[0];
    expect(s?.logStreamName).toMatch(/^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]+$/);
    expect(s?.firstEventTimestamp).toBeLessThanOrEqual(s?.lastEventTimestamp as number);
    expect(s?.arn).toBe(
      `arn:aws:logs:us-east-1:000000000000:log-group:${GROUP}:log-stream:${s?.logStreamName}`,
    );
  });

  it("CreateLogGroup, pages of DescribeLogGroups, name patterns, DeleteLogGroup", async () => {
    for (const n of ["a", "b", "c"])
      await logs.send(new CreateLogGroupCommand({ logGroupName: `/paged/${n}` }));
    const again = await rejection(() => logs.send(new CreateLogGroupCommand({ logGroupName: "/paged/a" })));
    expect(again.name).toBe("ResourceAlreadyExistsException");
    expect(again.message).toBe("The specified log group already exists");
    const names: string[] = [];
    let pages = 0;
    for await (const page of paginateDescribeLogGroups(
      { client: logs, pageSize: 1 },
      { logGroupNamePrefix: "/paged/" },
    )) {
      pages++;
      for (const g of page.logGroups ?? []) names.push(g.logGroupName as string);
    }
    expect(names).toEqual(["/paged/a", "/paged/b", "/paged/c"]);
    expect(pages).toBeGreaterThanOrEqual(3);
    const pattern = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePattern: "GED/B" }));
    expect(pattern.logGroups?.map((g) => g.logGroupName)).toEqual(["/paged/b"]);
    await logs.send(new DeleteLogGroupCommand({ logGroupName: "/paged/b" }));
    const after = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: "/paged/" }));
    expect(after.logGroups?.map((g) => g.logGroupName)).toEqual(["/paged/a", "/paged/c"]);
    const gone = await rejection(() => logs.send(new DeleteLogGroupCommand({ logGroupName: "/paged/b" })));
    expect(gone.name).toBe("ResourceNotFoundException");
    expect(gone.message).toBe("The specified log group does not exist.");
  });

  it("a function with LoggingConfig.LogGroup writes to that group", async () => {
    await logs.send(new CreateLogGroupCommand({ logGroupName: "/custom/shared" }));
    await server.deploy("custom-group", "node-logger", {
      LoggingConfig: { LogGroup: "/custom/shared", LogFormat: "Text" },
    });
    await invoke(["to-custom"], "custom-group", "/custom/shared");
    const out = await logs.send(
      new FilterLogEventsCommand({ logGroupName: "/custom/shared", filterPattern: "to-custom" }),
    );
    expect(out.events?.map((e) => e.message)).toEqual(["to-custom"]);
  });
});

describe("GetLogEvents", () => {
  it("pages forward from the head and backward from the tail with its tokens, and ends on the same token", async () => {
    const stream = await streamOf(GROUP);
    const all = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: stream, startFromHead: true }),
    );
    const messages = (all.events ?? []).map((e) => e.message);
    expect(messages[0]).toMatch(/^(INIT_START|START)/);
    expect(messages.filter((m) => APP_LINES.includes(m as string))).toEqual(APP_LINES);
    const n = messages.length;
    // Forward, two at a time.
    const forward: OutputLogEvent[] = [];
    let token: string | undefined;
    for (let i = 0; i < n + 2; i++) {
      const page = await logs.send(
        new GetLogEventsCommand({
          logGroupName: GROUP,
          logStreamName: stream,
          startFromHead: true,
          limit: 2,
          nextToken: token,
        }),
      );
      forward.push(...(page.events ?? []));
      if (page.nextForwardToken === token) break;
      token = page.nextForwardToken;
    }
    expect(forward.map((e) => e.message)).toEqual(messages);
    // Backward from the tail (the default), two at a time, each page in time order.
    const latest = await logs.send(
      new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: stream, limit: 2 }),
    );
    expect(latest.events?.map((e) => e.message)).toEqual(messages.slice(-2));
    const backward: OutputLogEvent[][] = [latest.events ?? []];
    let back = latest.nextBackwardToken;
    for (let i = 0; i < n + 2; i++) {
      const page = await logs.send(
        new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: stream, limit: 2, nextToken: back }),
      );
      if ((page.events ?? []).length === 0) {
        expect(page.nextBackwardToken).toBe(back);
        break;
      }
      backward.unshift(page.events ?? []);
      back = page.nextBackwardToken;
    }
    expect(backward.flat().map((e) => e.message)).toEqual(messages);
    // A time window: events at or after startTime and before endTime.
    const t = (all.events?.[1]?.timestamp ?? 0) as number;
    const window = await logs.send(
      new GetLogEventsCommand({
        logGroupName: GROUP,
        logStreamName: stream,
        startFromHead: true,
        startTime: t,
        endTime: t + 1,
      }),
    );
    expect(window.events?.every((e) => e.timestamp === t)).toBe(true);
  });

  it("an unknown stream, group or token is an AWS error", async () => {
    const stream = await rejection(() =>
      logs.send(new GetLogEventsCommand({ logGroupName: GROUP, logStreamName: "nope" })),
    );
    expect([stream.name, stream.message]).toEqual([
      "ResourceNotFoundException",
      "The specified log stream does not exist.",
    ]);
    const group = await rejection(() =>
      logs.send(new GetLogEventsCommand({ logGroupName: "/nope", logStreamName: "x" })),
    );
    expect([group.name, group.message]).toEqual([
      "ResourceNotFoundException",
      "The specified log group does not exist.",
    ]);
    const token = await rejection(async () =>
      logs.send(
        new GetLogEventsCommand({
          logGroupName: GROUP,
          logStreamName: await streamOf(GROUP),
          nextToken: "garbage",
        }),
      ),
    );
    expect(token.name).toBe("InvalidParameterException");
  });
});

describe("FilterLogEvents", () => {
  async function filter(filterPattern: string): Promise<string[]> {
    const out = await logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, filterPattern }));
    return (out.events ?? []).map((e) => e.message as string);
  }

  it("matches terms, phrases, exclusions, alternatives and JSON patterns", async () => {
    expect(await filter("ERROR")).toEqual([APP_LINES[0], APP_LINES[1], APP_LINES[3]]);
    expect(await filter('"[ERROR] Exiting"')).toEqual([APP_LINES[1]]);
    expect(await filter("ERROR -Exiting")).toEqual([APP_LINES[0], APP_LINES[3]]);
    expect(await filter("?WARN ?Exiting")).toEqual([APP_LINES[1], APP_LINES[2]]);
    expect(await filter('{ $.level = "ERROR" }')).toEqual([APP_LINES[3]]);
    expect(await filter('{ $.level != "ERROR" }')).toEqual([APP_LINES[4]]);
    expect(await filter("{ $.latency > 100 }")).toEqual([APP_LINES[3]]);
    expect(await filter("{ $.latency < 100 }")).toEqual([APP_LINES[4]]);
    expect(await filter('{ ($.level = "INFO") || ($.latency > 200) }')).toEqual([APP_LINES[3], APP_LINES[4]]);
    expect(await filter('{ ($.level = "INFO") && ($.latency > 200) }')).toEqual([]);
    expect(await filter('{ $.user = "u-1*" }')).toEqual([APP_LINES[3]]);
    // Platform lines are there too.
    expect((await filter("REPORT")).length).toBe(1);
    const bad = await rejection(() =>
      logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, filterPattern: "{ $.level = " })),
    );
    expect(bad.name).toBe("InvalidParameterException");
  });

  it("pages with nextToken (the SDK's paginator), each event once, with eventIds and stream names", async () => {
    const all = await logs.send(new FilterLogEventsCommand({ logGroupName: GROUP }));
    const seen: string[] = [];
    for await (const page of paginateFilterLogEvents(
      { client: logs, pageSize: 2 },
      { logGroupName: GROUP },
    )) {
      for (const e of page.events ?? []) {
        expect(e.logStreamName).toBeTruthy();
        seen.push(e.eventId as string);
      }
    }
    expect(seen).toEqual(all.events?.map((e) => e.eventId));
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("a model constraint is InvalidParameterException with AWS's validation text", async () => {
    const err = await rejection(() =>
      logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, limit: 0 })),
    );
    expect(err.name).toBe("InvalidParameterException");
    expect(err.message).toBe(
      "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    const both = await rejection(() =>
      logs.send(new FilterLogEventsCommand({ logGroupName: GROUP, logGroupIdentifier: GROUP })),
    );
    expect(both.name).toBe("InvalidParameterException");
  });
});

describe("PutLogEvents", () => {
  it("writes events into a stream made by CreateLogStream; they read back in order", async () => {
    await logs.send(new CreateLogGroupCommand({ logGroupName: "/app/put" }));
    await logs.send(new CreateLogStreamCommand({ logGroupName: "/app/put", logStreamName: "s1" }));
    const dup = await rejection(() =>
      logs.send(new CreateLogStreamCommand({ logGroupName: "/app/put", logStreamName: "s1" })),
    );
    expect(dup.name).toBe("ResourceAlreadyExistsException");
    const now = Date.now();
    const out = await logs.send(
      new PutLogEventsCommand({
        logGroupName: "/app/put",
        logStreamName: "s1",
        logEvents: [
          { timestamp: now - 2, message: "one" },
          { timestamp: now - 1, message: "two" },
          { timestamp: now + 3 * 3600 * 1000, message: "too new" },
        ],
      }),
    );
    expect(out.rejectedLogEventsInfo).toEqual({ tooNewLogEventStartIndex: 2 });
    const old = await logs.send(
      new PutLogEventsCommand({
        logGroupName: "/app/put",
        logStreamName: "s1",
        logEvents: [
          { timestamp: now - 15 * DAY, message: "too old" },
          { timestamp: now - 15 * DAY + 1, message: "too old too" },
        ],
      }),
    );
    expect(old.rejectedLogEventsInfo).toEqual({ tooOldLogEventEndIndex: 2 });
    const read = await logs.send(
      new GetLogEventsCommand({ logGroupName: "/app/put", logStreamName: "s1", startFromHead: true }),
    );
    expect(read.events?.map((e) => [e.timestamp, e.message])).toEqual([
      [now - 2, "one"],
      [now - 1, "two"],
    ]);
    const streams = await logs.send(new DescribeLogStreamsCommand({ logGroupName: "/app/put" }));
    expect(streams.logStreams?.[0]?.firstEventTimestamp).toBe(now - 2);
    expect(streams.logStreams?.[0]?.lastEventTimestamp).toBe(now - 1);
    const unordered = await rejection(() =>
      logs.send(
        new PutLogEventsCommand({
          logGroupName: "/app/put",
          logStreamName: "s1",
          logEvents: [
            { timestamp: now, message: "b" },
            { timestamp: now - 5, message: "a" },
          ],
        }),
      ),
    );
    expect([unordered.name, unordered.message]).toEqual([
      "InvalidParameterException",
      "Log events in a single PutLogEvents request must be in chronological order.",
    ]);
    const noStream = await rejection(() =>
      logs.send(
        new PutLogEventsCommand({
          logGroupName: "/app/put",
          logStreamName: "s2",
          logEvents: [{ timestamp: now, message: "x" }],
        }),
      ),
    );
    expect(noStream.name).toBe("ResourceNotFoundException");
  });
});

describe("retention", () => {
  it("PutRetentionPolicy is shown, checked, and enforced by the pruner; DeleteRetentionPolicy keeps events forever", async () => {
    const group = "/app/retained";
    await logs.send(new CreateLogGroupCommand({ logGroupName: group }));
    await logs.send(new CreateLogStreamCommand({ logGroupName: group, logStreamName: "s" }));
    const now = Date.now();
    // One batch may not span more than 24 hours: two batches.
    for (const [timestamp, message] of [
      [now - 10 * DAY, "ten days old"],
      [now - 1000, "fresh"],
    ] as const) {
      await logs.send(
        new PutLogEventsCommand({
          logGroupName: group,
          logStreamName: "s",
          logEvents: [{ timestamp, message }],
        }),
      );
    }
    const bad = await rejection(() =>
      logs.send(new PutRetentionPolicyCommand({ logGroupName: group, retentionInDays: 2 })),
    );
    expect(bad.name).toBe("InvalidParameterException");
    expect(bad.message).toContain("Member must satisfy enum value set: [1, 3, 5, 7, 14,");
    const missing = await rejection(() =>
      logs.send(new PutRetentionPolicyCommand({ logGroupName: "/nope", retentionInDays: 7 })),
    );
    expect(missing.name).toBe("ResourceNotFoundException");
    await logs.send(new PutRetentionPolicyCommand({ logGroupName: group, retentionInDays: 7 }));
    const described = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: group }));
    expect(described.logGroups?.[0]?.retentionInDays).toBe(7);
    // The server's own pruner is stopped (beforeAll): a pass of one on the same store.
    expect(await new LogPruner(server.platform.store, { defaultDays: 0 }).prune()).toBe(1);
    const left = await logs.send(
      new GetLogEventsCommand({ logGroupName: group, logStreamName: "s", startFromHead: true }),
    );
    expect(left.events?.map((e) => e.message)).toEqual(["fresh"]);
    await logs.send(new DeleteRetentionPolicyCommand({ logGroupName: group }));
    const after = await logs.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: group }));
    expect(after.logGroups?.[0]?.retentionInDays).toBeUndefined();
  });
});

describe("tags and TestMetricFilter", () => {
  it("tags a group by name and by ARN", async () => {
    await logs.send(new CreateLogGroupCommand({ logGroupName: "/app/tagged", tags: { team: "a" } }));
    const arn = "arn:aws:logs:us-east-1:000000000000:log-group:/app/tagged";
    await logs.send(new TagResourceCommand({ resourceArn: arn, tags: { env: "dev" } }));
    expect((await logs.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags).toEqual({
      team: "a",
      env: "dev",
    });
    await logs.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ["team"] }));
    expect((await logs.send(new ListTagsLogGroupCommand({ logGroupName: "/app/tagged" }))).tags).toEqual({
      env: "dev",
    });
  });

  it("TestMetricFilter answers which messages a pattern matches; no metric or subscription filters exist", async () => {
    const out = await logs.send(
      new TestMetricFilterCommand({ filterPattern: '{ $.level = "ERROR" }', logEventMessages: APP_LINES }),
    );
    expect(out.matches?.map((m) => m.eventNumber)).toEqual([4]);
    const filters = await logs.send(new DescribeMetricFiltersCommand({ logGroupName: GROUP }));
    expect(filters.metricFilters).toEqual([]);
    const subs = await logs.send(new DescribeSubscriptionFiltersCommand({ logGroupName: GROUP }));
    expect(subs.subscriptionFilters).toEqual([]);
  });
});

describe("protocol, authentication and authorization", () => {
  it("an unsigned request, or one signed for lambda, is refused in JSON 1.1's error shape", async () => {
    const headers = {
      "x-amz-target": "Logs_20140328.DescribeLogGroups",
      "content-type": "application/x-amz-json-1.1",
    };
    const unsigned = await fetch(`${server.url}/`, { method: "POST", headers, body: "{}" });
    expect(unsigned.status).toBe(403);
    expect(await unsigned.json()).toEqual({
      __type: "MissingAuthenticationTokenException",
      message: "Missing Authentication Token",
    });
    const lambdaScoped = await signedFetch(`${server.url}/`, { method: "POST", headers, body: "{}" });
    expect(lambdaScoped.status).toBe(403);
    const body = (await lambdaScoped.json()) as { __type: string; message: string };
    expect(body.__type).toBe("InvalidSignatureException");
    expect(body.message).toContain("Credential should be scoped to correct service: 'logs'.");
  });

  it("policies name logs:<Operation> on the log group's ARN", async () => {
    const key = await createAccessKey(server.url, "log-reader", [
      {
        Effect: "Allow",
        Action: ["logs:FilterLogEvents", "logs:GetLogEvents"],
        Resource: `arn:aws:logs:*:*:log-group:${GROUP}:*`,
      },
    ]);
    const reader = logsClient({ accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey });
    try {
      const ok = await reader.send(
        new FilterLogEventsCommand({ logGroupName: GROUP, filterPattern: "WARN" }),
      );
      expect(ok.events?.map((e) => e.message)).toEqual([APP_LINES[2]]);
      const other = await rejection(() =>
        reader.send(new FilterLogEventsCommand({ logGroupName: "/app/put" })),
      );
      expect(other.name).toBe("AccessDeniedException");
      expect(other.message).toBe(
        `User: ${key.arn} is not authorized to perform: logs:FilterLogEvents on resource: arn:aws:logs:us-east-1:000000000000:log-group:/app/put:* because no identity-based policy allows the logs:FilterLogEvents action`,
      );
      const del = await rejection(() => reader.send(new DeleteLogGroupCommand({ logGroupName: GROUP })));
      expect(del.name).toBe("AccessDeniedException");
    } finally {
      reader.destroy();
    }
  });

  it("an operation of the model Lambent does not serve says so", async () => {
    const err = await rejection(() =>
      logs.send(
        new StartQueryCommand({
          logGroupName: GROUP,
          startTime: 0,
          endTime: 1,
          queryString: "fields @message",
        }),
      ),
    );
    expect(err.name).toBe("InvalidOperationException");
    expect(err.message).toMatch(/^StartQuery is not supported by Lambent yet/);
  });
});

describe("the AWS CLI v2", () => {
  const env = () => ({
    PATH: "/usr/bin:/bin",
    HOME: work,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_PAGER: "",
  });

  it("filter-log-events and tail read the function's log group", async () => {
    const { stdout } = await run(
      "/usr/bin/aws",
      [
        "--endpoint-url",
        server.url,
        "logs",
        "filter-log-events",
        "--log-group-name",
        GROUP,
        "--filter-pattern",
        "?WARN ?Exiting",
      ],
      { env: env() },
    );
    const out = JSON.parse(stdout) as { events: Array<{ message: string }> };
    expect(out.events.map((e) => e.message)).toEqual([APP_LINES[1], APP_LINES[2]]);
    const tail = await run(
      "/usr/bin/aws",
      [
        "--endpoint-url",
        server.url,
        "logs",
        "tail",
        GROUP,
        "--since",
        "1h",
        "--format",
        "short",
        "--filter-pattern",
        "ERROR",
      ],
      { env: env() },
    );
    const lines = tail.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2} \[ERROR\] Caught IllegalArgumentException$/,
    );
  });

  it("tail --follow shows a line written while it runs", async () => {
    const marker = `follow-${Date.now()}`;
    const child = spawn(
      "/usr/bin/aws",
      ["--endpoint-url", server.url, "logs", "tail", GROUP, "--follow", "--since", "1h"],
      // Python buffers a pipe's output in blocks: unbuffered, each line arrives as it is printed.
      { env: { ...env(), PYTHONUNBUFFERED: "1" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    const waiters: Array<() => void> = [];
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      for (const w of waiters) w();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<never>((_, reject) =>
      child.once("exit", (code) => reject(new Error(`aws logs tail exited ${code}: ${err}`))),
    );
    exited.catch(() => {});
    const seen = (text: string) =>
      Promise.race([
        exited,
        new Promise<void>((resolve) => {
          const check = () => {
            if (out.includes(text)) resolve();
          };
          waiters.push(check);
          check();
        }),
      ]);
    try {
      // The first poll has shown what was there; then a new line is invoked in.
      await seen("disk almost full");
      await invoke([marker]);
      await seen(marker);
    } finally {
      child.kill("SIGKILL");
    }
    expect(out).toContain(marker);
  }, 60_000);
});

describe("on PostgreSQL", () => {
  it("groups, patterns, stored bytes, PutLogEvents, tokens both ways and filters work on the other engine", async () => {
    const db = await createTestDatabase();
    const pgServer = await startServer({ sandbox: "process", database: db.url, logRetentionDays: 0 });
    const client = new CloudWatchLogsClient({
      endpoint: pgServer.url,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
    try {
      await client.send(new CreateLogGroupCommand({ logGroupName: "/pg/app_1", tags: { a: "b" } }));
      await client.send(new CreateLogGroupCommand({ logGroupName: "/pg/other" }));
      const pattern = await client.send(new DescribeLogGroupsCommand({ logGroupNamePattern: "APP_" }));
      expect(pattern.logGroups?.map((g) => g.logGroupName)).toEqual(["/pg/app_1"]);
      await client.send(new CreateLogStreamCommand({ logGroupName: "/pg/app_1", logStreamName: "s" }));
      const now = Date.now();
      const messages = ["alpha ERROR", '{"level":"ERROR","n":5}', "gamma", "delta ERROR"];
      await client.send(
        new PutLogEventsCommand({
          logGroupName: "/pg/app_1",
          logStreamName: "s",
          logEvents: messages.map((message, i) => ({ timestamp: now - 10 + i, message })),
        }),
      );
      const described = await client.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: "/pg/app" }));
      expect(described.logGroups?.[0]?.storedBytes).toBe(messages.join("").length);
      const head = await client.send(
        new GetLogEventsCommand({
          logGroupName: "/pg/app_1",
          logStreamName: "s",
          startFromHead: true,
          limit: 3,
        }),
      );
      expect(head.events?.map((e) => e.message)).toEqual(messages.slice(0, 3));
      const next = await client.send(
        new GetLogEventsCommand({
          logGroupName: "/pg/app_1",
          logStreamName: "s",
          nextToken: head.nextForwardToken,
        }),
      );
      expect(next.events?.map((e) => e.message)).toEqual(messages.slice(3));
      const back = await client.send(
        new GetLogEventsCommand({
          logGroupName: "/pg/app_1",
          logStreamName: "s",
          nextToken: next.nextBackwardToken,
        }),
      );
      expect(back.events?.map((e) => e.message)).toEqual(messages.slice(0, 3));
      const filtered = await client.send(
        new FilterLogEventsCommand({ logGroupName: "/pg/app_1", filterPattern: "ERROR -gamma", limit: 2 }),
      );
      expect(filtered.events?.map((e) => e.message)).toEqual(messages.slice(0, 2));
      const rest = await client.send(
        new FilterLogEventsCommand({
          logGroupName: "/pg/app_1",
          filterPattern: "ERROR",
          nextToken: filtered.nextToken,
        }),
      );
      expect(rest.events?.map((e) => e.message)).toEqual([messages[3]]);
      await client.send(new DeleteLogGroupCommand({ logGroupName: "/pg/app_1" }));
      const left = await client.send(new DescribeLogGroupsCommand({ logGroupNamePrefix: "/pg/" }));
      expect(left.logGroups?.map((g) => g.logGroupName)).toEqual(["/pg/other"]);
    } finally {
      client.destroy();
      await pgServer.stop();
      await db.drop();
    }
  });
});
