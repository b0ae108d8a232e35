/**
 * The worker: owns this machine's execution environments, a pool per
 * function version, and retires pools when their function changes.
 */
import { mkdir, rm } from "node:fs/promises";
import type { ArtifactStore, MergedLayers } from "../artifacts/artifact-store.js";
import { type Assignment, assignmentKey } from "../protocol/assignment.js";
import type { InvokeInput, InvokeOutcome, ProvisionedProgress } from "../protocol/invoke.js";
import type {
  EnvironmentCount,
  EnvironmentView,
  FunctionEnvironmentStats,
  WorkerClient,
  WorkerStats,
} from "../protocol/worker.js";
import type { EnvironmentDeps } from "./environment.js";
import { FunctionPool, workerBusy } from "./pool.js";
import { ScaleLimiter } from "./scale-limiter.js";
import { StartGate } from "./start-gate.js";
import { StemCellPool } from "./stem-cells.js";

export interface WorkerOptions extends EnvironmentDeps {
  idleTimeoutSeconds: number;
  /** New environments one function may add per 10 seconds. */
  scaleRate: number;
  /** Most stem cells kept per runtime family (0 disables them). */
  prewarm: number;
  /** Stem cells kept per runtime in use even without recent cold starts (default 1, at most `prewarm`). */
  prewarmMin?: number;
  /** Code and layers by sha256, extracted on this machine's disk. */
  artifacts: ArtifactStore;
}

export class Worker implements WorkerClient, EnvironmentView {
  private readonly pools = new Map<string, FunctionPool>();
  private readonly listeners = new Set<() => void>();
  private readonly changed = () => {
    for (const l of this.listeners) l();
  };
  private readonly limiters = new Map<string, ScaleLimiter>();
  private readonly reaper: NodeJS.Timeout;

  readonly stemCells: StemCellPool;
  /** The worker's start gate (see StartGate). */
  readonly starts: StartGate;
  /** What every environment of this worker is built with (the options plus the stem-cell pool and the start gate). */
  private readonly opts: WorkerOptions & { stemCells: StemCellPool; starts: StartGate };

  /** The worker's own run dir (emptied at start); sockets go to the driver's socket dir when it has one. */
  private readonly ownRunDir: string;

  constructor(options: WorkerOptions) {
    this.ownRunDir = options.runDir;
    this.starts = new StartGate();
    const deps = { ...options, runDir: options.driver.socketDir ?? options.runDir, starts: this.starts };
    this.stemCells = new StemCellPool(deps, options.prewarm, options.prewarmMin);
    this.opts = { ...deps, stemCells: this.stemCells };
    const idleMs = options.idleTimeoutSeconds * 1000;
    this.reaper = setInterval(() => this.reap(idleMs), Math.min(Math.max(idleMs / 4, 100), 5000));
    this.reaper.unref();
  }

  async start(): Promise<void> {
    await rm(this.ownRunDir, { recursive: true, force: true });
    await mkdir(this.ownRunDir, { recursive: true });
    await this.opts.driver.init();
    this.stemCells.prewarm();
  }

  private pool(fn: Assignment): FunctionPool {
    const key = assignmentKey(fn);
    let pool = this.pools.get(key);
    if (!pool) {
      let dir: Promise<string> | null = null;
      let opt: Promise<MergedLayers | undefined> | null = null;
      const { artifacts } = this.opts;
      let limiter = this.limiters.get(fn.name);
      if (!limiter) {
        limiter = new ScaleLimiter(this.opts.scaleRate);
        this.limiters.set(fn.name, limiter);
      }
      pool = new FunctionPool(
        fn,
        this.opts,
        () => {
          dir ??= fn.codeDir !== undefined ? Promise.resolve(fn.codeDir) : artifacts.code(fn.codeSha256);
          return dir;
        },
        limiter,
        () => {
          if (fn.layersUnavailable !== undefined) return Promise.reject(new Error(fn.layersUnavailable));
          if (fn.layers.length === 0) return Promise.resolve(undefined);
          opt ??= artifacts.layers(fn.layers.map((l) => l.sha256));
          // A failure (content that cannot be fetched or extracted) is tried again on the next cold start.
          return opt.catch((err: unknown) => {
            opt = null;
            throw err;
          });
        },
        this.changed,
      );
      this.pools.set(key, pool);
    }
    return pool;
  }

