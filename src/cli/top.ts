/**
 * `lambent top`: live per-function invocations per second, errors, throttles, duration p50 / p99
 * and execution environments, redrawn in the terminal every few seconds. Its data are the public
 * APIs: ListFunctions, CloudWatch GetMetricData (JSON 1.0, AWS/Lambda by FunctionName, one datapoint
 * per query over the whole window) and `GET /_lambent/environments`. Not on a terminal, or with
 * `--once` / `--json`, it prints one sample and exits.
 */
import type { Command } from "commander";
import { intArg } from "./args.js";
import { signedFetch } from "./signed-fetch.js";

export interface TopRow {
  functionName: string;
  /** The metric columns are null when the metrics API could not be read (see TopSample.metricsError). */
  invocationsPerSecond: number | null;
  invocations: number | null;
  errors: number | null;
  throttles: number | null;
  /** Milliseconds; null without invocations in the window. */
  p50: number | null;
  p99: number | null;
  /** Environments alive and idle (null when the server runs none itself: a cluster frontend). */
  environments: number | null;
  idle: number | null;
}

export interface TopSample {
  at: string;
  /** The window the numbers cover: from the start of the minute `windowMinutes - 1` minutes ago to now. */
  windowStart: string;
  windowSeconds: number;
  functions: TopRow[];
  /** Why the metric columns are empty (the metrics API answered an error: no permission, no such API). */
  metricsError?: string;
}

async function json<T>(res: Response): Promise<T> {
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      const j = JSON.parse(text) as { message?: string; Message?: string; __type?: string };
      message = `${(j.__type ?? res.headers.get("x-amzn-errortype") ?? "").split("#").pop()}: ${j.message ?? j.Message ?? text}`;
    } catch {}
    throw new Error(`HTTP ${res.status} ${message}`);
  }
  return JSON.parse(text) as T;
}

async function functionNames(endpoint: string): Promise<string[]> {
  const names: string[] = [];
  let marker: string | undefined;
  do {
    const q = marker ? `?Marker=${encodeURIComponent(marker)}` : "";
    const page = await json<{ Functions?: Array<{ FunctionName: string }>; NextMarker?: string }>(
      await signedFetch(`${endpoint}/2015-03-31/functions/${q}`),
    );
    names.push(...(page.Functions ?? []).map((f) => f.FunctionName));
    marker = page.NextMarker;
  } while (marker);
  return names;
}

const QUERIES = [
  ["inv", "Invocations", "Sum"],
  ["err", "Errors", "Sum"],
  ["thr", "Throttles", "Sum"],
  ["p50", "Duration", "p50"],
  ["p99", "Duration", "p99"],
] as const;

/** One sample of every function (500 queries per GetMetricData call, AWS's limit). */
export async function sampleTop(
  endpoint: string,
  windowMinutes: number,
  now = Date.now(),
): Promise<TopSample> {
  const names = await functionNames(endpoint);
  const start = Math.floor(now / 60_000) * 60_000 - (windowMinutes - 1) * 60_000;
  const seconds = Math.max(1, (now - start) / 1000);
  const values = new Map<string, number>();
  let metricsError: string | undefined;
  try {
    await readMetrics(endpoint, names, start, now, windowMinutes, values);
  } catch (err) {
    metricsError = err instanceof Error ? err.message : String(err);
  }
  const envs = await json<{
    functions: Array<{ functionName: string; environments: number; idle: number }>;
    nodes?: unknown[];
  }>(await signedFetch(`${endpoint}/_lambent/environments`));
  const local = envs.nodes === undefined;
  const metric = (id: string, empty: number | null) => (metricsError ? null : (values.get(id) ?? empty));
  const rows = names.map((functionName, k): TopRow => {
    const mine = envs.functions.filter((e) => e.functionName === functionName);
    const invocations = metric(`inv${k}`, 0);
    return {
      functionName,
      invocationsPerSecond: invocations === null ? null : invocations / seconds,
      invocations,
      errors: metric(`err${k}`, 0),
      throttles: metric(`thr${k}`, 0),
      p50: metric(`p50${k}`, null),
      p99: metric(`p99${k}`, null),
      environments: local ? mine.reduce((n, e) => n + e.environments, 0) : null,
      idle: local ? mine.reduce((n, e) => n + e.idle, 0) : null,
    };
  });
  // Busiest first, then by name.
  rows.sort(
    (a, b) => (b.invocations ?? 0) - (a.invocations ?? 0) || a.functionName.localeCompare(b.functionName),
  );
  return {
    at: new Date(now).toISOString(),
    windowStart: new Date(start).toISOString(),
    windowSeconds: Math.round(seconds),
    functions: rows,
    ...(metricsError ? { metricsError } : {}),
  };
}

