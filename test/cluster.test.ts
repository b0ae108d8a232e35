import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CloudWatchClient, GetMetricDataCommand } from "@aws-sdk/client-cloudwatch";
import {
  CreateFunctionCommand,
  GetProvisionedConcurrencyConfigCommand,
  type LambdaClient,
  PublishVersionCommand,
  PutProvisionedConcurrencyConfigCommand,
  UpdateFunctionCodeCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signNodeRequest } from "../src/protocol/node-auth.js";
import { buildAsync } from "./helpers/child-server.js";
import { type ClusterNode, startClusterNode } from "./helpers/cluster-node.js";
import { invoke } from "./helpers/invoke.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { lambdaClient, ROLE } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

const SECRET = randomBytes(24).toString("hex");

type Node = ClusterNode;

let db: TestDatabase;
let root: string;
let keyFile: string;
const nodes: Node[] = [];

async function startNode(name: string, args: string[]): Promise<Node> {
  const node = await startClusterNode({
    name,
    root,
    secret: SECRET,
    keyFile,
    args: ["--database", db.url, ...args],
  });
  nodes.push(node);
  return node;
}

const worker = (name: string, zone: string) =>
  startNode(name, ["--role", "worker", "--zone", zone, "--worker-id", name, "--worker-memory", "4096"]);

/** The worker (by its data dir's name) whose code directory answered. */
function ranOn(json: unknown): string {
  const dir = (json as { dir: string }).dir;
  const hit = nodes.find((n) => dir.startsWith(`${n.dataDir}/`));
  if (!hit) throw new Error(`no worker holds ${dir}`);
  return hit.name;
}

const handler = (answer: string, delayMs = 0) =>
  zipEntries([
    {
      name: "index.js",
      content: `let counter = 0;
exports.handler = async (event) => {
  counter++;
  const delay = event.delay ?? ${delayMs};
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  return { answer: ${JSON.stringify(answer)}, dir: __dirname, counter };
};`,
    },
  ]);

async function deploy(lambda: LambdaClient, name: string, zip: Buffer, memory = 128): Promise<void> {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      MemorySize: memory,
      Code: { ZipFile: zip },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}

async function liveWorkers(): Promise<string[]> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const r = await c.query(
      "select worker_id from cluster_workers where lease_until >= now() order by worker_id",
    );
    return r.rows.map((x: { worker_id: string }) => x.worker_id);
  } finally {
    await c.end();
  }
}

/** A worker's own count of its environments (a signed node request, as a frontend makes it). */
function workerStats(w: Node): Promise<{ environments: number; idle: number }> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://${w.address}`);
    s.on("error", reject);
    const req = s.request({
      ":method": "GET",
      ":path": "/stats",
      "x-lambent-node-auth": signNodeRequest(SECRET, "GET", "/stats", Buffer.alloc(0)),
    });
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => {
      s.close();
      resolve(JSON.parse(body));
    });
    req.on("error", reject);
    req.end();
  });
}

let a: LambdaClient;
let b: LambdaClient;
let frontendA: string;

beforeAll(async () => {
  await buildAsync();
  db = await createTestDatabase();
  root = mkdtempSync(join(tmpdir(), "lambent-cluster-"));
  keyFile = join(root, "server.key");
  writeFileSync(keyFile, randomBytes(32).toString("hex"), { mode: 0o600 });
  // The first node to start runs the migrations; the others find them done.
  const fa = await startNode("frontend-a", ["--role", "frontend"]);
  await Promise.all([worker("w-a1", "zone-a"), worker("w-a2", "zone-a"), worker("w-b1", "zone-b")]);
  const fb = await startNode("frontend-b", ["--role", "frontend"]);
  frontendA = fa.address;
  a = lambdaClient(fa.address);
  b = lambdaClient(fb.address);
}, 300_000);

