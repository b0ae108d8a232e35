/**
 * CPU priority of stem cells: a cell boots at the lowest priority (nice 19), so refilling the pool
 * takes only CPU that nothing else wants (a burst of cold starts, the invokes of adopted cells);
 * once a function adopts it, every thread of its processes goes back to the normal priority (0).
 */
import { readdirSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** The nice value a stem cell runs at until it is adopted. */
export const STEM_CELL_NICE = 19;

/** argv that runs `argv` at the stem cells' priority (every thread it starts inherits it). */
export function atStemCellPriority(argv: readonly string[]): string[] {
  return ["nice", "-n", String(STEM_CELL_NICE), ...argv];
}

/**
 * Every thread of these processes back to nice 0. Nice is per thread: a thread started by one not yet
 * reset inherits 19, so the threads are walked again until a walk finds none left above 0.
 */
export function restoreNormalPriority(pids: readonly number[]): void {
  for (let pass = 0; pass < 5; pass++) {
    let changed = 0;
    for (const pid of pids) {
      let tasks: string[];
      try {
        tasks = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue; // gone
      }
      for (const task of tasks) {
        const tid = Number(task);
        try {
          if (getPriority(tid) === 0) continue;
          setPriority(tid, 0);
          changed++;
        } catch {
          // The thread has exited.
        }
      }
    }
    if (changed === 0) return;
  }
}
