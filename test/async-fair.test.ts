/**
 * Fairness between functions (real server): one function's async backlog, queued behind slow
 * handlers, does not hold back another function's event — it starts while the backlog still waits.
 */
import { InvokeCommand } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deployProbe, queueDrained } from "./helpers/async-fns.js";
import { Collector } from "./helpers/collector.js";
import { startServer, type TestServer } from "./helpers/server.js";

let server: TestServer;
let sink: Collector;

beforeAll(async () => {
  sink = await Collector.start();
  server = await startServer();
});

afterAll(async () => {
  await server?.stop();
  await sink?.close();
});

describe("async fairness between functions", () => {
  it("runs B's one event before A's backlog of 200 has drained", async () => {
    // A reports its start, then waits for the gate: its first events hold every async slot.
    await deployProbe(server.lambda, "backlogged", {
      REPORT_URL: `${sink.url}/a`,
      GATE_URL: `${sink.url}/gate`,
    });
    await deployProbe(server.lambda, "other", { REPORT_URL: `${sink.url}/b` });
    const send = (fn: string, n: number) =>
      server.lambda.send(
        new InvokeCommand({
          FunctionName: fn,
          InvocationType: "Event",
          Payload: Buffer.from(JSON.stringify({ n })),
        }),
      );
    for (let i = 0; i < 200; i += 20)
      await Promise.all(Array.from({ length: 20 }, (_, j) => send("backlogged", i + j)));
    await sink.onPath("/gate");
    expect((await send("other", 0)).StatusCode).toBe(202);
    sink.openGate();
    await sink.onPath("/b");
    // Order, not time: A's events that started before B's are those running or claimed ahead when
    // B's arrived and the first claim's share, not the 200 of its backlog.
    const order = sink.received.filter((r) => r.path === "/a" || r.path === "/b").map((r) => r.path);
    expect(order.indexOf("/b")).toBeLessThan(100);
    const a = await queueDrained(server.url, "backlogged", { listed: true });
    expect(a?.succeeded).toBe(200);
    expect(sink.received.filter((r) => r.path === "/a")).toHaveLength(200);
  }, 120_000);
});
