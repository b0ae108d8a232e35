/**
 * A cluster across network namespaces (issue 19's integration test): 2
 * frontends, a poller and 3 workers in 2 zones as separate processes over a
 * PostgreSQL server of the test's own; each worker runs in a network
 * namespace of its own with its own address.
 *
 * Network: the test makes a bridge and one veth pair per worker, and gives
 * them addresses from 198.18.0.0/15 (RFC 2544's benchmarking range, never
 * routed on the internet; a random /24 of it per run, so parallel runs do
 * not collide): the bridge is <net>.1 in this namespace, worker i is
 * <net>.1i in its namespace, whose only routes are loopback and that /24 on
 * its veth. Nothing is routed anywhere else. PostgreSQL and the function's
 * run collector listen on the bridge address too, so workers reach them.
 * Namespaces, links, processes and the database's files are removed in
 * afterAll, and again on process exit if afterAll never ran.
 *
 * Asserted: every worker registers at its namespace address; placement spreads
 * a function's environments across zones; warm routing; provisioned concurrency
 * comes back on another worker after its worker is killed with -9; a sync
 * invoke whose worker is killed mid-run answers ServiceException; async events
 * in flight on it run again (none lost); a frontend killed with -9 leaves the
 * other serving.
 */
import { execFileSync } from "node:child_process";
import { randomBytes, randomInt } from "node:crypto";
import {
  CreateFunctionCommand,
  GetProvisionedConcurrencyConfigCommand,
  InvokeCommand,
  type LambdaClient,
  PublishVersionCommand,
  PutProvisionedConcurrencyConfigCommand,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAsync } from "./helpers/child-server.js";
import { type ClusterNode, startCluster, type TestCluster } from "./helpers/cluster.js";
import { Collector, type Received } from "./helpers/collector.js";
import { invoke } from "./helpers/invoke.js";
import {
  canRunPrivatePostgres,
  type PrivatePostgres,
  startPrivatePostgres,
} from "./helpers/private-postgres.js";
import { lambdaClient, ROLE } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

const TAG = randomBytes(3).toString("hex");
const NET = `198.18.${randomInt(1, 255)}`;
const BRIDGE = `lbr${TAG}`;
const WORKERS = [
  {
    name: "w-a1",
    zone: "zone-a",
    ns: `lambent-${TAG}-1`,
    ip: `${NET}.11`,
    veth: `lv${TAG}1`,
    peer: `lp${TAG}1`,
  },
  {
    name: "w-a2",
    zone: "zone-a",
    ns: `lambent-${TAG}-2`,
    ip: `${NET}.12`,
    veth: `lv${TAG}2`,
    peer: `lp${TAG}2`,
  },
  {
    name: "w-b1",
    zone: "zone-b",
    ns: `lambent-${TAG}-3`,
    ip: `${NET}.13`,
    veth: `lv${TAG}3`,
    peer: `lp${TAG}3`,
  },
];

const canRun = canRunPrivatePostgres();

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

function makeNetwork(): void {
  ip("link", "add", BRIDGE, "type", "bridge");
  ip("addr", "add", `${NET}.1/24`, "dev", BRIDGE);
  ip("link", "set", BRIDGE, "up");
  for (const w of WORKERS) {
    ip("netns", "add", w.ns);
    ip("link", "add", w.veth, "type", "veth", "peer", "name", w.peer);
    ip("link", "set", w.peer, "netns", w.ns);
    ip("link", "set", w.veth, "master", BRIDGE);
    ip("link", "set", w.veth, "up");
    ip("-n", w.ns, "link", "set", "lo", "up");
    ip("-n", w.ns, "addr", "add", `${w.ip}/24`, "dev", w.peer);
    ip("-n", w.ns, "link", "set", w.peer, "up");
  }
}

/** Idempotent: whatever of the network exists goes (its veths go with their namespaces). */
function removeNetwork(): void {
  for (const w of WORKERS) {
    try {
      // Anything still running in the namespace first (a worker's sandboxes).
      const pids = execFileSync("ip", ["netns", "pids", w.ns], { stdio: ["ignore", "pipe", "ignore"] })
        .toString()
        .split(/\s+/)
        .filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {}
      }
    } catch {}
    try {
      ip("netns", "del", w.ns);
    } catch {}
  }
  try {
    ip("link", "del", BRIDGE);
  } catch {}
}

let pgServer: PrivatePostgres | undefined;
let cluster: TestCluster | undefined;
let collector: Collector;
let networkMade = false;
const nodes = (): ClusterNode[] => cluster?.nodes ?? [];

