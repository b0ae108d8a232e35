/**
 * `lambent top` as a user runs it (not on a terminal: one sample; `--json`), against a real server
 * whose metrics come from real invokes; its refusals (bad options, a key without the permission);
 * and the progress line of long CLI waits (withProgress) on a terminal and off one.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { InvokeCommand } from "@aws-sdk/client-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { withProgress } from "../src/cli/progress.js";
import type { TopSample } from "../src/cli/top.js";
import { buildAsync } from "./helpers/child-server.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { createAccessKey } from "./helpers/signed.js";

const run = promisify(execFile);
let server: TestServer;

const lambent = (args: string[], env: Record<string, string> = {}) =>
  run(process.execPath, ["bin/lambent.js", ...args], { env: { PATH: process.env.PATH ?? "", ...env } });

beforeAll(async () => {
  await buildAsync();
  server = await startServer();
  await server.deploy("top-ok", "node-cjs");
  await server.deploy("top-err", "node-errors", { Handler: "index.throws" });
  await server.deploy("top-idle", "node-cjs");
}, 120_000);
afterAll(async () => {
  await server?.stop();
});

describe("lambent top", () => {
  const row = (s: TopSample, name: string) => s.functions.find((f) => f.functionName === name);

  it("lists every function with its environments, one table off a terminal, JSON with --json", {
    timeout: 180_000,
  }, async () => {
    await server.lambda.send(new InvokeCommand({ FunctionName: "top-ok" }));
    const { stdout } = await lambent(["top", "--json", "--endpoint", server.url]);
    const sample = JSON.parse(stdout) as TopSample;
    expect(sample.windowSeconds).toBeGreaterThanOrEqual(60);
    expect(sample.functions.map((f) => f.functionName).sort()).toEqual(["top-err", "top-idle", "top-ok"]);
    expect(row(sample, "top-ok")).toMatchObject({ environments: 1 });
    expect(row(sample, "top-ok")?.idle).toBeLessThanOrEqual(1);
    expect(row(sample, "top-idle")).toMatchObject({ environments: 0, idle: 0, p50: null, p99: null });

    const once = await lambent(["top", "--endpoint", server.url]);
    const lines = once.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^lambent top — \d\d:\d\d:\d\d UTC, last \d+ s, 3 functions$/);
    const header = lines.findIndex((l) => l.startsWith("FUNCTION"));
    expect(lines[header]).toMatch(
      /^FUNCTION\s+INV\/S\s+INVOKES\s+ERRORS\s+THROTTLES\s+P50 MS\s+P99 MS\s+ENVS\s+IDLE$/,
    );
    expect(lines.slice(header + 1).find((l) => l.startsWith("top-idle"))).toMatch(
      /^top-idle\s+(0\.00|-)\s+(0|-)\s+(0|-)\s+(0|-)\s+-\s+-\s+0\s+0$/,
    );
    // Without the metrics API (or the permission to read it) the metric columns say so instead of guessing.
    if (sample.metricsError) expect(lines[1]).toBe(`metrics unavailable: ${sample.metricsError}`);
  });

  it("shows the invocations and errors of known invokes, in JSON and in the table", {
    timeout: 180_000,
  }, async () => {
    await server.deploy("top-n-ok", "node-cjs");
    await server.deploy("top-n-err", "node-errors", { Handler: "index.throws" });
    for (let i = 0; i < 3; i++) await server.lambda.send(new InvokeCommand({ FunctionName: "top-n-ok" }));
    for (let i = 0; i < 2; i++) await server.lambda.send(new InvokeCommand({ FunctionName: "top-n-err" }));
    // Await the values: write what the recorder holds, then read top until it shows them (one
    // round when nothing else is slow; a sample racing the write just reads again).
    let sample: TopSample;
    for (;;) {
      await server.platform.metrics.flush();
      sample = JSON.parse((await lambent(["top", "--json", "--endpoint", server.url])).stdout) as TopSample;
      if (row(sample, "top-n-ok")?.invocations === 3 && row(sample, "top-n-err")?.invocations === 2) break;
    }
    expect(sample.metricsError).toBeUndefined();
    expect(row(sample, "top-n-ok")).toMatchObject({
      invocations: 3,
      errors: 0,
      throttles: 0,
      environments: 1,
    });
    expect(row(sample, "top-n-err")).toMatchObject({ invocations: 2, errors: 2, throttles: 0 });
    for (const name of ["top-n-ok", "top-n-err"]) {
      const r = row(sample, name);
      expect(r?.invocationsPerSecond).toBeGreaterThan(0);
      expect(r?.p50).toBeGreaterThan(0);
      expect(r?.p99).toBeGreaterThanOrEqual(r?.p50 ?? 0);
    }
    const table = (await lambent(["top", "--endpoint", server.url])).stdout.split("\n");
    expect(table.find((l) => l.startsWith("top-n-ok "))).toMatch(
      /^top-n-ok\s+\S+\s+3\s+0\s+0\s+\S+\s+\S+\s+[1-9]\d*\s+\d+$/,
    );
    expect(table.find((l) => l.startsWith("top-n-err "))).toMatch(/^top-n-err\s+\S+\s+2\s+2\s+0\s+/);
  });

  it("refuses bad options and explains a denied key", { timeout: 180_000 }, async () => {
    for (const bad of [
      ["--interval", "0"],
      ["--window", "abc"],
      ["--window", "1441"],
      ["--interval", "2.5"],
    ]) {
      const r = await lambent(["top", "--once", ...bad, "--endpoint", server.url]).catch(
        (e: { code: number; stderr: string }) => e,
      );
      expect((r as { code: number }).code, bad.join(" ")).toBe(1);
      expect((r as { stderr: string }).stderr).toMatch(/must be an integer from \d+ to \d+/);
    }
    const key = await createAccessKey(server.url, "top-viewer", [
      { Effect: "Allow", Action: ["lambda:List*", "cloudwatch:GetMetricData"], Resource: "*" },
    ]);
    const denied = await lambent(["top", "--once", "--endpoint", server.url], {
      AWS_ACCESS_KEY_ID: key.accessKeyId,
      AWS_SECRET_ACCESS_KEY: key.secretAccessKey,
    }).catch((e: { code: number; stderr: string }) => e);
    expect((denied as { code: number }).code).toBe(1);
    expect((denied as { stderr: string }).stderr).toMatch(
      /HTTP 403 AccessDeniedException: .*lambent:GetEnvironmentStatus/,
    );
  });
});

describe("withProgress", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const recorder = (isTTY: boolean) => {
    const writes: string[] = [];
    return { isTTY, writes, write: (c: string) => writes.push(c) };
  };

  it("on a terminal redraws `label… N s` every second after the quiet spell, and erases it at the end", async () => {
    vi.useFakeTimers();
    const out = recorder(true);
    let finish: (v: string) => void = () => {};
    const work = withProgress("invoking slow", new Promise<string>((r) => (finish = r)), out);
    await vi.advanceTimersByTimeAsync(4000);
    finish("done");
    expect(await work).toBe("done");
    expect(out.writes).toEqual([
      "\r\x1b[2Kinvoking slow… 2 s",
      "\r\x1b[2Kinvoking slow… 3 s",
      "\r\x1b[2Kinvoking slow… 4 s",
      "\r\x1b[2K",
    ]);
  });

  it("off a terminal writes one line, only for work that outlasts the quiet spell; failures pass through", async () => {
    vi.useFakeTimers();
    const quick = recorder(false);
    expect(await withProgress("quick", Promise.resolve(1), quick)).toBe(1);
    expect(quick.writes).toEqual([]);

    const slow = recorder(false);
    let fail: (e: Error) => void = () => {};
    const work = withProgress("slow", new Promise<never>((_, rej) => (fail = rej)), slow);
    const settled = work.catch((e: Error) => e.message);
    await vi.advanceTimersByTimeAsync(10_000);
    fail(new Error("boom"));
    expect(await settled).toBe("boom");
    expect(slow.writes).toEqual(["slow…\n"]);
  });
});
