import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { Sandbox } from "./driver.js";
import { ProcessDriver } from "./process.js";

const dir = mkdtempSync(join(tmpdir(), "lambent-process-test-"));
const driver = new ProcessDriver();
let sequence = 0;

class Output {
  text = "";
  #waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  push = (chunk: Buffer): void => {
    this.text += chunk.toString();
    this.#waiters = this.#waiters.filter((waiter) => {
      const match = this.text.match(waiter.pattern);
      if (match) waiter.resolve(match);
      return !match;
    });
  };
  waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    const match = this.text.match(pattern);
    if (match) return Promise.resolve(match);
    return new Promise((resolve) => this.#waiters.push({ pattern, resolve }));
  }
}

async function start(
  script: string,
  env: Record<string, string> = {},
): Promise<{ sandbox: Sandbox; output: Output }> {
  const output = new Output();
  const mounts = { codeDir: dir, runtimeDir: dir };
  const runtimeApi = { kind: "tcp", host: "127.0.0.1", port: 9 } as const;
  const sandbox = await driver.spawn({
    id: `p${++sequence}`,
    argv: [process.execPath, "-e", script],
    env: { PATH: "/usr/bin:/bin", ...env },
    mounts,
    limits: { memoryMb: 128, ephemeralStorageMb: 512, pids: 1024 },
    runtimeApi,
    onOutput: output.push,
  });
  return { sandbox, output };
}

/** Whether `pid` still runs (a zombie nobody reaps counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("process sandbox driver", () => {
  afterAll(async () => {
    await driver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("says it isolates nothing and maps paths to the host's", () => {
    expect(driver.isolates).toBe(false);
    expect(driver.runtimeApiEndpointKind()).toBe("tcp");
    const view = driver.view(
      { codeDir: "/code", runtimeDir: "/rt" },
      { kind: "tcp", host: "127.0.0.1", port: 1234 },
    );
    expect(view).toEqual({
      taskRoot: "/code",
      runtimeRoot: "/rt",
      optRoot: "/opt",
      runtimeApiAddress: "127.0.0.1:1234",
      ownRoot: false,
    });
  });

  it("gives the process exactly the spec's environment and pipes stdout and stderr", async () => {
    process.env.LAMBENT_PARENT_ONLY = "leak";
    const { sandbox, output } = await start(
      `console.log("ENV " + JSON.stringify(Object.keys(process.env).sort())); console.error("TO STDERR");`,
      { ONLY_THIS: "1" },
    );
    delete process.env.LAMBENT_PARENT_ONLY;
    expect(JSON.parse((await output.waitFor(/ENV (.*)\n/))[1] as string)).toEqual(["ONLY_THIS", "PATH"]);
    await output.waitFor(/TO STDERR/);
    expect(await sandbox.exited).toEqual({ code: 0, signal: null, oomKilled: false });
  });

  it("reaches a Runtime API on the host loopback", async () => {
    const api = createServer((request, response) => response.end(`next ${request.url}`));
    await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
    const { port } = api.address() as { port: number };
    const { sandbox, output } = await start(
      `fetch("http://" + process.env.AWS_LAMBDA_RUNTIME_API + "/2018-06-01/runtime/invocation/next")
        .then((r) => r.text()).then((t) => console.log("GOT " + t));`,
      { AWS_LAMBDA_RUNTIME_API: `127.0.0.1:${port}` },
    );
    expect((await output.waitFor(/GOT (.*)\n/))[1]).toBe("next /2018-06-01/runtime/invocation/next");
    await sandbox.exited;
    api.close();
  });

  it("freezes the process group (a setInterval counter stops) and thaws it", async () => {
    const { sandbox, output } = await start(`let n = 0; setInterval(() => console.log("TICK " + ++n), 5);`);
    await output.waitFor(/TICK 3\n/);
    await sandbox.freeze();
    // SIGSTOP settles asynchronously: a tick already in flight may still arrive.
    const settled = output.text.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    const frozenAt = output.text.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(output.text.length).toBe(frozenAt);
    expect(frozenAt - settled).toBeLessThan(20);
    const last = Number(output.text.match(/TICK (\d+)\n$/)?.[1]);
    await sandbox.thaw();
    await output.waitFor(new RegExp(`TICK ${last + 1}\\n`));
    await sandbox.destroy();
  });

  it("reports the main process's peak memory and resets it", async () => {
    const { sandbox, output } = await start(
      `const held = Buffer.alloc(80 * 1024 * 1024, 1); console.log("RSS " + process.memoryUsage().rss);
       setInterval(() => held.length, 1000);`,
    );
    const rss = Number((await output.waitFor(/RSS (\d+)\n/))[1]);
    const peak = sandbox.peakMemoryBytes() as number;
    expect(peak).toBeGreaterThanOrEqual(80 * 1024 * 1024);
    expect(Math.abs(peak - rss) / rss).toBeLessThan(0.25);
    sandbox.resetPeakMemory();
    expect(sandbox.peakMemoryBytes()).toBeLessThan(peak + 4 * 1024 * 1024);
    await sandbox.destroy();
  });

  it("destroy kills the whole process group, grandchildren included", async () => {
    const { sandbox, output } = await start(
      `const c = require("node:child_process").spawn("/bin/sleep", ["1000"], { stdio: "ignore" }); console.log("CHILD " + c.pid);
       setInterval(() => {}, 1000);`,
    );
    const grandchild = Number((await output.waitFor(/CHILD (\d+)\n/))[1]);
    expect(alive(grandchild)).toBe(true);
    await sandbox.freeze();
    await sandbox.destroy();
    expect(await sandbox.exited).toMatchObject({ signal: "SIGKILL", oomKilled: false });
    expect(alive(sandbox.pid)).toBe(false);
    expect(alive(grandchild)).toBe(false);
  });

  it("fails to spawn a missing executable with a typed error", async () => {
    await expect(
      driver.spawn({
        id: "missing",
        argv: ["/nonexistent/bootstrap"],
        env: {},
        mounts: { codeDir: dir, runtimeDir: dir },
        limits: { memoryMb: 128, ephemeralStorageMb: 512, pids: 1024 },
        runtimeApi: { kind: "tcp", host: "127.0.0.1", port: 9 },
        onOutput: () => {},
      }),
    ).rejects.toMatchObject({ name: "SandboxError", code: "SandboxStartFailure" });
  });
});