const byName = (name: string) => nodes().find((n) => n.name === name) as ClusterNode;

/** The worker whose data dir holds this code directory. */
function workerOf(dir: string): string {
  return (cluster as TestCluster).ranOn({ dir });
}

/**
 * Reports to the collector: `/init` at module load, `/ran` when an event starts, `/done` when it ends
 * (each with the code's directory, which names the worker, and the event's id).
 */
const reporter = () =>
  zipEntries([
    {
      name: "index.js",
      content: `const http = require("node:http");
const post = (path, body) => new Promise((resolve) => {
  const req = http.request(process.env.COLLECTOR + path, { method: "POST" }, (res) => { res.resume(); res.on("end", resolve); });
  req.on("error", resolve);
  req.end(JSON.stringify({ dir: __dirname, ...body }));
});
const ready = post("/init", { fn: process.env.AWS_LAMBDA_FUNCTION_NAME, type: process.env.AWS_LAMBDA_INITIALIZATION_TYPE });
let counter = 0;
exports.handler = async (event) => {
  await ready;
  counter++;
  await post("/ran", { id: event.id });
  if (event.delay) await new Promise((r) => setTimeout(r, event.delay));
  await post("/done", { id: event.id });
  return { dir: __dirname, counter };
};`,
    },
  ]);

