/**
 * A NATS destination (a Lambent extension): `nats://host:4222?subject=a.b`.
 * Published through JetStream (acknowledged) when a stream captures the
 * subject, else as a plain NATS message (flushed). Attributes travel as
 * headers. One connection per server.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { connectionKey, parseBrokerUri } from "../../control/broker-uri.js";
import { type EgressPolicy, natsOptions } from "../../control/egress.js";
import type { DestinationAdapter, DestinationTarget } from "./target.js";

export class NatsDestinations implements DestinationAdapter {
  readonly kind = "nats";
  private readonly conns = new Map<string, Promise<NatsConnection>>();

  constructor(private readonly egress: EgressPolicy) {}

  accepts(target: string): boolean {
    return parseBrokerUri(target)?.kind === "nats";
  }

  private conn(target: string): Promise<NatsConnection> {
    const key = connectionKey(target);
    let c = this.conns.get(key);
    if (!c) {
      // The client library is loaded by the first NATS destination, not by every server start.
      c = Promise.all([natsOptions(this.egress, target), import("@nats-io/transport-node")]).then(
        ([options, { connect }]) => connect({ ...options, timeout: 5000 }),
      );
      const mine = c;
      void c.then(
        (nc) => nc.closed().then(() => this.conns.get(key) === mine && this.conns.delete(key)),
        () => this.conns.delete(key),
      );
      this.conns.set(key, c);
    }
    return c;
  }

  open(target: string): DestinationTarget {
    const subject = new URL(target).searchParams.get("subject") as string;
    return {
      deliver: async (message) => {
        const nc = await this.conn(target);
        const [{ headers }, { jetstream }] = await Promise.all([
          import("@nats-io/transport-node"),
          import("@nats-io/jetstream"),
        ]);
        const h = headers();
        for (const [k, v] of Object.entries(message.attributes)) h.set(k, v);
        try {
          await jetstream(nc).publish(subject, message.body, { headers: h });
        } catch (err) {
          // No stream captures the subject: a plain publish.
          if (!/no responders|503/i.test(String((err as Error).message))) throw err;
          nc.publish(subject, message.body, { headers: h });
          await nc.flush();
        }
      },
    };
  }

  async close(): Promise<void> {
    const conns = [...this.conns.values()];
    this.conns.clear();
    for (const c of conns) await c.then((nc) => nc.close()).catch(() => {});
  }
}
