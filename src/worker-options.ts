/**
 * What a composition root builds its `Worker` from, the same for both of them: `Platform.start` (one
 * process, or a cluster frontend's never-started worker) and `WorkerNode.start` (`--role worker`).
 * Only the sandbox mode, the credentials, the EMF sink and the platform API channel differ between them.
 */
import { join } from "node:path";
import type { ServerOptions } from "./config.js";
import type { CodeCache } from "./control/code.js";
import type { LayerCache } from "./control/layers.js";
import type { LogSink } from "./logs/log-sink.js";
import type { RuntimeStore } from "./runtimes/store.js";
import { type DetectedSandboxDriver, detectSandboxDriver, type SandboxMode } from "./sandbox/index.js";
import type { EnvironmentDeps } from "./worker/environment.js";
import { RUNTIMES_DIR } from "./worker/runtimes.js";
import type { WorkerOptions } from "./worker/worker.js";

/**
 * Probes for the sandbox driver `mode` asks for, with this data dir's run dir and network settings.
 * Stem cells adopt uploaded code and layers, and the folders in `moreAdoptableRoots`.
 */
export function detectWorkerSandbox(
  options: ServerOptions,
  mode: SandboxMode,
  moreAdoptableRoots: string[] = [],
): Promise<DetectedSandboxDriver> {
  return detectSandboxDriver(mode, {
    runDir: join(options.dataDir, "run", "sandbox"),
    network: options.sandboxNetwork,
    allowHostPorts: options.sandboxAllowHostPorts,
    ...(options.sandboxPoolCidr ? { poolCidr: options.sandboxPoolCidr } : {}),
    adoptableRoots: [join(options.dataDir, "code"), join(options.dataDir, "layers"), ...moreAdoptableRoots],
  });
}

export interface WorkerParts {
  sandbox: DetectedSandboxDriver;
  logs: LogSink;
  runtimes: RuntimeStore;
  codeCache: CodeCache;
  layerCache: LayerCache;
  credentials: NonNullable<EnvironmentDeps["credentials"]>;
  /** Sees each line a function printed (EMF records become custom metrics). */
  emf: NonNullable<EnvironmentDeps["emf"]>;
  platformApi?: EnvironmentDeps["platformApi"];
}

/** The `Worker`'s options: limits from `options.limits`, code and layers from this machine's caches. */
export function workerOptions(options: ServerOptions, parts: WorkerParts): WorkerOptions {
  const { limits } = options;
  const { driver } = parts.sandbox;
  return {
    driver,
    ...(parts.platformApi ? { platformApi: parts.platformApi } : {}),
    credentials: parts.credentials,
    logs: parts.logs,
    emf: parts.emf,
    runDir: join(options.dataDir, "run", "rapi"),
    runtimesDir: RUNTIMES_DIR,
    runtimes: parts.runtimes,
    region: options.region,
    maxResponseBytes: limits.syncPayloadBytes,
    initTimeoutMs: limits.initTimeoutMs,
    freezeIdle: driver.isolates,
    pidsLimit: 1024,
    outputLimits: { lineBytes: limits.logLineBytes, windowBytes: limits.logInvokeBytes },
    idleTimeoutSeconds: options.idleTimeoutSeconds,
    scaleRate: options.scaleRate,
    prewarm: options.prewarm,
    ...(options.prewarmMin !== undefined ? { prewarmMin: options.prewarmMin } : {}),
    artifacts: {
      code: (sha) => parts.codeCache.ensure(sha),
      layers: (shas) => parts.layerCache.merged(shas),
    },
  };
}
