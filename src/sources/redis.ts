/**
 * Redis Streams as a stream source (like Lambda's Kinesis source): a consumer
 * group `lambent-<UUID>` on the stream named in `Topics`, one consumer, entries
 * acknowledged (XACK) only once their batch is done. After a reconnect the
 * consumer first re-reads its own pending entries, so nothing handed out and
 * not finished is lost.
 */
import { Redis } from "ioredis";
import { redact } from "../control/broker-uri.js";
import { redisOptions } from "../control/egress.js";
import {
  type ConnectorOptions,
  lostSignal,
  type SourceRecord,
  type StreamConnector,
  traceHeaderOf,
} from "./connector.js";
import { kinesisRecord } from "./kinesis-record.js";
import { batchRange, recordsPayload } from "./stream-consumer.js";

const CONSUMER = "lambent";

/** Kept by the poller across reconnects. */
export interface RedisPollerState {
  /** The group existed once: if it is gone (the broker lost its data) recreate it from the start. */
  groupSeen?: boolean;
}

type Entry = [string, string[] | null];

export async function openRedis(opts: ConnectorOptions, state: RedisPollerState): Promise<StreamConnector> {
  const m = opts.mapping;
  const key = m.settings.topics?.[0] as string;
  const group = `lambent-${m.uuid}`;
  const sourceArn = redact(m.eventSource);
  const { lost, fail } = lostSignal();
  // The checked address, never the URI itself (see redisOptions).
  const client = new Redis({
    ...(await redisOptions(opts.egress, m.eventSource)),
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 5000,
  });
  client.on("error", () => {});
  client.on("close", () => fail(new Error("the Redis connection closed")));
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw err;
  }

  const startId = (): string => {
    if (state.groupSeen) return "0";
    switch (m.settings.startingPosition) {
      case "LATEST":
        return "$";
      case "AT_TIMESTAMP": {
        const ms = Math.floor((m.settings.startingPositionTimestamp ?? 0) * 1000);
        return ms > 0 ? `${ms - 1}-18446744073709551615` : "0";
      }
      default:
        return "0";
    }
  };
  const ensureGroup = async () => {
    try {
      await client.call("XGROUP", "CREATE", key, group, startId(), "MKSTREAM");
    } catch (err) {
      if (!String((err as Error).message).startsWith("BUSYGROUP")) throw err;
    }
    state.groupSeen = true;
  };
  try {
    await ensureGroup();
  } catch (err) {
    client.disconnect();
    throw err;
  }

  let pending = true;
  let cursor = "0";

  const toRecord = (id: string, flat: string[]): SourceRecord => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
    const traceHeader = traceHeaderOf(fields);
    const record = kinesisRecord({
      sequenceNumber: id,
      // A `partitionKey` field names it; else the stream's key (one shard per stream).
      partitionKey: fields.partitionKey ?? key,
      data: Buffer.from(fields.data ?? JSON.stringify(fields), "utf8"),
      arrivalMs: Number(id.split("-")[0]),
      eventSourceArn: sourceArn,
      region: m.region,
      ...(opts.invokeIdentityArn !== undefined ? { invokeIdentityArn: opts.invokeIdentityArn } : {}),
      lambent: { source: "redis", stream: key, id, fields },
    });
    return traceHeader !== undefined ? { ...record, traceHeader } : record;
  };

  const read = async (id: string, max: number, blockMs?: number): Promise<Entry[]> => {
    const args: (string | number)[] = ["GROUP", group, CONSUMER, "COUNT", max];
    if (blockMs !== undefined) args.push("BLOCK", Math.max(1, Math.round(blockMs)));
    args.push("STREAMS", key, id);
    let res: unknown;
    try {
      res = await client.call("XREADGROUP", ...args);
    } catch (err) {
      if (String((err as Error).message).startsWith("NOGROUP")) {
        // The broker lost the stream or the group (a restart without persistence): start again.
        await ensureGroup();
        pending = true;
        cursor = "0";
        return [];
      }
      throw err;
    }
    if (!Array.isArray(res) || res.length === 0) return [];
    // One stream: some client versions answer [key, entries], others [[key, entries]].
    const entries = typeof res[0] === "string" ? res[1] : (res[0] as [string, Entry[]] | undefined)?.[1];
    return Array.isArray(entries) ? (entries as Entry[]) : [];
  };

  return {
    lost,
    async fetch(max, waitMs) {
      if (pending) {
        const entries = await read(cursor, max);
        if (entries.length > 0) {
          cursor = (entries[entries.length - 1] as Entry)[0];
          const gone = entries.filter(([, f]) => f === null).map(([id]) => id);
          if (gone.length > 0) await client.call("XACK", key, group, ...gone);
          return entries.filter(([, f]) => f !== null).map(([id, f]) => toRecord(id, f as string[]));
        }
        pending = false;
      }
      const entries = await read(">", max, waitMs);
      return entries.filter(([, f]) => f !== null).map(([id, f]) => toRecord(id, f as string[]));
    },
    async commit(records) {
      if (records.length === 0) return;
      await client.call("XACK", key, group, ...records.map((r) => r.id));
    },
    payload: recordsPayload,
    batchInfo(records) {
      return { RedisBatchInfo: { stream: key, ...batchRange(records, sourceArn) } };
    },
    async lag() {
      try {
        const groups = (await client.call("XINFO", "GROUPS", key)) as unknown[][];
        for (const g of groups) {
          const info: Record<string, unknown> = {};
          for (let i = 0; i + 1 < g.length; i += 2) info[String(g[i])] = g[i + 1];
          if (info.name === group) {
            const lagValue = typeof info.lag === "number" ? info.lag : 0;
            return lagValue + Number(info.pending ?? 0);
          }
        }
        return null;
      } catch {
        return null;
      }
    },
    async close() {
      client.disconnect();
    },
  };
}
