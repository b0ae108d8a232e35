import { constants, readdirSync, readFileSync } from "node:fs";
import { ControlFile } from "./cgroup-fs.js";

/** VmHWM sits in the first few hundred bytes of /proc/<pid>/status (after Name … VmPin). */
const STATUS_HEAD_BYTES = 1024;

/**
 * The peak resident set of a set of processes: the sum of each process's `VmHWM` (the kernel's own
 * high-water mark of its resident pages, file-backed ones included); processes already gone count 0.
 * Each process's status file stays open while the process is listed, so a reading is one pread(2)
 * per process (it runs after every invoke).
 */
export class PeakRss {
  readonly #files = new Map<number, ControlFile>();

  bytes(pids: readonly number[]): number {
    if (this.#files.size > pids.length || pids.some((pid) => !this.#files.has(pid))) this.#keepOnly(pids);
    let total = 0;
    for (const pid of pids) {
      let file = this.#files.get(pid);
      if (file === undefined) {
        file = new ControlFile(`/proc/${pid}/status`, STATUS_HEAD_BYTES, constants.O_RDONLY);
        this.#files.set(pid, file);
      }
      const kb = vmHwmKb(file.read());
      // Gone (an open status file of an exited process reads nothing): the next reading opens the
      // pid afresh, should the kernel have given it to a new process of the set meanwhile.
      if (kb === undefined) {
        file.close();
        this.#files.delete(pid);
      } else total += kb * 1024;
    }
    return total;
  }

  close(): void {
    this.#keepOnly([]);
  }

  #keepOnly(pids: readonly number[]): void {
    const keep = new Set(pids);
    for (const [pid, file] of this.#files) {
      if (keep.has(pid)) continue;
      file.close();
      this.#files.delete(pid);
    }
  }
}

function vmHwmKb(status: string | undefined): number | undefined {
  if (status === undefined) return undefined;
  const at = status.indexOf("\nVmHWM:");
  if (at < 0) return undefined;
  const kb = Number.parseInt(status.slice(at + 7, status.indexOf("\n", at + 7)).trim(), 10);
  return Number.isNaN(kb) ? undefined : kb;
}

/** `root` and every process descended from it now (at most `limit` of them). */
export function processTree(root: number, limit = 4096): number[] {
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0 && found.length < limit) {
    const pid = queue.shift() as number;
    found.push(pid);
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      let children = "";
      try {
        children = readFileSync(`/proc/${pid}/task/${task}/children`, "latin1");
      } catch {
        // The thread ended meanwhile.
      }
      for (const child of children.split(" ")) if (child.trim()) queue.push(Number(child));
    }
  }
  return found;
}
