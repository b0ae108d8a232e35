/**
 * An execution environment: one sandboxed runtime process tree with its own
 * Runtime API endpoint and log stream. Init once, then one event at a time;
 * frozen between invokes where the driver can freeze.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { FunctionVersion } from "../control/functions.js";
import type { Sandbox, SandboxDriver, SandboxExit } from "../sandbox/driver.js";
import type { LogSink } from "../telemetry/logs.js";
import { type Invocation, RuntimeApiServer, type RuntimeOutcome } from "./runtime-api.js";
import { runtimeArgv, runtimeEnvironment } from "./runtimes.js";
import type { StemCell, StemCellPool } from "./stem-cells.js";

export interface EnvironmentDeps {
  driver: SandboxDriver;
  logs: LogSink;
  /** Directory for per-environment sockets. */
  runDir: string;
  runtimesDir: string;
  region: string;
  maxResponseBytes: number;
  initTimeoutMs: number;
  /** Freeze the sandbox between invokes. */
  freezeIdle: boolean;
  /** Pre-started runtimes for cold starts (absent or empty: always spawn). */
  stemCells?: StemCellPool;
  pidsLimit: number;
}

export interface InvokeInput {
  requestId: string;
  payload: Buffer;
  invokedFunctionArn: string;
  clientContext?: string;
  cognitoIdentity?: string;
  traceId: string;
  /** Collect the last 4 KB of this run's log. */
  wantTail: boolean;
}

export interface InvokeOutcome {
  /** The runtime's answer, or what the platform answers in its place. */
  ok: boolean;
  payload: Buffer;
  errorType?: string;
  durationMs: number;
  initDurationMs?: number;
  /** Last 4 KB of the run's log, when asked for. */
  tail?: string;
  /** The environment cannot be used again. */
  fatal: boolean;
}

export type EnvironmentState = "initializing" | "ready" | "busy" | "finishing" | "dead";

const TAIL_BYTES = 4096;

function ms(n: number): string {
  return n.toFixed(2);
}

function logStreamName(version: string, id: string): string {
  const d = new Date().toISOString();
  return `${d.slice(0, 4)}/${d.slice(5, 7)}/${d.slice(8, 10)}/[${version}]${id}`;
}

export class ExecutionEnvironment {
  readonly id = randomBytes(16).toString("hex");
  readonly logGroup: string;
  readonly logStream: string;
  state: EnvironmentState = "initializing";
  lastUsed = Date.now();
  initDurationMs = 0;
  /** Init time not yet reported (reported on the first invoke's REPORT line). */
  private pendingInitReport = true;
  private sandbox: Sandbox | null = null;
  private api: RuntimeApiServer;
  private partialLine = "";
  private tail: string[] | null = null;
  private tailBytes = 0;
  private frozen = false;
  private freezeChain: Promise<void> = Promise.resolve();
  private onExit: ((exit: SandboxExit) => void) | null = null;
  private exitInfo: SandboxExit | null = null;
  private readonly listeners: { ready: Array<() => void>; dead: Array<() => void> } = { ready: [], dead: [] };
  private initWaiter: { resolve: () => void; reject: (o: InvokeOutcome) => void } | null = null;

  constructor(
    readonly fn: FunctionVersion,
    private readonly deps: EnvironmentDeps,
    readonly initializationType: "on-demand" | "provisioned-concurrency",
  ) {
    this.logGroup = fn.config.LogGroup ?? `/aws/lambda/${fn.name}`;
    this.logStream = logStreamName(fn.version, this.id);
    this.api = new RuntimeApiServer(this.apiEvents, deps.maxResponseBytes);
  }

  private readonly apiEvents = {
    onNext: () => this.runtimeIsWaiting(),
    onInitError: (errorType: string, body: Buffer) => this.initFailed(errorType, body),
  };

  onReady(cb: () => void): void {
    this.listeners.ready.push(cb);
  }

  onDead(cb: () => void): void {
    this.listeners.dead.push(cb);
  }

