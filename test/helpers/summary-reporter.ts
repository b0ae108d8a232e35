/**
 * Prints one plain closing line, `summary: N passed, N failed, N skipped`, after
 * vitest's own summary, so any tool can read the outcome of a run.
 *
 * Failed counts every failure: each failed test, plus each file or suite that failed on its own —
 * a file that could not be loaded, a beforeAll/afterAll (or beforeEach/afterEach) hook that threw —
 * plus every unhandled error. Tests a failed beforeAll kept from running count as skipped.
 * Proven by test/summary-reporter.test.ts.
 *
 * Before it, `slowest files:` names the ten files that took longest (load, collect and run, in
 * seconds): what test/helpers/sequencer.ts's SLOW_FILES is refreshed from.
 */
import type { Reporter, RunnerTask, RunnerTestFile } from "vitest/node";

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

function count(task: RunnerTask, acc: Counts): Counts {
  if (task.type === "suite") {
    // A file or suite with errors of its own: a load failure or a hook that threw.
    if (task.result?.state === "fail" && (task.result.errors?.length ?? 0) > 0) acc.failed++;
    for (const child of task.tasks) count(child, acc);
  } else if (task.mode === "skip" || task.mode === "todo") acc.skipped++;
  else if (task.result?.state === "pass") acc.passed++;
  else if (task.result?.state === "fail") acc.failed++;
  else acc.skipped++;
  return acc;
}

/** A file's seconds: preparing its worker, its setup files, importing (collecting) it, its tests. */
function seconds(f: RunnerTestFile): number {
  const ms =
    (f.prepareDuration ?? 0) + (f.setupDuration ?? 0) + (f.collectDuration ?? 0) + (f.result?.duration ?? 0);
  return ms / 1000;
}

export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []) {
    const slowest = [...files].sort((a, b) => seconds(b) - seconds(a)).slice(0, 10);
    if (slowest.length > 1) {
      const list = slowest.map(
        (f) => `${f.filepath.replace(/^.*?\/(?=(src|test)\/)/, "")} ${seconds(f).toFixed(0)} s`,
      );
      process.stdout.write(`\nslowest files: ${list.join(", ")}\n`);
    }
    const acc = { passed: 0, failed: 0, skipped: 0 };
    for (const f of files) count(f, acc);
    acc.failed += errors.length;
    process.stdout.write(`\nsummary: ${acc.passed} passed, ${acc.failed} failed, ${acc.skipped} skipped\n`);
  }
}