  invoke(fn: Assignment, input: InvokeInput): Promise<InvokeOutcome> {
    // Only an idle environment will do: no pool means none (the pool is not made for nothing).
    if (input.warmOnly && !this.pools.has(assignmentKey(fn))) return Promise.reject(workerBusy());
    return this.pool(fn).invoke(input);
  }

  environmentCounts(): EnvironmentCount[] {
    return [...this.pools].map(([key, p]) => ({ key, environments: p.size, idle: p.idleCount }));
  }

  onEnvironmentsChanged(listener: () => void): () => void {
    const l = () => listener();
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Settles when no invoke is in flight (a draining worker: its frontends place nothing new here). */
  async drain(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.idleAll()));
  }

  /** Keep `count` provisioned environments of a version for one config (`source`); 0 releases them. */
  provision(fn: Assignment, source: string, count: number, report: (p: ProvisionedProgress) => void): void {
    if (count <= 0 && !this.pools.has(assignmentKey(fn))) return;
    this.pool(fn).setProvisioned(source, count, report);
  }

  prewarm(fn: Assignment): void {
    this.pool(fn).prewarm();
  }

  /** Retire the environments of a function (all versions, or one) whose code or configuration changed. */
  retire(name: string, version?: string, keepRevision?: string): void {
    for (const [key, pool] of this.pools) {
      if (pool.fn.name !== name || (version !== undefined && pool.fn.version !== version)) continue;
      if (keepRevision !== undefined && pool.fn.revisionId === keepRevision) continue;
      this.pools.delete(key);
      if (version === undefined) this.limiters.delete(name);
      void pool.retire();
      this.changed();
    }
  }

  private reap(idleMs: number): void {
    const cutoff = Date.now() - idleMs;
    for (const pool of this.pools.values()) pool.reapIdle(cutoff);
  }

  stats(): WorkerStats {
    let environments = 0;
    let idle = 0;
    let memoryMb = 0;
    for (const p of this.pools.values()) {
      environments += p.size;
      idle += p.idleCount;
      memoryMb += p.size * p.fn.config.MemorySize;
    }
    return { environments, idle, pools: this.pools.size, memoryMb };
  }

  /** Environments here by lifecycle state (the Prometheus view). */
  environmentStates(): Map<string, number> {
    const out = new Map<string, number>();
    for (const p of this.pools.values()) {
      for (const env of p.environments()) out.set(env.state, (out.get(env.state) ?? 0) + 1);
    }
    return out;
  }

  /** Per function version: environments alive and idle (`GET /_lambent/environments`, `lambent top`). */
  functionStats(): FunctionEnvironmentStats[] {
    return [...this.pools.values()]
      .filter((p) => p.size > 0)
      .map((p) => ({
        functionName: p.fn.name,
        version: p.fn.version,
        environments: p.size,
        idle: p.idleCount,
      }));
  }

  /** Environments of one function, for tests and the CLI. */
  environmentsOf(name: string) {
    return [...this.pools.values()].filter((p) => p.fn.name === name).flatMap((p) => p.environments());
  }

  private closing: Promise<void> | null = null;

  /** Stop every environment and the driver (idempotent: a stop's grace timer may call it early). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearInterval(this.reaper);
      const pools = [...this.pools.values()];
      this.pools.clear();
      await Promise.all([...pools.map((p) => p.destroy()), this.stemCells.close()]);
      await this.opts.driver.close();
    })();
    return this.closing;
  }
}
