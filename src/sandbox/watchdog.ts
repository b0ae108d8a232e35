/**
 * The sandbox watchdog: a tiny bash process per server (`libexec/watchdog.sh`), started detached in
 * its own session and holding a pipe from the server. When the server goes — a clean stop, a crash
 * or a kill -9 — the pipe closes and the watchdog kills whatever is left in the server's cgroups
 * (freeze → SIGKILL all → thaw, until empty), removes them, unmounts the server's mounts and exits.
 * Without it a kill -9 leaves frozen sandboxes until the next start (a SIGKILL to a frozen task waits
 * for a thaw). It runs as root outside every sandbox namespace: no sandbox can signal it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { registryFile, startTime } from "./instances.js";
import { HELPER_ENV } from "./network.js";

export const WATCHDOG_SCRIPT = fileURLToPath(new URL("../../libexec/watchdog.sh", import.meta.url));
const WATCHDOGS = "/run/lambent/watchdogs";

export interface WatchdogOptions {
  instanceId: string;
  /** The driver's run dir: every mount under it is the server's. */
  runDir: string;
  /** The instance's cgroup roots (one per controller on v1). */
  roots: readonly string[];
  /** The freezer controller's instance root (cgroup v1), if any. */
  freezerRoot?: string;
}

export class Watchdog {
  private constructor(private readonly child: ChildProcess) {}

  /** The pid file naming the watchdog of `instanceId` (so a restart can wait for it). */
  static pidFile(instanceId: string): string {
    return join(WATCHDOGS, instanceId);
  }

  static async start(options: WatchdogOptions): Promise<Watchdog> {
    const pidFile = Watchdog.pidFile(options.instanceId);
    const child = spawn(
      "/bin/bash",
      [
        WATCHDOG_SCRIPT,
        options.instanceId,
        options.runDir,
        registryFile(options.instanceId),
        pidFile,
        options.freezerRoot ?? "-",
        ...options.roots,
      ],
      // Its own session: a terminal's Ctrl-C or a kill of the server's process group leaves it be.
      { detached: true, stdio: ["pipe", "ignore", "inherit"], env: HELPER_ENV },
    );
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    child.stdin?.on("error", () => {});
    // Neither the process nor its pipe keeps the server's event loop alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    mkdirSync(WATCHDOGS, { recursive: true });
    writeFileSync(pidFile, `${child.pid} ${await startTime(child.pid as number)} ${process.pid}\n`);
    return new Watchdog(child);
  }

  /**
   * A previous watchdog of the same instance (its server was killed and this is the restart) may
   * still be sweeping: wait until it has exited, so it cannot kill the new server's sandboxes.
   */
  static async waitForPrevious(instanceId: string, ms = 30_000): Promise<void> {
    const pidFile = Watchdog.pidFile(instanceId);
    let text: string;
    try {
      text = readFileSync(pidFile, "utf8");
    } catch {
      return;
    }
    const [pid, started, server] = text.trim().split(" ");
    // Its server is this very process (a driver started again in-process): that watchdog waits for
    // our own exit, and sweeping the instance now is this start's job.
    if (server === String(process.pid)) return;
    const deadline = Date.now() + ms;
    while (pid && started && (await startTime(Number(pid))) === started && Date.now() < deadline) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      if (!cmdline.includes(WATCHDOG_SCRIPT)) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    rmSync(pidFile, { force: true });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The server is done with its sandboxes: the watchdog sweeps (finding nothing) and exits. */
  close(): void {
    this.child.stdin?.destroy();
  }
}
