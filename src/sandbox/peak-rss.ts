import { readdirSync, readFileSync } from "node:fs";

/**
 * The peak resident set of a process tree: the sum of each process's `VmHWM` (the kernel's own
 * high-water mark of its resident pages, file-backed ones included). Processes already gone count 0.
 */
export function peakRssBytes(pids: Iterable<number>): number {
  let total = 0;
  for (const pid of pids) {
    let status: string;
    try {
      status = readFileSync(`/proc/${pid}/status`, "latin1");
    } catch {
      continue;
    }
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1];
    if (kb !== undefined) total += Number(kb) * 1024;
  }
  return total;
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
