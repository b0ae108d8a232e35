/**
 * `GET /metrics` as Prometheus scrapes it: a real HTTP client (undici's fetch) with the bearer token
 * or a SigV4 signature, the answer parsed by a Prometheus text-format parser, the counters equal to
 * the invokes made; unauthenticated, wrong-token and unpermitted scrapes refused. And Lambda's
 * provisioned-concurrency metrics (ProvisionedConcurrentExecutions, ProvisionedConcurrencyUtilization,
 * ProvisionedConcurrencyInvocations, ProvisionedConcurrencySpilloverInvocations) read back through
 * the AWS SDK v3's CloudWatchClient.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CloudWatchClient, GetMetricStatisticsCommand } from "@aws-sdk/client-cloudwatch";
import {
  CreateAliasCommand,
  CreateFunctionCommand,
  GetProvisionedConcurrencyConfigCommand,
  InvokeCommand,
  PublishVersionCommand,
  PutFunctionConcurrencyCommand,
  PutProvisionedConcurrencyConfigCommand,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ServerOptionError } from "../src/config.js";
import { Platform } from "../src/platform.js";
import { buildAsync, startChild } from "./helpers/child-server.js";
import { GATED_HANDLER, type Gate, startGate } from "./helpers/gate.js";
import { histogramOf, type PromFamily, parsePrometheus, sampleOf } from "./helpers/prometheus.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

const run = promisify(execFile);
const TOKEN = "prom-scrape-token-0123456789abcdef0123456789abcdef";

let server: TestServer;
let gate: Gate;

beforeAll(async () => {
  server = await startServer({ metricsToken: TOKEN, accountConcurrency: 100 });
  gate = await startGate();
}, 60_000);
afterAll(async () => {
  await gate?.close();
  await server?.stop();
});

const scrape = (headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }, path = "/metrics") =>
  fetch(`${server.url}${path}`, { headers });

async function families(): Promise<Map<string, PromFamily>> {
  const res = await scrape();
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheus(await res.text());
}

const value = (f: Map<string, PromFamily>, name: string, labels: Record<string, string>) => {
  const s = sampleOf(f, name, labels);
  return s?.value === undefined ? undefined : Number(s.value);
};

describe("GET /metrics (Prometheus)", () => {
  it("counts every invoke by function, resource and executed version; parses as Prometheus text", {
    timeout: 120_000,
  }, async () => {
    await server.deploy("prom-ok", "node-cjs", { Timeout: 30 });
    await server.deploy("prom-err", "node-errors", { Handler: "index.throws", Timeout: 30 });
    await server.deploy("prom-held", "node-cjs");
    const v = await server.lambda.send(new PublishVersionCommand({ FunctionName: "prom-ok" }));
    await server.lambda.send(
      new CreateAliasCommand({ FunctionName: "prom-ok", Name: "live", FunctionVersion: v.Version as string }),
    );
    for (let i = 0; i < 3; i++) await server.lambda.send(new InvokeCommand({ FunctionName: "prom-ok" }));
    for (let i = 0; i < 2; i++) {
      await server.lambda.send(new InvokeCommand({ FunctionName: "prom-ok", Qualifier: "live" }));
    }
    for (let i = 0; i < 2; i++) await server.lambda.send(new InvokeCommand({ FunctionName: "prom-err" }));
    await server.lambda.send(
      new PutFunctionConcurrencyCommand({ FunctionName: "prom-held", ReservedConcurrentExecutions: 0 }),
    );
    await server.platform.frontend.reservationsLoaded;
    await expect(server.lambda.send(new InvokeCommand({ FunctionName: "prom-held" }))).rejects.toThrow(
      /Rate Exceeded/,
    );
    // A scrape folds what the recorder holds: no waiting for the flush timer.
    let f = await families();
    const latest = { function_name: "prom-ok", resource: "", executed_version: "$LATEST" };
    const live = {
      function_name: "prom-ok",
      resource: "prom-ok:live",
      executed_version: v.Version as string,
    };
    const err = { function_name: "prom-err", resource: "", executed_version: "$LATEST" };
    expect(f.get("lambda_invocations_total")?.type).toBe("COUNTER");
    expect(value(f, "lambda_invocations_total", latest)).toBe(3);
    expect(value(f, "lambda_invocations_total", live)).toBe(2);
    expect(value(f, "lambda_invocations_total", err)).toBe(2);
    expect(value(f, "lambda_errors_total", latest)).toBe(0);
    expect(value(f, "lambda_errors_total", err)).toBe(2);
    // A throttled call is not an invocation.
    expect(sampleOf(f, "lambda_invocations_total", { function_name: "prom-held" })).toBeUndefined();
    expect(value(f, "lambda_throttles_total", { function_name: "prom-held", resource: "" })).toBe(1);

    const duration = histogramOf(f, "lambda_duration_seconds", latest);
    expect(f.get("lambda_duration_seconds")?.type).toBe("HISTOGRAM");
    expect(duration?.count).toBe(3);
    expect(duration?.sum).toBeGreaterThan(0);
    expect(duration?.buckets.get("+Inf")).toBe(3);
    expect([...(duration?.buckets.keys() ?? [])].slice(0, 2)).toEqual(["0.001", "0.0025"]);
    // Cumulative: never falling.
    const counts = [...(duration?.buckets.values() ?? [])];
    expect(counts).toEqual([...counts].sort((a, b) => a - b));

    expect(
      value(f, "lambent_cold_starts_total", { function_name: "prom-ok", executed_version: "$LATEST" }),
    ).toBe(1);
    expect(f.get("lambda_concurrent_executions")?.type).toBe("GAUGE");
    expect(value(f, "lambda_unreserved_concurrent_executions", {})).toBe(0);
    // The platform's own: environments by state (ready or frozen between invokes), queue depth, stem cells.
    const envs = (f.get("lambent_environments")?.metrics ?? []).reduce((n, m) => n + Number(m.value), 0);
    expect(envs).toBeGreaterThanOrEqual(3);
    expect(f.has("lambent_async_queue_depth")).toBe(true);
    expect(f.has("lambent_stem_cells")).toBe(true);
    expect(f.has("process_cpu_seconds_total")).toBe(true);

    // Store writes are timed; totals only grow.
    await server.platform.metrics.flush();
    await server.lambda.send(new InvokeCommand({ FunctionName: "prom-ok" }));
    f = await families();
    expect(histogramOf(f, "lambent_store_write_seconds", {})?.count).toBeGreaterThanOrEqual(1);
    expect(value(f, "lambda_invocations_total", latest)).toBe(4);
    expect(histogramOf(f, "lambda_duration_seconds", latest)?.count).toBe(4);
  });

  it("is refused without authentication, with a wrong token, and to a key without lambent:GetMetrics", {
    timeout: 60_000,
  }, async () => {
    const refused = async (res: Response | Awaited<ReturnType<typeof fetch>>) => {
      expect(res.status).toBe(403);
      const body = await res.text();
      expect(body).not.toContain("prom-ok");
      return body;
    };
    expect(await refused(await scrape({}))).toMatch(/Missing Authentication Token/);
    expect(await refused(await scrape({ authorization: "Bearer wrong-token" }))).toMatch(
      /security token included in the request is invalid/,
    );
    expect(await refused(await scrape({ authorization: `Bearer ${TOKEN}x` }))).toMatch(/security token/);
    await refused(await scrape({ authorization: `Bearer ${"a".repeat(8000)}` }));
    // Past the front door's header limit: 431, before any route.
    expect((await scrape({ authorization: `Bearer ${"a".repeat(60_000)}` })).status).toBe(431);
    await refused(await scrape({ authorization: "Bearer" }));
    await refused(await scrape({ authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}` }));
    // The token opens /metrics only: the API still wants a signature.
    const api = await scrape({ authorization: `Bearer ${TOKEN}` }, "/2015-03-31/functions");
    expect(api.status).toBe(403);
    expect(await api.text()).not.toContain("prom-ok");
    // With a query string, and with the scheme in another case, the token still works.
    expect((await scrape({ authorization: `bearer ${TOKEN}` }, "/metrics?x=1")).status).toBe(200);

    // SigV4 works as for any Lambent endpoint: allowed for the account, refused without the action.
    const signed = await signedFetch(`${server.url}/metrics`);
    expect(signed.status).toBe(200);
    expect(await signed.text()).toContain("# TYPE lambda_invocations_total counter");
    const created = await signedFetch(`${server.url}/_lambent/keys`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        UserName: "metrics-less",
        Policy: {
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: ["cloudwatch:*", "lambda:*"], Resource: "*" }],
        },
      }),
    });
    const { AccessKey } = (await created.json()) as {
      AccessKey: { AccessKeyId: string; SecretAccessKey: string };
    };
    const denied = await signedFetch(
      `${server.url}/metrics`,
      {},
      {
        accessKeyId: AccessKey.AccessKeyId,
        secretAccessKey: AccessKey.SecretAccessKey,
      },
    );
    expect(denied.status).toBe(403);
    expect(denied.headers.get("x-amzn-errortype")).toMatch(/^AccessDeniedException/);
    expect(await denied.text()).toMatch(/not authorized to perform: lambent:GetMetrics/);
  });

  it("`lambent server --metrics-token-file` takes the file's token; a bad file or token stops the start", {
    timeout: 120_000,
  }, async () => {
    await buildAsync();
    const dir = mkdtempSync(join(tmpdir(), "lambent-prom-cli-"));
    try {
      const file = join(dir, "metrics.token");
      const refused = async (args: string[], env: Record<string, string> = {}) => {
        const r = await run(
          process.execPath,
          ["bin/lambent.js", "server", "--port", "0", "--data-dir", dir, ...args],
          {
            env: { PATH: process.env.PATH ?? "", ...env },
          },
        ).catch((e: { code: number; stderr: string; stdout: string }) => e);
        expect((r as { code: number }).code).toBe(2);
        expect((r as { stdout: string }).stdout).not.toContain("ready at");
        return (r as { stderr: string }).stderr;
      };
      expect(await refused(["--metrics-token-file", join(dir, "missing")])).toMatch(
        /--metrics-token-file .*ENOENT/,
      );
      writeFileSync(file, "too-short\n");
      expect(await refused(["--metrics-token-file", file])).toMatch(/must be 32 to 4096 characters/);
      expect(await refused([], { LAMBENT_METRICS_TOKEN: "x y" })).toMatch(/must be 32 to 4096 characters/);

      writeFileSync(file, `${TOKEN}\n`);
      const child = await startChild(join(dir, "data"), ["--metrics-token-file", file]);
      try {
        const ok = await fetch(`${child.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
        expect(ok.status).toBe(200);
        expect(await ok.text()).toContain("# TYPE lambda_invocations_total counter");
        expect((await fetch(`${child.url}/metrics`)).status).toBe(403);
      } finally {
        await child.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses a guessable token at start", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "lambent-prom-"));
    try {
      for (const bad of ["short", `${"x".repeat(40)} y`, `${"é".repeat(40)}`]) {
        await expect(
          Platform.start({ port: 0, quiet: true, sandbox: "process", dataDir, metricsToken: bad }),
        ).rejects.toBeInstanceOf(ServerOptionError);
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("provisioned concurrency metrics (CloudWatchClient)", () => {
  it("counts executions on provisioned concurrency and the spillover past it", {
    timeout: 180_000,
  }, async () => {
    await server.lambda.send(
      new CreateFunctionCommand({
        FunctionName: "prov-m",
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: ROLE,
        Timeout: 60,
        Code: { ZipFile: await zipEntries([{ name: "index.js", content: GATED_HANDLER }]) },
      }),
    );
    await waitUntilFunctionActiveV2(
      { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 60 },
      { FunctionName: "prov-m" },
    );
    const v = await server.lambda.send(new PublishVersionCommand({ FunctionName: "prov-m" }));
    await server.lambda.send(
      new CreateAliasCommand({ FunctionName: "prov-m", Name: "live", FunctionVersion: v.Version as string }),
    );
    await server.lambda.send(
      new PutProvisionedConcurrencyConfigCommand({
        FunctionName: "prov-m",
        Qualifier: "live",
        ProvisionedConcurrentExecutions: 1,
      }),
    );
    for (;;) {
      const c = await server.lambda.send(
        new GetProvisionedConcurrencyConfigCommand({ FunctionName: "prov-m", Qualifier: "live" }),
      );
      if (c.Status === "READY") break;
      if (c.Status === "FAILED") throw new Error(`provisioning failed: ${c.StatusReason}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await server.platform.frontend.loadProvisioned();
    const from = new Date(Date.now() - 120_000);
    // Two at once through the alias: the first on the provisioned environment, the second spills over.
    const payload = JSON.stringify({ gate: gate.url });
    const both = [0, 1].map(() =>
      server.lambda.send(new InvokeCommand({ FunctionName: "prov-m", Qualifier: "live", Payload: payload })),
    );
    await gate.waiting(2);
    const during = parsePrometheus(await (await scrape()).text());
    const resource = { function_name: "prov-m", resource: "prov-m:live" };
    expect(value(during, "lambda_provisioned_concurrent_executions", resource)).toBe(1);
    expect(value(during, "lambda_provisioned_concurrency_utilization", resource)).toBe(1);
    expect(value(during, "lambda_concurrent_executions", { function_name: "prov-m" })).toBe(2);
    gate.open();
    for (const r of await Promise.all(both)) expect(r.FunctionError).toBeUndefined();
    await server.platform.metrics.flush();

    const cw = new CloudWatchClient({
      endpoint: server.url,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
    try {
      const stat = async (metric: string, statistic: "Sum" | "Maximum", dims: Record<string, string>) => {
        const out = await cw.send(
          new GetMetricStatisticsCommand({
            Namespace: "AWS/Lambda",
            MetricName: metric,
            Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })),
            StartTime: from,
            EndTime: new Date(Date.now() + 120_000),
            Period: 3600,
            Statistics: [statistic],
          }),
        );
        return (out.Datapoints ?? []).reduce(
          (n, d) => (statistic === "Sum" ? n + (d.Sum ?? 0) : Math.max(n, d.Maximum ?? 0)),
          0,
        );
      };
      const res = { FunctionName: "prov-m", Resource: "prov-m:live" };
      expect(await stat("ProvisionedConcurrencyInvocations", "Sum", res)).toBe(1);
      expect(await stat("ProvisionedConcurrencySpilloverInvocations", "Sum", res)).toBe(1);
      expect(await stat("ProvisionedConcurrentExecutions", "Maximum", res)).toBe(1);
      expect(await stat("ProvisionedConcurrentExecutions", "Maximum", { FunctionName: "prov-m" })).toBe(1);
      expect(await stat("ProvisionedConcurrencyUtilization", "Maximum", res)).toBe(1);
      expect(await stat("Invocations", "Sum", res)).toBe(2);
    } finally {
      cw.destroy();
    }
    // And the same counts in Prometheus.
    const after = parsePrometheus(await (await scrape()).text());
    expect(value(after, "lambda_provisioned_concurrency_invocations_total", resource)).toBe(1);
    expect(value(after, "lambda_provisioned_concurrency_spillover_invocations_total", resource)).toBe(1);
    expect(value(after, "lambda_provisioned_concurrent_executions", resource)).toBe(0);
  });
});
