import { defineConfig } from "vitest/config";
import SlowFirstSequencer from "./test/helpers/sequencer.js";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores in CI: two test files at a time, each starting its own servers.
    maxWorkers: 2,
    minWorkers: 1,
    // The longest files first (test/helpers/sequencer.ts), so neither worker is left with a long one at the end.
    sequence: { sequencer: SlowFirstSequencer },
    reporters: ["default", "./test/helpers/summary-reporter.ts"],
  },
});
