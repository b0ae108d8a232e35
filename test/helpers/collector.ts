/**
 * A test HTTP server that records every POST (a destination URL, or a
 * function that reports its runs) and lets a test await the Nth matching one.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  path: string;
  /** The status this server answered. */
  status: number;
  headers: IncomingHttpHeaders;
  body: unknown;
}

interface Waiter {
  match: (r: Received) => boolean;
  count: number;
  resolve: (rs: Received[]) => void;
}

export class Collector {
  readonly received: Received[] = [];
  private waiters: Waiter[] = [];
  private server!: Server;
  url = "";
  /** Answer this status instead of 200 (for failing-destination tests); every request is recorded. */
  status = 200;
  /** Requests to /gate… are answered only once the gate opens. */
  private held: Array<() => void> | null = [];

  /** `host`: the address to listen on (a test's own network namespace bridge, say); loopback by default. */
  static async start(host = "127.0.0.1"): Promise<Collector> {
    const c = new Collector();
    c.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (d: Buffer) => chunks.push(d));
      req.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {}
        const answer = () => {
          res.statusCode = c.status;
          res.end("{}");
        };
        if (req.url?.startsWith("/gate") && c.held) c.held.push(answer);
        else answer();
        c.received.push({ path: req.url ?? "/", status: c.status, headers: req.headers, body });
        c.check();
      });
    });
    c.server.keepAliveTimeout = 1000;
    await new Promise<void>((r) => c.server.listen(0, host, r));
    c.url = `http://${host}:${(c.server.address() as AddressInfo).port}`;
    return c;
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      const hits = this.received.filter(w.match);
      if (hits.length < w.count) return true;
      w.resolve(hits);
      return false;
    });
  }

  /** Resolves with the matching requests once at least `count` arrived. */
  waitFor(match: (r: Received) => boolean, count = 1): Promise<Received[]> {
    return new Promise((resolve) => {
      this.waiters.push({ match, count, resolve });
      this.check();
    });
  }

  onPath(path: string, count = 1): Promise<Received[]> {
    return this.waitFor((r) => r.path === path, count);
  }

  /** Answer every held and future /gate request. */
  openGate(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const answer of held) answer();
  }

  /** Resolves once `cond` holds (checked now and after every request). */
  waitUntil(cond: () => boolean): Promise<void> {
    return this.waitFor(() => true, 0).then(async () => {
      while (!cond()) await this.waitFor(() => true, this.received.length + 1);
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
