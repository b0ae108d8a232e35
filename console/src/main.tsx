/**
 * The Lambent web console: a client of the server's public APIs (see api.ts), routed by the URL's
 * hash (`#/`, `#/functions/<name>[/test|/logs|/monitor]`, `#/queue`). Everything a function
 * supplies (names, environment values, payloads, log lines) is rendered as text by preact: the
 * console never writes HTML from data, and the page's Content-Security-Policy allows no inline
 * script.
 */
import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { Api, clearSession, loadSession, type Session, saveSession } from "./api.js";
import { FunctionPage } from "./function-page.js";
import { FunctionList } from "./functions.js";
import { Login } from "./login.js";
import { QueuePage } from "./queue.js";
import "uplot/dist/uPlot.min.css";
import "./style.css";

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function App() {
  const [session, setSession] = useState<Session | undefined>(() => loadSession());
  const api = useMemo(() => (session ? new Api(session) : undefined), [session]);
  const hash = useHash();

  if (!api || !session) {
    return (
      <Login
        onLogin={(s) => {
          saveSession(s);
          setSession(s);
        }}
      />
    );
  }
  const parts = hash.replace(/^#\/?/, "").split("/");
  const page =
    parts[0] === "functions" && parts[1] ? (
      <FunctionPage api={api} name={decode(parts[1])} tab={parts[2] ?? ""} />
    ) : parts[0] === "queue" ? (
      <QueuePage api={api} />
    ) : (
      <FunctionList api={api} />
    );
  return (
    <>
      <header>
        <a class="brand" href="#/">
          Lambent
        </a>
        <nav aria-label="Main">
          <a href="#/" aria-current={parts[0] !== "queue" ? "page" : undefined}>
            Functions
          </a>
          <a href="#/queue" aria-current={parts[0] === "queue" ? "page" : undefined}>
            Queue and sources
          </a>
        </nav>
        <span class="who muted">
          {session.accessKeyId} · {session.region}
        </span>
        <button
          type="button"
          onClick={() => {
            clearSession();
            setSession(undefined);
          }}
        >
          Sign out
        </button>
      </header>
      <main>{page}</main>
    </>
  );
}

const root = document.getElementById("app") as HTMLElement;
root.textContent = ""; // the "Loading…" placeholder
render(<App />, root);
