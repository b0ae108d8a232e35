import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateFunctionCommand, type LambdaClient, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { type ClusterNode, startClusterNode } from "./cluster-node.js";
import { createTestDatabase, type TestDatabase } from "./postgres.js";
import { ROLE } from "./server.js";

export type { ClusterNode };

/** The cluster's PostgreSQL database, and how to be rid of it when the cluster stops. */
export type ClusterDatabase = Pick<TestDatabase, "url" | "drop">;

export interface TestCluster {
  db: ClusterDatabase;
  secret: string;
  nodes: ClusterNode[];
  /**
   * Starts a node with `--database db.url` (or `where.database`: the same database at another
   * address), inside the network namespace `where.netns` if given.
   */
  start(name: string, args: string[], where?: { database?: string; netns?: string }): Promise<ClusterNode>;
  worker(name: string, zone: string, extra?: string[]): Promise<ClusterNode>;
  /** The worker (by its data dir's name) whose code directory answered `{dir}`. */
  ranOn(json: unknown): string;
  /** SIGTERM every node still running, drop the database, remove the data dirs. */
  stop(): Promise<void>;
}

/** Data dirs, a shared server key and cluster secret; the database: a new one on the shared server, or `database`. */
export async function startCluster(prefix: string, database?: ClusterDatabase): Promise<TestCluster> {
  const db = database ?? (await createTestDatabase());
  const root = mkdtempSync(join(tmpdir(), `lambent-${prefix}-`));
  const keyFile = join(root, "server.key");
  writeFileSync(keyFile, randomBytes(32).toString("hex"), { mode: 0o600 });
  const secret = randomBytes(24).toString("hex");
  const nodes: ClusterNode[] = [];

  async function start(
    name: string,
    args: string[],
    where: { database?: string; netns?: string } = {},
  ): Promise<ClusterNode> {
    const node = await startClusterNode({
      name,
      root,
      secret,
      keyFile,
      args: ["--database", where.database ?? db.url, ...args],
      ...(where.netns ? { netns: where.netns } : {}),
    });
    nodes.push(node);
    return node;
  }

  return {
    db,
    secret,
    nodes,
    start,
    worker: (name, zone, extra = []) =>
      start(name, [
        "--role",
        "worker",
        "--zone",
        zone,
        "--worker-id",
        name,
        "--worker-memory",
        "4096",
        ...extra,
      ]),
    ranOn(json) {
      const dir = (json as { dir: string }).dir;
      const hit = nodes.find((n) => dir.startsWith(`${n.dataDir}/`));
      if (!hit) throw new Error(`no worker holds ${dir}`);
      return hit.name;
    },
    async stop() {
      for (const n of [...nodes].reverse()) {
        if (n.proc.exitCode === null && n.proc.signalCode === null) {
          n.proc.kill("SIGCONT");
          n.proc.kill("SIGTERM");
        }
        await n.exited;
      }
      await db.drop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export async function deployFunction(
  lambda: LambdaClient,
  name: string,
  zip: Buffer,
  extra: { memory?: number; timeout?: number } = {},
): Promise<void> {
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      MemorySize: extra.memory ?? 128,
      ...(extra.timeout !== undefined ? { Timeout: extra.timeout } : {}),
      Code: { ZipFile: zip },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: name },
  );
}
