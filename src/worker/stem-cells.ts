/**
 * Stem cells: runtime processes started, sandboxed and booted before any
 * function needs them, waiting for an assignment. A cold start then costs only
 * the function's own Init. The pool keeps a few per runtime (nodejs22.x, python3.13...), sized by
 * the recent cold-start rate (at most `--prewarm`), and refills in the background.
 */
import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { join } from "node:path";
import { CATALOG, type Runtime, runtimeFamily } from "../runtimes/catalog.js";
import type { RuntimeStore } from "../runtimes/store.js";
import type {
  RuntimeApiEndpoint,
  Sandbox,
  SandboxDriver,
  SandboxMounts,
  SandboxView,
} from "../sandbox/driver.js";
import type { PlatformApiChannel, PlatformApiListener, SandboxOrigin } from "./platform-api.js";
import { RuntimeApiServer } from "./runtime-api.js";
import { ownProcessesOnly, tcpEndpoint } from "./runtime-api-peer.js";
import {
  interpreter,
  NODE_FLAGS,
  nodeRuntimeArgs,
  pythonRuntimeArgs,
  RuntimeNotInstalled,
  runtimeMounts,
  runtimeServesRelays,
  transportArgs,
} from "./runtimes.js";
import type { StartGate, StartTurn } from "./start-gate.js";

/** Stem cells are kept per runtime identifier: each runs its own language version. */
export type StemFamily = Runtime;

export const ASSIGNMENT_PATH = "/lambent/stem-cell/assignment";

export interface StemCellDeps {
  driver: SandboxDriver;
  runDir: string;
  runtimesDir: string;
  runtimes: RuntimeStore;
  maxResponseBytes: number;
  pidsLimit: number;
  platformApi?: PlatformApiChannel;
  /** Cells boot through the worker's start gate, behind the cold starts waiting there. */
  starts?: StartGate;
}

/**
 * The stem cells that can run this function, if any: none for `provided` runtimes (they bring their
 * own bootstrap), nor for a Node.js function with `NODE_OPTIONS` (node reads it when it starts, and a
 * cell started long before: `--enable-source-maps`, `--require` would be lost).
 */
export function stemFamily(runtime: Runtime, environment?: Record<string, string>): StemFamily | undefined {
  const family = runtimeFamily(runtime);
  if (family === "provided") return undefined;
  if (family === "nodejs" && (environment?.NODE_OPTIONS ?? "") !== "") return undefined;
  return runtime;
}

/** Generous limits until the function's own apply (memory is set on adoption). */
const STEM_MEMORY_MB = 10240;

export class StemCell {
  readonly id = randomBytes(16).toString("hex");
  readonly api: RuntimeApiServer;
  sandbox!: Sandbox;
  endpoint!: RuntimeApiEndpoint;
  /** Receives the cell's output once adopted (before that it is dropped). */
  output: (chunk: Buffer) => Promise<void> | undefined = () => undefined;
  /** The cell's platform API channel (isolated networks), and who the API thinks is calling: the adopter's. */
  platformListener: PlatformApiListener | null = null;
  platformOrigin: SandboxOrigin | null = null;
  private held: ServerResponse | null = null;
  private asked!: Promise<void>;
  dead = false;

  private constructor(
    readonly family: StemFamily,
    private readonly deps: StemCellDeps,
  ) {
    this.api = new RuntimeApiServer({ onNext: () => {}, onInitError: () => {} }, deps.maxResponseBytes);
  }

  /** Start a cell and wait until its runtime is booted and asking for an assignment. */
  static async start(family: StemFamily, deps: StemCellDeps): Promise<StemCell> {
    const cell = new StemCell(family, deps);
    await cell.boot();
    return cell;
  }

