/**
 * The test invoke panel: saved test events (kept in this browser's localStorage, per function —
 * they are the user's scratch data, not the platform's), an editor, and Invoke with `LogType:
 * Tail`, showing the status, the answer, the function error, the last 4 KB of log and the REPORT
 * line from it.
 */
import { useState } from "preact/hooks";
import { type Api, ApiError, type InvokeResult } from "./api.js";

interface SavedEvent {
  name: string;
  payload: string;
}

const storageKey = (fn: string) => `lambent.console.events.${fn}`;

export function loadEvents(fn: string): SavedEvent[] {
  try {
    const v = JSON.parse(localStorage.getItem(storageKey(fn)) ?? "[]") as unknown;
    return Array.isArray(v)
      ? v.filter((e): e is SavedEvent => typeof e?.name === "string" && typeof e?.payload === "string")
      : [];
  } catch {
    return [];
  }
}

function storeEvents(fn: string, events: SavedEvent[]): void {
  localStorage.setItem(storageKey(fn), JSON.stringify(events));
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function TestInvoke({ api, name }: { api: Api; name: string }) {
  const [events, setEvents] = useState(() => loadEvents(name));
  const [selected, setSelected] = useState(events[0]?.name ?? "");
  const [eventName, setEventName] = useState(events[0]?.name ?? "");
  const [payload, setPayload] = useState(events[0]?.payload ?? '{\n  "key": "value"\n}');
  const [qualifier, setQualifier] = useState("");
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<InvokeResult | undefined>();
  const [error, setError] = useState("");
  const [message, setMessage] = useState("");

  const choose = (n: string) => {
    setSelected(n);
    const e = events.find((x) => x.name === n);
    if (e) {
      setEventName(e.name);
      setPayload(e.payload);
    }
  };

  const save = () => {
    const n = eventName.trim();
    if (!n) {
      setMessage("Name the event to save it.");
      return;
    }
    const next = [...events.filter((e) => e.name !== n), { name: n, payload }].sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    storeEvents(name, next);
    setEvents(next);
    setSelected(n);
    setMessage(`Saved "${n}".`);
  };

  const remove = () => {
    const next = events.filter((e) => e.name !== selected);
    storeEvents(name, next);
    setEvents(next);
    setMessage(`Deleted "${selected}".`);
    setSelected(next[0]?.name ?? "");
  };

  const invoke = async () => {
    setBusy(true);
    setError("");
    setResult(undefined);
    try {
      setResult(await api.invoke(name, qualifier.trim(), payload));
    } catch (err) {
      setError(err instanceof ApiError ? `${err.type}: ${err.message}` : String(err));
    } finally {
      setBusy(false);
    }
  };

  const report = result?.log
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("REPORT ") || l.includes('"type":"platform.report"'));

  return (
    <div class="panel">
      <h3>Test event</h3>
      <div class="row">
        <label>
          Saved events
          <select value={selected} onChange={(e) => choose(e.currentTarget.value)}>
            {events.length === 0 ? <option value="">(none saved)</option> : null}
            {events.map((e) => (
              <option key={e.name} value={e.name}>
                {e.name}
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={remove} disabled={!selected}>
          Delete saved event
        </button>
      </div>
      <label>
        Event name
        <input value={eventName} onInput={(e) => setEventName(e.currentTarget.value)} />
      </label>
      <label>
        Event JSON
        <textarea
          rows={10}
          spellcheck={false}
          value={payload}
          onInput={(e) => setPayload(e.currentTarget.value)}
        />
      </label>
      <label>
        Qualifier (version or alias, optional)
        <input value={qualifier} onInput={(e) => setQualifier(e.currentTarget.value)} />
      </label>
      <div class="row">
        <button type="button" onClick={save}>
          Save event
        </button>
        <button type="button" class="primary" onClick={invoke} disabled={busy}>
          {busy ? "Invoking…" : "Invoke"}
        </button>
        <span role="status" class="muted">
          {message}
        </span>
      </div>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      {result ? (
        <section aria-label="Invoke result" class="result">
          <h3>{result.functionError ? `Failed: ${result.functionError}` : "Succeeded"}</h3>
          <p class="muted">
            Status {result.statusCode}
            {result.executedVersion ? `, version ${result.executedVersion}` : ""}
          </p>
          <h4>Response</h4>
          <pre data-testid="invoke-response">{pretty(result.payload)}</pre>
          <h4>Report</h4>
          <pre data-testid="report-line">{report ?? "(no REPORT line in the log tail)"}</pre>
          <h4>Log (last 4 KB)</h4>
          <pre data-testid="invoke-log">{result.log}</pre>
        </section>
      ) : null}
    </div>
  );
}
