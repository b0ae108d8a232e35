/**
 * The function list: name, state, runtime, memory, last invoke (the newest log event of the
 * function's log group) and the error rate of the last 24 hours (CloudWatch's Invocations and
 * Errors sums). Each extra column is fetched on its own, so a key allowed only to list functions
 * still gets the list.
 */
import { useEffect, useState } from "preact/hooks";
import type { Api } from "./api.js";
import type { FunctionConfiguration } from "./types.js";
import { ago, listAll, Show, useLoad } from "./ui.js";

interface Extra {
  lastInvoke?: number;
  invocations?: number;
  errors?: number;
}

async function lastInvoke(api: Api, fn: FunctionConfiguration): Promise<number | undefined> {
  const group = fn.LoggingConfig?.LogGroup ?? `/aws/lambda/${fn.FunctionName}`;
  const out = await api.logs<{ logStreams?: Array<{ lastEventTimestamp?: number }> }>("DescribeLogStreams", {
    logGroupName: group,
    orderBy: "LastEventTime",
    descending: true,
    limit: 1,
  });
  return out.logStreams?.[0]?.lastEventTimestamp;
}

async function dayTotals(api: Api, fns: FunctionConfiguration[]): Promise<Map<string, Extra>> {
  const out = new Map<string, Extra>();
  const end = new Date();
  const start = new Date(end.getTime() - 24 * 3600 * 1000);
  // 500 queries per call (AWS's limit), two per function.
  for (let i = 0; i < fns.length; i += 250) {
    const chunk = fns.slice(i, i + 250);
    const results = await api.getMetricData(
      chunk.flatMap((f, j) => [
        {
          id: `i${j}`,
          metric: "Invocations",
          dimensions: { FunctionName: f.FunctionName },
          period: 86400,
          stat: "Sum",
        },
        {
          id: `e${j}`,
          metric: "Errors",
          dimensions: { FunctionName: f.FunctionName },
          period: 86400,
          stat: "Sum",
        },
      ]),
      start,
      end,
    );
    chunk.forEach((f, j) => {
      const sum = (id: string) => results.find((r) => r.id === id)?.values.reduce((a, b) => a + b, 0) ?? 0;
      out.set(f.FunctionName, { invocations: sum(`i${j}`), errors: sum(`e${j}`) });
    });
  }
  return out;
}

function errorRate(e: Extra | undefined): string {
  if (!e || e.invocations === undefined) return "—";
  if (e.invocations === 0) return "no invokes";
  return `${(((e.errors ?? 0) / e.invocations) * 100).toFixed(1)} % of ${e.invocations}`;
}

export function FunctionList({ api }: { api: Api }) {
  const [loaded, reload] = useLoad(
    () => listAll<FunctionConfiguration>(api, "/2015-03-31/functions/", "Functions"),
    [api],
  );
  const [extra, setExtra] = useState<Map<string, Extra>>(new Map());
  const [filter, setFilter] = useState("");

  useEffect(() => {
    if (loaded.state !== "ok") return;
    let current = true;
    const fns = loaded.value;
    const merge = (name: string, e: Extra) =>
      current && setExtra((m) => new Map(m).set(name, { ...m.get(name), ...e }));
    for (const f of fns) {
      lastInvoke(api, f).then(
        (t) => merge(f.FunctionName, t === undefined ? {} : { lastInvoke: t }),
        () => {},
      );
    }
    dayTotals(api, fns).then(
      (m) => {
        for (const [name, e] of m) merge(name, e);
      },
      () => {},
    );
    return () => {
      current = false;
    };
  }, [loaded, api]);

  return (
    <section aria-labelledby="fns-title">
      <div class="bar">
        <h2 id="fns-title">Functions</h2>
        <label class="inline">
          Filter
          <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </label>
        <button type="button" onClick={reload}>
          Refresh
        </button>
      </div>
      <Show loaded={loaded}>
        {(fns) => {
          const shown = fns.filter((f) => f.FunctionName.toLowerCase().includes(filter.toLowerCase()));
          if (fns.length === 0) return <p class="muted">No functions yet.</p>;
          return (
            <table class="grid">
              <caption class="visually-hidden">Functions</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">State</th>
                  <th scope="col">Runtime</th>
                  <th scope="col">Memory</th>
                  <th scope="col">Last invoke</th>
                  <th scope="col">Error rate (24 h)</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((f) => {
                  const e = extra.get(f.FunctionName);
                  return (
                    <tr key={f.FunctionName}>
                      <td>
                        <a href={`#/functions/${encodeURIComponent(f.FunctionName)}`}>{f.FunctionName}</a>
                      </td>
                      <td>{f.State ?? "Active"}</td>
                      <td>{f.Runtime ?? f.PackageType ?? ""}</td>
                      <td class="num">{f.MemorySize ?? ""} MB</td>
                      <td>{ago(e?.lastInvoke)}</td>
                      <td class="num">{errorRate(e)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          );
        }}
      </Show>
    </section>
  );
}
