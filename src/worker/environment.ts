/**
 * An execution environment: one sandboxed runtime process tree with its own
 * Runtime API endpoint and log stream. Init once, then one event at a time
 * (or up to `slots` at once: a Lambda Managed Instances function's
 * PerExecutionEnvironmentMaxConcurrency); frozen between invokes where the
 * driver can freeze.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { MergedLayers } from "../artifacts/artifact-store.js";
import type { LogSink } from "../logs/log-sink.js";
import type { Assignment } from "../protocol/assignment.js";
import {
  type DataPlaneErrorType,
  ExtensionError,
  errorBody,
  FunctionError,
  RuntimeError,
  SandboxError,
} from "../protocol/errors.js";
import type { InvokeInput, InvokeOutcome } from "../protocol/invoke.js";
import type { RuntimeStore } from "../runtimes/store.js";
import type { Sandbox, SandboxDriver, SandboxExit, SandboxMounts, SandboxView } from "../sandbox/driver.js";
import { type EnvironmentState, isIdle, transition } from "./environment-state.js";
import { ExtensionsApi, exitStatusText, MAX_EXTENSIONS, type ShutdownReason } from "./extensions-api.js";
import { DEFAULT_OUTPUT_LIMITS, LogCapture, type OutputLimits } from "./log-capture.js";
import type { PlatformApiChannel, PlatformApiListener, SandboxOrigin } from "./platform-api.js";
import { billedDurationMs, invokeStatus, ms, PlatformLines } from "./platform-lines.js";
import { type Invocation, RuntimeApiServer, type RuntimeOutcome } from "./runtime-api.js";
import { ownProcessesOnly, tcpEndpoint } from "./runtime-api-peer.js";
import {
  InvalidEntrypoint,
  runtimeArgv,
  runtimeEnvironment,
  runtimeMounts,
  runtimeServesRelays,
  runtimeVersionLabel,
} from "./runtimes.js";
import type { StartGate } from "./start-gate.js";
import type { StemCell, StemCellPool } from "./stem-cells.js";
import { TELEMETRY_PATH, TelemetryApi } from "./telemetry-api.js";
import { directTransport, namespaceTransport, type TelemetryTransport } from "./telemetry-transport.js";

export interface EnvironmentDeps {
  driver: SandboxDriver;
  logs: LogSink;
  /** Directory for per-environment sockets. */
  runDir: string;
  runtimesDir: string;
  /** Installed language runtimes (the runtime cache). */
  runtimes: RuntimeStore;
  region: string;
  maxResponseBytes: number;
  initTimeoutMs: number;
  /** Freeze the sandbox between invokes. */
  freezeIdle: boolean;
  /** Pre-started runtimes for cold starts (absent or empty: always spawn). */
  stemCells?: StemCellPool;
  /** How many environments start at once (absent: no limit). */
  starts?: StartGate;
  pidsLimit: number;
  /** The way back to this platform's API (absent: environments get no endpoint of their own). */
  platformApi?: PlatformApiChannel;
  /** Log line size and per-invoke output budget (default: DEFAULT_OUTPUT_LIMITS). */
  outputLimits?: OutputLimits;
  /** Temporary credentials for a function's execution role (issued at each Init). */
  credentials?: (fn: Assignment) => Record<string, string>;
  /** Sees each line a function printed (EMF records become custom metrics); must not throw. */
  emf?: (functionName: string, line: string) => void;
}

export type { InvokeInput, InvokeOutcome } from "../protocol/invoke.js";

export type { EnvironmentState } from "./environment-state.js";

/** Where Init's time went (ms), for logs and metrics. */
export interface InitPhases {
  /** External extensions: started until each registered and called event/next (0 without any). */
  extensionsMs: number;
  /** The runtime's start: a sandbox spawned, or a stem cell adopted (its runtime booted ahead). */
  runtimeMs: number;
  /** From there until the runtime first asked for an event: the runtime's boot (fresh spawns) and the function's static code. */
  functionMs: number;
}

/** Lambda's Shutdown budget: 2000 ms with external extensions, 500 ms with internal ones only, 0 without. */
export function shutdownBudgetMs(external: boolean, internal: boolean): number {
  return external ? 2000 : internal ? 500 : 0;
}

const TAIL_BYTES = 4096;
/**
 * An idle environment is frozen this long after its last invoke ends. Freezing wakes every thread of
 * the tree and thawing wakes them again: an environment busy several times a second (at 16 clients
 * one idles ~10 ms between invokes) stays thawed instead of paying both on every invoke.
 */
const FREEZE_GRACE_MS = 100;

