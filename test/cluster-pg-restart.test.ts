/**
 * PostgreSQL restarts under a running cluster (2 frontends, a worker, a
 * poller, on loopback): every node reconnects without a restart of its own,
 * and a change made while a node's LISTEN connection was still down (its
 * notification is lost) reaches that node all the same, by the resync that
 * follows every reconnect. The test restarts a PostgreSQL server of its own
 * (`helpers/private-postgres.ts`), never the shared one.
 */
import {
  CreateFunctionCommand,
  type LambdaClient,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from "@aws-sdk/client-lambda";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAsync } from "./helpers/child-server.js";
import { type ClusterNode, startCluster, type TestCluster } from "./helpers/cluster.js";
import { invoke } from "./helpers/invoke.js";
import {
  canRunPrivatePostgres,
  type PrivatePostgres,
  startPrivatePostgres,
} from "./helpers/private-postgres.js";
import { lambdaClient, ROLE } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

const canRun = canRunPrivatePostgres();

let pgServer: PrivatePostgres | undefined;
let cluster: TestCluster | undefined;
let a: LambdaClient;
let b: LambdaClient;

const answerOf = async (lambda: LambdaClient) =>
  ((await invoke(lambda, "cfg")).json as { answer?: string } | undefined)?.answer;

beforeAll(async () => {
  if (!canRun) return;
  await buildAsync();
  const server = await startPrivatePostgres();
  pgServer = server;
  cluster = await startCluster("pgrestart", { url: server.url, drop: () => server.stop() });
  // The first node runs the migrations.
  const fa = await cluster.start("frontend-a", ["--role", "frontend"]);
  await cluster.worker("w1", "zone-a");
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
}, 60_000);

describe.skipIf(!canRun)("PostgreSQL restarting under a cluster", () => {
  it("is survived by every node; a change whose notification was lost reaches every frontend", async () => {
    await a.send(
      new CreateFunctionCommand({
        FunctionName: "cfg",
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: ROLE,
        Code: {
          ZipFile: await zipEntries([
            {
              name: "index.js",
              content: "exports.handler = async () => ({ answer: process.env.ANSWER });",
            },
          ]),
        },
        Environment: { Variables: { ANSWER: "one" } },
      }),
    );
    await waitUntilFunctionActiveV2(
      { client: a, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
      { FunctionName: "cfg" },
    );
    // Both frontends hold the version in their caches now.
    expect(await answerOf(a)).toBe("one");
    expect(await answerOf(b)).toBe("one");

    await pgServer?.restart();
    // Straight away, while the nodes' LISTEN connections are still waiting to reconnect (they retry
    // after 1 s): frontend B misses this change's notification.
    await a.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: "cfg",
        Environment: { Variables: { ANSWER: "two" } },
      }),
    );
    await waitUntilFunctionUpdatedV2(
      { client: a, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
      { FunctionName: "cfg" },
    );
    expect(await answerOf(a)).toBe("two");
    // B's LISTEN connection comes back and resyncs its caches with the store.
    const nodes = cluster?.nodes ?? [];
    const fb = nodes.find((n) => n.name === "frontend-b") as ClusterNode;
    while (!fb.stderr().includes("resynchronising caches")) await new Promise((r) => setTimeout(r, 100));
    // (The resync's store reads may still be under way when the line is logged.)
    while ((await answerOf(b)) !== "two") await new Promise((r) => setTimeout(r, 100));

    // The worker renewed its lease over a new connection, and the frontends route to it.
    const c = new pg.Client({ connectionString: pgServer?.url });
    await c.connect();
    try {
      const r = await c.query("select worker_id from cluster_workers where lease_until >= now()");
      expect(r.rows.map((x: { worker_id: string }) => x.worker_id)).toEqual(["w1"]);
    } finally {
      await c.end();
    }
    for (const n of nodes) expect(n.alive(), `${n.name}: ${n.stderr().slice(-3000)}`).toBe(true);
  }, 120_000);
});
