/** `lambent server`: start the platform and stop it cleanly on SIGTERM/SIGINT. */
import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "commander";
import { WorkerNode } from "../cluster/worker-node.js";
import { defaultOptions, type SandboxMode, type SandboxNetwork, ServerOptionError } from "../config.js";
import { DataDirLockedError } from "../datadir-lock.js";
import { NoKeysError, Platform } from "../platform.js";
import { withProgress } from "./progress.js";

interface ServerFlags {
  host: string;
  port: number;
  dataDir: string;
  region: string;
  database?: string;
  accountConcurrency: number;
  idleTimeout: number;
  scaleRate: number;
  prewarm: number;
  prewarmMin: number;
  sandbox: SandboxMode;
  sandboxNetwork: SandboxNetwork;
  sandboxAllowHostPort: number[];
  sandboxPoolCidr?: string;
  allowDestinationHosts: string[];
  asyncRetryDelays: string;
  logRetentionDays: number;
  metricsRetentionDays: number;
  metrics: boolean;
  metricsTokenFile?: string;
  runtimesDir?: string;
  devRoot?: string;
  blockDeprecatedRuntimes?: boolean;
  devCredentials: boolean;
  serverKeyFile?: string;
  publicUrl?: string;
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionTimeout: number;
  maxConnectionsPerClient: number;
  role: "all" | "frontend" | "worker" | "poller";
  zone?: string;
  clusterSecret?: string;
  advertise?: string;
  workerMemory?: number;
  workerId?: string;
}

function parseDelays(raw: string): number[] {
  const parts = raw.split(",").map((p) => Number(p.trim()));
  if (parts.length !== 2 || parts.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new InvalidArgumentError(
      "--async-retry-delays takes two whole numbers of milliseconds, e.g. 60000,120000",
    );
  }
  return parts;
}

/** TESTS ONLY: `LAMBENT_TEST_SCHEDULE_CLOCK=<anchorMs>,<speed>` speeds up the schedules' clock. */
function testScheduleClock(): { scheduleClock?: { anchorMs: number; speed: number } } {
  const raw = process.env.LAMBENT_TEST_SCHEDULE_CLOCK;
  if (!raw) return {};
  const [anchorMs, speed] = raw.split(",").map(Number);
  if (!Number.isFinite(anchorMs) || !Number.isFinite(speed) || (speed as number) <= 0) {
    throw new InvalidArgumentError("LAMBENT_TEST_SCHEDULE_CLOCK takes <anchorMs>,<speed>");
  }
  console.error(`lambent: schedules run on a TEST clock ${speed}x faster than real time`);
  return { scheduleClock: { anchorMs: anchorMs as number, speed: speed as number } };
}

/** `--metrics-token-file` (its content, one trailing newline dropped) or `LAMBENT_METRICS_TOKEN`. */
function metricsToken(file: string | undefined): { metricsToken?: string } {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ServerOptionError(`--metrics-token-file ${file}: ${(err as Error).message}`);
    }
    return { metricsToken: text.replace(/\r?\n$/, "") };
  }
  const env = process.env.LAMBENT_METRICS_TOKEN;
  return env ? { metricsToken: env } : {};
}

