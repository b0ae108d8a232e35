/** Client commands that talk to a running server: invoke, logs. */
import { readFileSync } from "node:fs";
import { type Command, InvalidArgumentError } from "commander";
import { withProgress } from "./progress.js";
import { signedFetch } from "./signed-fetch.js";

const DEFAULT_ENDPOINT = process.env.LAMBENT_ENDPOINT ?? "http://127.0.0.1:9000";

function endpointOf(opts: { endpoint: string }): string {
  return opts.endpoint.replace(/\/+$/, "");
}

async function failIfError(res: Response): Promise<void> {
  if (res.ok) return;
  const type = res.headers.get("x-amzn-errortype") ?? `HTTP ${res.status}`;
  let message = "";
  try {
    const body = (await res.json()) as { Message?: string; message?: string };
    message = body.Message ?? body.message ?? "";
  } catch {}
  throw new Error(`${type}: ${message}`);
}

/** "10m", "2h", "30s", "1d" → milliseconds. */
export function parseDuration(raw: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(raw);
  if (!m) throw new InvalidArgumentError("use a number and a unit: 30s, 10m, 2h, 1d");
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

export function registerClientCommands(program: Command): void {
  program
    .command("invoke <function>")
    .description("invoke a function synchronously and print its response")
    .option("--payload <json|@file>", "event as JSON, or @path to read it from a file", "{}")
    .option("--qualifier <qualifier>", "version or alias")
    .option("--log", "also print the last 4 KB of the run's log")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", DEFAULT_ENDPOINT)
    .action(
      async (fn: string, opts: { payload: string; qualifier?: string; log?: boolean; endpoint: string }) => {
        const payload = opts.payload.startsWith("@")
          ? readFileSync(opts.payload.slice(1))
          : Buffer.from(opts.payload);
        const q = opts.qualifier ? `?Qualifier=${encodeURIComponent(opts.qualifier)}` : "";
        const res = await withProgress(
          `invoking ${fn}`,
          signedFetch(`${endpointOf(opts)}/2015-03-31/functions/${encodeURIComponent(fn)}/invocations${q}`, {
            method: "POST",
            body: payload,
            headers: opts.log ? { "X-Amz-Log-Type": "Tail" } : {},
          }),
        );
        await failIfError(res);
        const body = await res.text();
        const log = res.headers.get("x-amz-log-result");
        if (opts.log && log) process.stderr.write(Buffer.from(log, "base64").toString("utf8"));
        process.stdout.write(`${body}\n`);
        if (res.headers.get("x-amz-function-error")) process.exitCode = 1;
      },
    );

  program
    .command("logs <function>")
    .description("print a function's logs (group /aws/lambda/<function>)")
    .option("--since <duration>", "how far back to start, e.g. 10m, 2h", parseDuration)
    .option("--follow", "keep printing new lines as they arrive")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", DEFAULT_ENDPOINT)
    .action(async (fn: string, opts: { since?: number; follow?: boolean; endpoint: string }) => {
      let after: number | undefined;
      const since = opts.since !== undefined ? Date.now() - opts.since : undefined;
      for (;;) {
        const params = new URLSearchParams({ limit: "10000" });
        if (after !== undefined) params.set("after", String(after));
        else if (since !== undefined) params.set("since", String(since));
        const res = await signedFetch(
          `${endpointOf(opts)}/_lambent/logs/${encodeURIComponent(fn)}?${params}`,
        );
        await failIfError(res);
        const page = (await res.json()) as {
          events: Array<{ id: number; timestamp: number; message: string }>;
        };
        for (const e of page.events) {
          process.stdout.write(`${new Date(e.timestamp).toISOString()} ${e.message}\n`);
          after = e.id;
        }
        if (after === undefined) after = 0;
        if (!opts.follow) {
          if (page.events.length < 10000) return;
          continue;
        }
        if (page.events.length < 10000) await new Promise((r) => setTimeout(r, 1000));
      }
    });
}
