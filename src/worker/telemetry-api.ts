/**
 * One execution environment's Telemetry API (2022-07-01, a subset): an
 * extension subscribes with `PUT /2022-07-01/telemetry` to `platform` and
 * `function` events, delivered in batches (maxItems / maxBytes / timeoutMs) as
 * a JSON array POSTed to its listener. How the listener is reached (directly,
 * or through a relay into the sandbox's network namespace) is the `post`
 * function's business.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError, ExtensionError, sendErrorResponse } from "../protocol/errors.js";

export const TELEMETRY_PATH = "/2022-07-01/telemetry";
const SCHEMA_VERSIONS = ["2022-07-01", "2022-12-13", "2025-01-29"];
const TYPES = ["platform", "function", "extension"];

export interface TelemetryEvent {
  time: string;
  type: string;
  record: unknown;
}

/** POST a batch to a subscriber's listener; resolves once it answered. */
export type TelemetryPost = (uri: URL, body: string) => Promise<void>;

interface Subscription {
  extensionId: string;
  uri: URL;
  types: Set<string>;
  maxItems: number;
  maxBytes: number;
  timeoutMs: number;
  buffer: TelemetryEvent[];
  bytes: number;
  timer: NodeJS.Timeout | null;
  sending: Promise<void>;
}

function bad(res: ServerResponse, message: string): void {
  sendErrorResponse(res, 400, ApiError.ValidationError, message);
}

function intIn(v: unknown, def: number, min: number, max: number): number | null {
  if (v === undefined) return def;
  return typeof v === "number" && Number.isInteger(v) && v >= min && v <= max ? v : null;
}

export class TelemetryApi {
  private readonly subs = new Map<string, Subscription>();
  /** Deliveries made and their total time (for metrics and the bench). */
  readonly stats = { batches: 0, events: 0, failures: 0, totalMs: 0 };

  constructor(
    private readonly post: TelemetryPost,
    private readonly isExtension: (id: string) => boolean,
  ) {}

  get subscribed(): boolean {
    return this.subs.size > 0;
  }

  handle(req: IncomingMessage, res: ServerResponse, extensionId: string | undefined): void {
    if (req.method !== "PUT") {
      req.resume();
      return bad(res, `${req.method} is not allowed here`);
    }
    if (extensionId === undefined || !this.isExtension(extensionId)) {
      req.resume();
      sendErrorResponse(res, 403, ExtensionError.UnknownExtensionIdentifier, "Unknown extension");
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      let sub: Record<string, unknown>;
      try {
        sub = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      } catch {
        return bad(res, "the body is not JSON");
      }
      if (typeof sub.schemaVersion !== "string" || !SCHEMA_VERSIONS.includes(sub.schemaVersion))
        return bad(res, `schemaVersion must be one of ${SCHEMA_VERSIONS.join(", ")}`);
      const dest = sub.destination as { protocol?: unknown; URI?: unknown } | undefined;
      if (dest?.protocol !== "HTTP") return bad(res, "destination.protocol must be HTTP");
      let uri: URL;
      try {
        uri = new URL(String(dest.URI));
      } catch {
        return bad(res, "destination.URI is not a URL");
      }
      if (uri.protocol !== "http:") return bad(res, "destination.URI must be an http:// URL");
      const types = sub.types;
      if (!Array.isArray(types) || types.some((t) => !TYPES.includes(t as string)))
        return bad(res, `types must be a list of ${TYPES.join(", ")}`);
      const b = (sub.buffering ?? {}) as Record<string, unknown>;
      const maxItems = intIn(b.maxItems, 10000, 1000, 10000);
      const maxBytes = intIn(b.maxBytes, 262144, 262144, 1048576);
      const timeoutMs = intIn(b.timeoutMs, 1000, 25, 30000);
      if (maxItems === null || maxBytes === null || timeoutMs === null)
        return bad(res, "buffering: maxItems 1000-10000, maxBytes 262144-1048576, timeoutMs 25-30000");
      const old = this.subs.get(extensionId);
      if (old?.timer) clearTimeout(old.timer);
      this.subs.set(extensionId, {
        extensionId,
        uri,
        types: new Set(types as string[]),
        maxItems,
        maxBytes,
        timeoutMs,
        buffer: old?.buffer ?? [],
        bytes: old?.bytes ?? 0,
        timer: null,
        sending: Promise.resolve(),
      });
      res.writeHead(200, { "content-type": "text/plain", "content-length": 2 });
      res.end("OK");
    });
  }

  /** Record an event for every subscriber of its category ("platform" for platform.*). */
  emit(type: string, record: unknown): void {
    if (this.subs.size === 0) return;
    const category = type.startsWith("platform.") ? "platform" : type;
    const event: TelemetryEvent = { time: new Date().toISOString(), type, record };
    const size = Buffer.byteLength(JSON.stringify(event));
    for (const sub of this.subs.values()) {
      if (!sub.types.has(category)) continue;
      sub.buffer.push(event);
      sub.bytes += size;
      if (sub.buffer.length >= sub.maxItems || sub.bytes >= sub.maxBytes) this.send(sub);
      else sub.timer ??= setTimeout(() => this.send(sub), sub.timeoutMs);
    }
  }

  private send(sub: Subscription): Promise<void> {
    if (sub.timer) clearTimeout(sub.timer);
    sub.timer = null;
    if (sub.buffer.length === 0) return sub.sending;
    const batch = sub.buffer.splice(0);
    sub.bytes = 0;
    sub.sending = sub.sending.then(async () => {
      const started = performance.now();
      try {
        await this.post(sub.uri, JSON.stringify(batch));
        this.stats.batches++;
        this.stats.events += batch.length;
      } catch {
        this.stats.failures++;
      } finally {
        this.stats.totalMs += performance.now() - started;
      }
    });
    return sub.sending;
  }

  /** Deliver everything buffered now (end of an invoke, before the environment freezes; Shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.subs.values()].map((s) => this.send(s)));
  }

  close(): void {
    for (const s of this.subs.values()) if (s.timer) clearTimeout(s.timer);
    this.subs.clear();
  }
}
