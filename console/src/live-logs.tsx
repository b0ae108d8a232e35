/**
 * Live logs: CloudWatch Logs FilterLogEvents on the function's log group, polled every 2 s from the
 * newest timestamp seen (events already shown are skipped by eventId), with CloudWatch's filter
 * pattern syntax. The newest 2000 lines are kept; every line is rendered as text.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { type Api, ApiError } from "./api.js";
import type { FunctionConfiguration, LogEvent } from "./types.js";
import { fnPath, time } from "./ui.js";

const KEEP = 2000;
const POLL_MS = 2000;

export function LiveLogs({ api, name }: { api: Api; name: string }) {
  const [pattern, setPattern] = useState("");
  const [applied, setApplied] = useState("");
  const [follow, setFollow] = useState(true);
  const [since, setSince] = useState(15);
  const [lines, setLines] = useState<LogEvent[]>([]);
  const [error, setError] = useState("");
  const [group, setGroup] = useState(`/aws/lambda/${name}`);
  const bottom = useRef<HTMLDivElement>(null);

  useEffect(() => {
    api.lambda<FunctionConfiguration>("GET", fnPath(name, "/configuration")).then(
      (c) => c.LoggingConfig?.LogGroup && setGroup(c.LoggingConfig.LogGroup),
      () => {},
    );
  }, [api, name]);

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const seen = new Set<string>();
    let from = Date.now() - since * 60_000;
    setLines([]);
    setError("");
    const poll = async () => {
      try {
        let token: string | undefined;
        const fresh: LogEvent[] = [];
        for (let page = 0; page < 10; page++) {
          const out = await api.logs<{ events?: LogEvent[]; nextToken?: string }>("FilterLogEvents", {
            logGroupName: group,
            startTime: from,
            ...(applied ? { filterPattern: applied } : {}),
            ...(token ? { nextToken: token } : {}),
            limit: 1000,
          });
          for (const e of out.events ?? []) {
            const id = e.eventId ?? `${e.timestamp}:${e.logStreamName}:${e.message}`;
            if (seen.has(id)) continue;
            seen.add(id);
            fresh.push(e);
            if ((e.timestamp ?? 0) > from) from = e.timestamp ?? from;
          }
          token = out.nextToken;
          if (!token) break;
        }
        if (stopped) return;
        setError("");
        if (fresh.length > 0) setLines((old) => [...old, ...fresh].slice(-KEEP));
        if (seen.size > KEEP * 4) seen.clear();
      } catch (err) {
        if (stopped) return;
        // No log group yet is not an error: the function has not logged anything.
        if (!(err instanceof ApiError && err.type === "ResourceNotFoundException")) {
          setError(err instanceof ApiError ? `${err.type}: ${err.message}` : String(err));
        }
      }
      if (!stopped && follow) timer = setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [api, group, applied, follow, since]);

  useEffect(() => {
    if (follow) bottom.current?.scrollIntoView({ block: "nearest" });
  }, [lines, follow]);

  return (
    <div class="panel">
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setApplied(pattern.trim());
        }}
      >
        <label>
          Filter pattern
          <input
            type="search"
            placeholder='ERROR, "exact phrase", -DEBUG, { $.level = "ERROR" }'
            value={pattern}
            onInput={(e) => setPattern(e.currentTarget.value)}
          />
        </label>
        <button type="submit">Apply</button>
        <label>
          From
          <select value={since} onChange={(e) => setSince(Number(e.currentTarget.value))}>
            <option value={5}>last 5 minutes</option>
            <option value={15}>last 15 minutes</option>
            <option value={60}>last hour</option>
            <option value={1440}>last day</option>
          </select>
        </label>
        <label class="inline">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} />
          Follow
        </label>
      </form>
      <p class="muted">
        {group}
        {applied ? ` filtered by ${applied}` : ""} — {lines.length} lines{follow ? ", following" : ""}
      </p>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <div class="logs" role="log" aria-live="polite" aria-label="Log events">
        {lines.map((l) => (
          <div class="line" key={l.eventId}>
            <span class="ts">{time(l.timestamp)}</span> <span class="msg">{l.message}</span>
          </div>
        ))}
        <div ref={bottom} />
      </div>
    </div>
  );
}
