/**
 * The async queue per function (`GET /_lambent/queue`, the same numbers as `lambent queue`) and
 * every event source mapping with its poller's lag and throughput
 * (`GET /_lambent/event-source-mappings/stats`), refreshed every 5 s.
 */
import { useEffect } from "preact/hooks";
import type { Api } from "./api.js";
import type { MappingStatus, QueueRow } from "./types.js";
import { Show, useLoad } from "./ui.js";

const QUEUE_COLUMNS: Array<[keyof QueueRow, string]> = [
  ["waiting", "Waiting"],
  ["running", "Running"],
  ["succeeded", "Succeeded"],
  ["failed", "Failed"],
  ["expired", "Expired"],
  ["dropped", "Dropped"],
  ["retries", "Retries"],
  ["throttles", "Throttles"],
  ["deliveriesWaiting", "Deliveries waiting"],
  ["delivered", "Delivered"],
  ["deliveryFailures", "Delivery failures"],
];

export function QueuePage({ api }: { api: Api }) {
  const [queue, reloadQueue] = useLoad(() => api.lambent<{ functions: QueueRow[] }>("queue"), [api]);
  const [sources, reloadSources] = useLoad(
    () => api.lambent<{ mappings: MappingStatus[] }>("event-source-mappings/stats"),
    [api],
  );
  useEffect(() => {
    const t = setInterval(() => {
      reloadQueue();
      reloadSources();
    }, 5000);
    return () => clearInterval(t);
  }, [reloadQueue, reloadSources]);

  return (
    <>
      <section aria-labelledby="queue-title">
        <h2 id="queue-title">Async queue</h2>
        <Show loaded={queue}>
          {(q) =>
            q.functions.length === 0 ? (
              <p class="muted">No async events yet.</p>
            ) : (
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Function</th>
                    {QUEUE_COLUMNS.map(([, h]) => (
                      <th scope="col" key={h}>
                        {h}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {q.functions.map((r) => (
                    <tr key={r.functionName}>
                      <td>
                        <a href={`#/functions/${encodeURIComponent(r.functionName)}`}>{r.functionName}</a>
                      </td>
                      {QUEUE_COLUMNS.map(([k]) => (
                        <td class="num" key={k}>
                          {r[k]}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Show>
      </section>
      <section aria-labelledby="sources-title">
        <h2 id="sources-title">Event source mappings</h2>
        <Show loaded={sources}>
          {(s) =>
            s.mappings.length === 0 ? (
              <p class="muted">No event source mappings.</p>
            ) : (
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Function</th>
                    <th scope="col">Source</th>
                    <th scope="col">Queue / stream</th>
                    <th scope="col">State</th>
                    <th scope="col">Connected</th>
                    <th scope="col">Lag</th>
                    <th scope="col">Records/s</th>
                    <th scope="col">Processed</th>
                    <th scope="col">Failed</th>
                    <th scope="col">In flight</th>
                    <th scope="col">Last error</th>
                  </tr>
                </thead>
                <tbody>
                  {s.mappings.map((m) => (
                    <tr key={m.UUID}>
                      <td>{m.FunctionName}</td>
                      <td class="mono">{`${m.Source} ${m.EventSource}`}</td>
                      <td>{m.Target}</td>
                      <td>{m.State}</td>
                      <td>{m.connected ? "yes" : "no"}</td>
                      <td class="num">{m.lag ?? "—"}</td>
                      <td class="num">{m.recordsPerSecond.toFixed(1)}</td>
                      <td class="num">{m.recordsProcessed}</td>
                      <td class="num">{m.recordsFailed}</td>
                      <td class="num">{m.inFlightRecords}</td>
                      <td>{m.lastError ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Show>
      </section>
    </>
  );
}
