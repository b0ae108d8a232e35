/**
 * The plain-process driver: no isolation at all (it says so). The runtime is a
 * child process in its own process group, with exactly the spec's environment.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type {
  RuntimeApiEndpoint,
  Sandbox,
  SandboxDriver,
  SandboxExit,
  SandboxMounts,
  SandboxSpec,
  SandboxView,
} from "./driver.js";

class ProcessSandbox implements Sandbox {
  readonly exited: Promise<SandboxExit>;
  private dead = false;

  constructor(
    readonly id: string,
    readonly pid: number,
    exited: Promise<SandboxExit>,
  ) {
    this.exited = exited.then((e) => {
      this.dead = true;
      return e;
    });
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.dead) return;
    try {
      process.kill(-this.pid, sig);
    } catch {}
  }

  async freeze(): Promise<void> {
    this.signal("SIGSTOP");
  }

  async thaw(): Promise<void> {
    this.signal("SIGCONT");
  }

  resetPeakMemory(): void {}

  /** VmHWM of the main process: its own peak resident set since start (children not counted). */
  peakMemoryBytes(): number | undefined {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, "utf8"));
      return m ? Number(m[1]) * 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  async destroy(): Promise<void> {
    this.signal("SIGKILL");
    this.signal("SIGCONT");
    await this.exited;
  }
}

export class ProcessDriver implements SandboxDriver {
  readonly name = "process";
  readonly isolates = false;
  private readonly live = new Set<ProcessSandbox>();

  async init(): Promise<void> {}

  runtimeApiEndpointKind(): "tcp" {
    return "tcp";
  }

  view(mounts: SandboxMounts, runtimeApi: RuntimeApiEndpoint): SandboxView {
    if (runtimeApi.kind !== "tcp") throw new Error("the process driver serves the Runtime API over TCP");
    return {
      taskRoot: mounts.codeDir,
      runtimeRoot: mounts.runtimeDir,
      optRoot: mounts.optDir ?? "/opt",
      runtimeApiAddress: `${runtimeApi.host}:${runtimeApi.port}`,
    };
  }

  async spawn(spec: SandboxSpec): Promise<Sandbox> {
    const [cmd, ...args] = spec.argv;
    if (!cmd) throw new Error("empty argv");
    const child = spawn(cmd, args, {
      cwd: spec.mounts.codeDir,
      env: spec.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<SandboxExit>((resolve) => {
      child.once("error", () => resolve({ code: 127, signal: null, oomKilled: false }));
      child.once("exit", (code, signal) => resolve({ code, signal, oomKilled: false }));
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    child.stdout?.on("data", spec.onOutput);
    child.stderr?.on("data", spec.onOutput);
    const sandbox = new ProcessSandbox(spec.id, child.pid as number, exited);
    this.live.add(sandbox);
    void sandbox.exited.then(() => this.live.delete(sandbox));
    return sandbox;
  }

  async close(): Promise<void> {
    await Promise.all([...this.live].map((s) => s.destroy()));
  }
}
