/**
 * The worker: owns this machine's execution environments, a pool per
 * function version, and retires pools when their function changes.
 */
import { mkdir, rm } from "node:fs/promises";
import type { FunctionVersion } from "../control/functions.js";
import type { EnvironmentDeps, InvokeInput, InvokeOutcome } from "./environment.js";
import { FunctionPool } from "./pool.js";

export interface WorkerOptions extends EnvironmentDeps {
  idleTimeoutSeconds: number;
  /** Where a version's code is extracted (resolved once per pool). */
  codeDir: (sha256: string) => Promise<string>;
}

export class Worker {
  private readonly pools = new Map<string, FunctionPool>();
  private readonly reaper: NodeJS.Timeout;

  constructor(private readonly opts: WorkerOptions) {
    const idleMs = opts.idleTimeoutSeconds * 1000;
    this.reaper = setInterval(() => this.reap(idleMs), Math.min(Math.max(idleMs / 4, 100), 5000));
    this.reaper.unref();
  }

  async start(): Promise<void> {
    await rm(this.opts.runDir, { recursive: true, force: true });
    await mkdir(this.opts.runDir, { recursive: true });
    await this.opts.driver.init();
  }

  private key(fn: FunctionVersion): string {
    return `${fn.name}\0${fn.version}\0${fn.revisionId}`;
  }

  invoke(fn: FunctionVersion, input: InvokeInput): Promise<InvokeOutcome> {
    const key = this.key(fn);
    let pool = this.pools.get(key);
    if (!pool) {
      let dir: Promise<string> | null = null;
      pool = new FunctionPool(fn, this.opts, () => {
        dir ??= this.opts.codeDir(fn.codeSha256);
        return dir;
      });
      this.pools.set(key, pool);
    }
    return pool.invoke(input);
  }

  /** Retire the environments of a function (all versions, or one) whose code or configuration changed. */
  retire(name: string, version?: string): void {
    for (const [key, pool] of this.pools) {
      if (pool.fn.name !== name || (version !== undefined && pool.fn.version !== version)) continue;
      this.pools.delete(key);
      void pool.retire();
    }
  }

  private reap(idleMs: number): void {
    const cutoff = Date.now() - idleMs;
    for (const pool of this.pools.values()) pool.reapIdle(cutoff);
  }

  stats(): { environments: number; idle: number; pools: number } {
    let environments = 0;
    let idle = 0;
    for (const p of this.pools.values()) {
      environments += p.size;
      idle += p.idleCount;
    }
    return { environments, idle, pools: this.pools.size };
  }

  /** Environments of one function, for tests and the CLI. */
  environmentsOf(name: string) {
    return [...this.pools.values()].filter((p) => p.fn.name === name).flatMap((p) => p.environments());
  }

  async close(): Promise<void> {
    clearInterval(this.reaper);
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy()));
    await this.opts.driver.close();
  }
}
