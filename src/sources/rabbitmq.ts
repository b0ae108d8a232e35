/**
 * RabbitMQ as a queue source (like Lambda's Amazon MQ for RabbitMQ): a
 * consumer on the queue named in `Queues`, prefetch-bounded, manual acks.
 * The event is Lambda's `aws:rmq` shape.
 */
import { createHash } from "node:crypto";
import amqp, { type Channel, type ChannelModel, type ConsumeMessage } from "amqplib";
import { amqpVhost, redact } from "../control/broker-uri.js";
import { pinBrokerUri } from "../control/egress.js";
import { parsedData } from "../control/event-filter.js";
import {
  type ConnectorOptions,
  lostSignal,
  type QueueConnector,
  type QueueMessage,
  traceHeaderOf,
} from "./connector.js";

interface RmqMessage extends QueueMessage {
  raw: ConsumeMessage;
}

export async function openRabbitMq(opts: ConnectorOptions): Promise<QueueConnector> {
  const m = opts.mapping;
  const queue = m.settings.queues?.[0] as string;
  const vhost = amqpVhost(new URL(m.eventSource));
  const key = `${queue}::${vhost}`;
  const sourceArn = redact(m.eventSource);
  const { lost, fail } = lostSignal();
  let conn: ChannelModel | undefined;
  let ch: Channel | undefined;
  try {
    // Dial the address the egress policy checked; the name stays the TLS server name.
    const { url, tlsName } = await pinBrokerUri(opts.egress, m.eventSource);
    conn = await amqp.connect(url.toString(), { timeout: 5000, ...(tlsName ? { servername: tlsName } : {}) });
    conn.on("error", (err: Error) => fail(err));
    conn.on("close", () => fail(new Error("the RabbitMQ connection closed")));
    ch = await conn.createChannel();
    ch.on("error", (err: Error) => fail(err));
    ch.on("close", () => fail(new Error("the RabbitMQ channel closed")));
    await ch.checkQueue(queue);
    await ch.prefetch(Math.min(opts.prefetch, 65535));
  } catch (err) {
    await conn?.close().catch(() => {});
    throw err;
  }
  const channel = ch;
  const connection = conn;
  let closed = false;

  const toMessage = (raw: ConsumeMessage): RmqMessage => {
    const p = raw.properties;
    const basicProperties = {
      contentType: p.contentType ?? null,
      contentEncoding: p.contentEncoding ?? null,
      headers: p.headers ?? {},
      deliveryMode: p.deliveryMode ?? null,
      priority: p.priority ?? null,
      correlationId: p.correlationId ?? null,
      replyTo: p.replyTo ?? null,
      expiration: p.expiration ?? null,
      messageId: p.messageId ?? null,
      timestamp: p.timestamp ?? null,
      type: p.type ?? null,
      userId: p.userId ?? null,
      appId: p.appId ?? null,
      clusterId: p.clusterId ?? null,
      bodySize: raw.content.length,
    };
    const event = {
      basicProperties,
      redelivered: raw.fields.redelivered,
      data: raw.content.toString("base64"),
    };
    const data = parsedData(raw.content);
    const id =
      typeof p.messageId === "string" && p.messageId
        ? p.messageId
        : createHash("sha256")
            .update(raw.content)
            .update(JSON.stringify(p.headers ?? {}))
            .digest("hex");
    const now = Date.now();
    const traceHeader = traceHeaderOf(p.headers);
    return {
      ...(traceHeader !== undefined ? { traceHeader } : {}),
      id,
      key: id,
      arrivalMs: typeof p.timestamp === "number" ? p.timestamp * 1000 : now,
      receivedAt: now,
      event,
      filterView: { ...event, data },
      raw,
    };
  };

  const settle = (fn: () => void) => {
    if (closed) return;
    try {
      fn();
    } catch {
      // The channel is gone: unacknowledged messages go back to the queue by themselves.
    }
  };

  return {
    lost,
    async consume(onMessage) {
      await channel.consume(
        queue,
        (raw) => {
          if (raw === null) {
            fail(new Error(`the broker cancelled the consumer of queue ${queue}`));
            return;
          }
          onMessage(toMessage(raw));
        },
        { noAck: false },
      );
    },
    ack(messages) {
      for (const msg of messages) settle(() => channel.ack((msg as RmqMessage).raw));
    },
    requeue(messages) {
      for (const msg of messages) settle(() => channel.nack((msg as RmqMessage).raw, false, true));
    },
    payload(messages) {
      return Buffer.from(
        JSON.stringify({
          eventSource: "aws:rmq",
          eventSourceArn: sourceArn,
          rmqMessagesByQueue: { [key]: messages.map((msg) => msg.event) },
        }),
      );
    },
    async lag() {
      if (closed) return null;
      try {
        const q = await channel.checkQueue(queue);
        return q.messageCount;
      } catch {
        return null;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await channel.close().catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}
