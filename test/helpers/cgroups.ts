/** What a server's sandboxes hold on the host: cgroups, processes, mounts (for cleanup assertions). */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { instanceIdFor } from "../../src/sandbox/index.js";

export const V1_CONTROLLERS = ["memory", "cpu", "pids", "freezer"] as const;

export function instanceOf(dataDir: string): string {
  return instanceIdFor(join(dataDir, "run", "sandbox"));
}

/** `/sys/fs/cgroup/<controller>/lambent/<instanceId>` of the server on `dataDir`. */
export function cgroupRoot(dataDir: string, controller: string): string {
  return `/sys/fs/cgroup/${controller}/lambent/${instanceOf(dataDir)}`;
}

/** The environment cgroups (directories) left under any controller's root. */
export function sandboxCgroups(dataDir: string): string[] {
  const dirs: string[] = [];
  for (const c of V1_CONTROLLERS) {
    const root = cgroupRoot(dataDir, c);
    if (!existsSync(root)) continue;
    for (const e of readdirSync(root, { withFileTypes: true }))
      if (e.isDirectory()) dirs.push(join(root, e.name));
  }
  return dirs;
}

/** Whether any controller's instance root still exists. */
export function instanceRootExists(dataDir: string): boolean {
  return V1_CONTROLLERS.some((c) => existsSync(cgroupRoot(dataDir, c)));
}

/** Processes (pids) in any cgroup of this server's instance, found through /proc/<pid>/cgroup. */
export function instanceProcesses(dataDir: string): number[] {
  const needle = `/lambent/${instanceOf(dataDir)}/`;
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let text = "";
    try {
      text = readFileSync(`/proc/${name}/cgroup`, "utf8");
    } catch {
      continue;
    }
    if (text.includes(needle)) pids.push(Number(name));
  }
  return pids;
}

/** Mount points at or under `dir`. */
export function mountsUnder(dir: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)));
}

/** Loop devices backed by a file under `dataDir` (sandboxes' /tmp disks), and /tmp disk images left there. */
export function scratchLeftovers(dataDir: string): string[] {
  const found: string[] = [];
  for (const device of readdirSync("/sys/block").filter((d) => d.startsWith("loop"))) {
    let backing = "";
    try {
      backing = readFileSync(`/sys/block/${device}/loop/backing_file`, "utf8");
    } catch {}
    if (backing.startsWith(`${dataDir}/`)) found.push(`${device}: ${backing.trim()}`);
  }
  try {
    found.push(...readdirSync(join(dataDir, "run", "sandbox", "scratch")));
  } catch {}
  return found;
}

/** The number of tasks (processes and threads) in an environment's pids cgroup (0 once it is gone). */
export function pidsCurrent(dir: string): number {
  try {
    return Number(readFileSync(join(dir, "pids.current"), "utf8"));
  } catch {
    return 0;
  }
}

/** Polls `check` every 20 ms until it holds; fails after `ms` with `what`. */
export async function eventually(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
