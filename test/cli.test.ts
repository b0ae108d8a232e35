/** The `lambent` client commands against a running server, as a user runs them. */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { startServer, type TestServer } from "./helpers/server.js";

const run = promisify(execFile);
let server: TestServer;

const lambent = (...args: string[]) =>
  run(process.execPath, ["bin/lambent.js", ...args, "--endpoint", server.url], {
    env: { PATH: process.env.PATH ?? "" },
  });

beforeAll(async () => {
  server = await startServer();
  await server.deploy("cli-fn", "node-cjs");
  await server.deploy("cli-err", "node-errors", { Handler: "index.throws" });
});
afterAll(async () => {
  await server?.stop();
});

describe("lambent CLI", () => {
  it("invoke prints the response, reads @file payloads and shows the log tail with --log", async () => {
    const { stdout, stderr } = await lambent("invoke", "cli-fn", "--payload", '{"x":1}', "--log");
    expect(JSON.parse(stdout)).toMatchObject({ event: { x: 1 }, counter: 1 });
    expect(stderr).toMatch(/REPORT RequestId: [0-9a-f-]+\tDuration/);
    const file = join(server.dataDir, "event.json");
    writeFileSync(file, '{"from":"file"}');
    const fromFile = await lambent("invoke", "cli-fn", "--payload", `@${file}`);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ event: { from: "file" } });
  });

  it("invoke exits 1 on a function error and explains API errors", async () => {
    const failed = await lambent("invoke", "cli-err").catch((e: { code: number; stdout: string }) => e);
    expect((failed as { code: number }).code).toBe(1);
    expect(JSON.parse((failed as { stdout: string }).stdout)).toMatchObject({ errorType: "CustomError" });
    const missing = await lambent("invoke", "nope").catch((e: { code: number; stderr: string }) => e);
    expect((missing as { code: number }).code).toBe(1);
    expect((missing as { stderr: string }).stderr).toContain("ResourceNotFoundException");
  });

  it("logs prints the function's log lines, and --since limits them", async () => {
    await invoke(server.lambda, "cli-fn", { marker: "logs-test" });
    const { stdout } = await lambent("logs", "cli-fn");
    expect(stdout).toMatch(/START RequestId: /);
    expect(stdout).toMatch(/REPORT RequestId: /);
    expect(stdout).toMatch(/\tINFO\tinvoke \d+/);
    const recent = await lambent("logs", "cli-fn", "--since", "1m");
    expect(recent.stdout).toMatch(/START RequestId: /);
    const bad = await lambent("logs", "cli-fn", "--since", "soon").catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((bad as { code: number }).code).not.toBe(0);
  });
});
