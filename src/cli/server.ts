/** `lambent server`: start the platform and stop it cleanly on SIGTERM/SIGINT. */
import { InvalidArgumentError } from "commander";
import { type SandboxMode, type SandboxNetwork, ServerOptionError } from "../config.js";
import { DataDirLockedError } from "../datadir-lock.js";
import { NoKeysError, Platform } from "../platform.js";

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
  sandbox: SandboxMode;
  sandboxNetwork: SandboxNetwork;
  sandboxAllowHostPort: number[];
  allowDestinationHosts: string[];
  asyncRetryDelays: string;
  logRetentionDays: number;
  runtimesDir?: string;
  blockDeprecatedRuntimes?: boolean;
  devCredentials: boolean;
  serverKeyFile?: string;
  publicUrl?: string;
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionTimeout: number;
  maxConnectionsPerClient: number;
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

export async function runServer(flags: ServerFlags): Promise<void> {
  let platform: Platform;
  try {
    platform = await Platform.start({
      host: flags.host,
      port: flags.port,
      dataDir: flags.dataDir,
      region: flags.region,
      accountConcurrency: flags.accountConcurrency,
      idleTimeoutSeconds: flags.idleTimeout,
      scaleRate: flags.scaleRate,
      prewarm: flags.prewarm,
      sandbox: flags.sandbox,
      sandboxNetwork: flags.sandboxNetwork,
      sandboxAllowHostPorts: flags.sandboxAllowHostPort,
      allowDestinationHosts: flags.allowDestinationHosts,
      asyncRetryDelaysMs: parseDelays(flags.asyncRetryDelays),
      logRetentionDays: flags.logRetentionDays,
      blockDeprecatedRuntimes: flags.blockDeprecatedRuntimes === true,
      ...(flags.runtimesDir ? { runtimesDir: flags.runtimesDir } : {}),
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
  const shutdown = (signal: string) => {
    console.error(`lambent: ${signal} received, shutting down`);
    platform.stop().then(
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
