/**
 * The server's lifecycle as `lambent server` runs it: one server per data dir,
 * and SIGTERM shuts it down cleanly (requests answered, store closed, pid file
 * removed, exit code 0).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { GetFunctionConfigurationCommand } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataDirLockedError } from "../src/datadir-lock.js";
import { Platform } from "../src/platform.js";
import { Store } from "../src/store/store.js";
import { createFn, smallZip } from "./helpers/control-plane.js";
import { lambdaClient } from "./helpers/server.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin", "lambent.js");

interface Child {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(args: string[]): Child {
  const proc = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const child: Child = {
    proc,
    stdout: "",
    stderr: "",
    exited: new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal }))),
  };
  proc.stdout?.on("data", (c: Buffer) => {
    child.stdout += c.toString();
  });
  proc.stderr?.on("data", (c: Buffer) => {
    child.stderr += c.toString();
  });
  return child;
}

/** Resolve with the URL from the server's ready line (or reject if it exits first). */
function ready(child: Child): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = /ready at (http:\/\/\S+)/.exec(child.stdout);
      if (m?.[1]) {
        child.proc.stdout?.off("data", check);
        resolve(m[1]);
      }
    };
    child.proc.stdout?.on("data", check);
    check();
    child.exited.then(({ code }) => reject(new Error(`server exited with ${code}: ${child.stderr}`)));
  });
}

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "lambent-server-"));
  dirs.push(d);
  return d;
};

beforeAll(() => {
  // The CLI runs from dist/ (`npm run build`, also run by `npm ci`); build it if it is missing.
  if (!existsSync(join(ROOT, "dist", "cli", "main.js"))) {
    execFileSync(
      process.execPath,
      [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"],
      {
        cwd: ROOT,
        stdio: "inherit",
      },
    );
  }
}, 120_000);

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("lambent server", () => {
  it("SIGTERM stops it cleanly: exit 0, pid file removed, store closed with its data kept", async () => {
    const dataDir = tempDir();
    const server = run(["server", "--port", "0", "--data-dir", dataDir, "--sandbox", "process"]);
    const url = await ready(server);
    expect(existsSync(join(dataDir, "server.pid"))).toBe(true);
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", store: "sqlite" });

    const lambda = lambdaClient(url);
    await createFn(lambda, "survivor-fn", await smallZip("survivor"));
    expect(
      (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "survivor-fn" }))).State,
    ).toBe("Active");
    lambda.destroy();

    // A second server on the same data dir refuses to start, and says why.
    const second = run(["server", "--port", "0", "--data-dir", dataDir, "--sandbox", "process"]);
    const refused = await second.exited;
    expect(refused.code).toBe(2);
    expect(second.stderr).toContain(`is already using the data dir ${dataDir}`);
    expect(second.stdout).not.toContain("ready at");

    server.proc.kill("SIGTERM");
    const exit = await server.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(server.stderr).toContain("SIGTERM received, shutting down");
    expect(existsSync(join(dataDir, "server.pid"))).toBe(false);
    // A cleanly closed SQLite database has checkpointed and removed its write-ahead log.
    expect(existsSync(join(dataDir, "lambent.db-wal"))).toBe(false);

    // The data is there for the next server.
    const store = await Store.open({ dataDir });
    try {
      const rows = await store.db.selectFrom("functions").select("name").execute();
      expect(rows.map((r) => r.name)).toEqual(["survivor-fn"]);
    } finally {
      await store.close();
    }
  });

  it("a second Platform on the same data dir throws DataDirLockedError", async () => {
    const dataDir = tempDir();
    const first = await Platform.start({ port: 0, quiet: true, sandbox: "process", dataDir });
    try {
      let second: Platform | undefined;
      let error: unknown;
      try {
        second = await Platform.start({ port: 0, quiet: true, sandbox: "process", dataDir });
      } catch (err) {
        error = err;
      }
      await second?.stop();
      expect(error).toBeInstanceOf(DataDirLockedError);
      expect((error as Error).message).toContain(`is already using the data dir ${dataDir}`);
      // The first one is unharmed.
      expect((await fetch(`${first.url}/health`)).status).toBe(200);
      expect(existsSync(join(dataDir, "server.pid"))).toBe(true);
    } finally {
      await first.stop();
    }
    expect(existsSync(join(dataDir, "server.pid"))).toBe(false);
    // Once stopped, the data dir can be used again.
    const again = await Platform.start({ port: 0, quiet: true, sandbox: "process", dataDir });
    await again.stop();
  });
});
