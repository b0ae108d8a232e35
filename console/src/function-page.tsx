/**
 * One function: tabs (plain links, so the keyboard and the back button work) for its
 * configuration, the test invoke panel, live logs and monitoring (charts and recent invocations).
 */
import type { Api } from "./api.js";
import { Charts, RecentInvocations } from "./charts.js";
import { LiveLogs } from "./live-logs.js";
import { TestInvoke } from "./test-invoke.js";
import type {
  AliasConfiguration,
  EventInvokeConfig,
  EventSourceMapping,
  FunctionConfiguration,
  FunctionUrlConfig,
  MappingStatus,
} from "./types.js";
import { ErrorBox, fnPath, listAll, Pairs, Show, useLoad } from "./ui.js";

const TABS = [
  ["", "Configuration"],
  ["test", "Test"],
  ["logs", "Logs"],
  ["monitor", "Monitoring"],
] as const;

export function FunctionPage({ api, name, tab }: { api: Api; name: string; tab: string }) {
  const base = `#/functions/${encodeURIComponent(name)}`;
  return (
    <section aria-labelledby="fn-title">
      <p>
        <a href="#/">Functions</a> /
      </p>
      <h2 id="fn-title">{name}</h2>
      <nav class="tabs" aria-label="Function sections">
        {TABS.map(([id, label]) => (
          <a key={id} href={id ? `${base}/${id}` : base} aria-current={tab === id ? "page" : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {tab === "test" ? (
        <TestInvoke api={api} name={name} />
      ) : tab === "logs" ? (
        <LiveLogs api={api} name={name} />
      ) : tab === "monitor" ? (
        <>
          <Charts api={api} name={name} />
          <RecentInvocations api={api} name={name} />
        </>
      ) : (
        <Configuration api={api} name={name} />
      )}
    </section>
  );
}

function Configuration({ api, name }: { api: Api; name: string }) {
  const [config] = useLoad(
    () => api.lambda<FunctionConfiguration>("GET", fnPath(name, "/configuration")),
    [api, name],
  );
  return (
    <>
      <Show loaded={config}>
        {(c) => (
          <>
            <h3>Configuration</h3>
            <Pairs
              rows={[
                ["State", `${c.State ?? ""}${c.StateReason ? ` (${c.StateReason})` : ""}`],
                ["Last update", c.LastUpdateStatus],
                ["Runtime", c.Runtime ?? c.PackageType],
                ["Handler", c.Handler],
                ["Architecture", c.Architectures?.join(", ")],
                ["Memory", c.MemorySize !== undefined ? `${c.MemorySize} MB` : undefined],
                [
                  "Ephemeral storage",
                  c.EphemeralStorage?.Size !== undefined ? `${c.EphemeralStorage.Size} MB` : "",
                ],
                ["Timeout", c.Timeout !== undefined ? `${c.Timeout} s` : undefined],
                ["Role", c.Role],
                ["Description", c.Description],
                ["Code size", c.CodeSize !== undefined ? `${c.CodeSize} bytes` : undefined],
                ["Code SHA-256", c.CodeSha256],
                ["Last modified", c.LastModified],
                ["Layers", c.Layers?.map((l) => l.Arn).join("\n")],
                ["Log format", c.LoggingConfig?.LogFormat],
                ["Log group", c.LoggingConfig?.LogGroup ?? `/aws/lambda/${name}`],
                ["Dead-letter target", c.DeadLetterConfig?.TargetArn],
                ["ARN", c.FunctionArn],
              ]}
            />
            <h3>Environment variables</h3>
            {Object.keys(c.Environment?.Variables ?? {}).length === 0 ? (
              <p class="muted">None.</p>
            ) : (
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Key</th>
                    <th scope="col">Value</th>
                  </tr>
                </thead>
                <tbody>
                  {Object.entries(c.Environment?.Variables ?? {}).map(([k, v]) => (
                    <tr key={k}>
                      <td>{k}</td>
                      <td class="mono">{v}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </Show>
      <Versions api={api} name={name} />
      <Aliases api={api} name={name} />
      <AsyncConfig api={api} name={name} />
      <Mappings api={api} name={name} />
      <Url api={api} name={name} />
    </>
  );
}

function Versions({ api, name }: { api: Api; name: string }) {
  const [loaded] = useLoad(
    () => listAll<FunctionConfiguration>(api, fnPath(name, "/versions"), "Versions"),
    [api, name],
  );
  return (
    <>
      <h3>Versions</h3>
      <Show loaded={loaded}>
        {(vs) => (
          <table class="grid">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Description</th>
                <th scope="col">Code SHA-256</th>
                <th scope="col">Last modified</th>
              </tr>
            </thead>
            <tbody>
              {vs.map((v) => (
                <tr key={v.Version}>
                  <td>{v.Version}</td>
                  <td>{v.Description}</td>
                  <td class="mono">{v.CodeSha256}</td>
                  <td>{v.LastModified}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Show>
    </>
  );
}

function Aliases({ api, name }: { api: Api; name: string }) {
  const [loaded] = useLoad(
    () => listAll<AliasConfiguration>(api, fnPath(name, "/aliases"), "Aliases"),
    [api, name],
  );
  return (
    <>
      <h3>Aliases</h3>
      <Show loaded={loaded}>
        {(as) =>
          as.length === 0 ? (
            <p class="muted">None.</p>
          ) : (
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">Alias</th>
                  <th scope="col">Version</th>
                  <th scope="col">Weights</th>
                  <th scope="col">Description</th>
                </tr>
              </thead>
              <tbody>
                {as.map((a) => (
                  <tr key={a.Name}>
                    <td>{a.Name}</td>
                    <td>{a.FunctionVersion}</td>
                    <td>
                      {Object.entries(a.RoutingConfig?.AdditionalVersionWeights ?? {})
                        .map(([v, w]) => `${v}: ${Math.round(w * 100)} %`)
                        .join(", ")}
                    </td>
                    <td>{a.Description}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </>
  );
}

function AsyncConfig({ api, name }: { api: Api; name: string }) {
  const [loaded] = useLoad(
    () =>
      listAll<EventInvokeConfig>(
        api,
        `/2019-09-25/functions/${encodeURIComponent(name)}/event-invoke-config/list`,
        "FunctionEventInvokeConfigs",
      ),
    [api, name],
  );
  return (
    <>
      <h3>Asynchronous invocation</h3>
      <Show loaded={loaded}>
        {(cs) =>
          cs.length === 0 ? (
            <p class="muted">Defaults: 2 retries, events kept up to 6 hours, no destinations.</p>
          ) : (
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">Function</th>
                  <th scope="col">Retries</th>
                  <th scope="col">Max event age</th>
                  <th scope="col">On success</th>
                  <th scope="col">On failure</th>
                </tr>
              </thead>
              <tbody>
                {cs.map((c) => (
                  <tr key={c.FunctionArn}>
                    <td class="mono">{c.FunctionArn}</td>
                    <td class="num">{c.MaximumRetryAttempts ?? 2}</td>
                    <td class="num">{c.MaximumEventAgeInSeconds ?? 21600} s</td>
                    <td class="mono">{c.DestinationConfig?.OnSuccess?.Destination ?? "—"}</td>
                    <td class="mono">{c.DestinationConfig?.OnFailure?.Destination ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </>
  );
}

/** Event source mappings of this function, with the poller's lag from Lambent's stats endpoint. */
function Mappings({ api, name }: { api: Api; name: string }) {
  const [loaded] = useLoad(async () => {
    const ms = await listAll<EventSourceMapping>(
      api,
      "/2015-03-31/event-source-mappings/",
      "EventSourceMappings",
    );
    const stats = await api
      .lambent<{ mappings: MappingStatus[] }>("event-source-mappings/stats")
      .then((s) => s.mappings)
      .catch(() => [] as MappingStatus[]);
    return { ms: ms.filter((m) => m.FunctionArn?.split(":")[6] === name), stats };
  }, [api, name]);
  return (
    <>
      <h3>Event source mappings</h3>
      <Show loaded={loaded}>
        {({ ms, stats }) =>
          ms.length === 0 ? (
            <p class="muted">None.</p>
          ) : (
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">UUID</th>
                  <th scope="col">Source</th>
                  <th scope="col">State</th>
                  <th scope="col">Batch size</th>
                  <th scope="col">Lag</th>
                  <th scope="col">Last result</th>
                </tr>
              </thead>
              <tbody>
                {ms.map((m) => {
                  const s = stats.find((x) => x.UUID === m.UUID);
                  return (
                    <tr key={m.UUID}>
                      <td class="mono">{m.UUID}</td>
                      <td class="mono">{s ? `${s.Source} ${s.Target}` : (m.EventSourceArn ?? "")}</td>
                      <td>{m.State}</td>
                      <td class="num">{m.BatchSize}</td>
                      <td class="num">{s?.lag ?? "—"}</td>
                      <td>{m.LastProcessingResult}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )
        }
      </Show>
    </>
  );
}

function Url({ api, name }: { api: Api; name: string }) {
  const [loaded] = useLoad(
    () =>
      listAll<FunctionUrlConfig>(
        api,
        `/2021-10-31/functions/${encodeURIComponent(name)}/urls`,
        "FunctionUrlConfigs",
      ),
    [api, name],
  );
  return (
    <>
      <h3>Function URL</h3>
      {loaded.state === "error" ? (
        <ErrorBox error={loaded.error} />
      ) : loaded.state === "ok" && loaded.value.length > 0 ? (
        <Pairs
          rows={loaded.value.flatMap((u) => [
            ["URL", <span class="mono">{u.FunctionUrl}</span>],
            ["Auth type", u.AuthType],
            ["Invoke mode", u.InvokeMode ?? "BUFFERED"],
          ])}
        />
      ) : (
        <p class="muted">{loaded.state === "loading" ? "Loading…" : "None."}</p>
      )}
    </>
  );
}
