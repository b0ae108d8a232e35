/**
 * Which server owns which cgroup root. Each server's sandboxes live under
 * `lambent/<instanceId>/`; a server killed with SIGKILL leaves its frozen
 * sandboxes there (a SIGKILL to a frozen task waits for a thaw that never
 * comes). Its own next start sweeps them, but a server whose data dir is never
 * used again never comes back: so every server registers its instance with its
 * pid, and each start also sweeps the instances whose owner is gone.
 */
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const REGISTRY = "/run/lambent/instances";

/** The owner's start time (clock ticks since boot), to tell a live owner from a reused pid. */
export async function startTime(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  // Fields after the command (which may hold spaces) start after the last ')'.
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
}

export async function registerInstance(instanceId: string, runDir: string): Promise<void> {
  await mkdir(REGISTRY, { recursive: true });
  await writeFile(join(REGISTRY, instanceId), `${process.pid} ${await startTime(process.pid)} ${runDir}\n`);
}

export function registryFile(instanceId: string): string {
  return join(REGISTRY, instanceId);
}

export async function unregisterInstance(instanceId: string): Promise<void> {
  await rm(join(REGISTRY, instanceId), { force: true });
}

/** Registered instances whose owning server is no longer running, with their run dirs. */
export async function abandonedInstances(): Promise<Array<{ instanceId: string; runDir: string }>> {
  const ids = await readdir(REGISTRY).catch(() => [] as string[]);
  const dead: Array<{ instanceId: string; runDir: string }> = [];
  for (const id of ids) {
    const line = (await readFile(join(REGISTRY, id), "utf8").catch(() => "")).trim();
    const [pid, started, ...dir] = line.split(" ");
    const alive = pid !== undefined && started !== undefined && (await startTime(Number(pid))) === started;
    if (!alive) dead.push({ instanceId: id, runDir: dir.join(" ") });
  }
  return dead;
}