function logStreamName(version: string, id: string): string {
  const d = new Date().toISOString();
  return `${d.slice(0, 4)}/${d.slice(5, 7)}/${d.slice(8, 10)}/[${version}]${id}`;
}

export class ExecutionEnvironment {
  readonly id = randomBytes(16).toString("hex");
  readonly logGroup: string;
  readonly logStream: string;
  /** START/REPORT/INIT_* lines as text, or JSON records filtered by SystemLogLevel. */
  readonly platformLines: PlatformLines;
  #state: EnvironmentState = "initializing";

  /** Where the environment is in its lifecycle (changed only through `enter`, by the transition table). */
  get state(): EnvironmentState {
    return this.#state;
  }

  private enter(next: EnvironmentState): void {
    this.#state = transition(this.#state, next);
  }
  lastUsed = Date.now();
  initDurationMs = 0;
  initPhases: InitPhases = { extensionsMs: 0, runtimeMs: 0, functionMs: 0 };
  /** Why this environment shut down (once it did). */
  shutdownReason: ShutdownReason | null = null;
  readonly extensions: ExtensionsApi;
  readonly telemetry: TelemetryApi;
  private transport: TelemetryTransport | null = null;
  /** The runtime waits in `next` (so the environment can settle once extensions are done). */
  private runtimeWaiting = false;
  /** Telemetry of the last invoke still being delivered. */
  private flushing: Promise<void> | null = null;
  /** An extension failed after Init: the environment goes once its invoke is over. */
  private extensionFailed = false;
  private runtimeExited: (() => void) | null = null;
  /** Init time not yet reported (reported on the first invoke's REPORT line). */
  private pendingInitReport = true;
  private sandbox: Sandbox | null = null;
  /** Where this environment's connections to the platform API arrive (isolated networks). */
  private platformListener: PlatformApiListener | null = null;
  /** What the API learns about a connection that came through this environment's channel. */
  readonly origin: SandboxOrigin;
  private api: RuntimeApiServer;
  /** stdout/stderr cut into log lines, within the invoke's budget and the function's rate. */
  private readonly capture: LogCapture;
  private tail: string[] | null = null;
  private tailBytes = 0;
  private freezeChain: Promise<void> = Promise.resolve();
  private freezeTimer: NodeJS.Timeout | null = null;
  /** The running invokes' watchers of the sandbox's exit. */
  private readonly onExit = new Set<(exit: SandboxExit) => void>();
  /** Events this environment runs at once (1 unless the function is configured for multi-concurrency). */
  readonly slots: number;
  /** Events running now (at most `slots`). */
  private active = 0;
  private exitInfo: SandboxExit | null = null;
  private readonly listeners: { ready: Array<() => void>; dead: Array<() => void> } = { ready: [], dead: [] };
  private initWaiter: { resolve: () => void; reject: (o: InvokeOutcome) => void } | null = null;

  constructor(
    readonly fn: Assignment,
    private readonly deps: EnvironmentDeps,
    readonly initializationType: "on-demand" | "provisioned-concurrency",
  ) {
    this.logGroup = fn.config.LogGroup ?? `/aws/lambda/${fn.name}`;
    this.logStream = logStreamName(fn.version, this.id);
    this.platformLines = new PlatformLines(fn.config);
    this.capture = new LogCapture(
      deps.outputLimits ?? DEFAULT_OUTPUT_LIMITS,
      (line) => this.functionLine(line),
      (bytes) => deps.logs.admit(this.logGroup, bytes),
      (note, lines, bytes) => this.platformLog(this.platformLines.logsDropped(note, lines, bytes)),
    );
    this.origin = { environmentId: this.id, functionName: fn.name, functionVersion: fn.version };
    this.slots = fn.config.MaxConcurrency ?? 1;
    this.api = new RuntimeApiServer(this.apiEvents, deps.maxResponseBytes);
    this.api.setSlots(this.slots);
    this.extensions = new ExtensionsApi(
      { functionName: fn.name, functionVersion: fn.version, handler: fn.config.Handler },
      [],
      this.extensionHooks,
    );
    this.telemetry = new TelemetryApi(
      (uri, body) => this.telemetryTransport().post(uri, body),
      (id) => this.extensions.knows(id),
    );
    this.extensions.fallback = (req, res, path, extensionId) => {
      if (path !== TELEMETRY_PATH) return false;
      this.telemetry.handle(req, res, extensionId);
      return true;
    };
  }

