/**
 * A Redis destination (a Lambent extension): `redis://host:6379?stream=key`
 * appends an entry (XADD) with field `data` = the message (JSON) and one field
 * per attribute. One connection per server.
 */
import type { Redis } from "ioredis";
import { connectionKey, parseBrokerUri } from "../../control/broker-uri.js";
import { type EgressPolicy, redisOptions } from "../../control/egress.js";
import type { DestinationAdapter, DestinationTarget } from "./target.js";

export class RedisDestinations implements DestinationAdapter {
  readonly kind = "redis";
  private readonly clients = new Map<string, Promise<Redis>>();

  constructor(private readonly egress: EgressPolicy) {}

  accepts(target: string): boolean {
    return parseBrokerUri(target)?.kind === "redis";
  }

  private client(target: string): Promise<Redis> {
    const key = connectionKey(target);
    let c = this.clients.get(key);
    if (!c) {
      // Pinned to the checked address at creation; ioredis reconnects to that same address.
      // The client library is loaded by the first Redis destination, not by every server start.
      c = Promise.all([redisOptions(this.egress, key), import("ioredis")]).then(([options, { Redis }]) => {
        const client = new Redis({
          ...options,
          maxRetriesPerRequest: 1,
          connectTimeout: 5000,
          enableOfflineQueue: true,
        });
        client.on("error", () => {});
        return client;
      });
      c.catch(() => this.clients.delete(key));
      this.clients.set(key, c);
    }
    return c;
  }

  open(target: string): DestinationTarget {
    const stream = new URL(target).searchParams.get("stream") as string;
    return {
      deliver: async (message) => {
        const fields: string[] = ["data", message.body.toString("utf8")];
        for (const [k, v] of Object.entries(message.attributes)) fields.push(k, v);
        await (await this.client(target)).call("XADD", stream, "*", ...fields);
      },
    };
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    for (const c of clients) await c.then((client) => client.disconnect()).catch(() => {});
  }
}
