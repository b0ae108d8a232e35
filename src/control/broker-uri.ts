/**
 * Broker URIs as Lambent takes them in EventSourceArn and destinations:
 * `amqp[s]://user:pass@host:5672/vhost` (RabbitMQ), `nats://[user:pass@]host:4222`
 * (NATS), `redis[s]://[user:pass@]host:6379[/db]` (Redis). Credentials are kept
 * in the store and never shown: `redact` replaces a password with `****`.
 */
export type BrokerKind = "rabbitmq" | "nats" | "redis";

const SCHEMES: Record<string, BrokerKind> = {
  "amqp:": "rabbitmq",
  "amqps:": "rabbitmq",
  "nats:": "nats",
  "tls:": "nats",
  "redis:": "redis",
  "rediss:": "redis",
};

export interface BrokerUri {
  kind: BrokerKind;
  url: URL;
}

/** The broker a URI names, or null when it is not a broker URI Lambent knows. */
export function parseBrokerUri(raw: string): BrokerUri | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  const kind = SCHEMES[url.protocol];
  if (!kind || !url.hostname) return null;
  return { kind, url };
}

/** The URI with its password (or a lone token user) replaced by `****`. */
export function redact(raw: string): string {
  const parsed = parseBrokerUri(raw);
  if (!parsed) return raw;
  const { url } = parsed;
  if (!url.username && !url.password) return raw;
  const userInfo = url.password ? `${url.username}:****` : "****";
  return raw.replace(/^([a-z]+:\/\/)[^@/]*@/i, `$1${userInfo}@`);
}

/** The URI without query and fragment: one connection per broker. */
export function connectionKey(raw: string): string {
  const parsed = parseBrokerUri(raw);
  if (!parsed) return raw;
  const u = new URL(parsed.url.toString());
  u.search = "";
  u.hash = "";
  return u.toString();
}

/** RabbitMQ's virtual host from the URI path: `/` when absent, `%2F` decoded. */
export function amqpVhost(url: URL): string {
  const path = url.pathname.replace(/^\//, "");
  return path === "" ? "/" : decodeURIComponent(path);
}

/**
 * What is wrong with a broker destination URI, or null when it is usable:
 * RabbitMQ needs `?queue=` or `?exchange=` (with optional `routingKey=`),
 * NATS `?subject=`, Redis `?stream=`.
 */
export function brokerDestinationProblem(raw: string): string | null {
  const parsed = parseBrokerUri(raw);
  if (!parsed) return "not a broker URI";
  const q = parsed.url.searchParams;
  switch (parsed.kind) {
    case "rabbitmq":
      return q.get("queue") || q.get("exchange") !== null
        ? null
        : "a RabbitMQ destination needs ?queue=<name> or ?exchange=<name>[&routingKey=<key>]";
    case "nats":
      return q.get("subject") ? null : "a NATS destination needs ?subject=<subject>";
    case "redis":
      return q.get("stream") ? null : "a Redis destination needs ?stream=<key>";
  }
}
