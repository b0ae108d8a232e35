import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { ControlFile } from "./cgroup-fs.js";
import type {
  RuntimeApiEndpoint,
  Sandbox,
  SandboxDriver,
  SandboxExit,
  SandboxMounts,
  SandboxSpec,
  SandboxView,
} from "./driver.js";
import { SandboxError } from "./errors.js";
import { childExit, childSpawned } from "./exit.js";
import { readOutput } from "./output.js";
import { PeakRss, processTree } from "./peak-rss.js";
import { atStemCellPriority, restoreNormalPriority } from "./priority.js";

/**
 * How long the process tree measured for Max Memory Used is reused: walking it (every thread's
 * `children` file) after every invoke cost more server CPU than the rest of the invoke's bookkeeping.
 * A process the function starts counts from the next walk on; the runtime itself from the start.
 */
const TREE_REFRESH_MS = 1000;

/**
 * Runs the runtime as a plain child process in its own process group.
 * It isolates nothing and limits nothing: paths are the host's, the Runtime API is a
 * TCP port on the host loopback, freeze is SIGSTOP to the group.
 */
export class ProcessDriver implements SandboxDriver {
  readonly name = "process";
  readonly isolates = false;
  /** A stem cell's working dir is set by the runtime itself on assignment; nothing to mount. */
  readonly supportsStemCells = true;
  readonly #live = new Set<ProcessSandbox>();

  async init(): Promise<void> {}

  runtimeApiEndpointKind(): "tcp" {
    return "tcp";
  }

  view(mounts: SandboxMounts, runtimeApi: RuntimeApiEndpoint): SandboxView {
    if (runtimeApi.kind !== "tcp") {
      throw new SandboxError("InvalidSandboxSpec", "the process driver serves the Runtime API over tcp only");
    }
    return {
      taskRoot: mounts.codeDir,
      runtimeRoot: mounts.runtimeDir,
      optRoot: mounts.optDir ?? "/opt",
      runtimeApiAddress: `${runtimeApi.host}:${runtimeApi.port}`,
      ownRoot: false,
      ...(mounts.langDir ? { langRoot: mounts.langDir } : {}),
      ...(mounts.sdk ? { sdkRoot: mounts.sdk.dir } : {}),
      ...(runtimeApi.socketPath ? { runtimeApiSocket: runtimeApi.socketPath } : {}),
    };
  }

  async spawn(spec: SandboxSpec): Promise<Sandbox> {
    // A stem cell boots at the lowest CPU priority until adopted (see priority.ts).
    const [file, ...args] = spec.stemCell && spec.argv.length > 0 ? atStemCellPriority(spec.argv) : spec.argv;
    if (file === undefined) throw new SandboxError("InvalidSandboxSpec", "empty argv");
    const child = spawn(file, args, {
      env: spec.env,
      cwd: spec.mounts.codeDir,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    readOutput(child.stdout, spec.onOutput);
    readOutput(child.stderr, spec.onOutput);
    try {
      await childSpawned(child);
    } catch (cause) {
      throw new SandboxError("SandboxStartFailure", `cannot start ${file}`, { cause });
    }
    const pid = child.pid as number;
    const closed = childExit(child);
    const sandbox = new ProcessSandbox(spec.id, pid, closed, () => this.#live.delete(sandbox));
    // The runtime's death ends the environment: take the rest of its group along so the pipes close.
    // From then on the group id may be recycled by the kernel, so the sandbox signals nothing more.
    child.once("exit", () => {
      sandbox.running = false;
      signalGroup(pid, "SIGKILL");
    });
    this.#live.add(sandbox);
    return sandbox;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#live].map((sandbox) => sandbox.destroy()));
  }
}

class ProcessSandbox implements Sandbox {
  readonly exited: Promise<SandboxExit>;
  /** False once the main process has exited: its pid (= group id) may then belong to someone else. */
  running = true;
  readonly #clearRefs: ControlFile;
  readonly #peak = new PeakRss();
  #tree: number[] = [];
  #treeAt = Number.NEGATIVE_INFINITY;

  constructor(
    readonly id: string,
    readonly pid: number,
    closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>,
    onExit: () => void,
  ) {
    this.#clearRefs = new ControlFile(`/proc/${pid}/clear_refs`, 8, constants.O_WRONLY);
    this.exited = closed.then(({ code, signal }) => {
      this.#clearRefs.close();
      this.#peak.close();
      onExit();
      return { code, signal, oomKilled: false };
    });
  }

  async freeze(): Promise<void> {
    signalGroup(this.pid, "SIGSTOP");
  }

  /** Paths are the host's and no limit is enforced: only the cell's priority goes back to normal. */
  async adopt(): Promise<void> {
    if (this.running) restoreNormalPriority(processTree(this.pid));
  }

  async thaw(): Promise<void> {
    signalGroup(this.pid, "SIGCONT");
  }

  /** Resets the main process's VmHWM to its current RSS (`clear_refs` 5). */
  resetPeakMemory(): void {
    if (!this.running) return;
    try {
      this.#clearRefs.write("5");
    } catch {
      // The process is gone or /proc is not writable: there is nothing to reset.
    }
  }

  /**
   * The tree's peak RSS: each process's VmHWM, summed (nothing enforces a limit here). The tree is
   * walked again once its last walk is `TREE_REFRESH_MS` old.
   */
  peakMemoryBytes(): number | undefined {
    if (!this.running) return undefined;
    const now = performance.now();
    if (now - this.#treeAt >= TREE_REFRESH_MS) {
      this.#tree = processTree(this.pid);
      this.#treeAt = now;
    }
    return this.#peak.bytes(this.#tree);
  }

  /** The main process and its descendants (a process that left the tree is no longer the environment's). */
  async processIds(): Promise<number[]> {
    return this.running ? processTree(this.pid) : [];
  }

  async destroy(): Promise<void> {
    this.#signal("SIGKILL");
    await this.exited;
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.running) signalGroup(this.pid, signal);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: every process of the group has already exited.
  }
}
