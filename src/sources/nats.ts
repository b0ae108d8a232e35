/**
 * NATS JetStream as a stream source (like Lambda's Kinesis source): a durable
 * pull consumer `lambent-<UUID>` on the stream named in `Topics`
 * (`STREAM` or `STREAM:subject.filter`), explicit acks, one batch in flight.
 * The consumer's ack floor is the checkpoint: on every (re)connect the
 * consumer is recreated from the ack floor, so records handed out but not
 * finished are redelivered at once instead of after the ack wait.
 */
import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";
import { redact } from "../control/broker-uri.js";
import { natsOptions } from "../control/egress.js";
import {
  type ConnectorOptions,
  lostSignal,
  type SourceRecord,
  type StreamConnector,
  traceHeaderOf,
} from "./connector.js";
import { kinesisRecord } from "./kinesis-record.js";
import { batchRange, recordsPayload } from "./stream-consumer.js";

interface NatsRecord extends SourceRecord {
  msg: JsMsg;
}

/** The stream and optional subject filter a NATS topic names. */
export function natsTopic(topic: string): { stream: string; filter?: string } {
  const i = topic.indexOf(":");
  return i < 0 ? { stream: topic } : { stream: topic.slice(0, i), filter: topic.slice(i + 1) };
}

export async function openNats(opts: ConnectorOptions): Promise<StreamConnector> {
  const m = opts.mapping;
  const { stream, filter } = natsTopic(m.settings.topics?.[0] as string);
  const durable = `lambent-${m.uuid}`;
  const sourceArn = redact(m.eventSource);
  const { lost, fail } = lostSignal();
  // The address the egress policy checked (see natsOptions).
  const nc = await connect({ ...(await natsOptions(opts.egress, m.eventSource)), timeout: 5000 });
  void nc.closed().then((err) => fail(err instanceof Error ? err : new Error("the NATS connection closed")));
  let consumer: Awaited<ReturnType<ReturnType<typeof jetstream>["consumers"]["get"]>>;
  try {
    const jsm = await jetstreamManager(nc);
    const base: Partial<ConsumerConfig> = {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(10 * 60_000),
      ...(filter ? { filter_subject: filter } : {}),
    };
    let existing: Awaited<ReturnType<typeof jsm.consumers.info>> | null = null;
    try {
      existing = await jsm.consumers.info(stream, durable);
    } catch {
      existing = null;
    }
    let config: Partial<ConsumerConfig>;
    if (existing) {
      const floor = existing.ack_floor.stream_seq;
      config =
        floor > 0
          ? { ...base, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: floor + 1 }
          : {
              ...base,
              deliver_policy: existing.config.deliver_policy,
              ...(existing.config.opt_start_seq ? { opt_start_seq: existing.config.opt_start_seq } : {}),
              ...(existing.config.opt_start_time ? { opt_start_time: existing.config.opt_start_time } : {}),
            };
      await jsm.consumers.delete(stream, durable);
    } else if (m.settings.startingPosition === "LATEST") {
      const info = await jsm.streams.info(stream);
      config = {
        ...base,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: info.state.last_seq + 1,
      };
    } else if (m.settings.startingPosition === "AT_TIMESTAMP") {
      config = {
        ...base,
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: new Date((m.settings.startingPositionTimestamp ?? 0) * 1000).toISOString(),
      };
    } else {
      config = { ...base, deliver_policy: DeliverPolicy.All };
    }
    await jsm.consumers.add(stream, config);
    consumer = await jetstream(nc).consumers.get(stream, durable);
  } catch (err) {
    await nc.close().catch(() => {});
    throw err;
  }

  const toRecord = (msg: JsMsg): NatsRecord => {
    const headers: Record<string, string[]> = {};
    if (msg.headers) for (const [k, v] of msg.headers) headers[k] = v;
    const record = kinesisRecord({
      sequenceNumber: String(msg.seq),
      partitionKey: msg.subject,
      data: Buffer.from(msg.data),
      arrivalMs: Math.floor(Number(msg.info.timestampNanos) / 1e6),
      eventSourceArn: sourceArn,
      region: m.region,
      ...(opts.invokeIdentityArn !== undefined ? { invokeIdentityArn: opts.invokeIdentityArn } : {}),
      lambent: { source: "nats", stream, subject: msg.subject, sequence: msg.seq, headers },
    });
    const traceHeader = traceHeaderOf(headers);
    return { ...record, msg, ...(traceHeader !== undefined ? { traceHeader } : {}) };
  };

  return {
    lost,
    async fetch(max, waitMs) {
      const first = await consumer.next({ expires: Math.max(1000, Math.round(waitMs)) });
      if (!first) return [];
      const out = [toRecord(first)];
      if (max > 1) {
        // Take what is already there at once: fetch only as many as are pending, so it returns without waiting.
        const info = await consumer.info(false);
        const n = Math.min(max - 1, info.num_pending);
        if (n > 0) {
          const iter = await consumer.fetch({ max_messages: n, expires: 1000 });
          for await (const msg of iter) out.push(toRecord(msg));
        }
      }
      return out;
    },
    async commit(records) {
      for (const r of records) await (r as NatsRecord).msg.ackAck();
    },
    payload: recordsPayload,
    batchInfo(records) {
      return {
        NatsBatchInfo: {
          stream,
          ...(filter ? { subjectFilter: filter } : {}),
          ...batchRange(records, sourceArn),
        },
      };
    },
    async lag() {
      try {
        const info = await consumer.info(false);
        return info.num_pending + info.num_ack_pending;
      } catch {
        return null;
      }
    },
    async close() {
      await nc.close().catch(() => {});
    },
  };
}
