import { closeSync, openSync, readFileSync, readSync, rmdirSync, writeFileSync, writeSync } from "node:fs";
import { SandboxError } from "./errors.js";

/** Small synchronous cgroupfs helpers: each call is one short syscall, cheaper than a thread-pool hop. */

export function readControl(dir: string, file: string): string | undefined {
  try {
    return readFileSync(`${dir}/${file}`, "utf8");
  } catch {
    return undefined;
  }
}

export function writeControl(dir: string, file: string, value: string): void {
  try {
    writeFileSync(`${dir}/${file}`, value);
  } catch (cause) {
    throw new SandboxError("CgroupFailure", `cannot write ${value.trim()} to ${dir}/${file}`, { cause });
  }
}

/**
 * A control file kept open: the hot ones (freezer state, peak memory) are read or
 * written around every invoke, and an open+close per access costs more than the access.
 */
export class ControlFile {
  #fd: number | undefined;
  readonly #buffer: Buffer;

  constructor(
    readonly path: string,
    size = 64,
    /** open(2) flags: read-write by default; /proc files may allow only one of them. */
    private readonly flags: string | number = "r+",
  ) {
    this.#buffer = Buffer.alloc(size);
  }

  #open(): number {
    this.#fd ??= openSync(this.path, this.flags);
    return this.#fd;
  }

  read(): string | undefined {
    try {
      const length = readSync(this.#open(), this.#buffer, 0, this.#buffer.length, 0);
      return this.#buffer.toString("latin1", 0, length);
    } catch {
      return undefined;
    }
  }

  /**
   * The whole file, however long (cgroup.procs): `pread`s from its start until one comes back empty
   * (a seq_file may answer short before its end: it hands out whole lines only).
   */
  readAll(): string | undefined {
    try {
      const fd = this.#open();
      let text = "";
      for (let offset = 0; ; ) {
        const length = readSync(fd, this.#buffer, 0, this.#buffer.length, offset);
        if (length === 0) return text;
        text += this.#buffer.toString("latin1", 0, length);
        offset += length;
      }
    } catch {
      return undefined;
    }
  }

  write(value: string): void {
    try {
      writeSync(this.#open(), value, 0);
    } catch (cause) {
      throw new SandboxError("CgroupFailure", `cannot write ${value.trim()} to ${this.path}`, { cause });
    }
  }

  close(): void {
    if (this.#fd === undefined) return;
    try {
      closeSync(this.#fd);
    } catch {
      // Already gone with its cgroup.
    }
    this.#fd = undefined;
  }
}

/** Reads a `key value` line of a flat-keyed control file (memory.oom_control, memory.events…). */
export function readKey(dir: string, file: string, key: string): number | undefined {
  const match = new RegExp(`^${key} (\\d+)$`, "m").exec(readControl(dir, file) ?? "");
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

export function pidsOf(dir: string): number[] {
  return parsePids(readControl(dir, "cgroup.procs") ?? "");
}

export function parsePids(text: string): number[] {
  return text.split("\n").filter(Boolean).map(Number);
}

export function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** How long a teardown keeps killing before it reports the tree as stuck (it never throws). */
export const KILL_DEADLINE_MS = 10_000;

/**
 * Kills a cgroup v1 tree however fast it forks: freeze (without waiting for FROZEN: a fork bomb can
 * keep the cgroup FREEZING) → SIGKILL every pid listed → thaw (a SIGKILL to a frozen task only lands
 * on thaw), repeated until no controller lists a task. Returns whether the tree is empty; never throws.
 */
export async function killTree(
  freezerDir: string | undefined,
  procsDirs: readonly string[],
  deadlineMs = KILL_DEADLINE_MS,
): Promise<boolean> {
  const deadline = performance.now() + deadlineMs;
  for (let round = 0; ; round++) {
    const pids = new Set(procsDirs.flatMap((dir) => pidsOf(dir)));
    if (pids.size === 0) return true;
    if (performance.now() > deadline) return false;
    const freeze = freezerDir !== undefined && tryWrite(`${freezerDir}/freezer.state`, "FROZEN");
    // A moment for the freeze to catch the tree (most tasks stop within microseconds; a busy one is
    // killed anyway and stops at thaw).
    if (freeze && round > 0) await settle(freezerDir, 20);
    killAll(pids);
    if (freezerDir !== undefined) tryWrite(`${freezerDir}/freezer.state`, "THAWED");
    // Dying tasks leave the cgroup asynchronously: yield so the kernel can reap them.
    await new Promise((resolve) => setTimeout(resolve, round < 10 ? 1 : 10));
  }
}

/** Waits up to `ms` for the freezer to report FROZEN (FREEZING is fine: the kill comes anyway). */
async function settle(freezerDir: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    if (readControl(freezerDir, "freezer.state")?.trim() === "FROZEN") return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function tryWrite(path: string, value: string): boolean {
  try {
    writeFileSync(path, value);
    return true;
  } catch {
    return false;
  }
}

/** Polls `done` on every turn of the event loop until it holds or `ms` elapse. */
export async function until(done: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!done()) {
    if (performance.now() > deadline) throw new SandboxError("CgroupFailure", `timed out: ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Removes a cgroup directory once its last task is gone: kill whatever is still listed, retry on
 * EBUSY (dying tasks leave the cgroup asynchronously). Missing directories count as removed.
 */
export async function removeCgroupDir(dir: string, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      rmdirSync(dir);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY" || performance.now() > deadline) {
        throw new SandboxError("CgroupFailure", `cannot remove ${dir}`, { cause: error });
      }
    }
    killAll(pidsOf(dir));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