export async function runServer(flags: ServerFlags): Promise<void> {
  const clusterSecret = flags.clusterSecret ?? process.env.LAMBENT_CLUSTER_SECRET;
  if (flags.role === "worker") return runWorkerNode(flags, clusterSecret);
  let platform: Platform;
  try {
    const starting = Platform.start({
      role: flags.role,
      ...(clusterSecret !== undefined ? { clusterSecret } : {}),
      host: flags.host,
      port: flags.port,
      dataDir: flags.dataDir,
      region: flags.region,
      accountConcurrency: flags.accountConcurrency,
      idleTimeoutSeconds: flags.idleTimeout,
      scaleRate: flags.scaleRate,
      prewarm: flags.prewarm,
      prewarmMin: flags.prewarmMin,
      sandbox: flags.sandbox,
      sandboxNetwork: flags.sandboxNetwork,
      sandboxAllowHostPorts: flags.sandboxAllowHostPort,
      ...(flags.sandboxPoolCidr ? { sandboxPoolCidr: flags.sandboxPoolCidr } : {}),
      allowDestinationHosts: flags.allowDestinationHosts,
      asyncRetryDelaysMs: parseDelays(flags.asyncRetryDelays),
      logRetentionDays: flags.logRetentionDays,
      metricsRetentionDays: flags.metricsRetentionDays,
      metrics: flags.metrics,
      ...metricsToken(flags.metricsTokenFile),
      blockDeprecatedRuntimes: flags.blockDeprecatedRuntimes === true,
      ...(flags.runtimesDir ? { runtimesDir: flags.runtimesDir } : {}),
      ...(flags.devRoot ? { devRoot: flags.devRoot } : {}),
      // --no-dev-credentials turns them off; otherwise the platform decides (loopback only).
      ...(flags.devCredentials === false ? { devCredentials: false } : {}),
      ...(flags.serverKeyFile ? { serverKeyFile: flags.serverKeyFile } : {}),
      http: {
        headersTimeoutMs: flags.headersTimeout * 1000,
        requestTimeoutMs: flags.requestTimeout * 1000,
        keepAliveTimeoutMs: flags.keepAliveTimeout * 1000,
        connectionTimeoutMs: flags.connectionTimeout * 1000,
        maxConnectionsPerClient: flags.maxConnectionsPerClient,
      },
      ...(flags.publicUrl ? { publicUrl: flags.publicUrl } : {}),
      ...(flags.database ? { database: flags.database } : {}),
      ...testScheduleClock(),
    });
    platform = await withProgress(
      "lambent: starting (store, migrations, sandbox checks, runtimes)",
      starting,
    );
  } catch (err) {
    if (err instanceof DataDirLockedError || err instanceof ServerOptionError || err instanceof NoKeysError) {
      console.error(`lambent: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  if (platform.sandbox.warning) {
    console.error(`lambent: WARNING: ${platform.sandbox.warning}`);
  }
  const h = platform.health();
  console.log(
    `lambent ${h.version} ready at ${platform.url} (store: ${h.store}, sandbox: ${h.sandbox.driver}, data dir: ${platform.options.dataDir})`,
  );
  stopOnSignals("shutting down", "waiting for in-flight invokes and environments to stop", () =>
    platform.stop(),
  );
}

/**
 * On the first SIGTERM or SIGINT: says so (`lambent: SIGTERM received, <doing>`), runs `stop` with
 * `waiting` as its progress line, then exits 0, or 1 if the stop failed.
 */
function stopOnSignals(doing: string, waiting: string, stop: () => Promise<void>): void {
  const shutdown = (signal: string) => {
    console.error(`lambent: ${signal} received, ${doing}`);
    withProgress(`lambent: ${waiting}`, stop()).then(
      () => process.exit(0),
      (err: unknown) => {
        console.error("lambent: shutdown failed:", err);
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

/** `--role worker`: environments for the frontends of a cluster; no API of its own. */
async function runWorkerNode(flags: ServerFlags, clusterSecret: string | undefined): Promise<void> {
  if (!flags.zone) {
    console.error("lambent: --role worker needs --zone <name>");
    process.exit(2);
  }
  let node: WorkerNode;
  try {
    const starting = WorkerNode.start(
      defaultOptions({
        host: flags.host,
        port: flags.port,
        dataDir: flags.dataDir,
        region: flags.region,
        idleTimeoutSeconds: flags.idleTimeout,
        scaleRate: flags.scaleRate,
        prewarm: flags.prewarm,
        prewarmMin: flags.prewarmMin,
        sandbox: flags.sandbox,
        sandboxNetwork: flags.sandboxNetwork,
        sandboxAllowHostPorts: flags.sandboxAllowHostPort,
        ...(flags.sandboxPoolCidr ? { sandboxPoolCidr: flags.sandboxPoolCidr } : {}),
        ...(flags.runtimesDir ? { runtimesDir: flags.runtimesDir } : {}),
        ...(flags.serverKeyFile ? { serverKeyFile: flags.serverKeyFile } : {}),
        ...(flags.database ? { database: flags.database } : {}),
      }),
      {
        zone: flags.zone,
        clusterSecret: clusterSecret ?? "",
        ...(flags.advertise ? { advertise: flags.advertise } : {}),
        ...(flags.workerMemory ? { memoryMb: flags.workerMemory } : {}),
        ...(flags.workerId ? { workerId: flags.workerId } : {}),
      },
    );
    node = await withProgress(
      "lambent: starting the worker node (store, sandbox checks, registry)",
      starting,
    );
  } catch (err) {
    console.error(`lambent: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
  if (node.sandbox.warning) console.error(`lambent: WARNING: ${node.sandbox.warning}`);
  console.log(
    `lambent worker ${node.id} ready at ${node.address} (zone ${node.zone}, sandbox: ${node.sandbox.driver.name})`,
  );
  stopOnSignals("draining", "draining (in-flight invokes finish)", () => node.stop());
}
