/**
 * A Redis destination (a Lambent extension): `redis://host:6379?stream=key`
 * appends an entry (XADD) with field `data` = the message (JSON) and one field
 * per attribute. One connection per server.
 */
import { Redis } from "ioredis";
import { connectionKey, parseBrokerUri } from "../../control/broker-uri.js";
import type { DestinationAdapter, DestinationTarget } from "./target.js";

export class RedisDestinations implements DestinationAdapter {
  readonly kind = "redis";
  private readonly clients = new Map<string, Redis>();

  accepts(target: string): boolean {
    return parseBrokerUri(target)?.kind === "redis";
  }

  private client(target: string): Redis {
    const key = connectionKey(target);
    let c = this.clients.get(key);
    if (!c) {
      c = new Redis(key, { maxRetriesPerRequest: 1, connectTimeout: 5000, enableOfflineQueue: true });
      c.on("error", () => {});
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
        await this.client(target).call("XADD", stream, "*", ...fields);
      },
    };
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    for (const c of clients) c.disconnect();
  }
}