  private readonly extensionHooks = {
    onInitError: (errorType: string, body: Buffer, name: string) => {
      const fromBody = parseError(body);
      this.extensionFailure(
        name,
        errorType,
        fromBody?.errorMessage ?? `Extension ${name} reported an Init error`,
        "InitError",
      );
    },
    onExitError: (errorType: string, name: string) =>
      this.extensionFailure(name, errorType, `Extension ${name} reported an exit error`, "ExitError"),
    onExtensionExit: (name: string, status: string) => {
      if (this.state === "dead") return;
      this.extensionFailure(name, ExtensionError.Crash, `RequestId: ${this.id} Error: ${status}`, "Crashed");
    },
    onRuntimeExit: (code: number) => {
      this.runtimeExited?.();
      const signal = code > 128 ? exitStatusText(code).replace("signal: ", "") : null;
      this.exited({
        code: code > 128 ? null : code,
        signal: signal === null ? null : signalOf(signal),
        // The launcher outlives the runtime: the cgroup tells whether the memory limit killed it.
        oomKilled: this.sandbox?.oomKilled?.() ?? false,
      });
    },
    onSettled: () => this.maybeSettle(),
  };

  /** An extension failed: during Init the Init fails with Lambda's error; later the environment is reset. */
  private extensionFailure(name: string, errorType: string, message: string, state: string): void {
    this.platformLog(this.platformLines.extension(name, state, []));
    if (this.initWaiter) {
      this.initReport(errorType);
      this.initWaiter.reject(platformFailure(errorType, message));
      void this.destroy("failure");
      return;
    }
    this.extensionFailed = true;
    if (isIdle(this.state)) void this.destroy("failure");
  }

