/**
 * The environments of one function version on this worker: idle ones are
 * reused (provisioned first, then the most recently used), more are started
 * when all are busy (within the function's scaling rate), provisioned ones are
 * kept initialised and replaced when they die, and idle on-demand ones are
 * shut down after the idle timeout.
 *
 * A multi-concurrency function (Lambda Managed Instances' PerExecutionEnvironmentMaxConcurrency)
 * fills an environment's slots before starting another: an invoke joins an environment that runs
 * fewer events than its slots (or one still in Init, then waits for it), and a new environment
 * starts only when every slot of every environment is taken.
 */
import type { MergedLayers } from "../artifacts/artifact-store.js";
import { LambdaError, TooManyRequests } from "../errors.js";
import type { Assignment } from "../protocol/assignment.js";
import { RuntimeError } from "../protocol/errors.js";
import type { ProvisionedProgress } from "../protocol/invoke.js";
import { WORKER_BUSY } from "../protocol/wire.js";
import {
  type EnvironmentDeps,
  ExecutionEnvironment,
  type InvokeInput,
  type InvokeOutcome,
  platformFailure,
} from "./environment.js";
import { isIdle } from "./environment-state.js";
import { invokeStatus } from "./platform-lines.js";
import type { ScaleLimiter } from "./scale-limiter.js";
import type { StartTurn } from "./start-gate.js";
import { stemFamily } from "./stem-cells.js";

export type { ProvisionedProgress } from "../protocol/invoke.js";

/** Without a start gate: every start may go at once. */
const ANY_TURN: StartTurn = { release: () => {} };

/** How long an invoke over the scaling rate waits for a busy environment to free up. */
const SCALE_WAIT_MS = 1000;

export class FunctionPool {
  /** Idle environments whose runtime waits for an event (or is about to), most recent last. */
  private readonly idle: ExecutionEnvironment[] = [];
  private readonly idleProvisioned: ExecutionEnvironment[] = [];
  private readonly all = new Set<ExecutionEnvironment>();
  private readonly provisioned = new Set<ExecutionEnvironment>();
  /** Provisioned environments wanted, per source (a version or alias config). */
  private readonly targets = new Map<string, { count: number; report: (p: ProvisionedProgress) => void }>();
  private lastInitError: string | undefined;
  /** Invokes waiting for an environment to free up (over the scaling rate). */
  private readonly waiters: Array<(env: ExecutionEnvironment) => void> = [];
  private retired = false;
  /** Multi-concurrency: events each environment has taken (running, or waiting for its Init). */
  private readonly taken = new Map<ExecutionEnvironment, number>();
  /** Multi-concurrency: each environment's Init (one Init, awaited by every event that joined it). */
  private readonly inits = new Map<ExecutionEnvironment, Promise<void>>();
  /** Invokes in flight: retire() waits for these. */
  private inFlight = 0;
  private drained: (() => void) | null = null;
  /** An environment started ahead of any invoke (prewarm), until an invoke claims it or it goes idle. */
  private warming: { env: ExecutionEnvironment; ready: Promise<boolean> } | undefined;

  constructor(
    readonly fn: Assignment,
    private readonly deps: EnvironmentDeps,
    private readonly codeDir: () => Promise<string>,
    private readonly scale: ScaleLimiter,
    /** The function's merged layers (undefined without layers), resolved once per pool. */
    private readonly layers: () => Promise<MergedLayers | undefined> = async () => undefined,
    /** Told whenever an environment starts, goes busy or idle, or is gone (the worker's announcements). */
    private readonly changed: () => void = () => {},
  ) {}

  get size(): number {
    return this.all.size;
  }

  get idleCount(): number {
    return this.idle.length + this.idleProvisioned.length;
  }

  get isRetired(): boolean {
    return this.retired;
  }

  environments(): ExecutionEnvironment[] {
    return [...this.all];
  }

  /** Events one environment of this function runs at once. */
  get slots(): number {
    return this.fn.config.MaxConcurrency ?? 1;
  }

