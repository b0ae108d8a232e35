/**
 * `lambent server --role worker --zone <name>`: a worker node. It holds
 * execution environments for the frontends of a cluster and nothing else: no
 * Lambda API, no pollers. It reaches PostgreSQL for its registration and
 * lease, its logs, the code and layers it fetches by sha256 (cached on its
 * own disk) and nothing of the control plane; frontends reach it over
 * HTTP/2, signed with the cluster secret (`worker/node-server.ts`).
 *
 * Stopping: the worker drains (frontends place nothing new here), invokes in
 * flight finish, it deregisters and its environments shut down. A worker that
 * dies without a word loses its lease after LEASE_MS and is forgotten.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { totalmem } from "node:os";
import { join, resolve } from "node:path";
import { loadCodeZip, loadLayerZip } from "../artifacts/store-source.js";
import { defaultServerKeyFile, KeyStore, loadServerKey } from "../auth/keys.js";
import type { ServerOptions } from "../config.js";
import { CodeCache } from "../control/code.js";
import { LayerCache } from "../control/layers.js";
import { lockDataDir } from "../datadir-lock.js";
import { LogSink } from "../logs/log-sink.js";
import { EmfExtractor } from "../metrics/emf.js";
import { MetricsRecorder } from "../metrics/recorder.js";
import { checkClusterSecret } from "../protocol/node-auth.js";
import { RuntimeStore } from "../runtimes/store.js";
import type { DetectedSandboxDriver } from "../sandbox/index.js";
import { Store } from "../store/store.js";
import { WorkerNodeServer } from "../worker/node-server.js";
import { Worker } from "../worker/worker.js";
import { detectWorkerSandbox, workerOptions } from "../worker-options.js";
import { HEARTBEAT_MS, WorkerRegistry } from "./registry.js";

export interface WorkerNodeOptions {
  zone: string;
  clusterSecret: string;
  /** Memory environments may take here (MB); default: the machine's. */
  memoryMb?: number;
  /** Most environments held at once. */
  maxEnvironments?: number;
  /** host:port frontends reach this node at (default: host and the bound port). */
  advertise?: string;
  /** Fixed id (default: random): a restarted worker with the same id takes its row over. */
  workerId?: string;
}

/** How long a stop lets invokes in flight finish. */
const DRAIN_GRACE_MS = 10_000;

