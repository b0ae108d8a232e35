/**
 * A Lambent server as a child process (`node bin/lambent.js server …`), for
 * tests that kill it. Needs `dist/` (see buildAsync).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/**
 * Compile src/ to dist/ (type errors elsewhere in the tree do not stop tsc from emitting), without
 * blocking the test worker (vitest's RPC times out after 60 s of a blocked worker). The compiler
 * itself, not npx (which copies the repository into its cache first: ~55 s). Under `npm test`
 * (scripts/test.sh builds before vitest and says so in LAMBENT_DIST_BUILT) nothing is rebuilt: a
 * rebuild would rewrite dist/ while other files' servers load it.
 */
export async function buildAsync(): Promise<void> {
  if (process.env.LAMBENT_DIST_BUILT === "1" && existsSync(`${ROOT}/dist/cli/main.js`)) return;
  await new Promise<void>((resolve, reject) => {
    const tsc = spawn(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
      cwd: ROOT,
      stdio: "ignore",
    });
    tsc.once("error", reject);
    tsc.once("exit", () => resolve());
  });
  if (!existsSync(`${ROOT}/dist/cli/main.js`)) throw new Error("build produced no dist/cli/main.js");
}

export interface ChildServer {
  proc: ChildProcess;
  url: string;
  /** kill -9 (the server only; its sandboxes live in their own process groups). */
  kill9(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<number | null>;
}

export async function startChild(dataDir: string, args: string[] = []): Promise<ChildServer> {
  const proc = spawn(
    process.execPath,
    ["bin/lambent.js", "server", "--port", "0", "--data-dir", dataDir, "--sandbox", "process", ...args],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /ready at (http:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        proc.stdout?.off("data", onData);
        resolve(m[1]);
      }
    };
    proc.stdout?.on("data", onData);
    void exited.then((code) => reject(new Error(`server exited (${code}) before ready: ${stderr}`)));
  });
  proc.stdout?.resume();
  return {
    proc,
    url,
    async kill9() {
      proc.kill("SIGKILL");
      await exited;
    },
    async stop() {
      proc.kill("SIGTERM");
      return exited;
    },
  };
}
