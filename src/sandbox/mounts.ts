/**
 * Mount points through which a stem cell gets its function after it started:
 * each is a shared bind mount on the host, bound into the sandbox (which bwrap
 * makes a slave of the host's mounts), so a later bind on the host shows up
 * inside. Sources are taken from read-only bind mounts of their roots, so what
 * appears inside is read-only too.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdir, open, readdir, readFile, rmdir } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { SandboxError } from "./errors.js";
import { HELPER_ENV } from "./network.js";

export const MOUNTER_SCRIPT = fileURLToPath(new URL("../../libexec/mounter.py", import.meta.url));

type MountRequest =
  | { op: "bind"; source: string; target: string }
  | { op: "shared"; target: string }
  | { op: "overlay"; lower: string; empty: string; target: string }
  | { op: "umount"; target: string };

/** The helper is gone (or never started): the request is made by exec'ing `mount` instead. */
class MounterGone extends Error {}

/**
 * One long-lived root helper (`libexec/mounter.py`, python3 calling mount(2) through ctypes) making
 * the mounts of sandbox starts, stem-cell adoptions and teardowns: a `mount` exec forks the server
 * and costs several milliseconds of CPU, a request here tens of microseconds. Requests are answered
 * in order. Where python3 is missing or the helper dies, every mount falls back to the exec.
 */
export class Mounter {
  readonly #child: ChildProcess;
  readonly #waiting: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  #buffer = "";
  #gone = false;

  constructor() {
    this.#child = spawn("python3", ["-I", "-S", MOUNTER_SCRIPT], {
      env: HELPER_ENV,
      stdio: ["pipe", "pipe", "ignore"],
    });
    const stdout = this.#child.stdout as Readable;
    stdout.setEncoding("utf8");
    stdout.on("data", (chunk: string) => this.#read(chunk));
    this.#child.stdin?.on("error", () => this.#fail());
    this.#child.once("error", () => this.#fail());
    this.#child.once("close", () => this.#fail());
    // An idle helper keeps no process alive; one with requests waiting does (see #idle).
    this.#idle();
  }

  get gone(): boolean {
    return this.#gone;
  }

  /** Whether it ever answered a request (it runs here). */
  answered = false;

  get pid(): number | undefined {
    return this.#gone ? undefined : this.#child.pid;
  }

  request(request: MountRequest): Promise<void> {
    if (this.#gone) return Promise.reject(new MounterGone());
    return new Promise((resolve, reject) => {
      if (this.#waiting.length === 0) this.#busy();
      this.#waiting.push({ resolve, reject });
      this.#child.stdin?.write(`${JSON.stringify(request)}\n`);
    });
  }

  close(): void {
    this.#child.stdin?.end();
  }

  #read(chunk: string): void {
    this.#buffer += chunk;
    let end = this.#buffer.indexOf("\n");
    while (end >= 0) {
      const line = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 1);
      end = this.#buffer.indexOf("\n");
      const waiter = this.#waiting.shift();
      this.answered = true;
      if (waiter === undefined) continue;
      let answer: { error?: unknown } = {};
      try {
        answer = JSON.parse(line) as { error?: unknown };
      } catch {
        answer = { error: `unreadable answer ${line.slice(0, 100)}` };
      }
      if (typeof answer.error === "string") waiter.reject(new Error(answer.error));
      else waiter.resolve();
    }
    if (this.#waiting.length === 0) this.#idle();
  }

  #fail(): void {
    if (this.#gone) return;
    this.#gone = true;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(new MounterGone());
    if (this.#child.exitCode === null && this.#child.pid !== undefined) this.#child.kill("SIGKILL");
  }

  #busy(): void {
    this.#child.ref();
    (this.#child.stdout as Readable & { ref?: () => void }).ref?.();
  }

  #idle(): void {
    this.#child.unref();
    (this.#child.stdout as Readable & { unref?: () => void }).unref?.();
    (this.#child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
}

let mounter: Mounter | undefined;
/** Set once the helper cannot run here: mounts exec `mount` and `umount`. */
let execOnly = false;

/** The process's helper, started on first use (and again after it died). */
function helper(): Mounter {
  if (mounter === undefined || mounter.gone) mounter = new Mounter();
  return mounter;
}

/** Starts the helper ahead of the first sandbox (it takes tens of ms to start). */
export function startMounter(): void {
  helper();
}

/** The helper's pid (tests: what happens when it dies). */
export function mounterPid(): number | undefined {
  return mounter?.pid;
}

/**
 * `request` through the helper; by exec'ing `mount`/`umount` (`fallback`) when the helper is gone.
 * A refusal by the kernel is reported as the exec's failure would be, naming `what`.
 */
async function mountCall(request: MountRequest, what: string, fallback: () => Promise<void>): Promise<void> {
  const current = helper();
  try {
    await current.request(request);
  } catch (error) {
    if (error instanceof MounterGone) {
      // Gone before it answered anything (no python3): no use starting it for every mount.
      if (!current.answered) execOnly = true;
      return fallback();
    }
    throw new SandboxError("SandboxStartFailure", `${what}: ${(error as Error).message}`);
  }
}

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
  const exec = () => run("mount", ["--bind", source, target]);
  if (execOnly) return exec();
  return mountCall(
    { op: "bind", source: resolve(source), target: resolve(target) },
    `mount --bind ${source} ${target}`,
    exec,
  );
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
  const exec = () => execOverlay(source, empty, target);
  if (execOnly) return exec();
  return mountCall(
    { op: "overlay", lower: resolve(source), empty: resolve(empty), target: resolve(target) },
    `overlay of ${source}`,
    exec,
  );
}

async function execOverlay(source: string, empty: string, target: string): Promise<void> {
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
  const exec = () => run("umount", ["-l", target]);
  const unmounting = execOnly
    ? exec()
    : mountCall({ op: "umount", target: resolve(target) }, `umount -l ${target}`, exec);
  return unmounting.catch(() => undefined);
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
  const exec = () => run("mount", ["--make-shared", dir]);
  if (execOnly) await exec();
  else await mountCall({ op: "shared", target: resolve(dir) }, `mount --make-shared ${dir}`, exec);
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
