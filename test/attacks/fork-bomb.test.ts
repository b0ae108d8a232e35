/**
 * Attack: a fork bomb (and any runaway process tree). The caller gets the function's own error
 * shape — `Sandbox.Timedout` on timeout, `Runtime.ExitError` when the runtime dies — never a 500,
 * and every process of the environment is gone soon after: freeze → SIGKILL all → thaw, repeated
 * until the cgroup is empty, however many processes the bomb made (pids.max caps them at 1024).
 */
import { existsSync, readFileSync } from "node:fs";
import { CreateFunctionCommand, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cgroupRoot, eventually, instanceOf, instanceProcesses, pidsCurrent } from "../helpers/cgroups.js";
import { invoke } from "../helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "../helpers/server.js";
import { zipEntries } from "../helpers/zip.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ sandbox: "bwrap", prewarm: 0 });
});
afterAll(async () => {
  await server?.stop();
});

/** A Node.js handler that starts a shell fork bomb and never answers. */
const NODE_BOMB = `const cp = require("node:child_process");
exports.handler = async () => {
  cp.spawn("/bin/bash", ["-c", ":(){ :|:& };:"], { stdio: "ignore", detached: true });
  await new Promise(() => setInterval(() => {}, 1000));
};`;

/** A custom runtime (bash) that takes its first event, starts a fork bomb and exits. */
const BASH_BOMB_BOOTSTRAP = `#!/bin/bash
api="$AWS_LAMBDA_RUNTIME_API"
exec 3<>"/dev/tcp/\${api%:*}/\${api##*:}"
printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\\r\\nHost: rt\\r\\n\\r\\n' >&3
IFS= read -r line <&3
bomb() { bomb | bomb & }
bomb
sleep 1
exit 3
`;

async function create(name: string, extra: Record<string, unknown>): Promise<void> {
  await server.lambda.send(
    new CreateFunctionCommand({ FunctionName: name, Role: ROLE, MemorySize: 128, ...extra } as never),
  );
  await waitUntilFunctionActiveV2(
    { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
    { FunctionName: name },
  );
}

/** The sandbox id of the (single) environment of `name`, once it has one. */
async function sandboxOf(name: string): Promise<string> {
  let id: string | undefined;
  await eventually(
    () => {
      id = server.platform.worker.environmentsOf(name)[0]?.sandboxId;
      return id !== undefined;
    },
    30_000,
    `an environment of ${name}`,
  );
  return id as string;
}

/** Every process of the sandbox is gone and its cgroups removed (polled; generous upper bound). */
async function expectGone(sandboxId: string): Promise<void> {
  const inSandbox = () => {
    const needle = `/lambent/${instanceOf(server.dataDir)}/${sandboxId}`;
    return instanceProcesses(server.dataDir).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(needle);
      } catch {
        return false;
      }
    });
  };
  await eventually(
    () =>
      !["pids", "freezer", "memory", "cpu"].some((c) =>
        existsSync(`${cgroupRoot(server.dataDir, c)}/${sandboxId}`),
      ),
    15_000,
    `cgroups of ${sandboxId} removed`,
  );
  expect(inSandbox()).toEqual([]);
}

describe("fork bomb", () => {
  it("a Node.js fork bomb that outlives its timeout ends as Sandbox.Timedout, and its tree is gone", async () => {
    // A whole vCPU (1769 MB) and 10 s: at a 128 MB function's CPU share (7 % of a CPU) the bomb grew
    // ~10 processes a second on CI's machine, and the timeout ended it before it passed 200.
    await create("bomb-timeout", {
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      MemorySize: 1769,
      Timeout: 10,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: NODE_BOMB }]) },
    });
    const pending = invoke(server.lambda, "bomb-timeout");
    const sandboxId = await sandboxOf("bomb-timeout");
    // The bomb really runs: the environment fills up towards pids.max.
    await eventually(
      () => pidsCurrent(`${cgroupRoot(server.dataDir, "pids")}/${sandboxId}`) > 200,
      20_000,
      "the bomb to spread",
    );
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.functionError).toBe("Unhandled");
    expect(r.json).toMatchObject({ errorType: "Sandbox.Timedout" });
    expect((r.json as { errorMessage: string }).errorMessage).toMatch(/Task timed out after 10\.00 seconds/);
    await expectGone(sandboxId);
  });

  it("a custom runtime that starts a fork bomb and exits ends as Runtime.ExitError, and its tree is gone", async () => {
    await create("bomb-exit", {
      Runtime: "provided.al2023",
      Handler: "x",
      // A whole vCPU, so the runtime still gets to exit while the bomb spreads.
      MemorySize: 1769,
      Timeout: 30,
      Code: {
        ZipFile: await zipEntries([{ name: "bootstrap", content: BASH_BOMB_BOOTSTRAP, mode: 0o100755 }]),
      },
    });
    const pending = invoke(server.lambda, "bomb-exit");
    const sandboxId = await sandboxOf("bomb-exit");
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.functionError).toBe("Unhandled");
    expect(r.json).toMatchObject({ errorType: "Runtime.ExitError" });
    await expectGone(sandboxId);
  });

  it("the platform carries on: the next invoke of the bomb gets a fresh environment", async () => {
    await create("after-bomb", {
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Timeout: 3,
      Code: {
        ZipFile: await zipEntries([{ name: "index.js", content: `exports.handler = async () => "ok";` }]),
      },
    });
    expect((await invoke(server.lambda, "after-bomb")).json).toBe("ok");
    const again = await invoke(server.lambda, "bomb-timeout");
    expect(again.json).toMatchObject({ errorType: "Sandbox.Timedout" });
    expect((await invoke(server.lambda, "after-bomb")).json).toBe("ok");
  });
});
