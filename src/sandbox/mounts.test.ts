/**
 * The mount helper (libexec/mounter.py): the mounts of sandbox starts and stem-cell adoptions made
 * by one long-lived process instead of `mount` execs. What it mounts is what `mount` would have
 * (an overlay names only /dev/fd in its options), odd and hostile paths are taken literally or
 * refused, and a helper that dies is replaced without a mount failing.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bindMount,
  mounterPid,
  mountOverlay,
  mountsUnder,
  removeMountPoints,
  sharedMountPoint,
  unmount,
} from "./mounts.js";

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "lambent-mounter-"));
});
afterAll(async () => {
  await removeMountPoints(dir);
  await rm(dir, { recursive: true, force: true });
});

async function mountLine(target: string): Promise<string | undefined> {
  const table = await readFile("/proc/self/mountinfo", "utf8");
  return table
    .split("\n")
    .filter((line) => line.split(" ")[4] === target)
    .pop();
}

describe.skipIf(process.getuid?.() !== 0)("the mount helper", () => {
  it("binds, makes shared, mounts an overlay naming no host path, and unmounts", async () => {
    const source = join(dir, "code");
    const empty = join(dir, "empty");
    const overlay = join(dir, "overlay");
    await Promise.all([mkdir(source), mkdir(empty), mkdir(overlay)]);
    await writeFile(join(source, "index.js"), "hello");
    await mountOverlay(source, empty, overlay);
    const line = (await mountLine(overlay)) as string;
    expect(line).toMatch(/ - overlay overlay ro,lowerdir=\/dev\/fd\/\d+:\/dev\/fd\/\d+/);
    expect(line.split(" - ")[1]).not.toContain(dir);
    expect(await readFile(join(overlay, "index.js"), "utf8")).toBe("hello");
    await expect(writeFile(join(overlay, "x"), "")).rejects.toThrow(/EROFS/);

    const point = join(dir, "stem", "task");
    await sharedMountPoint(point);
    expect(await mountLine(point)).toMatch(/ shared:\d+ /);
    await bindMount(overlay, point);
    expect(await readFile(join(point, "index.js"), "utf8")).toBe("hello");

    await removeMountPoints(join(dir, "stem"));
    await unmount(overlay);
    expect(await mountsUnder(dir)).toEqual([]);
  });

  it("takes odd paths literally, resolves relative ones, and refuses NUL bytes and missing sources", async () => {
    const odd = join(dir, "a b\n'\"\\ $(x) é");
    const target = join(dir, "odd-target");
    await Promise.all([mkdir(odd), mkdir(target)]);
    await writeFile(join(odd, "f"), "odd");
    await bindMount(relative(process.cwd(), odd), relative(process.cwd(), target));
    expect(await readFile(join(target, "f"), "utf8")).toBe("odd");
    await unmount(target);
    expect(await mountsUnder(target)).toEqual([]);

    await expect(bindMount(`${odd}\0/etc`, target)).rejects.toThrow(/SandboxStartFailure|mount --bind/);
    await expect(bindMount(join(dir, "missing"), target)).rejects.toThrow(/No such file or directory/);
    await expect(mountOverlay(join(dir, "missing"), odd, target)).rejects.toThrow(/overlay of/);
    expect(await mountsUnder(target)).toEqual([]);
    // A failed unmount is no error (teardown unmounts what may already be gone).
    await expect(unmount(join(dir, "never-mounted"))).resolves.toBeUndefined();
  });

  it("replaces a helper that died", async () => {
    const source = join(dir, "again");
    const target = join(dir, "again-target");
    await Promise.all([mkdir(source), mkdir(target)]);
    await bindMount(source, target);
    const first = mounterPid();
    expect(first).toBeGreaterThan(0);
    process.kill(first as number, "SIGKILL");
    await unmount(target);
    await bindMount(source, target);
    expect(await mountLine(target)).toBeDefined();
    await unmount(target);
    expect(await mountsUnder(target)).toEqual([]);
  });
});
