/** Event source mappings on RabbitMQ and NATS JetStream, against the machine's brokers. */
import { randomBytes } from "node:crypto";
import { CreateEventSourceMappingCommand, GetEventSourceMappingCommand } from "@aws-sdk/client-lambda";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import amqp, { type Channel, type ChannelModel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Collector } from "./helpers/collector.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { batchesOf, type Doc, deployBatchFunction, numbersSeen } from "./helpers/sources.js";

const AMQP = "amqp://guest:guest@127.0.0.1:5672";
let server: TestServer;
let collector: Collector;
let conn: ChannelModel;
let ch: Channel;
let nc: NatsConnection;
const run = randomBytes(4).toString("hex");

function received(fn: string) {
  return collector.received.filter((r) => r.path === `/${fn}/batch`).map((r) => ({ ...r, path: "/batch" }));
}

beforeAll(async () => {
  server = await startServer();
  collector = await Collector.start();
  conn = await amqp.connect(AMQP);
  ch = await conn.createChannel();
  nc = await connect({ servers: "127.0.0.1:4222" });
});

afterAll(async () => {
  await server?.stop();
  await collector?.close();
  await conn?.close();
  await nc?.close();
});

describe("RabbitMQ event source", () => {
  it("processes every message once in aws:rmq batches and never returns the credentials", async () => {
    const fn = `rmq-${run}-1`;
    const queue = `lambent-test-${run}-1`;
    await ch.assertQueue(queue, { autoDelete: true });
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
    for (let i = 1; i <= 30; i++)
      ch.sendToQueue(queue, Buffer.from(JSON.stringify({ n: i })), { messageId: `m${i}` });
    const out = await server.lambda.send(
      new CreateEventSourceMappingCommand({
        FunctionName: fn,
        EventSourceArn: AMQP,
        Queues: [queue],
        BatchSize: 4,
        ScalingConfig: { MaximumConcurrency: 3 },
      }),
    );
    expect(out.EventSourceArn).toBe("amqp://guest:****@127.0.0.1:5672");
    await collector.waitUntil(() => numbersSeen(received(fn)).length >= 30);
    expect([...numbersSeen(received(fn))].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    expect(Math.max(...batchesOf(received(fn)).map((b) => b.records.length))).toBeLessThanOrEqual(4);
    const got = await server.lambda.send(new GetEventSourceMappingCommand({ UUID: out.UUID }));
    expect(JSON.stringify(got)).not.toContain("guest:guest");
  });

  it("a poison message goes to a RabbitMQ on-failure queue after MaximumRetryAttempts", async () => {
    const fn = `rmq-${run}-2`;
    const queue = `lambent-test-${run}-2`;
    const dlq = `${queue}-failed`;
    await ch.assertQueue(queue, { autoDelete: true });
    await ch.assertQueue(dlq, { autoDelete: false });
    await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
    ch.sendToQueue(queue, Buffer.from(JSON.stringify({ n: 1, poison: true })), { messageId: "p1" });
    await server.lambda.send(
      new CreateEventSourceMappingCommand({
        FunctionName: fn,
        EventSourceArn: AMQP,
        Queues: [queue],
        BatchSize: 1,
        MaximumRetryAttempts: 2,
        DestinationConfig: { OnFailure: { Destination: `${AMQP}?queue=${dlq}` } },
      }),
    );
    const body = await new Promise<Doc>((resolve) => {
      void ch.consume(dlq, (msg) => {
        if (msg) {
          ch.ack(msg);
          resolve(JSON.parse(msg.content.toString()));
        }
      });
    });
    await ch.deleteQueue(dlq);
    expect(body.requestContext.condition).toBe("RetriesExhausted");
    expect(body.requestContext.approximateInvokeCount).toBe(3);
    expect(body.requestPayload.eventSource).toBe("aws:rmq");
    expect(body.requestPayload.rmqMessagesByQueue[`${queue}::/`][0].basicProperties.messageId).toBe("p1");
    expect(batchesOf(received(fn))).toHaveLength(3);
  });
});

describe("NATS JetStream event source", () => {
  it("delivers a stream's records once and in order; a poison record is bisected out to the on-failure destination", async () => {
    const fn = `nats-${run}-1`;
    const stream = `LAMBENT_${run}`;
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`t.${run}.>`] });
    try {
      await deployBatchFunction(server.lambda, fn, `${collector.url}/${fn}`);
      const js = jsm.jetstream();
      for (let i = 1; i <= 20; i++) {
        await js.publish(`t.${run}.a`, JSON.stringify(i === 13 ? { n: i, poison: true } : { n: i }));
      }
      await server.lambda.send(
        new CreateEventSourceMappingCommand({
          FunctionName: fn,
          EventSourceArn: "nats://127.0.0.1:4222",
          Topics: [stream],
          StartingPosition: "TRIM_HORIZON",
          BatchSize: 8,
          BisectBatchOnFunctionError: true,
          MaximumRetryAttempts: 0,
          DestinationConfig: { OnFailure: { Destination: `${collector.url}/${fn}/failure` } },
        }),
      );
      const [failure] = await collector.onPath(`/${fn}/failure`);
      expect((failure?.body as Doc | undefined)?.NatsBatchInfo).toMatchObject({
        stream,
        startSequenceNumber: "13",
        endSequenceNumber: "13",
        batchSize: 1,
      });
      const ok = () =>
        batchesOf(received(fn))
          .filter((b) => !b.records.some((r) => r.data.poison))
          .flatMap((b) => b.records.map((r) => r.data.n));
      await collector.waitUntil(() => ok().length >= 19);
      expect(ok()).toEqual(Array.from({ length: 20 }, (_, i) => i + 1).filter((n) => n !== 13));
    } finally {
      await jsm.streams.delete(stream);
    }
  });
});
