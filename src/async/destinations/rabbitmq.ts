/**
 * A RabbitMQ destination (a Lambent extension): `amqp://user:pass@host/vhost?queue=name`
 * publishes to the queue through the default exchange; `?exchange=ex&routingKey=key`
 * publishes to an exchange. Persistent messages, publisher confirms; the
 * attributes travel as message headers. One connection per broker.
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { connectionKey, parseBrokerUri } from "../../control/broker-uri.js";
import { type EgressPolicy, pinBrokerUri } from "../../control/egress.js";
import type { DestinationAdapter, DestinationTarget } from "./target.js";

interface Link {
  conn: ChannelModel;
  ch: ConfirmChannel;
}

export class RabbitMqDestinations implements DestinationAdapter {
  readonly kind = "rabbitmq";
  private readonly links = new Map<string, Promise<Link>>();

  constructor(private readonly egress: EgressPolicy) {}

  accepts(target: string): boolean {
    return parseBrokerUri(target)?.kind === "rabbitmq";
  }

  private link(target: string): Promise<Link> {
    const key = connectionKey(target);
    let link = this.links.get(key);
    if (!link) {
      link = (async () => {
        // Dial the address the egress policy checked; the name stays the TLS server name.
        const { url, tlsName } = await pinBrokerUri(this.egress, key);
        // The client library is loaded by the first RabbitMQ destination, not by every server start.
        const { default: amqp } = await import("amqplib");
        const conn = await amqp.connect(url.toString(), {
          timeout: 5000,
          ...(tlsName ? { servername: tlsName } : {}),
        });
        const drop = () => {
          if (this.links.get(key) === link) this.links.delete(key);
        };
        conn.on("error", drop);
        conn.on("close", drop);
        const ch = await conn.createConfirmChannel();
        ch.on("error", drop);
        ch.on("close", drop);
        return { conn, ch };
      })();
      link.catch(() => this.links.delete(key));
      this.links.set(key, link);
    }
    return link;
  }

  open(target: string): DestinationTarget {
    const q = new URL(target).searchParams;
    const queue = q.get("queue");
    const exchange = queue ? "" : (q.get("exchange") ?? "");
    const routingKey = queue ?? q.get("routingKey") ?? "";
    return {
      deliver: async (message) => {
        const { ch } = await this.link(target);
        await new Promise<void>((resolve, reject) => {
          ch.publish(
            exchange,
            routingKey,
            message.body,
            { contentType: "application/json", persistent: true, headers: message.attributes },
            (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
          );
        });
      },
    };
  }

  async close(): Promise<void> {
    const links = [...this.links.values()];
    this.links.clear();
    for (const l of links) await l.then((x) => x.conn.close()).catch(() => {});
  }
}
