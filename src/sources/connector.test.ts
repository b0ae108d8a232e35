/** The trace header a broker record carries, wherever the broker keeps it. */
import { describe, expect, it } from "vitest";
import { traceHeaderOf } from "./connector.js";

describe("traceHeaderOf", () => {
  const trace = "Root=1-00000000-000000000000000000000000;Lineage=0a1b2c3d:4";

  it("finds X-Amzn-Trace-Id in any case: a RabbitMQ header, a Redis field, a NATS header list", () => {
    expect(traceHeaderOf({ "X-Amzn-Trace-Id": trace })).toBe(trace);
    expect(traceHeaderOf({ data: "{}", "x-amzn-trace-id": trace })).toBe(trace);
    expect(traceHeaderOf({ "X-AMZN-TRACE-ID": [trace, "second"] })).toBe(trace);
    // amqplib hands byte-array header values over as Buffers.
    expect(traceHeaderOf({ "X-Amzn-Trace-Id": Buffer.from(trace) })).toBe(trace);
  });

  it("is undefined when the record has none, or a value of another type", () => {
    expect(traceHeaderOf(undefined)).toBeUndefined();
    expect(traceHeaderOf({})).toBeUndefined();
    expect(traceHeaderOf({ "X-Amzn-Trace-Id": 42 })).toBeUndefined();
  });
});
