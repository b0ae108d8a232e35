/**
 * A cluster of two frontends and two workers (separate processes, one real
 * PostgreSQL): concurrency limits hold for the cluster as a whole, the warm
 * view comes from the workers, responses stream from a remote worker, and a
 * worker that stops answering ends the invoke with ServiceException.
 *
 * "At most k ran at once" is a fact the test controls: every admitted invoke
 * waits at a gate (a loopback server) until the test opens it, so the number
 * waiting there is the number running.
 */
import {
  InvokeWithResponseStreamCommand,
  type LambdaClient,
  PutFunctionConcurrencyCommand,
  TooManyRequestsException,
} from "@aws-sdk/client-lambda";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAsync } from "./helpers/child-server.js";
import { type ClusterNode, deployFunction, startCluster, type TestCluster } from "./helpers/cluster.js";
import { type Gate, startGate } from "./helpers/gate.js";
import { invoke } from "./helpers/invoke.js";
import { lambdaClient } from "./helpers/server.js";
import { drainAfterFirst, drainStream } from "./helpers/stream.js";
import { zipEntries } from "./helpers/zip.js";

/** Waits at the gate when the event names one; answers with its code directory (which worker ran it). */
const HANDLER = `
const http = require("node:http");
let counter = 0;
exports.handler = async (event) => {
  counter++;
  if (event.gate) await new Promise((resolve, reject) => http.get(event.gate, (res) => { res.resume(); res.on("end", resolve); }).on("error", reject));
  if (event.sleep) await new Promise((r) => setTimeout(r, event.sleep));
  return { dir: __dirname, counter, tag: event.tag ?? null };
};
`;

/** Streams "first;", waits at the gate, then fails or ends with its name. */
const STREAMING = `
const http = require("node:http");
exports.handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType("text/plain");
  responseStream.write("first;");
  if (event.gate) await new Promise((resolve, reject) => http.get(event.gate, (res) => { res.resume(); res.on("end", resolve); }).on("error", reject));
  if (event.mode === "fail") throw new TypeError("broke part-way");
  responseStream.write("second;" + context.functionName);
  responseStream.end();
});
`;

/** The account's concurrency; reservations below leave `UNRESERVED` for every other function. */
const ACCOUNT = 20;
const RESERVED = 3;
const HOG = 14;
const UNRESERVED = ACCOUNT - RESERVED - HOG;

let cluster: TestCluster;
let gate: Gate;
let a: LambdaClient;
let b: LambdaClient;
let fa: ClusterNode;
let fb: ClusterNode;
let zip: Buffer;

async function leases(pool: string): Promise<Array<{ holder: string; slots: number }>> {
  const c = new pg.Client({ connectionString: cluster.db.url });
  await c.connect();
  try {
    const r = await c.query<{ holder: string; slots: number }>(
      "select holder, slots from concurrency_leases where pool = $1 and lease_until >= now()",
      [pool],
    );
    return r.rows;
  } finally {
    await c.end();
  }
}

