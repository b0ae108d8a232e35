/**
 * The login page: an access key id and secret (and the region to sign for). The key is checked
 * with one signed ListFunctions call: a signature or key the server rejects keeps the user here;
 * AccessDenied means the key is valid but its policy does not list functions, and logs in anyway.
 */
import { useState } from "preact/hooks";
import { Api, ApiError, type Session } from "./api.js";

const REJECTED = new Set([
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "IncompleteSignatureException",
  "MissingAuthenticationTokenException",
]);

export function Login({ onLogin }: { onLogin: (s: Session) => void }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const session: Session = {
      accessKeyId: String(form.get("accessKeyId") ?? "").trim(),
      secretAccessKey: String(form.get("secretAccessKey") ?? ""),
      region: String(form.get("region") ?? "").trim() || "us-east-1",
    };
    const token = String(form.get("sessionToken") ?? "").trim();
    if (token) session.sessionToken = token;
    if (!session.accessKeyId || !session.secretAccessKey) {
      setError("Enter an access key ID and its secret.");
      return;
    }
    setBusy(true);
    setError("");
    try {
      await new Api(session).lambda("GET", "/2015-03-31/functions/", { MaxItems: "1" });
      onLogin(session);
    } catch (err) {
      if (err instanceof ApiError && !REJECTED.has(err.type) && err.status !== 0) onLogin(session);
      else setError(err instanceof ApiError ? `${err.type}: ${err.message}` : String(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <h1>Lambent console</h1>
      <form onSubmit={submit} aria-describedby="login-note">
        <label>
          Access key ID
          <input name="accessKeyId" autoComplete="username" required />
        </label>
        <label>
          Secret access key
          <input name="secretAccessKey" type="password" autoComplete="current-password" required />
        </label>
        <label>
          Session token (optional)
          <input name="sessionToken" autoComplete="off" />
        </label>
        <label>
          Region
          <input name="region" defaultValue="us-east-1" />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <p id="login-note" class="muted">
          The key stays in this tab (sessionStorage) and signs every request; its policies decide what you
          see.
        </p>
      </form>
    </main>
  );
}
