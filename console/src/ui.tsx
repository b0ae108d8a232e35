/** Small shared pieces: async loading, error boxes, tables of key/value pairs, formatting. */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import type { Api } from "./api.js";
import { ApiError } from "./api.js";

export type Loaded<T> = { state: "loading" } | { state: "ok"; value: T } | { state: "error"; error: Error };

/** Runs `load` when `deps` change; the answer of an older run never overwrites a newer one. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): [Loaded<T>, () => void] {
  const [result, setResult] = useState<Loaded<T>>({ state: "loading" });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let current = true;
    load().then(
      (value) => current && setResult({ state: "ok", value }),
      (error: Error) => current && setResult({ state: "error", error }),
    );
    return () => {
      current = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return [result, reload];
}

export function ErrorBox({ error }: { error: Error }) {
  const denied = error instanceof ApiError && error.type === "AccessDeniedException";
  return (
    <p class={denied ? "notice" : "error"} role="alert">
      {error instanceof ApiError ? `${error.type}: ` : ""}
      {error.message}
      {denied ? " (this key's policy does not allow it)" : ""}
    </p>
  );
}

export function Show<T>({ loaded, children }: { loaded: Loaded<T>; children: (v: T) => ComponentChildren }) {
  if (loaded.state === "loading") return <p class="muted">Loading…</p>;
  if (loaded.state === "error") return <ErrorBox error={loaded.error} />;
  return <>{children(loaded.value)}</>;
}

export function Pairs({ rows }: { rows: Array<[string, ComponentChildren]> }) {
  return (
    <dl class="pairs">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v === undefined || v === null || v === "" ? "—" : v}</dd>
        </div>
      ))}
    </dl>
  );
}

export function ago(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function time(ms: number | undefined): string {
  return ms === undefined ? "" : new Date(ms).toISOString().replace("T", " ").slice(0, 23);
}

/** Every page of a Lambda list operation (Marker / NextMarker), up to `max` items. */
export async function listAll<T>(api: Api, path: string, key: string, max = 1000): Promise<T[]> {
  const out: T[] = [];
  let marker: string | undefined;
  do {
    const page = await api.lambda<Record<string, unknown>>(
      "GET",
      path,
      marker ? { Marker: marker } : undefined,
    );
    out.push(...((page[key] as T[] | undefined) ?? []));
    marker = page.NextMarker as string | undefined;
  } while (marker && out.length < max);
  return out;
}

export function fnPath(name: string, rest = ""): string {
  return `/2015-03-31/functions/${encodeURIComponent(name)}${rest}`;
}
