/** The instance registry's lock: a restarting server and another server's sweep never overlap. */
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { SandboxError } from "./errors.js";
import {
  abandonedInstances,
  isAbandoned,
  registerInstance,
  unregisterInstance,
  withInstanceLock,
} from "./instances.js";

const REGISTRY = "/run/lambent/instances";
const ids: string[] = [];
const newId = () => {
  const id = `test-${randomBytes(6).toString("hex")}`;
  ids.push(id);
  return id;
};
afterEach(async () => {
  for (const id of ids.splice(0)) {
    await unregisterInstance(id);
    await rm(`${REGISTRY}/${id}.lock`, { recursive: true, force: true });
  }
});

describe.skipIf(process.getuid?.() !== 0)("instance lock", () => {
  it("runs holders of the same instance one after the other", async () => {
    const id = newId();
    const log: string[] = [];
    const hold = (name: string) =>
      withInstanceLock(id, 5000, async () => {
        log.push(`${name} in`);
        await sleep(30);
        log.push(`${name} out`);
      });
    await Promise.all([hold("a"), hold("b"), hold("c")]);
    expect(log).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) {
      expect(log[i]?.endsWith(" in")).toBe(true);
      expect(log[i + 1]).toBe(log[i]?.replace(" in", " out"));
    }
  });

  it("takes over a lock whose holder is gone, and waits (then gives up) for a live one", async () => {
    const id = newId();
    await mkdir(`${REGISTRY}/${id}.lock`, { recursive: true });
    // A pid that cannot be running with that start time.
    await writeFile(`${REGISTRY}/${id}.lock/owner`, "999999999 1");
    expect(await withInstanceLock(id, 1000, async () => "taken over")).toBe("taken over");

    let release: () => void = () => {};
    const held = withInstanceLock(id, 1000, () => new Promise<void>((r) => (release = r)));
    await sleep(50);
    const refused = await withInstanceLock(id, 100, async () => "never").catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SandboxError);
    expect((refused as SandboxError).message).toContain(`locked by ${process.pid} `);
    release();
    await held;
  });

  it("tells a live owner from a dead one, and never lists lock directories as instances", async () => {
    const live = newId();
    const dead = newId();
    await registerInstance(live, "/tmp/live-run");
    await writeFile(`${REGISTRY}/${dead}`, "999999999 1 /tmp/dead run\n");
    await mkdir(`${REGISTRY}/${live}.lock`, { recursive: true });
    expect(await isAbandoned(live)).toBe(false);
    expect(await isAbandoned(dead)).toBe(true);
    const abandoned = await abandonedInstances();
    expect(abandoned).toContainEqual({ instanceId: dead, runDir: "/tmp/dead run" });
    expect(abandoned.map((a) => a.instanceId)).not.toContain(live);
    expect(abandoned.map((a) => a.instanceId).filter((i) => i.endsWith(".lock"))).toEqual([]);
  });
});
