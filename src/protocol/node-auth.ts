/**
 * How the nodes of a cluster recognise each other: every request between
 * nodes carries `x-lambent-node-auth: <unix seconds>.<hex HMAC-SHA256>` made
 * with the cluster secret over the method, path, time and the body's sha256.
 * The secret itself never crosses the network; a signature is good for
 * `MAX_SKEW_S` either side of the receiver's clock and is compared in
 * constant time. A node with no secret refuses to start a cluster role.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export const NODE_AUTH_HEADER = "x-lambent-node-auth";
/** How far apart two nodes' clocks (and a request's flight) may be. */
export const MAX_SKEW_S = 60;
/** The least a cluster secret may hold. */
export const MIN_SECRET_LENGTH = 16;

export function checkClusterSecret(secret: string | undefined): string {
  if (secret === undefined || secret.length < MIN_SECRET_LENGTH) {
    throw new Error(
      `a cluster role needs a cluster secret of at least ${MIN_SECRET_LENGTH} characters (--cluster-secret or LAMBENT_CLUSTER_SECRET)`,
    );
  }
  return secret;
}

function mac(secret: string, method: string, path: string, time: string, body: Buffer): string {
  const bodyHash = createHash("sha256").update(body).digest("hex");
  return createHmac("sha256", secret).update(`${method}\n${path}\n${time}\n${bodyHash}`).digest("hex");
}

/** The header value for one request. */
export function signNodeRequest(
  secret: string,
  method: string,
  path: string,
  body: Buffer,
  now = Date.now(),
): string {
  const time = String(Math.floor(now / 1000));
  return `${time}.${mac(secret, method, path, time, body)}`;
}

/** Whether a request's header was made with this secret for this method, path and body, recently. */
export function verifyNodeRequest(
  secret: string,
  header: string | undefined,
  method: string,
  path: string,
  body: Buffer,
  now = Date.now(),
): boolean {
  if (typeof header !== "string") return false;
  const m = /^(\d{1,12})\.([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  const [, time, given] = m as unknown as [string, string, string];
  if (Math.abs(Number(time) - now / 1000) > MAX_SKEW_S) return false;
  const expected = Buffer.from(mac(secret, method, path, time, body), "hex");
  return timingSafeEqual(expected, Buffer.from(given, "hex"));
}
