/**
 * Mount points through which a stem cell gets its function after it started:
 * each is a shared bind mount on the host, bound into the sandbox (which bwrap
 * makes a slave of the host's mounts), so a later bind on the host shows up
 * inside. Sources are taken from read-only bind mounts of their roots, so what
 * appears inside is read-only too.
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, open, readdir, readFile, rmdir } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { SandboxError } from "./errors.js";
import { HELPER_ENV } from "./network.js";

export function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    execFile(cmd, args, { env: HELPER_ENV }, (err, _stdout, stderr) => {
      if (err)
        fail(
          new SandboxError(
            "SandboxStartFailure",
            `${cmd} ${args.join(" ")}: ${stderr.trim() || err.message}`,
          ),
        );
      else done();
    });
  });
}

export function bindMount(source: string, target: string): Promise<void> {
  return run("mount", ["--bind", source, target]);
}

/** A tmpfs at `target` (options such as `size=16m,mode=0755`). */
export function mountTmpfs(target: string, options: string): Promise<void> {
  return run("mount", ["-t", "tmpfs", "-o", options, "tmpfs", target]);
}

/**
 * A read-only overlay at `target` whose only content is `source` (`empty` is the empty second layer
 * overlayfs needs when it has no upper layer). Both layers are named to the kernel as `/dev/fd/N`,
 * so the mount's options (what /proc/self/mountinfo shows) name neither, and its root is `/`: bound
 * into a sandbox, it shows no host path.
 */
export async function mountOverlay(source: string, empty: string, target: string): Promise<void> {
  const [lower, blank] = await Promise.all([open(source, "r"), open(empty, "r")]);
  try {
    const child = spawn(
      "mount",
      ["-t", "overlay", "overlay", "-o", "ro,nosuid,nodev,lowerdir=/dev/fd/3:/dev/fd/4", target],
      { env: HELPER_ENV, stdio: ["ignore", "ignore", "pipe", lower.fd, blank.fd] },
    );
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((done, fail) => {
      child.once("error", fail);
      child.once("close", done);
    });
    if (code !== 0)
      throw new SandboxError(
        "SandboxStartFailure",
        `overlay of ${source}: ${stderr.trim() || `exit ${code}`}`,
      );
  } finally {
    await Promise.all([lower.close(), blank.close()]);
  }
}

/** Detach a mount and everything on it. */
export function unmount(target: string): Promise<void> {
  return run("umount", ["-l", target]).catch(() => undefined);
}

/** Mount points at or below `dir`, deepest first (for cleanup after a crash). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const prefix = resolve(dir);
  const table = await readFile("/proc/self/mountinfo", "utf8").catch(() => "");
  const points = table
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p): p is string => p !== undefined && (p === prefix || p.startsWith(`${prefix}/`)))
    .map((p) => p.replace(/\\040/g, " "));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** A shared, initially empty mount point that a sandbox binds (e.g. at /var/task). */
export async function sharedMountPoint(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await bindMount(dir, dir);
  await run("mount", ["--make-shared", dir]);
}

/**
 * Read-only views of the directories stem cells may be given (the code cache,
 * the layers cache): `<viewsDir>/<n>` is a read-only bind of root n.
 */
export class ReadOnlyViews {
  private readonly views: Array<{ root: string; view: string }> = [];

  constructor(
    private readonly viewsDir: string,
    private readonly roots: readonly string[],
  ) {}

  async mount(): Promise<void> {
    await this.unmountAll();
    for (const [i, root] of this.roots.entries()) {
      const view = join(this.viewsDir, String(i));
      await mkdir(root, { recursive: true });
      await mkdir(view, { recursive: true });
      await bindMount(root, view);
      await run("mount", ["-o", "remount,ro,bind", view]);
      this.views.push({ root: resolve(root), view });
    }
  }

  /** The read-only path of `source`, which must lie under one of the roots. */
  readOnly(source: string): string {
    const abs = resolve(source);
    for (const { root, view } of this.views) {
      const rel = relative(root, abs);
      if (!rel.startsWith("..") && !rel.startsWith("/")) return join(view, rel);
    }
    throw new SandboxError("InvalidSandboxSpec", `${source} is not under a directory stem cells may mount`);
  }

  async unmountAll(): Promise<void> {
    this.views.length = 0;
    await removeMountPoints(this.viewsDir);
  }
}

/**
 * Unmount everything at or below `dir` and remove its (then empty) folders.
 * Never deletes recursively: a folder that still holds anything stays.
 */
export async function removeMountPoints(dir: string): Promise<void> {
  // A point can hold stacked mounts (an adopted stem cell's code bound over its shared mount
  // point): each `umount -l` detaches only the top one, so repeat while any is left.
  for (let round = 0; round < 8; round++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) break;
    for (const point of points) await unmount(point);
  }
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await walk(join(d, e.name));
    await rmdir(d).catch(() => undefined);
  };
  await walk(dir);
}
