/**
 * Which server owns which cgroup root. Each server's sandboxes live under
 * `lambent/<instanceId>/`; a server killed with SIGKILL leaves its frozen
 * sandboxes there (a SIGKILL to a frozen task waits for a thaw that never
 * comes). Its own next start sweeps them, but a server whose data dir is never
 * used again never comes back: so every server registers its instance with its
 * pid, and each start also sweeps the instances whose owner is gone.
 *
 * A restart of a killed server and another server's sweep of that same
 * (abandoned-looking) instance must not overlap — the sweep would kill the new
 * server's sandboxes, unmount its views and remove its cgroup root. Both run
 * under the instance's lock (`withInstanceLock`): the owner takes it for its
 * whole start-up sweep and registers first thing; a sweeper takes it, then looks
 * again whether the instance is still abandoned.
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { SandboxError } from "./errors.js";

export const REGISTRY = "/run/lambent/instances";
const LOCK_SUFFIX = ".lock";
/** A lock directory whose owner never wrote its name (a crash right after mkdir) is stale after this. */
const OWNERLESS_LOCK_MS = 5000;

/** The owner's start time (clock ticks since boot), to tell a live owner from a reused pid. */
export async function startTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  // Fields after the command (which may hold spaces) start after the last ')'.
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

/** Whether `<pid> <start time>` (as written by this module) names a running process. */
async function alive(pid: string | undefined, started: string | undefined): Promise<boolean> {
  return pid !== undefined && started !== undefined && (await startTime(Number(pid))) === started;
}

async function me(): Promise<string> {
  return `${process.pid} ${await startTime(process.pid)}`;
}

export async function registerInstance(instanceId: string, runDir: string): Promise<void> {
  await mkdir(REGISTRY, { recursive: true });
  await writeFile(join(REGISTRY, instanceId), `${await me()} ${runDir}\n`);
}

export function registryFile(instanceId: string): string {
  return join(REGISTRY, instanceId);
}

export async function unregisterInstance(instanceId: string): Promise<void> {
  await rm(join(REGISTRY, instanceId), { force: true });
}

/** Whether the instance's registered owner is gone (or it was never registered). */
export async function isAbandoned(instanceId: string): Promise<boolean> {
  const line = (await readFile(join(REGISTRY, instanceId), "utf8").catch(() => "")).trim();
  const [pid, started] = line.split(" ");
  return !(await alive(pid, started));
}

/** Registered instances whose owning server is no longer running, with their run dirs. */
export async function abandonedInstances(): Promise<Array<{ instanceId: string; runDir: string }>> {
  const ids = (await readdir(REGISTRY).catch(() => [] as string[])).filter((id) => !id.endsWith(LOCK_SUFFIX));
  const dead: Array<{ instanceId: string; runDir: string }> = [];
  for (const id of ids) {
    const line = (await readFile(join(REGISTRY, id), "utf8").catch(() => "")).trim();
    const [pid, started, ...dir] = line.split(" ");
    if (!(await alive(pid, started))) dead.push({ instanceId: id, runDir: dir.join(" ") });
  }
  return dead;
}

/**
 * Runs `fn` holding the instance's lock: a directory `<id>.lock` made atomically, naming its
 * holder. A lock whose holder is no longer running is taken over. Waits up to `waitMs` for a live
 * holder, then throws a SandboxError (`SandboxStartFailure`).
 */
export async function withInstanceLock<T>(
  instanceId: string,
  waitMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  const dir = join(REGISTRY, `${instanceId}${LOCK_SUFFIX}`);
  const owner = join(dir, "owner");
  await mkdir(REGISTRY, { recursive: true });
  const deadline = performance.now() + waitMs;
  for (;;) {
    try {
      await mkdir(dir);
      await writeFile(owner, await me());
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = await readFile(owner, "utf8").catch(() => undefined);
    const stale =
      holder === undefined
        ? Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? 0) > OWNERLESS_LOCK_MS
        : !(await alive(...(holder.trim().split(" ") as [string, string])));
    if (stale) {
      await rm(dir, { recursive: true, force: true });
      continue;
    }
    if (performance.now() > deadline) {
      throw new SandboxError(
        "SandboxStartFailure",
        `sandbox instance ${instanceId} is locked by ${holder?.trim() ?? "a starting server"}`,
      );
    }
    await sleep(20);
  }
  try {
    return await fn();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