  /**
   * Run Init: start the runtime in its sandbox and wait until it asks for the
   * first event. Rejects with the outcome an invoke should report on failure.
   */
  async init(codeDir: string, stem?: StemCell): Promise<void> {
    const started = performance.now();
    const initialized = new Promise<void>((resolve, reject) => {
      this.initWaiter = { resolve, reject };
    });
    this.platformLog(
      `INIT_START Runtime Version: ${this.fn.config.Runtime}\tRuntime Version ARN: lambent:${this.fn.config.Runtime}`,
    );
    try {
      this.sandbox = stem ? await this.adopt(stem, codeDir) : await this.spawn(codeDir);
    } catch (err) {
      await Promise.all([this.destroy(), stem?.destroy()]);
      throw this.platformFailure(
        "Runtime.InitError",
        `Could not start the runtime: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    this.sandbox.exited.then((exit) => this.exited(exit));
    const timer = setTimeout(() => {
      this.initWaiter?.reject(
        this.platformFailure(
          "Sandbox.Timedout",
          `Init phase timed out after ${ms(this.deps.initTimeoutMs / 1000)} seconds`,
        ),
      );
      void this.destroy();
    }, this.deps.initTimeoutMs);
    try {
      await initialized;
    } finally {
      clearTimeout(timer);
      this.initWaiter = null;
    }
    this.initDurationMs = performance.now() - started;
    // The function's CPU share applies from here; the write need not hold up the first invoke.
    void this.sandbox?.endInit?.().catch(() => {});
    this.state = "ready";
  }

  private identity() {
    return {
      region: this.deps.region,
      logGroup: this.logGroup,
      logStream: this.logStream,
      initializationType: this.initializationType,
    };
  }

  private limits() {
    return {
      memoryMb: this.fn.config.MemorySize,
      ephemeralStorageMb: this.fn.config.EphemeralStorageSize,
      pids: this.deps.pidsLimit,
    };
  }

  /** A fresh sandbox running the function's runtime. */
  private async spawn(codeDir: string): Promise<Sandbox> {
    const { driver } = this.deps;
    const endpoint = await this.api.listen(
      driver.runtimeApiEndpointKind() === "unix"
        ? { kind: "unix", path: join(this.deps.runDir, `${this.id}.sock`) }
        : { kind: "tcp", host: "127.0.0.1", port: 0 },
    );
    const mounts = { codeDir, runtimeDir: this.deps.runtimesDir };
    const view = driver.view(mounts, endpoint);
    return driver.spawn({
      id: this.id,
      argv: runtimeArgv(this.fn, view),
      env: runtimeEnvironment(this.fn, view, this.identity()),
      mounts,
      limits: this.limits(),
      runtimeApi: endpoint,
      onOutput: (chunk) => this.output(chunk),
    });
  }

  /** A stem cell's booted runtime, given this function (a fresh spawn if the cell cannot take it). */
  private async adopt(stem: StemCell, codeDir: string): Promise<Sandbox> {
    const mounts = { codeDir, runtimeDir: this.deps.runtimesDir };
    try {
      if (stem.dead) throw new Error("stem cell died");
      await stem.sandbox.adopt?.(mounts, this.limits());
    } catch {
      await stem.destroy();
      return this.spawn(codeDir);
    }
    this.api = stem.api;
    stem.api.setEvents(this.apiEvents);
    stem.output = (chunk) => this.output(chunk);
    const view = stem.view(codeDir);
    stem.assign(runtimeEnvironment(this.fn, view, this.identity()), view.taskRoot);
    return stem.sandbox;
  }

  private platformFailure(errorType: string, message: string): InvokeOutcome {
    return {
      ok: false,
      payload: Buffer.from(JSON.stringify({ errorType, errorMessage: message })),
      errorType,
      durationMs: 0,
      fatal: true,
    };
  }

  private runtimeIsWaiting(): void {
    if (this.initWaiter) {
      this.initWaiter.resolve();
      return;
    }
    if (this.state !== "finishing" && this.state !== "initializing") return;
    this.state = "ready";
    this.lastUsed = Date.now();
    if (this.deps.freezeIdle) this.freeze();
    for (const cb of this.listeners.ready) cb();
  }

  private initFailed(errorType: string, body: Buffer): void {
    this.platformLog(
      `INIT_REPORT Init Duration: ${ms(this.initDurationMs)} ms\tPhase: init\tStatus: error\tError Type: ${errorType}`,
    );
    this.initWaiter?.reject({ ok: false, payload: body, errorType, durationMs: 0, fatal: true });
    void this.destroy();
  }

  private exited(exit: SandboxExit): void {
    this.exitInfo = exit;
    const onExit = this.onExit;
    if (onExit) onExit(exit);
    if (this.initWaiter) {
      const reason = exitReason(exit);
      this.platformLog(
        `INIT_REPORT Init Duration: ${ms(this.initDurationMs)} ms\tPhase: init\tStatus: error\tError Type: ${reason.errorType}`,
      );
      this.initWaiter.reject(
        this.platformFailure(reason.errorType, `Runtime exited with error: ${reason.text}`),
      );
    }
    void this.destroy();
  }

  private freeze(): void {
    if (this.frozen || !this.sandbox) return;
    this.frozen = true;
    const sb = this.sandbox;
    this.freezeChain = this.freezeChain.then(() => sb.freeze()).catch(() => {});
  }

  private async thaw(): Promise<void> {
    if (!this.frozen || !this.sandbox) return;
    this.frozen = false;
    const sb = this.sandbox;
    this.freezeChain = this.freezeChain.then(() => sb.thaw()).catch(() => {});
    await this.freezeChain;
  }

  /** Run one event. The environment must be ready or finishing (its runtime about to ask for more). */
  async invoke(input: InvokeInput, timeoutSeconds: number): Promise<InvokeOutcome> {
    this.state = "busy";
    if (this.frozen) await this.thaw();
    const sandbox = this.sandbox;
    if (!sandbox || this.exitInfo) {
      return this.platformFailure(
        "Runtime.ExitError",
        `RequestId: ${input.requestId} Error: Runtime exited with error: ${exitReason(this.exitInfo).text}`,
      );
    }
    if (input.wantTail) {
      this.tail = [];
      this.tailBytes = 0;
    }
    this.platformLog(`START RequestId: ${input.requestId} Version: ${this.fn.version}`);
    sandbox.resetPeakMemory();
    const started = performance.now();
    const deadlineMs = Date.now() + timeoutSeconds * 1000;
    const inv: Invocation = {
      requestId: input.requestId,
      payload: input.payload,
      deadlineMs,
      invokedFunctionArn: input.invokedFunctionArn,
      traceId: input.traceId,
      ...(input.clientContext !== undefined ? { clientContext: input.clientContext } : {}),
      ...(input.cognitoIdentity !== undefined ? { cognitoIdentity: input.cognitoIdentity } : {}),
    };

    type Ended = RuntimeOutcome | { kind: "timeout" } | { kind: "exit"; exit: SandboxExit };
    let timer: NodeJS.Timeout | undefined;
    const ended = await new Promise<Ended>((resolve) => {
      this.onExit = (exit) => resolve({ kind: "exit", exit });
      timer = setTimeout(() => resolve({ kind: "timeout" }), timeoutSeconds * 1000);
      this.api.deliver(inv).then(resolve);
    });
    clearTimeout(timer);
    this.onExit = null;
    const durationMs = performance.now() - started;
    // Output the runtime wrote before answering may still sit in the pipe: let it be read first.
    await new Promise<void>((r) => setImmediate(r));

    let outcome: InvokeOutcome;
    switch (ended.kind) {
      case "response":
        outcome = { ok: true, payload: ended.body, durationMs, fatal: false };
        break;
      case "error":
        outcome = { ok: false, payload: ended.body, errorType: ended.errorType, durationMs, fatal: false };
        break;
      case "tooLarge": {
        const errorMessage = `Response payload size exceeded maximum allowed payload size (${this.deps.maxResponseBytes} bytes).`;
        outcome = {
          ok: false,
          payload: Buffer.from(JSON.stringify({ errorMessage, errorType: "Function.ResponseSizeTooLarge" })),
          errorType: "Function.ResponseSizeTooLarge",
          durationMs,
          fatal: false,
        };
        break;
      }
      case "timeout": {
        const text = `Task timed out after ${ms(timeoutSeconds)} seconds`;
        this.platformLog(`${new Date().toISOString()} ${input.requestId} ${text}`);
        outcome = {
          ...this.platformFailure("Sandbox.Timedout", `RequestId: ${input.requestId} Error: ${text}`),
          durationMs: timeoutSeconds * 1000,
        };
        break;
      }
      case "exit": {
        const reason = exitReason(ended.exit);
        this.platformLog(
          `RequestId: ${input.requestId} Error: Runtime exited with error: ${reason.text}\n${reason.errorType}`,
        );
        outcome = {
          ...this.platformFailure(
            reason.errorType,
            `RequestId: ${input.requestId} Error: Runtime exited with error: ${reason.text}`,
          ),
          durationMs,
        };
        break;
      }
    }
    if (outcome.fatal) this.api.abandon();
    this.report(input.requestId, outcome);
    if (input.wantTail) {
      outcome.tail = Buffer.from(this.tailText(), "utf8").toString("base64");
      this.tail = null;
    }
    if (outcome.fatal) {
      await this.destroy();
    } else {
      this.state = "finishing";
      this.lastUsed = Date.now();
    }
    return outcome;
  }

  private report(requestId: string, outcome: InvokeOutcome): void {
    const peak = this.sandbox?.peakMemoryBytes();
    const maxUsed = peak === undefined ? 0 : Math.round(peak / (1024 * 1024));
    const initPart =
      this.pendingInitReport && this.initDurationMs > 0
        ? `\tInit Duration: ${ms(this.initDurationMs)} ms`
        : "";
    if (this.pendingInitReport && this.initDurationMs > 0) outcome.initDurationMs = this.initDurationMs;
    this.pendingInitReport = false;
    const status =
      outcome.fatal && outcome.errorType
        ? `\tStatus: ${outcome.errorType === "Sandbox.Timedout" ? "timeout" : "error"}`
        : "";
    this.platformLog(`END RequestId: ${requestId}`);
    this.platformLog(
      `REPORT RequestId: ${requestId}\tDuration: ${ms(outcome.durationMs)} ms\tBilled Duration: ${Math.max(1, Math.ceil(outcome.durationMs))} ms\tMemory Size: ${this.fn.config.MemorySize} MB\tMax Memory Used: ${maxUsed} MB${initPart}${status}`,
    );
  }

  private platformLog(line: string): void {
    this.deps.logs.write(this.logGroup, this.logStream, line);
    this.addTail(line);
  }

  private output(chunk: Buffer): void {
    const text = this.partialLine + chunk.toString("utf8");
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      const line = text.slice(start, nl);
      start = nl + 1;
      this.deps.logs.write(this.logGroup, this.logStream, line);
      this.addTail(line);
    }
    this.partialLine = text.slice(start);
  }

  private addTail(line: string): void {
    if (!this.tail) return;
    this.tail.push(line);
    this.tailBytes += Buffer.byteLength(line) + 1;
    while (this.tailBytes > TAIL_BYTES * 2 && this.tail.length > 1) {
      this.tailBytes -= Buffer.byteLength(this.tail.shift() as string) + 1;
    }
  }

  private tailText(): string {
    const all = Buffer.from(`${(this.tail ?? []).join("\n")}\n`, "utf8");
    if (all.length <= TAIL_BYTES) return all.toString("utf8");
    // The last 4 KB, cut at a character boundary.
    let startAt = all.length - TAIL_BYTES;
    while (startAt < all.length && ((all[startAt] as number) & 0xc0) === 0x80) startAt++;
    return all.subarray(startAt).toString("utf8");
  }

  /** The id of the sandbox running this environment (a stem cell's, when adopted from one). */
  get sandboxId(): string | undefined {
    return this.sandbox?.id;
  }

  /** Memory the sandbox holds now (for density figures), if known. */
  get pid(): number | undefined {
    return this.sandbox?.pid;
  }

  private destroying: Promise<void> | null = null;

  destroy(): Promise<void> {
    if (!this.destroying) this.destroying = this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    this.state = "dead";
    if (this.partialLine) {
      this.deps.logs.write(this.logGroup, this.logStream, this.partialLine);
      this.partialLine = "";
    }
    for (const cb of this.listeners.dead) cb();
    const sb = this.sandbox;
    this.sandbox = null;
    await Promise.all([sb?.destroy(), this.api.close()]);
  }
}

function exitReason(exit: SandboxExit | null): { errorType: string; text: string } {
  if (!exit) return { errorType: "Runtime.ExitError", text: "exit status unknown" };
  if (exit.oomKilled) return { errorType: "Runtime.OutOfMemory", text: "signal: killed" };
  if (exit.signal)
    return {
      errorType: "Runtime.ExitError",
      text: `signal: ${exit.signal.replace(/^SIG/, "").toLowerCase()}`,
    };
  return { errorType: "Runtime.ExitError", text: `exit status ${exit.code ?? 0}` };
}
