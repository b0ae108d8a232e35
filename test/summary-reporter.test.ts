/**
 * The closing `summary:` line counts every failure: a vitest run over fixture files that fail in
 * each way a file can (a failing test, a file that cannot load, a throwing beforeAll, a throwing
 * afterAll) next to a passing one.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { expect, it } from "vitest";

it("counts files that failed to load or in beforeAll/afterAll hooks as failed", async () => {
  const child = spawn(
    process.execPath,
    ["node_modules/vitest/vitest.mjs", "run", "--config", "test/fixtures/summary-reporter/vitest.config.ts"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.resume();
  const [code] = await once(child, "close");
  // Passed: passing.fixture's test and after-all.fixture's test. Failed: the failing test, the file
  // that cannot load, the suite whose beforeAll threw, the file whose afterAll threw. Skipped: one
  // it.skip and the two tests the failed beforeAll kept from running.
  expect(out).toMatch(/^summary: 2 passed, 4 failed, 3 skipped$/m);
  expect(code).not.toBe(0);
});