  private async boot(): Promise<void> {
    const { driver } = this.deps;
    this.asked = new Promise<void>((resolve) => {
      this.api.extraRoute = (req, res, path) => {
        if (path !== ASSIGNMENT_PATH || req.method !== "GET") return false;
        req.resume();
        this.held = res;
        resolve();
        return true;
      };
    });
    this.endpoint = await this.api.listen(
      driver.runtimeApiEndpointKind() === "unix"
        ? { kind: "unix", path: join(this.deps.runDir, `${this.id}.sock`) }
        : tcpEndpoint(driver, join(this.deps.runDir, `${this.id}.sock`)),
    );
    const mounts = this.mounts(this.deps.runDir);
    const view = driver.view(mounts, this.endpoint);
    if (view.platformApiUrl !== undefined && this.deps.platformApi) {
      this.platformOrigin = { environmentId: this.id };
      this.platformListener = await this.deps.platformApi.listen(
        join(this.deps.runDir, `${this.id}.api.sock`),
        this.platformOrigin,
      );
    }
    // A cell serves 127.0.0.1:9001 and :9000 itself (functions with external extensions never take a cell).
    const relays = runtimeServesRelays(this.family, view, false);
    let argv: string[];
    try {
      const rt = this.deps.runtimes.resolve(this.family);
      if (!rt) throw new RuntimeNotInstalled(this.family);
      argv =
        runtimeFamily(this.family) === "nodejs"
          ? [
              ...interpreter(rt, view),
              ...NODE_FLAGS,
              `${view.runtimeRoot}/nodejs/stem.mjs`,
              ...transportArgs(view, relays),
              ...nodeRuntimeArgs(view),
            ]
          : [
              ...interpreter(rt, view),
              "-s",
              `${view.runtimeRoot}/python/stem.py`,
              ...transportArgs(view, relays),
              ...pythonRuntimeArgs(view).filter((a) => a.startsWith("--sdk-root=")),
            ];
    } catch (err) {
      await this.api.close();
      throw err;
    }
    try {
      this.sandbox = await driver.spawn({
        id: this.id,
        argv,
        env: {
          PATH: "/usr/local/bin:/usr/bin:/bin",
          LANG: "en_US.UTF-8",
          TZ: ":UTC",
          AWS_LAMBDA_RUNTIME_API: view.runtimeApiAddress,
        },
        mounts,
        limits: { memoryMb: STEM_MEMORY_MB, ephemeralStorageMb: 512, pids: this.deps.pidsLimit },
        runtimeApi: this.endpoint,
        ...(this.platformListener ? { platformApiSocket: this.platformListener.path } : {}),
        onOutput: (chunk) => this.output(chunk),
        stemCell: true,
        ...(relays ? { runtimeServesRelays: true } : {}),
      });
    } catch (err) {
      await Promise.all([this.api.close(), this.platformListener?.close()]);
      throw err;
    }
    // Only the cell's own processes may ask for its assignment (the next function's environment).
    this.api.admitOnly(ownProcessesOnly(this.sandbox));
    void this.sandbox.exited.then(() => {
      this.dead = true;
    });
    await Promise.race([
      this.asked,
      this.sandbox.exited.then(() => Promise.reject(new Error("stem cell exited during boot"))),
    ]);
  }

  private mounts(codeDir: string, optDir?: string): SandboxMounts {
    return {
      codeDir,
      runtimeDir: this.deps.runtimesDir,
      ...runtimeMounts(this.deps.runtimes.resolve(this.family)),
      ...(optDir ? { optDir } : {}),
    };
  }

  /** How this cell's sandbox shows the given code and layers (for the function's environment variables). */
  view(codeDir: string, optDir?: string): SandboxView {
    const view = this.deps.driver.view(this.mounts(codeDir, optDir), this.endpoint);
    if (this.deps.platformApi) view.platformApiUrl = this.deps.platformApi.urlFor(view);
    return view;
  }

  /** Hand the cell its function: environment, working directory and where its layers are (/opt). */
  assign(env: Record<string, string>, cwd: string, optRoot = "/opt"): void {
    const res = this.held;
    this.held = null;
    this.api.extraRoute = null;
    if (!res) throw new Error("stem cell is not waiting for an assignment");
    const body = JSON.stringify({ env, cwd, optRoot });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  }

  async destroy(): Promise<void> {
    this.dead = true;
    this.held?.destroy();
    await Promise.all([this.sandbox?.destroy(), this.api.close(), this.platformListener?.close()]);
  }
}

/** How long after a cold start its replacement cell is started. */
const REFILL_DELAY_MS = 50;

/** Cold starts per family within this window size the pool. */
const RATE_WINDOW_MS = 10_000;

export class StemCellPool {
  private readonly ready = new Map<StemFamily, StemCell[]>();
  private readonly watchers: Array<{ family: StemFamily; resolve: () => void }> = [];
  private readonly starting = new Map<StemFamily, number>();
  private readonly coldStarts = new Map<StemFamily, number[]>();
  private closed = false;
  /** Cells still starting: close() waits for them, so none outlives the pool (or its driver). */
  private readonly pending = new Set<Promise<unknown>>();
  /** Cells created and taken, for tests and the CLI. */
  readonly stats = { started: 0, taken: 0, misses: 0 };

  constructor(
    private readonly deps: StemCellDeps,
    /** At most this many waiting cells per family (0 disables stem cells). */
    private readonly max: number,
    /** At least this many per family in use (one that had a cold start), without recent cold starts too. */
    private readonly min = 1,
  ) {}

  get enabled(): boolean {
    return this.max > 0 && this.deps.driver.supportsStemCells === true;
  }

  /** Waiting cells of a family. */
  size(family: StemFamily): number {
    return this.ready.get(family)?.length ?? 0;
  }

  /** Waiting cells per family (the Prometheus view). */
  sizes(): Map<StemFamily, number> {
    const out = new Map<StemFamily, number>();
    for (const [family, cells] of this.ready) if (cells.length > 0) out.set(family, cells.length);
    return out;
  }