/** Resolves once no frontend holds a slot of `pool` (shares return within a renewal period). */
async function drained(pool: string): Promise<void> {
  for (;;) {
    const held = await leases(pool);
    if (held.reduce((n, l) => n + l.slots, 0) === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Fire `n` gated invokes, alternating between the frontends; resolve once `admitted` wait at the gate
 * and every other one was refused. Returns the refusals; the admitted ones settle after `gate.open()`.
 */
async function burst(name: string, n: number, admitted: number, via: LambdaClient[] = [a, b]) {
  const refused: unknown[] = [];
  let allRefused!: () => void;
  const done = new Promise<void>((r) => {
    allRefused = r;
  });
  const calls = Array.from({ length: n }, (_, i) =>
    invoke(via[i % via.length] as LambdaClient, name, { gate: gate.url, tag: i }).catch((err: unknown) => {
      refused.push(err);
      if (refused.length === n - admitted) allRefused();
      return err;
    }),
  );
  if (n === admitted) allRefused();
  await Promise.all([gate.waiting(admitted), done]);
  return { refused, calls };
}

beforeAll(async () => {
  await buildAsync();
  gate = await startGate();
  cluster = await startCluster("cluster-routing");
  fa = await cluster.start("frontend-a", ["--role", "frontend", "--account-concurrency", String(ACCOUNT)]);
  await Promise.all([cluster.worker("w-a1", "zone-a"), cluster.worker("w-b1", "zone-b")]);
  a = lambdaClient(fa.address);
  zip = await zipEntries([{ name: "index.js", content: HANDLER }]);
  await deployFunction(a, "limited", zip);
  await deployFunction(a, "hog", zip);
  await deployFunction(a, "free", zip);
  await a.send(
    new PutFunctionConcurrencyCommand({ FunctionName: "limited", ReservedConcurrentExecutions: RESERVED }),
  );
  await a.send(new PutFunctionConcurrencyCommand({ FunctionName: "hog", ReservedConcurrentExecutions: HOG }));
  // Started after the reservations: its view of them is loaded at start.
  fb = await cluster.start("frontend-b", ["--role", "frontend", "--account-concurrency", String(ACCOUNT)]);
  b = lambdaClient(fb.address);
}, 300_000);

afterAll(async () => {
  a?.destroy();
  b?.destroy();
  await gate?.close();
  await cluster?.stop();
});

describe("concurrency counted for the cluster as a whole", () => {
  it("admits at most the reserved concurrency through both frontends; the rest get Lambda's 429", async () => {
    const { refused, calls } = await burst("limited", 10, RESERVED);
    expect(refused).toHaveLength(10 - RESERVED);
    for (const err of refused) {
      expect(err).toBeInstanceOf(TooManyRequestsException);
      expect(err).toMatchObject({
        Reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
        $metadata: { httpStatusCode: 429 },
      });
    }
    gate.open();
    const ok = (await Promise.all(calls)).filter((r) => !(r instanceof Error));
    expect(ok).toHaveLength(RESERVED);
    for (const r of ok) expect(r).toMatchObject({ functionError: undefined });
  });

  it("hands unused slots back, so one frontend alone can then run the whole reservation", async () => {
    // Each frontend keeps the slots it used in the last renewal period, then gives them back.
    await drained("function:limited");
    const { refused, calls } = await burst("limited", RESERVED, RESERVED, [b]);
    expect(refused).toHaveLength(0);
    gate.open();
    await Promise.all(calls);
    // B's share is the whole reservation now, A's nothing.
    const held = await leases("function:limited");
    expect(held.reduce((n, l) => n + l.slots, 0)).toBeLessThanOrEqual(RESERVED);
  });

  it("shares the account's unreserved pool among the frontends", async () => {
    const { refused, calls } = await burst("free", 8, UNRESERVED);
    expect(refused).toHaveLength(8 - UNRESERVED);
    for (const err of refused) {
      expect(err).toMatchObject({
        Reason: "ConcurrentInvocationLimitExceeded",
        $metadata: { httpStatusCode: 429 },
      });
    }
    gate.open();
    expect((await Promise.all(calls)).filter((r) => !(r instanceof Error))).toHaveLength(UNRESERVED);
    // The tests after this one invoke unreserved functions: let both frontends give their shares back.
    await drained("account");
  });
});

interface WarmEntry {
  function: string;
  worker: string;
  environments: number;
  idle: number;
}

/** Resolve once the frontend's warm view (from its /health) satisfies `ok`. */
async function warmView(frontend: ClusterNode, ok: (view: WarmEntry[]) => boolean): Promise<WarmEntry[]> {
  for (;;) {
    const h = (await (await fetch(`${frontend.address}/health`)).json()) as { warm: WarmEntry[] };
    if (ok(h.warm)) return h.warm;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("the warm view announced by the workers", () => {
  it("routes an invoke through frontend B to the idle environment an invoke through A started", async () => {
    await deployFunction(a, "shared", zip);
    const first = await invoke(a, "shared", { tag: "a" });
    expect(first.json).toMatchObject({ counter: 1 });
    const where = cluster.ranOn(first.json);
    // B never invoked "shared": it knows the environment from the worker's announcement.
    await warmView(fb, (v) => v.some((e) => e.function === "shared" && e.worker === where && e.idle > 0));
    const second = await invoke(b, "shared", { tag: "b" });
    expect(cluster.ranOn(second.json)).toBe(where);
    expect((second.json as { counter: number }).counter).toBe(
      (first.json as { counter: number }).counter + 1,
    );
  });

  it("sends invokes from both frontends to one idle environment and loses none: the worker says busy, the other is placed", async () => {
    await deployFunction(a, "contended", zip);
    const first = await invoke(a, "contended");
    const where = cluster.ranOn(first.json);
    const one = (v: WarmEntry[]) =>
      v.some((e) => e.function === "contended" && e.worker === where && e.idle === 1);
    await Promise.all([warmView(fa, one), warmView(fb, one)]);
    // Both frontends see the one idle environment; both invokes wait at the gate, so they ran in two.
    const both = [invoke(a, "contended", { gate: gate.url }), invoke(b, "contended", { gate: gate.url })];
    await gate.waiting(2);
    gate.open();
    const [ra, rb] = await Promise.all(both);
    expect(ra?.functionError).toBeUndefined();
    expect(rb?.functionError).toBeUndefined();
    const counters = [ra, rb].map((r) => (r?.json as { counter?: number } | undefined)?.counter).sort();
    // One ran in the warm environment (its second event), the other in a new one (its first).
    expect(counters).toEqual([1, 2]);
  });
});

describe("response streaming from a worker on another node", () => {
  const send = (lambda: LambdaClient, event: unknown) =>
    lambda.send(
      new InvokeWithResponseStreamCommand({
        FunctionName: "streamer",
        Payload: Buffer.from(JSON.stringify(event)),
      }),
    );

  it("delivers the first chunk while the function still runs on the worker", async () => {
    await deployFunction(a, "streamer", await zipEntries([{ name: "index.js", content: STREAMING }]));
    const out = await send(b, { gate: gate.url });
    expect(out.StatusCode).toBe(200);
    expect(out.ResponseStreamContentType).toBe("text/plain");
    const { first, rest } = await drainAfterFirst(out, async () => {
      // The function is still held at the gate: the first chunk crossed the node protocol before it finished.
      await gate.waiting(1);
      gate.open();
    });
    expect(first).toBe("first;");
    expect(rest.text).toBe("second;streamer");
    expect(rest.complete).toEqual({});
  });

  it("reports a failure part-way after the chunks written before it", async () => {
    const got = await drainStream(await send(a, { mode: "fail" }));
    expect(got.text).toBe("first;");
    expect(got.complete?.ErrorCode).toBe("TypeError");
    expect(got.complete?.ErrorDetails).toBe("broke part-way");
  });
});
