/**
 * Monitoring: charts of the function's AWS/Lambda metrics (CloudWatch GetMetricData, dimension
 * FunctionName) over a selectable window, drawn with uPlot; and the recent invocations, read from
 * the REPORT lines of the function's log group (FilterLogEvents).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import type { Api, MetricQuery } from "./api.js";
import type { LogEvent } from "./types.js";
import { Show, time, useLoad } from "./ui.js";

const WINDOWS = [
  { id: "1h", label: "1 hour", ms: 3600_000, period: 60 },
  { id: "3h", label: "3 hours", ms: 3 * 3600_000, period: 60 },
  { id: "12h", label: "12 hours", ms: 12 * 3600_000, period: 300 },
  { id: "1d", label: "1 day", ms: 24 * 3600_000, period: 300 },
] as const;

interface Series {
  label: string;
  metric: string;
  stat: string;
  /** Empty buckets count as 0 (counts) or as gaps (durations, gauges). */
  zero: boolean;
}

const CHARTS: Array<{ title: string; unit: string; series: Series[] }> = [
  {
    title: "Invocations",
    unit: "count",
    series: [{ label: "Invocations", metric: "Invocations", stat: "Sum", zero: true }],
  },
  {
    title: "Errors and throttles",
    unit: "count",
    series: [
      { label: "Errors", metric: "Errors", stat: "Sum", zero: true },
      { label: "Throttles", metric: "Throttles", stat: "Sum", zero: true },
    ],
  },
  {
    title: "Duration",
    unit: "ms",
    series: [
      { label: "p50", metric: "Duration", stat: "p50", zero: false },
      { label: "p90", metric: "Duration", stat: "p90", zero: false },
      { label: "p99", metric: "Duration", stat: "p99", zero: false },
    ],
  },
  {
    title: "Concurrent executions",
    unit: "count",
    series: [{ label: "Maximum", metric: "ConcurrentExecutions", stat: "Maximum", zero: false }],
  },
];

const COLOURS = ["#2563eb", "#dc2626", "#d97706", "#059669"];

/** One x grid (seconds) for the window and each series' values on it. */
export function align(
  start: number,
  end: number,
  periodS: number,
  series: Array<{ timestamps: number[]; values: number[]; zero: boolean }>,
): uPlot.AlignedData {
  const step = periodS * 1000;
  const first = Math.floor(start / step) * step;
  const xs: number[] = [];
  for (let t = first; t <= end; t += step) xs.push(t / 1000);
  const ys = series.map((s) => {
    const byT = new Map<number, number>();
    s.timestamps.forEach((t, i) => {
      byT.set(Math.floor(t / step) * step, s.values[i] as number);
    });
    return xs.map((x) => byT.get(x * 1000) ?? (s.zero ? 0 : null));
  });
  return [xs, ...ys] as uPlot.AlignedData;
}

function Chart({
  title,
  unit,
  labels,
  data,
}: {
  title: string;
  unit: string;
  labels: string[];
  data: uPlot.AlignedData;
}) {
  const box = useRef<HTMLDivElement>(null);
  const points = data
    .slice(1)
    .reduce((n, ys) => n + (ys as Array<number | null>).filter((v) => v !== null && v > 0).length, 0);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const plot = new uPlot(
      {
        width: Math.max(300, el.clientWidth),
        height: 180,
        legend: { show: true },
        scales: { y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
        axes: [{}, { label: unit, size: 60 }],
        series: [
          {},
          ...labels.map((label, i) => ({
            label,
            stroke: COLOURS[i % COLOURS.length] as string,
            width: 2,
            points: { size: 4 },
          })),
        ],
      },
      data,
      el,
    );
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(300, el.clientWidth), height: 180 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [data, labels, unit]);
  return (
    <figure class="chart" data-points={points} aria-label={`${title} chart`}>
      <figcaption>
        {title} <span class="muted">({points} non-zero points)</span>
      </figcaption>
      <div ref={box} />
    </figure>
  );
}

