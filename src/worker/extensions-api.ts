/**
 * One execution environment's Extensions API (2020-01-01), mounted on its
 * Runtime API endpoint, plus the control paths of the in-sandbox launcher
 * (`runtimes/launcher.sh`) that starts external extensions before the runtime.
 *
 * Lifecycle as Lambda's: every external extension (an executable in
 * `/opt/extensions/`) registers and calls `event/next` before the runtime
 * starts; extensions registering later (from the runtime's process) are
 * internal. An invoke is over once the runtime answered and every extension
 * registered for INVOKE called `event/next` again. Shutdown sends SHUTDOWN to
 * those registered for it.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { ApiError, type ApiErrorType, ExtensionError, sendErrorResponse } from "../protocol/errors.js";

export type ExtensionEventType = "INVOKE" | "SHUTDOWN";
export type ShutdownReason = "spindown" | "timeout" | "failure";

/** Lambda's limit of extensions per function. */
export const MAX_EXTENSIONS = 10;

const PREFIX = "/2020-01-01/extension/";
export const LAUNCHER_PREFIX = "/lambent/launcher/";

interface Extension {
  id: string;
  name: string;
  external: boolean;
  events: Set<ExtensionEventType>;
  /** Its `event/next`, held until there is an event. */
  waiting: ServerResponse | null;
  /** Events not yet taken. */
  queue: Array<Record<string, unknown>>;
  /** Called `event/next` since its last event (or since registering). */
  ready: boolean;
  exited: boolean;
}

export interface ExtensionsHooks {
  /** An extension reported an Init failure (`init/error`). */
  onInitError(errorType: string, body: Buffer, name: string): void;
  /** An extension reported it is exiting with an error (`exit/error`). */
  onExitError(errorType: string, name: string): void;
  /** An external extension's process ended (from the launcher). */
  onExtensionExit(name: string, status: string): void;
  /** The runtime's process ended (from the launcher): `code` is its exit status (128+N: signal N). */
  onRuntimeExit(code: number): void;
  /** Every extension is idle again (after an invoke). */
  onSettled(): void;
}

export interface FunctionIdentity {
  functionName: string;
  functionVersion: string;
  handler: string;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function forbidden(res: ServerResponse, errorType: ApiErrorType, errorMessage: string): void {
  sendErrorResponse(res, 403, errorType, errorMessage);
}

function readBody(req: IncomingMessage, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (c: Buffer) => {
    size += c.length;
    if (size <= 1024 * 1024) chunks.push(c);
  });
  req.on("end", () => done(Buffer.concat(chunks)));
}

export class ExtensionsApi {
  private readonly byId = new Map<string, Extension>();
  /** External extension names (executables), in start order. */
  private expected: readonly string[];
  private registrationClosed = false;
  private goRes: ServerResponse | null = null;
  private goAllowed = false;
  private shutdownRes: ServerResponse | null = null;
  private shutdownSent = false;
  private readyWaiters: Array<() => void> = [];
  private settledWaiters: Array<() => void> = [];
  private inInvoke = false;
  /** Extra handler for paths this class does not know (the Telemetry API). */
  fallback:
    | ((req: IncomingMessage, res: ServerResponse, path: string, extensionId: string | undefined) => boolean)
    | null = null;

  constructor(
    private readonly fn: FunctionIdentity,
    external: readonly string[],
    private readonly hooks: ExtensionsHooks,
  ) {
    this.expected = external;
  }

  /** The external extensions this environment starts (before its sandbox is spawned). */
  expect(names: readonly string[]): void {
    this.expected = names;
  }

  knows(id: string): boolean {
    return this.byId.has(id);
  }

  /** Each registered extension and the events it asked for (for Lambda's EXTENSION lines). */
  describe(): Array<{ name: string; events: string[] }> {
    return [...this.byId.values()].map((e) => ({ name: e.name, events: [...e.events] }));
  }

  get count(): number {
    return this.byId.size;
  }

  get hasExternal(): boolean {
    return this.expected.length > 0 || [...this.byId.values()].some((e) => e.external);
  }

  names(): string[] {
    return [...this.byId.values()].map((e) => e.name);
  }

