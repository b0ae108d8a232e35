import type { ChildProcess } from "node:child_process";

/** How a child process ended, once its stdio is drained. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves when a started `child` has exited and its output pipes are closed. */
export function childExit(child: ChildProcess): Promise<ChildExit> {
  return new Promise((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
  });
}

/** Resolves once `child` has been spawned (its pid exists), rejects if the executable could not be started. */
export function childSpawned(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
}