  /** The Runtime API endpoints of the cells waiting now (for tests: nobody else may ask them anything). */
  endpoints(): RuntimeApiEndpoint[] {
    return [...this.ready.values()].flat().map((cell) => cell.endpoint);
  }

  /** The processes of the cells of a family waiting now (for tests: their CPU priority). */
  async processIds(family: StemFamily): Promise<number[]> {
    const cells = this.ready.get(family) ?? [];
    return (await Promise.all(cells.map((cell) => cell.sandbox.processIds()))).flat();
  }

  /** Resolves once a cell of the runtime is waiting (starting one if none is on its way). */
  whenReady(family: StemFamily): Promise<void> {
    if (this.size(family) > 0) return Promise.resolve();
    const ready = new Promise<void>((resolve) => this.watchers.push({ family, resolve }));
    if ((this.starting.get(family) ?? 0) === 0) this.refill(family);
    return ready;
  }

  /** Take a booted cell for a cold start, if one is waiting; the pool refills behind it. */
  take(family: StemFamily): StemCell | undefined {
    if (!this.enabled) return undefined;
    const now = Date.now();
    const starts = (this.coldStarts.get(family) ?? []).filter((t) => t > now - RATE_WINDOW_MS);
    starts.push(now);
    this.coldStarts.set(family, starts);
    const cells = this.ready.get(family) ?? [];
    let cell: StemCell | undefined;
    while (cells.length > 0 && !cell) {
      const c = cells.pop() as StemCell;
      if (!c.dead) cell = c;
    }
    if (cell) this.stats.taken++;
    else this.stats.misses++;
    // Starting a process blocks the event loop for a few ms: not while this cold start is served.
    setTimeout(() => this.refill(family), REFILL_DELAY_MS).unref();
    return cell;
  }

  /**
   * How many cells a family should keep: one per recent cold start, at least one (at least `min` once
   * the family has had a cold start), at most `max`.
   */
  private target(family: StemFamily): number {
    const starts = this.coldStarts.get(family);
    const recent = (starts ?? []).filter((t) => t > Date.now() - RATE_WINDOW_MS).length;
    return Math.min(this.max, Math.max(starts ? this.min : 1, 1, recent));
  }

  /** Start cells in the background until the family's target is met. */
  refill(family: StemFamily): void {
    if (!this.enabled || this.closed) return;
    const cells = this.ready.get(family) ?? [];
    this.ready.set(family, cells);
    const target = this.target(family);
    // Fewer cold starts lately: let the oldest extra cells go.
    while (cells.length > target) void (cells.shift() as StemCell).destroy();
    const missing = target - cells.length - (this.starting.get(family) ?? 0);
    for (let i = 0; i < missing; i++) {
      this.starting.set(family, (this.starting.get(family) ?? 0) + 1);
      const started: Promise<unknown> = this.turn()
        .then(async (turn) => {
          try {
            return this.closed ? undefined : await StemCell.start(family, this.deps);
          } finally {
            turn.release();
          }
        })
        .then(
          (cell) => {
            this.starting.set(family, (this.starting.get(family) ?? 1) - 1);
            if (!cell) return;
            if (this.closed) return cell.destroy();
            this.stats.started++;
            cells.push(cell);
            for (let i = this.watchers.length - 1; i >= 0; i--) {
              const w = this.watchers[i] as { family: StemFamily; resolve: () => void };
              if (w.family === family) {
                this.watchers.splice(i, 1);
                w.resolve();
              }
            }
            void cell.sandbox.exited.then(() => {
              const i = cells.indexOf(cell);
              if (i !== -1) cells.splice(i, 1);
            });
          },
          (err: unknown) => {
            this.starting.set(family, (this.starting.get(family) ?? 1) - 1);
            console.error(
              `lambent: could not start a ${family} stem cell:`,
              err instanceof Error ? err.message : err,
            );
          },
        );
      const settled = started.catch(() => undefined).finally(() => this.pending.delete(settled));
      this.pending.add(settled);
    }
  }

  /** A turn of the worker's start gate (at once without one). */
  private turn(): Promise<StartTurn> {
    const gate = this.deps.starts;
    const turn = gate ? gate.tryAcquire() : { release: () => {} };
    if (turn) return Promise.resolve(turn);
    return new Promise((granted) => gate?.enqueue(granted));
  }

  /**
   * Start a cell for the newest installed Node.js and Python runtimes so their first cold starts find
   * one; other runtimes get cells from their first cold start on.
   */
  prewarm(): void {
    for (const family of ["nodejs", "python"] as const) {
      const newest = Object.values(CATALOG)
        .filter((r) => r.family === family && this.deps.runtimes.resolve(r.id))
        .pop();
      if (newest) this.refill(newest.id);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.ready.values()].flat();
    this.ready.clear();
    await Promise.all([...all.map((c) => c.destroy()), ...this.pending]);
  }
}