  /** Route a request; false if the path is not ours. */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (path.startsWith(LAUNCHER_PREFIX)) {
      this.launcher(req, res, path.slice(LAUNCHER_PREFIX.length));
      return true;
    }
    const idHeader = req.headers["lambda-extension-identifier"];
    const extensionId = typeof idHeader === "string" ? idHeader : undefined;
    if (!path.startsWith(PREFIX)) return this.fallback?.(req, res, path, extensionId) ?? false;
    const rest = path.slice(PREFIX.length);
    if (rest === "register") {
      if (req.method !== "POST") return this.methodNotAllowed(req, res);
      readBody(req, (body) => this.register(req, res, body));
      return true;
    }
    if (extensionId === undefined) {
      req.resume();
      forbidden(res, ExtensionError.MissingExtensionIdentifier, "Missing Lambda-Extension-Identifier header");
      return true;
    }
    const ext = this.byId.get(extensionId);
    if (!ext) {
      req.resume();
      forbidden(res, ExtensionError.UnknownExtensionIdentifier, `Unknown extension ${extensionId}`);
      return true;
    }
    if (rest === "event/next") {
      if (req.method !== "GET") return this.methodNotAllowed(req, res);
      req.resume();
      this.next(ext, res);
      return true;
    }
    if (rest === "init/error" || rest === "exit/error") {
      if (req.method !== "POST") return this.methodNotAllowed(req, res);
      readBody(req, (body) => {
        const h = req.headers["lambda-extension-function-error-type"];
        const errorType = typeof h === "string" && h ? h : ExtensionError.Unknown;
        if (rest === "init/error" && this.registrationClosed && !this.inInitWindow()) {
          return forbidden(
            res,
            ExtensionError.InvalidExtensionState,
            "Init error reported after Init completed.",
          );
        }
        sendJson(res, 202, { status: "OK" });
        if (rest === "init/error") this.hooks.onInitError(errorType, body, ext.name);
        else this.hooks.onExitError(errorType, ext.name);
      });
      return true;
    }
    req.resume();
    sendErrorResponse(res, 404, ApiError.UnknownPath, `Unknown Extensions API path: ${path}`);
    return true;
  }

  private initOver = false;

  private inInitWindow(): boolean {
    return !this.initOver;
  }

  private methodNotAllowed(req: IncomingMessage, res: ServerResponse): true {
    req.resume();
    sendErrorResponse(res, 405, ApiError.MethodNotAllowed, `${req.method} is not allowed here`);
    return true;
  }

  private register(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const nameHeader = req.headers["lambda-extension-name"];
    const name = typeof nameHeader === "string" ? nameHeader : "";
    if (!name) return forbidden(res, ExtensionError.InvalidExtensionName, "Empty extension name");
    let events: unknown;
    try {
      events = (JSON.parse(body.toString("utf8") || "{}") as { events?: unknown }).events ?? [];
    } catch (err) {
      return forbidden(
        res,
        ApiError.InvalidRequestFormat,
        err instanceof Error ? err.message : "invalid JSON",
      );
    }
    if (!Array.isArray(events)) return forbidden(res, ApiError.InvalidRequestFormat, "events must be a list");
    const external = this.expected.includes(name);
    for (const e of events) {
      const ok = e === "INVOKE" || (e === "SHUTDOWN" && external);
      if (!ok) return forbidden(res, ExtensionError.InvalidEventType, `${String(e)}: invalid event type`);
    }
    if ([...this.byId.values()].some((x) => x.name === name)) {
      return forbidden(
        res,
        ExtensionError.InvalidExtensionState,
        "Extension with this name already registered",
      );
    }
    if (!external && this.registrationClosed) {
      return forbidden(res, ExtensionError.RegistrationClosed, "Extension registration closed already");
    }
    if (this.byId.size >= MAX_EXTENSIONS) {
      return forbidden(res, ExtensionError.TooManyExtensions, `Extension limit (${MAX_EXTENSIONS}) reached`);
    }
    const ext: Extension = {
      id: randomUUID(),
      name,
      external,
      events: new Set(events as ExtensionEventType[]),
      waiting: null,
      queue: [],
      ready: false,
      exited: false,
    };
    this.byId.set(ext.id, ext);
    sendJson(res, 200, this.fn, { "lambda-extension-identifier": ext.id });
  }

  private next(ext: Extension, res: ServerResponse): void {
    if (ext.waiting && ext.waiting !== res) ext.waiting.destroy();
    const queued = ext.queue.shift();
    if (queued) {
      this.sendEvent(res, queued);
      return;
    }
    ext.waiting = res;
    res.once("close", () => {
      if (ext.waiting === res) ext.waiting = null;
    });
    if (!ext.ready) {
      ext.ready = true;
      this.check();
    }
  }

  private sendEvent(res: ServerResponse, event: Record<string, unknown>): void {
    sendJson(res, 200, event, { "lambda-extension-event-identifier": randomUUID() });
  }

  private deliver(ext: Extension, event: Record<string, unknown>): void {
    ext.ready = false;
    const res = ext.waiting;
    if (res) {
      ext.waiting = null;
      this.sendEvent(res, event);
    } else {
      ext.queue.push(event);
    }
  }

  /** Every external extension registered and waiting (or no extension at all). */
  private externalsReady(): boolean {
    const regs = [...this.byId.values()];
    return this.expected.every((name) => regs.some((e) => e.name === name && e.ready));
  }

  private allReady(): boolean {
    return [...this.byId.values()].every((e) => e.ready || e.exited);
  }

  private check(): void {
    if (this.externalsReady()) {
      this.goAllowed = true;
      this.answerGo();
      if (this.allReady()) for (const w of this.readyWaiters.splice(0)) w();
    }
    if (this.inInvoke && this.allReady()) {
      this.inInvoke = false;
      for (const w of this.settledWaiters.splice(0)) w();
      this.hooks.onSettled();
    }
  }

  private answerGo(): void {
    const res = this.goRes;
    if (!res || !this.goAllowed) return;
    this.goRes = null;
    res.writeHead(200, { "content-length": 0 });
    res.end();
  }

  /** Resolves when every external extension has registered and called `event/next` (the runtime may start). */
  externalsRegistered(): Promise<void> {
    if (this.externalsReady() && this.allReady()) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Init is over: later registrations are refused. Resolves once every registered extension waits. */
  closeRegistration(): Promise<void> {
    this.registrationClosed = true;
    this.initOver = true;
    if (this.allReady()) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Hand an INVOKE event to every extension registered for it. */
  invoke(event: {
    requestId: string;
    deadlineMs: number;
    invokedFunctionArn: string;
    traceId: string;
  }): void {
    const payload = {
      eventType: "INVOKE",
      deadlineMs: event.deadlineMs,
      requestId: event.requestId,
      invokedFunctionArn: event.invokedFunctionArn,
      tracing: { type: "X-Amzn-Trace-Id", value: event.traceId },
    };
    let any = false;
    for (const ext of this.byId.values()) {
      if (ext.exited || !ext.events.has("INVOKE")) continue;
      any = true;
      this.deliver(ext, payload);
    }
    this.inInvoke = any;
  }

  /** Resolves when no extension still works on the last invoke. */
  settled(): Promise<void> {
    if (!this.inInvoke) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  get isSettled(): boolean {
    return !this.inInvoke;
  }

  /**
   * Shutdown: SHUTDOWN to every extension registered for it, SIGTERM to the
   * runtime (through the launcher). Resolves when each of them called
   * `event/next` again or exited, or at the deadline.
   */
  async shutdown(reason: ShutdownReason, budgetMs: number): Promise<void> {
    if (this.shutdownSent) return;
    this.shutdownSent = true;
    const deadlineMs = Date.now() + budgetMs;
    const targets = [...this.byId.values()].filter((e) => !e.exited && e.events.has("SHUTDOWN"));
    for (const ext of targets)
      this.deliver(ext, { eventType: "SHUTDOWN", shutdownReason: reason, deadlineMs });
    this.answerShutdown();
    if (targets.length === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, budgetMs);
      const poll = () => {
        if (targets.every((e) => e.ready || e.exited)) {
          clearTimeout(timer);
          resolve();
          return;
        }
        this.settledWaiters.push(poll);
      };
      this.inInvoke = true;
      poll();
    });
  }

  private answerShutdown(): void {
    const res = this.shutdownRes;
    if (!res || !this.shutdownSent) return;
    this.shutdownRes = null;
    res.writeHead(200, { "content-length": 0 });
    res.end();
  }

  /** The launcher's control paths: go-ahead, extension and runtime exits, the SIGTERM order. */
  private launcher(req: IncomingMessage, res: ServerResponse, rest: string): void {
    req.resume();
    const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
    if (rest === "go") {
      this.goRes = res;
      this.answerGo();
      return;
    }
    if (rest === "shutdown") {
      this.shutdownRes = res;
      this.answerShutdown();
      return;
    }
    if (rest === "extension-exited") {
      const name = query.get("name") ?? "";
      const code = Number(query.get("code") ?? "0");
      for (const ext of this.byId.values()) if (ext.name === name) ext.exited = true;
      res.writeHead(200, { "content-length": 0 });
      res.end();
      this.hooks.onExtensionExit(name, exitStatusText(code));
      this.check();
      return;
    }
    if (rest === "runtime-exited") {
      // Held: the launcher waits here until the environment is torn down.
      this.hooks.onRuntimeExit(Number(query.get("code") ?? "0"));
      return;
    }
    res.writeHead(404, { "content-length": 0 });
    res.end();
  }

  close(): void {
    for (const ext of this.byId.values()) ext.waiting?.destroy();
    this.goRes?.destroy();
    this.shutdownRes?.destroy();
    for (const w of this.settledWaiters.splice(0)) w();
  }
}

/** An exit status as Lambda words it: "exit status 1", "signal: killed". */
export function exitStatusText(code: number): string {
  if (code > 128) {
    const names: Record<number, string> = {
      9: "killed",
      15: "terminated",
      6: "aborted",
      11: "segmentation fault",
    };
    return `signal: ${names[code - 128] ?? String(code - 128)}`;
  }
  return `exit status ${code}`;
}
