/**
 * The order vitest hands test files to its two workers: the longest first, so the run does not end
 * with one worker still busy on a long file it picked up last while the other sits idle.
 *
 * A file's length is what vitest's results cache remembers of its last run (node_modules/.vite,
 * so only on a checkout that ran the suite before), else its entry in SLOW_FILES (a clean checkout,
 * as in CI), else 0; files of equal length go larger first, as vitest's own sequencer orders them.
 */
import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * Seconds each of the slowest files took in a whole run on the 2-core CI machine (under load; no
 * need to be exact: only the order matters). Refresh from the `slowest files:` line `npm test` prints.
 */
export const SLOW_FILES: Record<string, number> = {
  "test/attacks/server-kill.test.ts": 128,
  "test/isolation.test.ts": 97,
  "test/async-durability.test.ts": 88,
  "test/schedules-durability.test.ts": 70,
  "test/cluster-netns.test.ts": 47,
  "test/console.test.ts": 36,
};

export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const { cache } = this.ctx;
    const known = (spec: TestSpecification) => {
      const path = relative(root, spec.moduleId);
      const cached = cache.getFileTestResults(`${spec.project.name}:${path}`);
      return cached ? cached.duration / 1000 : (SLOW_FILES[path] ?? 0);
    };
    const size = (spec: TestSpecification) =>
      cache.getFileStats(`${spec.project.name}:${relative(root, spec.moduleId)}`)?.size ?? 0;
    return [...files].sort((a, b) => known(b) - known(a) || size(b) - size(a));
  }
}
