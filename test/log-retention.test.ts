/**
 * Log retention: the pruner deletes events older than their group's retention (its own, else the
 * server's default) in bounded batches. Time is driven by the pruner's clock and old rows, never sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogPruner } from "../src/logs/log-pruner.js";
import { startServer, type TestServer } from "./helpers/server.js";

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.UTC(2026, 11, 1);
let server: TestServer;

beforeAll(async () => {
  server = await startServer({ logRetentionDays: 0 });
  // The tests run their own pruners, on their own clocks.
  await server.platform.logPruner.stop();
});
afterAll(async () => {
  await server?.stop();
});

async function put(group: string, ageDays: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++)
    server.platform.logs.write(group, "2026/10/01/[$LATEST]s", `${ageDays}d #${i}`, NOW - ageDays * DAY);
  await server.platform.logs.flush();
}

async function left(group: string): Promise<string[]> {
  const rows = await server.platform.logs.query({ group, limit: 10000 });
  return [...new Set(rows.map((r) => r.message.split(" ")[0] as string))];
}

describe("log retention", () => {
  it("deletes what is older than the group's retention (default or its own), in batches, and keeps the rest", async () => {
    await put("/aws/lambda/default-30", 40, 25);
    await put("/aws/lambda/default-30", 10, 3);
    await put("/aws/lambda/own-60", 40, 5);
    await put("/aws/lambda/own-60", 70, 12);
    await put("/aws/lambda/forever", 400, 2);
    await server.platform.logs.setRetention("/aws/lambda/own-60", 60);
    await server.platform.logs.setRetention("/aws/lambda/forever", 0);
    const pruner = new LogPruner(server.platform.store, { defaultDays: 30, batch: 7, now: () => NOW });
    expect(await pruner.prune()).toBe(25 + 12);
    expect(await left("/aws/lambda/default-30")).toEqual(["10d"]);
    expect(await left("/aws/lambda/own-60")).toEqual(["40d"]);
    expect(await left("/aws/lambda/forever")).toEqual(["400d"]);
    // Nothing more to do on a second pass.
    expect(await pruner.prune()).toBe(0);
    // Time passes: at NOW + 25 days the 10-day-old events are 35 days old, the 40-day-old ones 65.
    const later = new LogPruner(server.platform.store, { defaultDays: 30, now: () => NOW + 25 * DAY });
    expect(await later.prune()).toBe(3 + 5);
    expect(await left("/aws/lambda/default-30")).toEqual([]);
    expect(await left("/aws/lambda/own-60")).toEqual([]);
    expect(await left("/aws/lambda/forever")).toEqual(["400d"]);
    // Its stream had no event left inside the retention: gone too.
    expect(await server.platform.logs.listStreams("/aws/lambda/default-30")).toEqual([]);
    expect(await server.platform.logs.retention("/aws/lambda/own-60")).toBe(60);
  });

  it("a server default of 0 keeps everything", async () => {
    await put("/aws/lambda/keep", 3000, 2);
    expect(await new LogPruner(server.platform.store, { defaultDays: 0, now: () => NOW }).prune()).toBe(0);
    expect(await left("/aws/lambda/keep")).toEqual(["3000d"]);
  });
});