export function Charts({ api, name }: { api: Api; name: string }) {
  const [windowId, setWindowId] = useState<string>("1h");
  const [tick, setTick] = useState(0);
  const w = WINDOWS.find((x) => x.id === windowId) ?? WINDOWS[0];
  const [loaded] = useLoad(async () => {
    const end = Date.now();
    const start = end - w.ms;
    const queries: MetricQuery[] = CHARTS.flatMap((c, ci) =>
      c.series.map((s, si) => ({
        id: `c${ci}s${si}`,
        metric: s.metric,
        stat: s.stat,
        period: w.period,
        dimensions: { FunctionName: name },
      })),
    );
    const results = await api.getMetricData(queries, new Date(start), new Date(end));
    return CHARTS.map((c, ci) =>
      align(
        start,
        end,
        w.period,
        c.series.map((s, si) => {
          const r = results.find((x) => x.id === `c${ci}s${si}`);
          return { timestamps: r?.timestamps ?? [], values: r?.values ?? [], zero: s.zero };
        }),
      ),
    );
  }, [api, name, windowId, tick]);

  // Refresh every minute (the metrics' resolution).
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 60_000);
    return () => clearInterval(t);
  }, []);

  return (
    <section aria-labelledby="charts-title">
      <div class="bar">
        <h3 id="charts-title">Metrics</h3>
        <fieldset class="segmented">
          <legend class="visually-hidden">Window</legend>
          {WINDOWS.map((x) => (
            <label key={x.id}>
              <input
                type="radio"
                name="window"
                value={x.id}
                checked={x.id === windowId}
                onChange={() => setWindowId(x.id)}
              />
              {x.label}
            </label>
          ))}
        </fieldset>
        <button type="button" onClick={() => setTick((n) => n + 1)}>
          Refresh
        </button>
      </div>
      <Show loaded={loaded}>
        {(datas) => (
          <div class="charts">
            {CHARTS.map((c, i) => (
              <Chart
                key={c.title}
                title={c.title}
                unit={c.unit}
                labels={c.series.map((s) => s.label)}
                data={datas[i] as uPlot.AlignedData}
              />
            ))}
          </div>
        )}
      </Show>
    </section>
  );
}

/** Fields of a REPORT line (text or JSON format). */
export function parseReport(message: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (message.startsWith("{")) {
    try {
      const j = JSON.parse(message) as {
        record?: { requestId?: string; status?: string; metrics?: Record<string, number> };
      };
      const m = j.record?.metrics ?? {};
      out.RequestId = j.record?.requestId ?? "";
      out.Duration = `${m.durationMs ?? ""} ms`;
      out["Billed Duration"] = `${m.billedDurationMs ?? ""} ms`;
      out["Max Memory Used"] = `${m.maxMemoryUsedMB ?? ""} MB`;
      if (m.initDurationMs !== undefined) out["Init Duration"] = `${m.initDurationMs} ms`;
      if (j.record?.status) out.Status = j.record.status;
      return out;
    } catch {
      return out;
    }
  }
  for (const part of message.replace(/^REPORT\s+/, "").split("\t")) {
    const i = part.indexOf(":");
    if (i > 0) out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}

export function RecentInvocations({ api, name }: { api: Api; name: string }) {
  const [loaded, reload] = useLoad(async () => {
    const out = await api.logs<{ events?: LogEvent[] }>("FilterLogEvents", {
      logGroupName: `/aws/lambda/${name}`,
      startTime: Date.now() - 24 * 3600_000,
      filterPattern: '?"REPORT RequestId" ?"platform.report"',
      limit: 1000,
    });
    return (out.events ?? []).slice(-25).reverse();
  }, [api, name]);
  return (
    <section aria-labelledby="recent-title">
      <div class="bar">
        <h3 id="recent-title">Recent invocations</h3>
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </div>
      <Show loaded={loaded}>
        {(events) =>
          events.length === 0 ? (
            <p class="muted">No invocations in the last day.</p>
          ) : (
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Request ID</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Billed</th>
                  <th scope="col">Max memory</th>
                  <th scope="col">Init</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {events.map((e) => {
                  const r = parseReport(e.message ?? "");
                  return (
                    <tr key={e.eventId}>
                      <td>{time(e.timestamp)}</td>
                      <td class="mono">{r.RequestId}</td>
                      <td class="num">{r.Duration}</td>
                      <td class="num">{r["Billed Duration"]}</td>
                      <td class="num">{r["Max Memory Used"]}</td>
                      <td class="num">{r["Init Duration"] ?? ""}</td>
                      <td>{r.Status ?? ""}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        }
      </Show>
    </section>
  );
}