  private telemetryTransport(): TelemetryTransport {
    if (!this.transport) {
      const sb = this.sandbox;
      const isolated =
        this.deps.driver.name === "bwrap" && this.deps.driver.runtimeApiEndpointKind() === "unix";
      this.transport =
        isolated && sb ? namespaceTransport(sb.pid, this.deps.runDir, this.id) : directTransport();
    }
    return this.transport;
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
  private initStarted = 0;

  async init(codeDir: string, stem?: StemCell, opt?: MergedLayers): Promise<void> {
    const started = performance.now();
    this.initStarted = started;
    const initialized = new Promise<void>((resolve, reject) => {
      this.initWaiter = { resolve, reject };
    });
    // Nobody awaits it until the sandbox exists; a failure before then is reported through the catch below.
    initialized.catch(() => {});
    const version = runtimeVersionLabel(
      this.fn.config.Runtime,
      this.deps.runtimes.resolve(this.fn.config.Runtime),
    );
    this.platformLog(
      this.platformLines.initStart({
        runtime: this.fn.config.Runtime,
        runtimeVersion: version,
        initializationType: this.initializationType,
        functionName: this.fn.name,
        functionVersion: this.fn.version,
        instanceId: this.logStream,
        memorySizeMb: this.fn.config.MemorySize,
      }),
    );
    const external = opt?.extensions ?? [];
    if (external.length > MAX_EXTENSIONS) {
      await stem?.destroy();
      throw platformFailure(
        ExtensionError.TooManyExtensions,
        `Extension limit (${MAX_EXTENSIONS}) reached: /opt/extensions holds ${external.length}`,
      );
    }
    this.extensions.expect(external);
    let sandboxUp = started;
    let extensionsUp = started;
    try {
      // Functions with external extensions start fresh, through the launcher (never a stem cell).
      if (stem && external.length > 0) {
        void stem.destroy();
        stem = undefined;
      }
      this.sandbox = stem ? await this.adopt(stem, codeDir, opt) : await this.spawn(codeDir, opt);
      sandboxUp = performance.now();
      extensionsUp = sandboxUp;
      if (external.length > 0) {
        void this.extensions.externalsRegistered().then(() => {
          extensionsUp = performance.now();
        });
      }
    } catch (err) {
      await Promise.all([this.destroy(), stem?.destroy()]);
      if (err instanceof InvalidEntrypoint) {
        this.initReport(RuntimeError.InvalidEntrypoint);
        throw platformFailure(RuntimeError.InvalidEntrypoint, err.message);
      }
      throw platformFailure(
        RuntimeError.InitError,
        `Could not start the runtime: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    this.sandbox.exited.then((exit) => this.exited(exit));
    const timer = setTimeout(() => {
      if (this.initWaiter) this.initReport(SandboxError.Timedout);
      this.initWaiter?.reject(
        platformFailure(
          SandboxError.Timedout,
          `Init phase timed out after ${ms(this.deps.initTimeoutMs / 1000)} seconds`,
        ),
      );
      void this.destroy();
    }, this.deps.initTimeoutMs);
    try {
      await initialized;
      // Init is over when the runtime and every extension registered so far wait for events.
      await this.extensions.closeRegistration();
    } finally {
      clearTimeout(timer);
      this.initWaiter = null;
    }
    const done = performance.now();
    this.initDurationMs = done - started;
    this.initPhases = {
      extensionsMs: extensionsUp - sandboxUp,
      runtimeMs: sandboxUp - started,
      functionMs: done - extensionsUp,
    };
    if (this.extensions.count > 0) {
      for (const e of this.extensions.describe()) {
        this.platformLog(this.platformLines.extension(e.name, "Ready", e.events));
      }
      this.platformLog(
        this.platformLines.initReport(
          { durationMs: this.initDurationMs, status: "success", phases: this.initPhases },
          this.initializationType,
        ),
      );
    }
    this.telemetry.emit("platform.initReport", {
      initializationType: this.initializationType,
      phase: "init",
      status: "success",
      metrics: { durationMs: round(this.initDurationMs) },
    });
    // The function's CPU share applies from here; the write need not hold up the first invoke.
    void this.sandbox?.endInit?.().catch(() => {});
    // The runtime may have settled already (its first `next` and the extensions' all arrived).
    if (this.state === "initializing") this.enter("ready");
  }

  private identity() {
    return {
      region: this.deps.region,
      logGroup: this.logGroup,
      logStream: this.logStream,
      initializationType: this.initializationType,
      ...(this.deps.credentials ? { credentials: this.deps.credentials(this.fn) } : {}),
    };
  }

  private limits() {
    return {
      memoryMb: this.fn.config.MemorySize,
      ephemeralStorageMb: this.fn.config.EphemeralStorageSize,
      pids: this.deps.pidsLimit,
    };
  }

  /** A fresh sandbox running the function's runtime (behind the launcher when there are external extensions). */
  private async spawn(codeDir: string, opt?: MergedLayers): Promise<Sandbox> {
    const { driver } = this.deps;
    this.api.extraRoute = (req, res, path) => this.extensions.handle(req, res, path);
    const endpoint = await this.api.listen(
      driver.runtimeApiEndpointKind() === "unix"
        ? { kind: "unix", path: join(this.deps.runDir, `${this.id}.sock`) }
        : tcpEndpoint(driver, join(this.deps.runDir, `${this.id}.sock`)),
    );
    const installed = this.deps.runtimes.resolve(this.fn.config.Runtime);
    const mounts: SandboxMounts = { codeDir, runtimeDir: this.deps.runtimesDir, ...runtimeMounts(installed) };
    if (this.fn.codeDir !== undefined) mounts.codeLive = true;
    if (opt) mounts.optDir = opt.dir;
    const view = driver.view(mounts, endpoint);
    const platformApiSocket = await this.openPlatformApi(view);
    const external = opt?.extensions ?? [];
    // Without a launcher, Lambent's Node.js and Python runtimes serve 127.0.0.1:9001 and :9000 themselves
    // (no relay process); external extensions need 9001 before the runtime starts.
    const relays = runtimeServesRelays(this.fn.config.Runtime, view, external.length > 0);
    const runtime = runtimeArgv(this.fn, view, installed, mounts, relays);
    const argv =
      external.length === 0
        ? runtime
        : [
            "/bin/bash",
            `${view.runtimeRoot}/launcher.sh`,
            ...external.map((name) => `${view.optRoot}/extensions/${name}`),
            "--",
            ...runtime,
          ];
    this.runtimeExitedPromise =
      external.length === 0
        ? null
        : new Promise<void>((resolve) => {
            this.runtimeExited = resolve;
          });
    const sandbox = await driver.spawn({
      id: this.id,
      argv,
      env: runtimeEnvironment(this.fn, view, this.identity()),
      mounts,
      limits: this.limits(),
      runtimeApi: endpoint,
      ...(platformApiSocket !== undefined ? { platformApiSocket } : {}),
      ...(relays ? { runtimeServesRelays: true } : {}),
      onOutput: (chunk) => this.output(chunk),
    });
    this.api.admitOnly(ownProcessesOnly(sandbox));
    return sandbox;
  }

  /**
   * This environment's way back to the platform API: `view.platformApiUrl` becomes the URL to use
   * inside; where the driver relays it, the server listens on a socket of this environment's own.
   */
  private async openPlatformApi(view: SandboxView): Promise<string | undefined> {
    const channel = this.deps.platformApi;
    if (!channel) return undefined;
    const relayed = view.platformApiUrl !== undefined;
    view.platformApiUrl = channel.urlFor(view);
    if (!relayed) return undefined;
    this.platformListener = await channel.listen(join(this.deps.runDir, `${this.id}.api.sock`), this.origin);
    return this.platformListener.path;
  }

  /** A stem cell's booted runtime, given this function (a fresh spawn if the cell cannot take it). */
  private async adopt(stem: StemCell, codeDir: string, opt?: MergedLayers): Promise<Sandbox> {
    const mounts: SandboxMounts = { codeDir, runtimeDir: this.deps.runtimesDir };
    if (this.fn.codeDir !== undefined) mounts.codeLive = true;
    if (opt) mounts.optDir = opt.dir;
    try {
      if (stem.dead) throw new Error("stem cell died");
      await stem.sandbox.adopt?.(mounts, this.limits());
    } catch {
      await stem.destroy();
      return this.spawn(codeDir, opt);
    }
    this.api = stem.api;
    this.api.setSlots(this.slots);
    // The cell's platform API channel is this environment's from now on.
    this.platformListener = stem.platformListener;
    if (stem.platformOrigin) Object.assign(stem.platformOrigin, this.origin);
    stem.api.setEvents(this.apiEvents);
    stem.output = (chunk) => this.output(chunk);
    const view = stem.view(codeDir, opt?.dir);
    stem.assign(runtimeEnvironment(this.fn, view, this.identity()), view.taskRoot, view.optRoot);
    // Internal extensions (registered from the runtime's process) and the Telemetry API.
    this.api.extraRoute = (req, res, path) => this.extensions.handle(req, res, path);
    return stem.sandbox;
  }

  private runtimeIsWaiting(): void {
    if (this.initWaiter) {
      this.initWaiter.resolve();
      return;
    }
    this.runtimeWaiting = true;
    this.maybeSettle();
  }

  /** The invoke is over once the runtime waits, every extension is idle and the telemetry is out. */
  private maybeSettle(): void {
    if (this.state !== "finishing" && this.state !== "initializing") return;
    if (!this.runtimeWaiting || !this.extensions.isSettled || this.flushing) return;
    if (this.extensionFailed) {
      void this.destroy("failure");
      return;
    }
    this.enter("ready");
    this.lastUsed = Date.now();
    if (this.deps.freezeIdle) {
      // Back-to-back invokes should not pay a freeze and a thaw each: freeze after a short idle spell.
      this.freezeTimer = setTimeout(() => {
        this.freezeTimer = null;
        this.freeze();
      }, FREEZE_GRACE_MS);
      this.freezeTimer.unref();
    }
    for (const cb of this.listeners.ready) cb();
  }

  /** INIT_REPORT of a failed Init: how long it ran until it failed. */
  private initReport(errorType: string): void {
    this.platformLog(
      this.platformLines.initReport(
        { durationMs: this.initElapsedMs, status: "failure", errorType },
        this.initializationType,
      ),
    );
  }

  /** Time spent in Init: all of it once Init is over, so far while it runs. */
  get initElapsedMs(): number {
    if (this.initDurationMs > 0 || this.initStarted === 0) return this.initDurationMs;
    return performance.now() - this.initStarted;
  }

  private initFailed(errorType: string, body: Buffer): void {
    if (this.initWaiter) this.initReport(errorType);
    this.initWaiter?.reject({ ok: false, payload: body, errorType, durationMs: 0, fatal: true });
    void this.destroy();
  }

  private exited(exit: SandboxExit): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    for (const onExit of [...this.onExit]) onExit(exit);
    if (this.initWaiter) {
      const reason = exitReason(exit);
      this.initReport(reason.errorType);
      this.initWaiter.reject(platformFailure(reason.errorType, `Runtime exited with error: ${reason.text}`));
    }
    void this.destroy("failure");
  }

  /** ready → frozen: the driver freezes the sandbox (freezes and thaws run in order). */
  private freeze(): void {
    const sb = this.sandbox;
    if (this.state !== "ready" || !sb) return;
    this.enter("frozen");
    this.freezeChain = this.freezeChain.then(() => sb.freeze()).catch(() => {});
  }

  /** The second half of leaving `frozen` (for busy or dead): the sandbox runs again. */
  private async thaw(): Promise<void> {
    const sb = this.sandbox;
    if (!sb) return;
    this.freezeChain = this.freezeChain.then(() => sb.thaw()).catch(() => {});
    await this.freezeChain;
  }

  /** Whether it can take one more event now (ready, finishing, or busy with free slots). */
  get hasRoom(): boolean {
    if (this.state === "busy") return this.active < this.slots;
    return isIdle(this.state) || this.state === "finishing";
  }

  /**
   * Run one event. The environment must be ready or finishing (its runtime about to ask for more),
   * or busy with a free slot (multi-concurrency: the event joins those running).
   */
  async invoke(input: InvokeInput, timeoutSeconds: number): Promise<InvokeOutcome> {
    if (this.state === "dead") {
      return platformFailure(
        RuntimeError.ExitError,
        `RequestId: ${input.requestId} Error: Runtime exited with error: ${exitReason(this.exitInfo).text}`,
      );
    }
    // Another event of this environment is running: this one joins it (no thaw, no settling first).
    const joining = this.state === "busy" && this.active > 0 && this.active < this.slots;
    this.active++;
    if (!joining) {
      const wasFrozen = this.state === "frozen";
      this.enter("busy");
      if (this.freezeTimer) {
        clearTimeout(this.freezeTimer);
        this.freezeTimer = null;
      }
      if (wasFrozen) await this.thaw();
      // The last invoke's extensions and telemetry finish first (they may still work after its response).
      if (!this.extensions.isSettled) await this.extensions.settled();
      if (this.flushing) await this.flushing;
      this.runtimeWaiting = false;
    }
    const sandbox = this.sandbox;
    if (!sandbox || this.exitInfo) {
      this.active--;
      return platformFailure(
        RuntimeError.ExitError,
        `RequestId: ${input.requestId} Error: Runtime exited with error: ${exitReason(this.exitInfo).text}`,
      );
    }
    // Concurrent events share the environment's log stream: a tail asked for while others run
    // holds their lines too.
    if (input.wantTail && (!joining || !this.tail)) {
      this.tail = [];
      this.tailBytes = 0;
    }
    if (!joining) this.capture.startWindow();
    this.platformLog(this.platformLines.start(input.requestId, this.fn.version, input.invokedFunctionArn));
    const started = performance.now();
    const deadlineMs = Date.now() + timeoutSeconds * 1000;
    this.telemetry.emit("platform.start", { requestId: input.requestId, version: this.fn.version });
    this.extensions.invoke({
      requestId: input.requestId,
      deadlineMs,
      invokedFunctionArn: input.invokedFunctionArn,
      traceId: input.traceId,
    });
    const inv: Invocation = {
      requestId: input.requestId,
      payload: input.payload,
      deadlineMs,
      invokedFunctionArn: input.invokedFunctionArn,
      traceId: input.traceId,
      ...(input.clientContext !== undefined ? { clientContext: input.clientContext } : {}),
      ...(input.cognitoIdentity !== undefined ? { cognitoIdentity: input.cognitoIdentity } : {}),
      ...(input.stream !== undefined ? { stream: input.stream } : {}),
    };

    type Ended = RuntimeOutcome | { kind: "timeout" } | { kind: "exit"; exit: SandboxExit };
    let timer: NodeJS.Timeout | undefined;
    let watch: ((exit: SandboxExit) => void) | undefined;
    const ended = await new Promise<Ended>((resolve) => {
      watch = (exit) => resolve({ kind: "exit", exit });
      this.onExit.add(watch);
      timer = setTimeout(() => resolve({ kind: "timeout" }), timeoutSeconds * 1000);
      this.api.deliver(inv).then(resolve);
    });
    clearTimeout(timer);
    if (watch) this.onExit.delete(watch);
    this.active--;
    /** The last running event of the environment ended: its output window closes with it. */
    const last = this.active === 0;
    const durationMs = performance.now() - started;
    // A plain answer nobody needs the log of goes back at once; END and REPORT follow on the next
    // turn, after whatever output the runtime wrote before answering (still in the pipe) is read.
    const quick =
      !input.wantTail && !this.telemetry.subscribed && (ended.kind === "response" || ended.kind === "error");
    if (!quick) await new Promise<void>((r) => setImmediate(r));

    let outcome: InvokeOutcome;
    switch (ended.kind) {
      case "response":
        outcome = { ok: true, payload: ended.body, durationMs, fatal: false };
        if (ended.streamed) outcome.streamed = true;
        break;
      case "error":
        outcome = { ok: false, payload: ended.body, errorType: ended.errorType, durationMs, fatal: false };
        if (ended.streamed) outcome.streamed = true;
        break;
      case "tooLarge": {
        const errorMessage = `Response payload size exceeded maximum allowed payload size (${this.deps.maxResponseBytes} bytes).`;
        outcome = {
          ...platformFailure(FunctionError.ResponseSizeTooLarge, errorMessage),
          durationMs,
          fatal: false,
        };
        break;
      }
      case "timeout": {
        const text = `Task timed out after ${ms(timeoutSeconds)} seconds`;
        this.platformLog(this.platformLines.fault(`${new Date().toISOString()} ${input.requestId} ${text}`));
        outcome = {
          ...platformFailure(SandboxError.Timedout, `RequestId: ${input.requestId} Error: ${text}`),
          durationMs: timeoutSeconds * 1000,
        };
        break;
      }
      case "exit": {
        const reason = exitReason(ended.exit);
        this.platformLog(
          this.platformLines.fault(
            `RequestId: ${input.requestId} Error: Runtime exited with error: ${reason.text}\n${reason.errorType}`,
          ),
        );
        outcome = {
          ...platformFailure(
            reason.errorType,
            `RequestId: ${input.requestId} Error: Runtime exited with error: ${reason.text}`,
          ),
          durationMs,
        };
        break;
      }
    }
    if (outcome.fatal) this.api.abandon();
    // Set before the caller has the outcome (REPORT may be written later): its metrics count cold starts.
    // Lambda prints no Init Duration for a provisioned environment (its Init was on no invoke's path).
    if (this.pendingInitReport && this.initDurationMs > 0 && this.initializationType === "on-demand") {
      outcome.initDurationMs = this.initDurationMs;
    }
    this.pendingInitReport = false;
    if (quick) {
      const done = outcome;
      setImmediate(() => this.afterInvoke(input.requestId, done, sandbox, last));
    } else {
      this.afterInvoke(input.requestId, outcome, sandbox, last);
    }
    if (input.wantTail) {
      outcome.tail = Buffer.from(this.tailText(), "utf8").toString("base64");
      if (last) this.tail = null;
    }
    if (outcome.fatal) {
      await this.destroy(outcome.errorType === SandboxError.Timedout ? "timeout" : "failure");
    } else if (this.extensionFailed) {
      outcome.fatal = true;
      void this.destroy("failure");
    } else if (last) {
      this.enter("finishing");
      this.lastUsed = Date.now();
      this.maybeSettle();
    } else {
      this.lastUsed = Date.now();
    }
    return outcome;
  }

  /**
   * END and REPORT lines, then telemetry. Max Memory Used is the environment's peak so far, as on
   * Lambda ("when invocations share an execution environment, Lambda reports the maximum memory used
   * across all invocations"), read from the sandbox the invoke ran in, which answers with its last
   * peak once it is gone (an out-of-memory kill reports what it reached).
   */
  private afterInvoke(requestId: string, outcome: InvokeOutcome, sandbox: Sandbox, last: boolean): void {
    const peak = sandbox.peakMemoryBytes();
    const maxMemoryUsedMb = peak === undefined ? 0 : Math.round(peak / (1024 * 1024));
    this.report(requestId, outcome, maxMemoryUsedMb, last);
    this.telemetryAfterInvoke(requestId, outcome, maxMemoryUsedMb);
  }

  /** platform.runtimeDone and platform.report for subscribers, delivered before the environment settles. */
  private telemetryAfterInvoke(requestId: string, outcome: InvokeOutcome, maxMemoryUsedMb: number): void {
    if (!this.telemetry.subscribed) return;
    const status = invokeStatus(outcome);
    this.telemetry.emit("platform.runtimeDone", {
      requestId,
      status,
      ...(outcome.ok ? {} : { errorType: outcome.errorType }),
      metrics: { durationMs: round(outcome.durationMs), producedBytes: outcome.payload.length },
    });
    const metrics: Record<string, number> = {
      durationMs: round(outcome.durationMs),
      billedDurationMs: billedDurationMs(outcome.durationMs),
      memorySizeMB: this.fn.config.MemorySize,
      maxMemoryUsedMB: maxMemoryUsedMb,
    };
    if (outcome.initDurationMs !== undefined) metrics.initDurationMs = round(outcome.initDurationMs);
    this.telemetry.emit("platform.report", {
      requestId,
      status,
      ...(outcome.ok ? {} : { errorType: outcome.errorType }),
      metrics,
    });
    const flushing = this.telemetry.flush().finally(() => {
      if (this.flushing === flushing) this.flushing = null;
      this.maybeSettle();
    });
    this.flushing = flushing;
  }

  private report(requestId: string, outcome: InvokeOutcome, maxMemoryUsedMb: number, last: boolean): void {
    if (last) this.capture.endWindow();
    const status = invokeStatus(outcome);
    this.platformLog(
      this.platformLines.runtimeDone({
        requestId,
        status,
        ...(outcome.errorType !== undefined ? { errorType: outcome.errorType } : {}),
        durationMs: outcome.durationMs,
        producedBytes: outcome.payload.length,
      }),
    );
    this.platformLog(this.platformLines.end(requestId));
    this.platformLog(
      this.platformLines.report({
        requestId,
        durationMs: outcome.durationMs,
        memorySizeMb: this.fn.config.MemorySize,
        maxMemoryUsedMb,
        ...(outcome.initDurationMs !== undefined ? { initDurationMs: outcome.initDurationMs } : {}),
        ...(outcome.fatal && outcome.errorType ? { errorType: outcome.errorType } : {}),
        status,
        ...(outcome.errorType !== undefined ? { invokeErrorType: outcome.errorType } : {}),
      }),
    );
  }

  /** A platform line (undefined: below SystemLogLevel, or none in this format). */
  private platformLog(line: string | undefined): void {
    if (line === undefined) return;
    this.deps.logs.write(this.logGroup, this.logStream, line);
    this.addTail(line);
  }

  /** A chunk of the sandbox's output; a promise asks the reader to pause (the function's log rate is spent). */
  private output(chunk: Buffer): Promise<void> | undefined {
    return this.capture.push(chunk);
  }

  private functionLine(line: string): void {
    this.deps.logs.write(this.logGroup, this.logStream, line);
    this.deps.emf?.(this.fn.name, line);
    this.addTail(line);
    this.telemetry.emit("function", line);
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

  private runtimeExitedPromise: Promise<void> | null = null;

  /**
   * Shutdown: SHUTDOWN to extensions (with `reason`) and SIGTERM to the
   * runtime, within Lambda's budget; then everything is killed. Without
   * extensions the budget is 0: straight to the kill.
   */
  destroy(reason: ShutdownReason = "spindown"): Promise<void> {
    if (!this.destroying) this.destroying = this.teardown(reason);
    return this.destroying;
  }

  private async teardown(reason: ShutdownReason): Promise<void> {
    const wasInitializing = this.state === "initializing";
    const wasFrozen = this.state === "frozen";
    this.enter("dead");
    this.shutdownReason = reason;
    if (this.freezeTimer) clearTimeout(this.freezeTimer);
    for (const cb of this.listeners.dead) cb();
    const sb = this.sandbox;
    const budget = shutdownBudgetMs(this.extensions.hasExternal, this.extensions.count > 0);
    if (sb && budget > 0 && !wasInitializing) {
      if (wasFrozen) await this.thaw();
      const started = performance.now();
      await this.extensions.shutdown(reason, budget);
      // The runtime had its SIGTERM from the launcher: give it what is left of the budget to exit.
      const left = budget - (performance.now() - started);
      if (this.runtimeExitedPromise && left > 0 && !this.exitInfo) {
        await Promise.race([this.runtimeExitedPromise, new Promise((r) => setTimeout(r, left))]);
      }
      await Promise.race([this.telemetry.flush(), new Promise((r) => setTimeout(r, 200))]);
      this.platformLog(this.platformLines.shutdown(reason, performance.now() - started));
    }
    this.capture.finish();
    this.sandbox = null;
    this.extensions.close();
    this.telemetry.close();
    await Promise.all([
      sb?.destroy(),
      this.api.close(),
      this.transport?.close(),
      this.platformListener?.close(),
    ]);
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function signalOf(name: string): string {
  const map: Record<string, string> = { killed: "SIGKILL", terminated: "SIGTERM", aborted: "SIGABRT" };
  return map[name] ?? `SIG${name.toUpperCase()}`;
}

function parseError(body: Buffer): { errorMessage?: string } | undefined {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { errorMessage?: unknown };
    return typeof parsed.errorMessage === "string" ? { errorMessage: parsed.errorMessage } : undefined;
  } catch {
    return undefined;
  }
}

function exitReason(exit: SandboxExit | null): { errorType: DataPlaneErrorType; text: string } {
  if (!exit) return { errorType: RuntimeError.ExitError, text: "exit status unknown" };
  if (exit.oomKilled) return { errorType: RuntimeError.OutOfMemory, text: "signal: killed" };
  if (exit.signal)
    return {
      errorType: RuntimeError.ExitError,
      text: `signal: ${exit.signal.replace(/^SIG/, "").toLowerCase()}`,
    };
  return { errorType: RuntimeError.ExitError, text: `exit status ${exit.code ?? 0}` };
}

/** What the platform answers in place of the runtime: a fatal failure with Lambda's error body. */
export function platformFailure(errorType: string, message: string): InvokeOutcome {
  return { ok: false, payload: errorBody(errorType, message), errorType, durationMs: 0, fatal: true };
}
