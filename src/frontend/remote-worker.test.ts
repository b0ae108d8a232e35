/**
 * What a frontend concludes when a worker fails under an invoke: `sent` is
 * false only when the event provably never reached the worker (then it may
 * be placed again); a worker that took the request and died says it may
 * have run. Real HTTP/2 servers on loopback stand in for the worker.
 */
import http2 from "node:http2";
import { type AddressInfo, createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Assignment } from "../protocol/assignment.js";
import { RemoteWorker, WorkerUnreachable } from "./remote-worker.js";

const SECRET = "0123456789abcdef0123456789abcdef";
const assignment = {
  name: "f",
  version: "$LATEST",
  revisionId: "r1",
  config: { Timeout: 3 },
} as unknown as Assignment;
const input = {
  requestId: "00000000-0000-4000-8000-000000000000",
  payload: Buffer.from("{}"),
  invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:f",
  traceId: "Root=1-00000000-000000000000000000000000",
  wantTail: false,
};

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanup.splice(0)) c();
});

async function h2Server(onStream: (s: http2.ServerHttp2Stream) => void): Promise<string> {
  const server = http2.createServer();
  server.on("stream", (s) => {
    s.on("error", () => {});
    onStream(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanup.push(() => server.close());
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function failure(address: string): Promise<WorkerUnreachable> {
  const w = new RemoteWorker(address, SECRET, 10_000);
  cleanup.push(() => w.close());
  const err = await w.invoke(assignment, input).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkerUnreachable);
  return err as WorkerUnreachable;
}

describe("RemoteWorker: a worker failing under an invoke", () => {
  it("never sent: nothing listens at the address", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((r) => probe.close(() => r()));
    expect((await failure(`127.0.0.1:${port}`)).sent).toBe(false);
  });

  it("never sent: the worker refused the stream (REFUSED_STREAM)", async () => {
    const address = await h2Server((s) => s.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    expect((await failure(address)).sent).toBe(false);
  });

  it("may have run: the worker took the request and its connection died (kill -9)", async () => {
    const address = await h2Server((s) => {
      s.resume();
      s.on("end", () => s.session?.destroy());
    });
    expect((await failure(address)).sent).toBe(true);
  });

  it("may have run: the worker reset the stream after reading it", async () => {
    const address = await h2Server((s) => {
      s.resume();
      s.on("end", () => s.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    });
    expect((await failure(address)).sent).toBe(true);
  });
});
