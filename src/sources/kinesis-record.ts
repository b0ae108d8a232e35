/**
 * Stream records in Lambda's Kinesis event shape, so Kinesis consumers (Powertools'
 * `BatchProcessor` with `EventType.KinesisDataStreams`, anything reading `record.kinesis.data`) work
 * unchanged on NATS JetStream and Redis Streams. What only the broker knows travels in `lambent`.
 */
import { parsedData } from "../control/event-filter.js";
import { epochSeconds, type SourceRecord } from "./connector.js";

/** The one shard a Lambent stream has (Kinesis event IDs are `shardId-…:sequenceNumber`). */
export const SHARD_ID = "shardId-000000000000";

export interface KinesisShapeInput {
  /** The broker's sequence id of the record: `kinesis.sequenceNumber` and `batchItemFailures[].itemIdentifier`. */
  sequenceNumber: string;
  partitionKey: string;
  data: Buffer;
  /** When the broker stored it (epoch ms). */
  arrivalMs: number;
  eventSourceArn: string;
  region: string;
  /** The function's execution role, when known. */
  invokeIdentityArn?: string;
  /** The broker's own details (`lambent` in the event; filter patterns see them at the top level too). */
  lambent: Record<string, unknown> & { source: string };
}

export function kinesisRecord(r: KinesisShapeInput): SourceRecord {
  const kinesis = {
    kinesisSchemaVersion: "1.0",
    partitionKey: r.partitionKey,
    sequenceNumber: r.sequenceNumber,
    data: r.data.toString("base64"),
    approximateArrivalTimestamp: epochSeconds(r.arrivalMs),
  };
  const { source: _source, ...details } = r.lambent;
  return {
    id: r.sequenceNumber,
    arrivalMs: r.arrivalMs,
    event: {
      kinesis,
      eventSource: "aws:kinesis",
      eventVersion: "1.0",
      eventID: `${SHARD_ID}:${r.sequenceNumber}`,
      eventName: "aws:kinesis:record",
      ...(r.invokeIdentityArn !== undefined ? { invokeIdentityArn: r.invokeIdentityArn } : {}),
      awsRegion: r.region,
      eventSourceARN: r.eventSourceArn,
      lambent: r.lambent,
    },
    // Kinesis filters see the record's fields with `data` parsed; the broker's fields are there too.
    filterView: { ...details, ...kinesis, data: parsedData(r.data) },
  };
}