/** GetMetricData for every function, summed per query id into `values`. */
async function readMetrics(
  endpoint: string,
  names: string[],
  start: number,
  now: number,
  windowMinutes: number,
  values: Map<string, number>,
): Promise<void> {
  const perCall = Math.floor(500 / QUERIES.length);
  for (let i = 0; i < names.length; i += perCall) {
    const chunk = names.slice(i, i + perCall);
    let token: string | undefined;
    do {
      const body = {
        StartTime: start / 1000,
        EndTime: Math.ceil(now / 1000) + 1,
        ...(token ? { NextToken: token } : {}),
        MetricDataQueries: chunk.flatMap((name, j) =>
          QUERIES.map(([id, metric, stat]) => ({
            Id: `${id}${i + j}`,
            MetricStat: {
              Metric: {
                Namespace: "AWS/Lambda",
                MetricName: metric,
                Dimensions: [{ Name: "FunctionName", Value: name }],
              },
              Period: windowMinutes * 60,
              Stat: stat,
            },
          })),
        ),
      };
      const out = await json<{
        MetricDataResults?: Array<{ Id: string; Values?: number[] }>;
        NextToken?: string;
      }>(
        await signedFetch(`${endpoint}/`, {
          method: "POST",
          service: "monitoring",
          headers: {
            "content-type": "application/x-amz-json-1.0",
            "x-amz-target": "GraniteServiceVersion20100801.GetMetricData",
          },
          body: JSON.stringify(body),
        }),
      );
      for (const r of out.MetricDataResults ?? []) {
        for (const v of r.Values ?? []) values.set(r.Id, (values.get(r.Id) ?? 0) + v);
      }
      token = out.NextToken;
    } while (token);
  }
}

const ms = (v: number | null) =>
  v === null ? "-" : v < 10 ? v.toFixed(2) : v < 1000 ? v.toFixed(1) : v.toFixed(0);

export function formatTop(sample: TopSample): string {
  const header = ["FUNCTION", "INV/S", "INVOKES", "ERRORS", "THROTTLES", "P50 MS", "P99 MS", "ENVS", "IDLE"];
  const cells = sample.functions.map((r) => [
    r.functionName,
    r.invocationsPerSecond === null ? "-" : r.invocationsPerSecond.toFixed(2),
    String(r.invocations ?? "-"),
    String(r.errors ?? "-"),
    String(r.throttles ?? "-"),
    ms(r.p50),
    ms(r.p99),
    r.environments === null ? "-" : String(r.environments),
    r.idle === null ? "-" : String(r.idle),
  ]);
  const all = [header, ...cells];
  const widths = header.map((_, i) => Math.max(...all.map((c) => (c[i] as string).length)));
  const lines = all.map((c) =>
    c.map((v, i) => (i === 0 ? v.padEnd(widths[i] as number) : v.padStart(widths[i] as number))).join("  "),
  );
  const title = `lambent top — ${sample.at.slice(11, 19)} UTC, last ${sample.windowSeconds} s, ${sample.functions.length} functions`;
  const note = sample.metricsError ? [`metrics unavailable: ${sample.metricsError}`] : [];
  return [title, ...note, "", ...(sample.functions.length === 0 ? ["no functions"] : lines)].join("\n");
}

export function registerTopCommand(program: Command, defaultEndpoint: string): void {
  program
    .command("top")
    .description("live per-function invocations/s, errors, throttles, duration p50/p99 and environments")
    .option("--interval <seconds>", "seconds between refreshes", intArg(1, 3600), 5)
    .option(
      "--window <minutes>",
      "minutes the numbers cover (this one and the ones before)",
      intArg(1, 1440),
      2,
    )
    .option("--once", "print one sample and exit (the default when stdout is not a terminal)")
    .option("--json", "print one sample as JSON and exit")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(
      async (opts: {
        interval: number;
        window: number;
        once?: boolean;
        json?: boolean;
        endpoint: string;
      }) => {
        const endpoint = opts.endpoint.replace(/\/+$/, "");
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(await sampleTop(endpoint, opts.window), null, 2)}\n`);
          return;
        }
        if (opts.once || !process.stdout.isTTY) {
          process.stdout.write(`${formatTop(await sampleTop(endpoint, opts.window))}\n`);
          return;
        }
        process.stdout.write("\x1b[?25l"); // hide the cursor while redrawing
        const restore = () => process.stdout.write("\x1b[?25h\n");
        process.once("SIGINT", () => {
          restore();
          process.exit(130);
        });
        for (;;) {
          let screen: string;
          try {
            screen = formatTop(await sampleTop(endpoint, opts.window));
          } catch (err) {
            screen = `lambent top: ${err instanceof Error ? err.message : String(err)} (retrying)`;
          }
          // Home, draw, clear what the previous frame left below.
          process.stdout.write(`\x1b[H${screen}\n\x1b[J(every ${opts.interval} s; Ctrl-C to quit)`);
          await new Promise((r) => setTimeout(r, opts.interval * 1000));
        }
      },
    );
}