export class WorkerNode {
  private heartbeat: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly id: string,
    readonly zone: string,
    readonly address: string,
    readonly worker: Worker,
    readonly sandbox: DetectedSandboxDriver,
    private readonly server: WorkerNodeServer,
    private readonly registry: WorkerRegistry,
    private readonly store: Store,
    private readonly logs: LogSink,
    private readonly metrics: MetricsRecorder,
    private readonly unlock: () => void,
    private readonly log: (m: string) => void,
  ) {}

  static async start(options: ServerOptions, node: WorkerNodeOptions): Promise<WorkerNode> {
    const secret = checkClusterSecret(node.clusterSecret);
    if (!options.database?.startsWith("postgres")) {
      throw new Error("--role worker needs --database postgres://… (the cluster's PostgreSQL)");
    }
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(node.zone)) {
      throw new Error(`--zone ${node.zone}: lower-case letters, digits and dashes (e.g. us-east-1a)`);
    }
    const log = (m: string) => options.quiet || console.error(`lambent: ${m}`);
    options.dataDir = resolve(options.dataDir);
    mkdirSync(options.dataDir, { recursive: true });
    const unlock = lockDataDir(options.dataDir);
    const acquired: Array<() => unknown> = [];
    let store: Store | undefined;
    try {
      store = await Store.open({ dataDir: options.dataDir, database: options.database });
      const opened = store;
      const registry = new WorkerRegistry(opened);
      const { limits } = options;
      const codeCache = new CodeCache(join(options.dataDir, "code"), loadCodeZip(opened), limits);
      const layerCache = new LayerCache(join(options.dataDir, "layers"), loadLayerZip(opened), limits);
      await codeCache.sweep();
      await layerCache.sweep();
      // Environments' role credentials are sealed with the cluster's shared server key.
      const keys = new KeyStore(
        opened,
        loadServerKey(options.serverKeyFile ?? defaultServerKeyFile(options.dataDir)),
      );
      const logs = new LogSink(opened, {
        bytesPerSecond: limits.logBytesPerSecond,
        burstBytes: limits.logBurstBytes,
      });
      acquired.push(() => logs.flush());
      // EMF records in the logs of the functions run here become metrics; the frontends prune them.
      const metrics = new MetricsRecorder(opened, { retentionDays: 0, enabled: options.metrics, log });
      metrics.start();
      acquired.push(() => metrics.stop());
      const emf = new EmfExtractor(metrics, { log });
      const sandbox = await detectWorkerSandbox(options, options.sandbox);
      const worker = new Worker(
        workerOptions(options, {
          sandbox,
          logs,
          emf: (fn, line) => emf.line(`function ${fn}`, line),
          runtimes: new RuntimeStore(options.runtimesDir),
          codeCache,
          layerCache,
          credentials: (a) => {
            const s = keys.issueSession(a.config.Role, a.name);
            return {
              AWS_ACCESS_KEY_ID: s.accessKeyId,
              AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
              AWS_SESSION_TOKEN: s.sessionToken,
            };
          },
        }),
      );
      acquired.push(() => worker.close());
      await worker.start();
      const server = new WorkerNodeServer({ worker, secret, host: options.host, port: options.port });
      const bound = await server.listen();
      acquired.push(() => server.close());
      const id = node.workerId ?? `w-${node.zone}-${randomBytes(4).toString("hex")}`;
      const address = node.advertise ?? bound;
      const memoryMb = node.memoryMb ?? Math.floor(totalmem() / 1024 / 1024);
      const maxEnvironments = node.maxEnvironments ?? 256;
      await registry.register({ id, zone: node.zone, address, memoryMb, maxEnvironments });
      const wn = new WorkerNode(
        id,
        node.zone,
        address,
        worker,
        sandbox,
        server,
        registry,
        opened,
        logs,
        metrics,
        unlock,
        log,
      );
      wn.heartbeat = setInterval(() => {
        const s = worker.stats();
        registry
          .heartbeat(id, { usedMemoryMb: s.memoryMb, environments: s.environments })
          .then(async (held) => {
            // The lease ran out (a long pause, the database restarted): come back under the same id.
            // Not while stopping: a beat still in flight when the row was deregistered finds it gone.
            if (!held && !wn.stopping) {
              log(`worker ${id}: lease lost, registering again`);
              await registry.register({ id, zone: node.zone, address, memoryMb, maxEnvironments });
            }
          })
          .catch((err: unknown) => log(`worker ${id}: heartbeat failed: ${String(err)}`));
      }, HEARTBEAT_MS);
      return wn;
    } catch (err) {
      for (const release of acquired.reverse()) await Promise.resolve(release()).catch(() => {});
      await store?.close();
      unlock();
      throw err;
    }
  }

  /** Drain, let invokes in flight finish (up to a grace period), deregister, stop every environment. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.heartbeat) clearInterval(this.heartbeat);
      await this.registry.drain(this.id).catch(() => {});
      const grace = setTimeout(() => void this.worker.close(), DRAIN_GRACE_MS);
      grace.unref();
      await this.worker.drain();
      clearTimeout(grace);
      this.log(`worker ${this.id}: drained`);
      await this.registry.deregister(this.id).catch((err: unknown) => this.log(String(err)));
      await this.server.close();
      this.log(`worker ${this.id}: node server closed`);
      await this.worker.close();
      await this.logs.flush();
      await this.metrics.stop().catch((err: unknown) => this.log(`metrics: ${String(err)}`));
      await this.store.close();
      this.unlock();
    })();
    return this.stopping;
  }
}
