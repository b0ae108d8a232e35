/**
 * Prints one plain closing line, `passed: N passed, N failed, N skipped`, after
 * vitest's own summary, so any tool can read the outcome of a run.
 */
import type { Reporter, RunnerTask, RunnerTestFile } from "vitest/node";

function count(tasks: RunnerTask[], acc: { passed: number; failed: number; skipped: number }) {
  for (const t of tasks) {
    if (t.type === "suite") count(t.tasks, acc);
    else if (t.mode === "skip" || t.mode === "todo") acc.skipped++;
    else if (t.result?.state === "pass") acc.passed++;
    else if (t.result?.state === "fail") acc.failed++;
    else acc.skipped++;
  }
  return acc;
}

export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []) {
    const acc = { passed: 0, failed: 0, skipped: 0 };
    for (const f of files) {
      count(f.tasks, acc);
      // A file that failed to load counts as a failure.
      if (f.result?.state === "fail" && f.tasks.length === 0) acc.failed++;
    }
    acc.failed += errors.length;
    process.stdout.write(`\nsummary: ${acc.passed} passed, ${acc.failed} failed, ${acc.skipped} skipped\n`);
  }
}