afterAll(async () => {
  a?.destroy();
  b?.destroy();
  for (const n of nodes.reverse()) {
    if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill("SIGTERM");
    await n.exited;
  }
  await db?.drop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("a cluster of two frontends and three workers in two zones", () => {
  it("registers every worker with a lease in PostgreSQL", async () => {
    expect(await liveWorkers()).toEqual(["w-a1", "w-a2", "w-b1"]);
  });

  it("runs an invoke on a worker and routes the next one to the same warm environment", async () => {
    await deploy(a, "warm", await handler("one"));
    const first = await invoke(a, "warm");
    expect(first.functionError).toBeUndefined();
    expect(first.json).toMatchObject({ answer: "one", counter: 1 });
    const second = await invoke(a, "warm");
    expect(second.json).toMatchObject({ counter: 2 });
    expect(ranOn(second.json)).toBe(ranOn(first.json));
  });

  it("serves the same function through the other frontend", async () => {
    const r = await invoke(b, "warm");
    expect(r.json).toMatchObject({ answer: "one" });
  });

  it("turns EMF records printed on a worker into metrics the frontends serve", async () => {
    const source = `exports.handler = async (e) => {
  const record = { _aws: { Timestamp: Date.now(), CloudWatchMetrics: [
    { Namespace: "ClusterApp", Dimensions: [["stage"]], Metrics: [{ Name: "Work", Unit: "Count" }] }] },
    stage: "prod", Work: e.n };
  process.stdout.write(JSON.stringify(record) + "\\n");
  return {};
};`;
    await deploy(a, "emf", await zipEntries([{ name: "index.js", content: source }]));
    for (const n of [2, 5]) expect((await invoke(a, "emf", { n })).functionError).toBeUndefined();
    const cw = new CloudWatchClient({
      endpoint: frontendA,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
      maxAttempts: 1,
    });
    const sum = async () => {
      const out = await cw.send(
        new GetMetricDataCommand({
          StartTime: new Date(Date.now() - 3_600_000),
          EndTime: new Date(Date.now() + 600_000),
          MetricDataQueries: [
            {
              Id: "work",
              MetricStat: {
                Metric: {
                  Namespace: "ClusterApp",
                  MetricName: "Work",
                  Dimensions: [{ Name: "stage", Value: "prod" }],
                },
                Period: 3600,
                Stat: "Sum",
              },
            },
          ],
        }),
      );
      return (out.MetricDataResults?.[0]?.Values ?? []).reduce((x, y) => x + y, 0);
    };
    try {
      // The worker writes its tallies every 5 s: wait for them to reach PostgreSQL.
      const deadline = Date.now() + 60_000;
      let got = await sum();
      while (got < 7 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        got = await sum();
      }
      expect(got).toBe(7);
    } finally {
      cw.destroy();
    }
  });

  it("spreads a function's concurrent environments across both zones, then packs", async () => {
    await deploy(a, "spread", await handler("s", 800));
    const results = await Promise.all([1, 2, 3, 4].map(() => invoke(a, "spread")));
    const zones = results.map((r) => (ranOn(r.json).startsWith("w-a") ? "zone-a" : "zone-b"));
    // Two environments in each zone: each new one goes to the zone holding fewest of this function's.
    expect(zones.filter((z) => z === "zone-a")).toHaveLength(2);
    expect(zones.filter((z) => z === "zone-b")).toHaveLength(2);
  });

  it("runs the new code on the workers after an update through a frontend", async () => {
    await a.send(new UpdateFunctionCodeCommand({ FunctionName: "warm", ZipFile: await handler("two") }));
    await waitUntilFunctionUpdatedV2(
      { client: a, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
      { FunctionName: "warm" },
    );
    expect((await invoke(a, "warm")).json).toMatchObject({ answer: "two", counter: 1 });
    expect((await invoke(b, "warm")).json).toMatchObject({ answer: "two" });
  });

  it("refuses node requests without the cluster secret's signature", async () => {
    const w = nodes.find((n) => n.name === "w-b1") as Node;
    const ask = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const s = http2.connect(`http://${w.address}`);
        s.on("error", reject);
        const req = s.request({ ":method": "GET", ":path": "/stats", ...headers });
        req.on("response", (h) => resolve(Number(h[":status"])));
        req.on("close", () => s.close());
        req.resume();
        req.on("error", reject);
        req.end();
      });
    expect(await ask({})).toBe(401);
    expect(
      await ask({
        "x-lambent-node-auth": signNodeRequest("not-the-secret-at-all", "GET", "/stats", Buffer.alloc(0)),
      }),
    ).toBe(401);
    expect(
      await ask({ "x-lambent-node-auth": signNodeRequest(SECRET, "GET", "/stats", Buffer.alloc(0)) }),
    ).toBe(200);
  });

  it("places provisioned concurrency once for the cluster from the poller, spread across zones", async () => {
    await startNode("poller", ["--role", "poller"]);
    const workers = nodes.filter((n) => n.name.startsWith("w-"));
    const before = await Promise.all(workers.map((w) => workerStats(w)));
    const v = await a.send(new PublishVersionCommand({ FunctionName: "spread" }));
    await a.send(
      new PutProvisionedConcurrencyConfigCommand({
        FunctionName: "spread",
        Qualifier: v.Version,
        ProvisionedConcurrentExecutions: 2,
      }),
    );
    let status = "";
    while (status !== "READY") {
      const c = await b.send(
        new GetProvisionedConcurrencyConfigCommand({ FunctionName: "spread", Qualifier: v.Version }),
      );
      expect(c.Status).not.toBe("FAILED");
      status = c.Status ?? "";
      if (status !== "READY") await new Promise((r) => setTimeout(r, 200));
    }
    const after = await Promise.all(workers.map((w) => workerStats(w)));
    // One new environment in each zone: the two provisioned ones went to different zones.
    const added = (zone: string) =>
      workers.reduce(
        (n, w, i) =>
          n + (w.name.startsWith(zone) ? (after[i]?.environments ?? 0) - (before[i]?.environments ?? 0) : 0),
        0,
      );
    expect(added("w-a")).toBe(1);
    expect(added("w-b")).toBe(1);
    const r = await invoke(a, "spread", { delay: 0 }, { Qualifier: v.Version });
    expect(r.functionError).toBeUndefined();
  });

  it("keeps serving when a worker is killed with -9: the lease runs out and invokes go elsewhere", async () => {
    const first = await invoke(a, "warm");
    const victim = nodes.find((n) => n.name === ranOn(first.json)) as Node;
    victim.proc.kill("SIGKILL");
    await victim.exited;
    // The next invokes run on the survivors (a request that never reached the dead worker is placed again).
    for (let i = 0; i < 3; i++) {
      const r = await invoke(a, "warm");
      expect(r.functionError).toBeUndefined();
      expect(ranOn(r.json)).not.toBe(victim.name);
    }
    // Its lease runs out and a frontend deletes its row.
    for (;;) {
      const live = await liveWorkers();
      if (!live.includes(victim.name)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await liveWorkers()).toHaveLength(2);
  });

  it("drains a worker stopped with SIGTERM: it deregisters and frontends place elsewhere", async () => {
    const survivors = nodes.filter(
      (n) => n.name.startsWith("w-") && n.proc.exitCode === null && n.proc.signalCode === null,
    );
    const leaving = survivors[0] as Node;
    leaving.proc.kill("SIGTERM");
    const code = await Promise.race([
      leaving.exited,
      new Promise((r) => setTimeout(() => r("still running"), 20_000)),
    ]);
    expect(code, leaving.stderr()).toBe(0);
    expect(await liveWorkers()).not.toContain(leaving.name);
    const r = await invoke(b, "warm");
    expect(ranOn(r.json)).not.toBe(leaving.name);
  });
});