  async invoke(input: InvokeInput): Promise<InvokeOutcome> {
    if (this.slots > 1) return this.invokeShared(input);
    this.inFlight++;
    try {
      let env = this.takeIdle() ?? (await this.claimWarming());
      if (!env) {
        if (input.warmOnly) throw workerBusy();
        const adopted = await this.adoptStemCell(input);
        if (adopted && !("env" in adopted)) return adopted;
        env = adopted?.env;
      }
      if (!env) {
        const next = await this.startTurn();
        if ("env" in next) {
          env = next.env;
        } else if (!this.scale.tryTake()) {
          next.turn.release();
          env = await this.waitForEnvironment();
        } else {
          env = this.newEnvironment("on-demand");
          try {
            let opt: MergedLayers | undefined;
            try {
              opt = await this.layers();
            } catch (err) {
              await env.destroy("failure");
              return this.initFailure(env, input, layerFailure(err));
            }
            try {
              await env.init(await this.codeDir(), this.stemFor(opt), opt);
            } catch (failure) {
              if (isOutcome(failure)) return this.initFailure(env, input, failure);
              throw failure;
            }
          } finally {
            next.turn.release();
          }
        }
      }
      const outcome = await env.invoke(input, this.fn.config.Timeout);
      if (!outcome.fatal) this.release(env);
      return outcome;
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    }
  }

  /**
   * A new environment from a booted stem cell of this function's runtime, if one is waiting (and the
   * scaling rate has room): its start is the function's own Init, a few ms of CPU, not a runtime's
   * boot, so it takes no turn of the start gate and does not wait behind (or hold up) full starts.
   * Undefined when no cell can take it (the caller starts one through the gate); an outcome when the
   * Init failed.
   */
  private async adoptStemCell(
    input: InvokeInput,
  ): Promise<{ env: ExecutionEnvironment } | InvokeOutcome | undefined> {
    const cells = this.deps.stemCells;
    const family = stemFamily(this.fn.config.Runtime, this.fn.config.Environment);
    if (!cells?.enabled || !family || cells.size(family) === 0) return undefined;
    let opt: MergedLayers | undefined;
    try {
      opt = await this.layers();
    } catch {
      return undefined; // the gated path reports the failure
    }
    if (this.stemFamily(opt) === undefined || cells.size(family) === 0) return undefined;
    if (!this.scale.tryTake()) return undefined;
    const stem = cells.take(family);
    if (!stem) return undefined;
    const env = this.newEnvironment("on-demand");
    const adoption = this.deps.starts?.beginAdoption();
    try {
      await env.init(await this.codeDir(), stem, opt);
    } catch (failure) {
      if (isOutcome(failure)) return this.initFailure(env, input, failure);
      throw failure;
    } finally {
      adoption?.release();
    }
    return { env };
  }

