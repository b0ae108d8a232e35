/**
 * Attack: a fork bomb left running (or frozen mid-bomb) when the server goes away. A SIGTERM stop
 * leaves no process, cgroup or mount; after a kill -9 the server's watchdog kills and removes
 * everything within seconds (a SIGKILL to a frozen task waits for a thaw that a dead server never
 * sends), and the next start finds nothing left.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  instanceOf,
  instanceProcesses,
  instanceRootExists,
  mountsUnder,
  pidsCurrent,
  sandboxCgroups,
  scratchLeftovers,
} from "../helpers/cgroups.js";
import { buildAsync, type ChildServer, startChild } from "../helpers/child-server.js";
import { invoke } from "../helpers/invoke.js";
import { createInlineFunction, lambdaClient } from "../helpers/server.js";

/**
 * Starts a fork bomb in the background (at the lowest priority, so the runtime still gets CPU to
 * answer), lets it spread, then answers: the environment goes idle and is frozen with the bomb inside.
 */
const BACKGROUND_BOMB = `const cp = require("node:child_process");
exports.handler = async () => {
  cp.spawn("/usr/bin/nice", ["-n", "19", "/bin/bash", "-c", ":(){ :|:& };:"], { stdio: "ignore", detached: true }).unref();
  await new Promise((r) => setTimeout(r, 1500));
  return "started";
};`;

/** Starts a fork bomb and never answers: the environment is mid-invoke when the server goes. */
const BUSY_BOMB = `const cp = require("node:child_process");
exports.handler = async () => {
  cp.spawn("/bin/bash", ["-c", ":(){ :|:& };:"], { stdio: "ignore", detached: true });
  await new Promise(() => setInterval(() => {}, 1000));
};`;

const dirs: string[] = [];
const children: ChildServer[] = [];
beforeAll(() => buildAsync(), 300_000);
afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) await c.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function create(lambda: LambdaClient, name: string, code: string, memory: number): Promise<void> {
  await createInlineFunction(lambda, name, code, { MemorySize: memory, Timeout: 600 });
}

/** A bwrap server with two bombed environments: one idle (frozen with its bomb inside), one mid-invoke. */
async function bombedServer() {
  const dataDir = mkdtempSync(join(tmpdir(), "lambent-bomb-"));
  dirs.push(dataDir);
  const server = await startChild(dataDir, ["--sandbox", "bwrap"]);
  children.push(server);
  const lambda = lambdaClient(server.url);
  await create(lambda, "bomb", BACKGROUND_BOMB, 1769);
  await create(lambda, "busy-bomb", BUSY_BOMB, 128);
  // One environment answers and goes idle (frozen, or stuck FREEZING) with its bomb inside.
  expect((await invoke(lambda, "bomb")).json).toBe("started");
  // The other is mid-invoke when the server goes (the caller's connection just breaks).
  const inFlight = invoke(lambda, "busy-bomb").catch((e: unknown) => e);
  await eventually(
    () => sandboxCgroups(dataDir).filter((d) => d.includes("/pids/") && pidsCurrent(d) > 100).length >= 2,
    30_000,
    "two environments full of bomb processes",
  );
  return { dataDir, server, lambda, inFlight };
}

function expectNothingLeft(dataDir: string): void {
  expect(instanceProcesses(dataDir)).toEqual([]);
  expect(sandboxCgroups(dataDir)).toEqual([]);
  expect(instanceRootExists(dataDir)).toBe(false);
  expect(mountsUnder(dataDir)).toEqual([]);
  // No /tmp disk: neither its loop device nor its image.
  expect(scratchLeftovers(dataDir)).toEqual([]);
}

// Each test builds two bombed environments on a loaded machine and waits out a 10 s stop grace.
describe("server stop during a fork bomb", { timeout: 240_000 }, () => {
  it("a SIGTERM leaves no sandbox process, cgroup or mount", async () => {
    const { dataDir, server, lambda, inFlight } = await bombedServer();
    expect(await server.stop()).toBe(0);
    await inFlight;
    lambda.destroy();
    expectNothingLeft(dataDir);
    // Its watchdog saw the clean stop and left too.
    await eventually(
      () => !readFileSync("/proc/self/mountinfo", "utf8").includes(dataDir) && !watchdogAlive(dataDir),
      10_000,
      "the watchdog exits",
    );
  });

  it("after a kill -9 the watchdog kills and removes every sandbox within seconds; a restart finds nothing", async () => {
    const { dataDir, server, lambda, inFlight } = await bombedServer();
    expect(instanceProcesses(dataDir).length).toBeGreaterThan(200);
    await server.kill9();
    await inFlight;
    lambda.destroy();
    // Nobody restarts the server: the watchdog alone cleans up (a generous bound, not a timing goal).
    await eventually(
      () => instanceProcesses(dataDir).length === 0 && !instanceRootExists(dataDir),
      20_000,
      "the watchdog to kill and remove the sandboxes",
    );
    await eventually(() => mountsUnder(dataDir).length === 0, 10_000, "the mounts to go");
    await eventually(() => scratchLeftovers(dataDir).length === 0, 10_000, "the /tmp disks to go");
    await eventually(() => !watchdogAlive(dataDir), 10_000, "the watchdog to exit");
    expectNothingLeft(dataDir);
    // The next start and stop leave nothing either.
    const again = await startChild(dataDir, ["--sandbox", "bwrap"]);
    expect((await fetch(`${again.url}/health`)).status).toBe(200);
    expect(await again.stop()).toBe(0);
    expectNothingLeft(dataDir);
  });
});

/** Whether a watchdog process for this data dir's instance is still running. */
function watchdogAlive(dataDir: string): boolean {
  const id = instanceOf(dataDir);
  try {
    const [pid] = readFileSync(`/run/lambent/watchdogs/${id}`, "utf8").trim().split(" ");
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("watchdog.sh");
  } catch {
    return false;
  }
}