async function deploy(lambda: LambdaClient, name: string): Promise<void> {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      MemorySize: 128,
      Timeout: 30,
      Code: { ZipFile: await reporter() },
      Environment: { Variables: { COLLECTOR: collector.url } },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

async function registry(): Promise<Array<{ worker_id: string; zone: string; address: string }>> {
  const c = new pg.Client({ connectionString: pgServer?.url });
  await c.connect();
  try {
    const r = await c.query(
      "select worker_id, zone, address from cluster_workers where lease_until >= now() order by worker_id",
    );
    return r.rows;
  } finally {
    await c.end();
  }
}

/** Resolves once the registry no longer lists `name` (its lease ran out and a node deleted the row). */
async function leaseGone(name: string): Promise<void> {
  while ((await registry()).some((r) => r.worker_id === name)) await new Promise((r) => setTimeout(r, 200));
}

const bodyOf = (r: Received) => r.body as { dir: string; id?: number; fn?: string; type?: string };

let a: LambdaClient;
let b: LambdaClient;

const cleanupOnExit = () => {
  for (const n of nodes()) if (n.alive()) n.proc.kill("SIGKILL");
  if (networkMade) removeNetwork();
};

beforeAll(async () => {
  if (!canRun) return;
  process.once("exit", cleanupOnExit);
  await buildAsync();
  networkMade = true;
  makeNetwork();
  const server = await startPrivatePostgres(["127.0.0.1", `${NET}.1`], ["127.0.0.1/32", `${NET}.0/24`]);
  pgServer = server;
  cluster = await startCluster("netns", { url: server.url, drop: () => server.stop() });
  collector = await Collector.start(`${NET}.1`);
  // The first node to start runs the migrations; the others find them done.
  const fa = await cluster.start("frontend-a", ["--role", "frontend"]);
  await Promise.all(
    WORKERS.map((w) =>
      cluster?.start(
        w.name,
        [
          "--role",
          "worker",
          "--zone",
          w.zone,
          "--worker-id",
          w.name,
          "--worker-memory",
          "4096",
          "--host",
          w.ip,
        ],
        { database: server.urlAt(`${NET}.1`), netns: w.ns },
      ),
    ),
  );
  const fb = await cluster.start("frontend-b", ["--role", "frontend"]);
  await cluster.start("poller", ["--role", "poller"]);
  a = lambdaClient(fa.address);
  b = lambdaClient(fb.address);
}, 180_000);

afterAll(async () => {
  a?.destroy();
  b?.destroy();
  // Stopping the cluster stops its PostgreSQL too.
  if (cluster) await cluster.stop();
  else await pgServer?.stop();
  await collector?.close();
  if (networkMade) removeNetwork();
  process.off("exit", cleanupOnExit);
}, 60_000);

describe.skipIf(!canRun)("a cluster across network namespaces: 2 frontends, 3 workers in 2 zones", () => {
  it("registers every worker at its own namespace's address", async () => {
    const rows = await registry();
    expect(rows.map((r) => [r.worker_id, r.zone, r.address.split(":")[0]])).toEqual(
      WORKERS.map((w) => [w.name, w.zone, w.ip]),
    );
  });

  it("routes the next invoke to the warm environment, and spreads concurrent ones across zones", async () => {
    await deploy(a, "spread");
    const first = await invoke(a, "spread", { id: -1 });
    const second = await invoke(a, "spread", { id: -2 });
    expect(second.json).toMatchObject({ counter: 2, dir: (first.json as { dir: string }).dir });
    await deploy(a, "wide");
    const results = await Promise.all([1, 2, 3, 4].map((i) => invoke(a, "wide", { id: i, delay: 1500 })));
    const zones = results.map((r) =>
      workerOf((r.json as { dir: string }).dir).startsWith("w-a") ? "a" : "b",
    );
    expect(zones.filter((z) => z === "a")).toHaveLength(2);
    expect(zones.filter((z) => z === "b")).toHaveLength(2);
  });

  it("places provisioned concurrency again on another worker when its worker is killed with -9", async () => {
    await deploy(a, "pc");
    const v = await a.send(new PublishVersionCommand({ FunctionName: "pc" }));
    const provisionedInits = (r: Received) =>
      r.path === "/init" && bodyOf(r).fn === "pc" && bodyOf(r).type === "provisioned-concurrency";
    const placed = collector.waitFor(provisionedInits, 2);
    await b.send(
      new PutProvisionedConcurrencyConfigCommand({
        FunctionName: "pc",
        Qualifier: v.Version,
        ProvisionedConcurrentExecutions: 2,
      }),
    );
    const inits = await placed;
    const holders = inits.map((r) => workerOf(bodyOf(r).dir));
    // Two workers (spread across zones unless a loaded machine made a lease lapse meanwhile).
    expect(new Set(holders).size).toBe(2);
    const victim = byName(holders[0] as string);
    const replaced = collector.waitFor(provisionedInits, 3);
    await victim.kill9();
    const all = await replaced;
    const again = all[2] as Received;
    expect(workerOf(bodyOf(again).dir)).not.toBe(victim.name);
    await leaseGone(victim.name);
    for (;;) {
      const c = await a.send(
        new GetProvisionedConcurrencyConfigCommand({ FunctionName: "pc", Qualifier: v.Version }),
      );
      if (c.Status === "READY" && c.AvailableProvisionedConcurrentExecutions === 2) break;
      expect(c.Status).not.toBe("FAILED");
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it("answers ServiceException for a sync invoke whose worker dies mid-run, and loses no async event", async () => {
    await deploy(b, "slow");
    await deploy(b, "events");
    const started = collector.waitFor((r) => r.path === "/ran" && bodyOf(r).id === 1000);
    const sync = a
      .send(
        new InvokeCommand({
          FunctionName: "slow",
          Payload: Buffer.from(JSON.stringify({ id: 1000, delay: 20_000 })),
        }),
      )
      .then(
        (out) => ({ ok: true as const, out }),
        (err: { name?: string; $metadata?: { httpStatusCode?: number } }) => ({ ok: false as const, err }),
      );
    const ids = Array.from({ length: 16 }, (_, i) => i);
    const isEvent = (r: Received) => typeof bodyOf(r).id === "number" && (bodyOf(r).id as number) < 1000;
    for (const id of ids) {
      await b.send(
        new InvokeCommand({
          FunctionName: "events",
          InvocationType: "Event",
          Payload: Buffer.from(JSON.stringify({ id, delay: 1500 })),
        }),
      );
    }
    const victimName = workerOf(bodyOf((await started)[0] as Received).dir);
    // Some events are running (on both workers, spread across the zone's two).
    await collector.waitFor((r) => r.path === "/ran" && isEvent(r), 4);
    await byName(victimName).kill9();
    const answer = await sync;
    if (answer.ok)
      console.log("DEBUG", Buffer.from(answer.out.Payload ?? []).toString(), answer.out.FunctionError);
    expect(answer.ok).toBe(false);
    if (!answer.ok) {
      expect(answer.err.name).toBe("ServiceException");
      expect(answer.err.$metadata?.httpStatusCode).toBe(500);
    }
    // Every async event ran to its end at least once, on the survivor.
    await collector.waitUntil(
      () =>
        new Set(collector.received.filter((r) => r.path === "/done" && isEvent(r)).map((r) => bodyOf(r).id))
          .size === ids.length,
    );
    const next = await invoke(a, "slow", { id: 1001 });
    expect(workerOf((next.json as { dir: string }).dir)).not.toBe(victimName);
  }, 90_000);

  it("keeps serving through one frontend when the other is killed with -9", async () => {
    await byName("frontend-a").kill9();
    const r = await invoke(b, "spread", { id: -3 });
    expect(r.functionError).toBeUndefined();
    await deploy(b, "after");
    expect((await invoke(b, "after", { id: -4 })).functionError).toBeUndefined();
  });
});