  /**
   * The worker's turn to start an environment (see StartGate), or, when this function's environment
   * frees up first, that environment: an invoke waiting for its turn takes it instead.
   */
  private startTurn(): Promise<{ turn: StartTurn } | { env: ExecutionEnvironment }> {
    const gate = this.deps.starts;
    if (!gate) return Promise.resolve({ turn: ANY_TURN });
    const turn = gate.tryAcquire();
    if (turn) return Promise.resolve({ turn });
    return new Promise((resolve) => {
      const waiter = (env: ExecutionEnvironment) => {
        withdraw();
        resolve({ env });
      };
      const withdraw = gate.enqueue((turn) => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        resolve({ turn });
      }, this.fn.name);
      this.waiters.push(waiter);
    });
  }

  /** A stem cell for a new environment, if one can take it. */
  private stemFor(opt: MergedLayers | undefined) {
    const family = this.stemFamily(opt);
    return family ? this.deps.stemCells?.take(family) : undefined;
  }

  /** The stem cells this function can adopt: none with external extensions (the launcher starts them before the runtime). */
  private stemFamily(opt: MergedLayers | undefined) {
    return opt && opt.extensions.length > 0
      ? undefined
      : stemFamily(this.fn.config.Runtime, this.fn.config.Environment);
  }

  /**
   * Start one environment before any invoke asks for it (a dev-mounted function right after its
   * folder changed): the next invoke finds it initialised, or waits for its Init instead of starting
   * another. Nothing happens when the pool has environments already or is over its scaling rate. An
   * Init that fails ends the environment quietly: the next invoke starts one and reports the failure.
   */
  prewarm(): void {
    if (this.retired || this.all.size > 0 || this.slots > 1 || !this.scale.tryTake()) return;
    const env = this.newEnvironment("on-demand");
    const ready = (async () => {
      try {
        const opt = await this.layers();
        await env.init(await this.codeDir(), this.stemFor(opt), opt);
        return true;
      } catch {
        await env.destroy("failure");
        return false;
      }
    })();
    const warming = { env, ready };
    this.warming = warming;
    void ready.then((ok) => {
      if (this.warming !== warming) return;
      this.warming = undefined;
      if (ok) this.release(env);
    });
  }

  /** The environment a prewarm is starting, once its Init is done (undefined if it failed). */
  private async claimWarming(): Promise<ExecutionEnvironment | undefined> {
    const warming = this.warming;
    if (!warming) return undefined;
    this.warming = undefined;
    return (await warming.ready) && !this.retired ? warming.env : undefined;
  }

  /** An invoke of a multi-concurrency function: into a free slot, else a new environment. */
  private async invokeShared(input: InvokeInput): Promise<InvokeOutcome> {
    this.inFlight++;
    let env: ExecutionEnvironment | undefined;
    try {
      env = this.withRoom() ?? (this.scale.tryTake() ? this.startShared() : undefined);
      if (env) this.taken.set(env, (this.taken.get(env) ?? 0) + 1);
      // Over the scaling rate: the next slot to free up (releaseShared counts it for us).
      else env = await this.waitForEnvironment();
      try {
        await this.inits.get(env);
      } catch (failure) {
        if (isOutcome(failure)) return this.initFailure(env, input, { ...failure });
        throw failure;
      }
      return await env.invoke(input, this.fn.config.Timeout);
    } finally {
      if (env) this.releaseShared(env);
      this.inFlight--;
      if (this.inFlight === 0) this.drained?.();
    }
  }

  /** An environment with a free slot: one already running events first (fill before spreading), else one in Init. */
  private withRoom(): ExecutionEnvironment | undefined {
    let initializing: ExecutionEnvironment | undefined;
    let idle: ExecutionEnvironment | undefined;
    for (const env of this.all) {
      const taken = this.taken.get(env) ?? 0;
      if (taken >= env.slots || env.state === "dead") continue;
      // In Init: joinable when it is one of ours (a provisioned one's Init is not awaitable here).
      if (env.state === "initializing") initializing ??= this.inits.has(env) ? env : undefined;
      else if (taken > 0 && env.hasRoom) return env;
      else if (env.hasRoom) idle ??= env;
    }
    return idle ?? initializing;
  }

  /** A new environment of a multi-concurrency function: its Init, awaited by every event that joins it. */
  private startShared(): ExecutionEnvironment {
    const env = this.newEnvironment("on-demand");
    const init = (async () => {
      let opt: MergedLayers | undefined;
      try {
        opt = await this.layers();
      } catch (err) {
        await env.destroy("failure");
        throw layerFailure(err);
      }
      await env.init(await this.codeDir(), this.stemFor(opt), opt);
    })();
    // Awaited by the events that joined it (each reports a failure as its own).
    init.catch(() => {});
    this.inits.set(env, init);
    return env;
  }

  private releaseShared(env: ExecutionEnvironment): void {
    const taken = (this.taken.get(env) ?? 1) - 1;
    if (taken > 0) this.taken.set(env, taken);
    else this.taken.delete(env);
    if (this.retired || env.state === "dead") {
      if (taken === 0) void env.destroy();
      return;
    }
    if (env.state === "initializing") return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.taken.set(env, taken + 1);
      return waiter(env);
    }
    // Idle: the reaper may stop it after the idle timeout.
    const stack = this.provisioned.has(env) ? this.idleProvisioned : this.idle;
    if (taken === 0 && !stack.includes(env)) stack.push(env);
  }

  private waitForEnvironment(): Promise<ExecutionEnvironment> {
    return new Promise((resolve, reject) => {
      const waiter = (env: ExecutionEnvironment) => {
        clearTimeout(timer);
        resolve(env);
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        reject(
          TooManyRequests(
            "Rate Exceeded.",
            { Reason: "FunctionInvocationRateLimitExceeded" },
            { "Retry-After": "1" },
          ),
        );
      }, SCALE_WAIT_MS);
      this.waiters.push(waiter);
    });
  }

  /** The init failure as the invoke reports it: logged under the request, no environment kept. */
  private initFailure(env: ExecutionEnvironment, input: InvokeInput, failure: InvokeOutcome): InvokeOutcome {
    const pl = env.platformLines;
    const errorType = failure.errorType ?? RuntimeError.InitError;
    let fault: string | undefined;
    if (failure.errorType === RuntimeError.InvalidEntrypoint) {
      // Lambda names the request in this one: `RequestId: … Error: fork/exec /var/task/bootstrap: …`.
      const { errorMessage } = JSON.parse(failure.payload.toString()) as { errorMessage: string };
      const message = `RequestId: ${input.requestId} ${errorMessage}`;
      failure.payload = Buffer.from(JSON.stringify({ errorType: failure.errorType, errorMessage: message }));
      fault = pl.fault(`${message}\r${failure.errorType}`);
    }
    const lines = [
      pl.start(input.requestId, this.fn.version, input.invokedFunctionArn),
      fault,
      pl.end(input.requestId),
      pl.report({
        requestId: input.requestId,
        durationMs: failure.durationMs,
        memorySizeMb: this.fn.config.MemorySize,
        maxMemoryUsedMb: 0,
        initDurationMs: env.initElapsedMs,
        errorType,
        status: invokeStatus({ ok: false, errorType, fatal: true }),
      }),
    ].filter((l): l is string => l !== undefined);
    for (const line of lines) this.deps.logs.write(env.logGroup, env.logStream, line);
    if (input.wantTail) failure.tail = Buffer.from(`${lines.join("\n")}\n`).toString("base64");
    return failure;
  }

  private takeIdle(): ExecutionEnvironment | undefined {
    for (const stack of [this.idleProvisioned, this.idle]) {
      while (stack.length > 0) {
        const env = stack.pop() as ExecutionEnvironment;
        if (isIdle(env.state) || env.state === "finishing") {
          this.changed();
          return env;
        }
      }
    }
    return undefined;
  }

  private release(env: ExecutionEnvironment): void {
    if (this.retired || env.state === "dead") {
      void env.destroy();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) return waiter(env);
    (this.provisioned.has(env) ? this.idleProvisioned : this.idle).push(env);
    this.changed();
  }

  private newEnvironment(kind: "on-demand" | "provisioned-concurrency"): ExecutionEnvironment {
    const env = new ExecutionEnvironment(this.fn, this.deps, kind);
    this.all.add(env);
    if (kind === "provisioned-concurrency") this.provisioned.add(env);
    this.changed();
    env.onDead(() => {
      this.all.delete(env);
      this.inits.delete(env);
      for (const stack of [this.idle, this.idleProvisioned]) {
        const i = stack.indexOf(env);
        if (i !== -1) stack.splice(i, 1);
      }
      if (this.provisioned.delete(env)) this.fillProvisioned();
      this.changed();
    });
    return env;
  }

  /** Shut down on-demand environments idle since before `cutoff` (provisioned ones stay). */
  reapIdle(cutoff: number): void {
    for (const env of [...this.idle]) {
      if (isIdle(env.state) && env.lastUsed < cutoff) void env.destroy();
    }
  }

  get provisionedTarget(): number {
    let n = 0;
    for (const t of this.targets.values()) n += t.count;
    return n;
  }

  /**
   * Keep `count` provisioned environments for `source` (0 removes it). Progress
   * is reported as environments initialise.
   */
  setProvisioned(source: string, count: number, report: (p: ProvisionedProgress) => void): void {
    if (count <= 0) this.targets.delete(source);
    else this.targets.set(source, { count, report });
    this.fillProvisioned();
  }

  private fillProvisioned(): void {
    if (this.retired) return;
    const target = this.provisionedTarget;
    // Too many: stop idle ones first, then let busy ones finish and go.
    let extra = this.provisioned.size - target;
    for (const env of [...this.idleProvisioned]) {
      if (extra <= 0) break;
      this.provisioned.delete(env);
      void env.destroy();
      extra--;
    }
    for (const env of [...this.provisioned]) {
      if (extra <= 0) break;
      this.provisioned.delete(env);
      extra--;
    }
    for (let i = this.provisioned.size; i < target; i++) {
      const env = this.newEnvironment("provisioned-concurrency");
      Promise.all([this.codeDir(), this.layers()])
        .then(([dir, opt]) => env.init(dir, undefined, opt))
        .then(
          () => {
            this.lastInitError = undefined;
            this.release(env);
            this.reportProvisioned();
          },
          (failure: unknown) => {
            this.lastInitError = isOutcome(failure)
              ? `FUNCTION_ERROR_INIT_FAILURE: ${failure.payload.toString("utf8").slice(0, 512)}`
              : String(failure);
            this.provisioned.delete(env);
            void env.destroy();
            this.reportProvisioned();
          },
        );
    }
    this.reportProvisioned();
  }

  private reportProvisioned(): void {
    const ready = [...this.provisioned].filter(
      (e) => e.state !== "initializing" && e.state !== "dead",
    ).length;
    const alive = this.provisioned.size;
    for (const { count, report } of this.targets.values()) {
      const available = Math.min(count, ready);
      const reason = available < count ? this.lastInitError : undefined;
      report({
        allocated: Math.min(count, alive),
        available,
        status: available >= count ? "READY" : reason !== undefined ? "FAILED" : "IN_PROGRESS",
        ...(reason !== undefined ? { reason } : {}),
      });
    }
  }

  /** Settles once no invoke of this pool is in flight. */
  async idleAll(): Promise<void> {
    while (this.inFlight > 0) {
      await new Promise<void>((r) => {
        const prev = this.drained;
        this.drained = () => {
          prev?.();
          r();
        };
      });
    }
  }

  /** Stop taking invokes; environments are destroyed as their invokes finish. */
  async retire(): Promise<void> {
    this.retired = true;
    this.targets.clear();
    for (const env of [...this.idle.splice(0), ...this.idleProvisioned.splice(0)]) void env.destroy();
    if (this.inFlight > 0) await new Promise<void>((r) => (this.drained = r));
    await Promise.all([...this.all].map((e) => e.destroy()));
  }

  /** Kill everything now (server stop). */
  async destroy(): Promise<void> {
    this.retired = true;
    this.targets.clear();
    this.idle.length = 0;
    this.idleProvisioned.length = 0;
    await Promise.all([...this.all].map((e) => e.destroy()));
  }
}

function layerFailure(err: unknown): InvokeOutcome {
  const errorMessage = `Lambent could not prepare the function's layers: ${err instanceof Error ? err.message : String(err)}`;
  return platformFailure(RuntimeError.InitError, errorMessage);
}

function isOutcome(x: unknown): x is InvokeOutcome {
  return typeof x === "object" && x !== null && "payload" in x && "fatal" in x;
}

/** A `warmOnly` invoke found no idle environment: the frontend tries elsewhere (never the caller's error). */
export function workerBusy(): LambdaError {
  return new LambdaError(WORKER_BUSY, 409, "No idle environment of this version on this worker.");
}
