/**
 * The environments of one function version on this worker: idle ones are
 * reused (most recently used first), more are started when all are busy, and
 * idle ones are shut down after the idle timeout.
 */
import type { FunctionVersion } from "../control/functions.js";
import {
  type EnvironmentDeps,
  ExecutionEnvironment,
  type InvokeInput,
  type InvokeOutcome,
} from "./environment.js";

export class FunctionPool {
  /** Environments whose runtime waits for an event (or is about to), most recent last. */
  private readonly idle: ExecutionEnvironment[] = [];
  private readonly all = new Set<ExecutionEnvironment>();
  private retired = false;
  /** Invokes in flight: retire() waits for these. */
  private inFlight = 0;
  private drained: (() => void) | null = null;

  constructor(
    readonly fn: FunctionVersion,
    private readonly deps: EnvironmentDeps,
    private readonly codeDir: () => Promise<string>,
  ) {}

  get size(): number {
    return this.all.size;
  }

  get idleCount(): number {
    return this.idle.length;
  }

  environments(): ExecutionEnvironment[] {
    return [...this.all];
  }

  async invoke(input: InvokeInput): Promise<InvokeOutcome> {
    this.inFlight++;
    try {
      let env = this.takeIdle();
      if (!env) {
        env = this.newEnvironment("on-demand");
        try {
          await env.init(await this.codeDir());
        } catch (failure) {
          if (isOutcome(failure)) return this.initFailure(env, input, failure);
          throw failure;
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

  /** The init failure as the invoke reports it: logged under the request, no environment kept. */
  private initFailure(env: ExecutionEnvironment, input: InvokeInput, failure: InvokeOutcome): InvokeOutcome {
    const line = `START RequestId: ${input.requestId} Version: ${this.fn.version}`;
    this.deps.logs.write(env.logGroup, env.logStream, line);
    this.deps.logs.write(env.logGroup, env.logStream, `END RequestId: ${input.requestId}`);
    const report = `REPORT RequestId: ${input.requestId}\tDuration: 0.00 ms\tBilled Duration: 0 ms\tMemory Size: ${this.fn.config.MemorySize} MB\tMax Memory Used: 0 MB\tStatus: error\tError Type: ${failure.errorType}`;
    this.deps.logs.write(env.logGroup, env.logStream, report);
    if (input.wantTail)
      failure.tail = Buffer.from(`${line}\nEND RequestId: ${input.requestId}\n${report}\n`).toString(
        "base64",
      );
    return failure;
  }

  private takeIdle(): ExecutionEnvironment | undefined {
    while (this.idle.length > 0) {
      const env = this.idle.pop() as ExecutionEnvironment;
      if (env.state === "ready" || env.state === "finishing") return env;
    }
    return undefined;
  }

  private release(env: ExecutionEnvironment): void {
    if (this.retired) {
      void env.destroy();
      return;
    }
    this.idle.push(env);
  }

  private newEnvironment(kind: "on-demand" | "provisioned-concurrency"): ExecutionEnvironment {
    const env = new ExecutionEnvironment(this.fn, this.deps, kind);
    this.all.add(env);
    env.onDead(() => {
      this.all.delete(env);
      const i = this.idle.indexOf(env);
      if (i !== -1) this.idle.splice(i, 1);
    });
    return env;
  }

  /** Shut down environments idle since before `cutoff`. */
  reapIdle(cutoff: number): void {
    for (const env of [...this.idle]) {
      if (env.state === "ready" && env.lastUsed < cutoff) void env.destroy();
    }
  }

  /** Stop taking invokes; environments are destroyed as their invokes finish. */
  async retire(): Promise<void> {
    this.retired = true;
    for (const env of this.idle.splice(0)) void env.destroy();
    if (this.inFlight > 0) await new Promise<void>((r) => (this.drained = r));
    await Promise.all([...this.all].map((e) => e.destroy()));
  }

  /** Kill everything now (server stop). */
  async destroy(): Promise<void> {
    this.retired = true;
    this.idle.length = 0;
    await Promise.all([...this.all].map((e) => e.destroy()));
  }
}

function isOutcome(x: unknown): x is InvokeOutcome {
  return typeof x === "object" && x !== null && "payload" in x && "fatal" in x;
}
