import { readFile } from "node:fs/promises";
import type { CgroupLimits } from "./cgroup-limits.js";
import { CgroupV1Hierarchy } from "./cgroups-v1.js";
import { CgroupV2Hierarchy } from "./cgroups-v2.js";

export type { CgroupLimits } from "./cgroup-limits.js";

/** One execution environment's cgroup(s). */
export interface SandboxCgroup {
  /** Moves `pid` (and so everything it forks afterwards) into the cgroup(s). */
  join(pid: number): Promise<void>;
  /**
   * The `cgroup.procs` files a process writes its own pid to, to join before it starts the sandbox
   * (so the sandbox's cgroup namespace is rooted at its own cgroup).
   */
  procsFiles(): string[];
  /** Change the memory and CPU limits of a running cgroup (a stem cell given its function). */
  setLimits(limits: { memoryBytes?: number; cpus?: number; background?: boolean }): Promise<void>;
  /**
   * Freeze every task. With `wait` (the default) resolves once all are frozen;
   * without, it only asks the kernel (an idle environment between invokes:
   * nothing needs to wait, and a thaw cancels a freeze still in progress).
   */
  freeze(wait?: boolean): Promise<void>;
  thaw(): Promise<void>;
  resetPeakMemory(): void;
  peakMemoryBytes(): number | undefined;
  /** Page cache charged to the cgroup now (file pages: counted in the peak, but not a process's memory). */
  cacheBytes(): number | undefined;
  /** Whether the kernel's OOM killer has killed a process of this cgroup. */
  oomKilled(): boolean;
  /** The processes (thread group ids) inside now. */
  processIds(): number[];
  /** Kills every process inside, waits until the cgroup is empty and removes it. Idempotent. */
  destroy(): Promise<void>;
}

/** Where a driver creates its environments' cgroups: `<mount>/lambent/<instanceId>/<sandboxId>`. */
export interface CgroupHierarchy {
  readonly version: 1 | 2;
  /** Directories that make up the Lambent root of this instance (one per controller on v1). */
  readonly roots: readonly string[];
  /** The freezer controller's root (cgroup v1; v2 freezes in every directory). */
  readonly freezerRoot?: string;
  create(sandboxId: string, limits: CgroupLimits): Promise<SandboxCgroup>;
  /** Creates this instance's root (again: a sweep of the instance by another server may have removed it). */
  prepare(): Promise<void>;
  /** Kills and removes every cgroup left under this instance's root (after a crash). Returns how many. */
  sweep(): Promise<number>;
  /** Removes this instance's (empty) root once every environment is gone. */
  release(): Promise<void>;
}

export type CgroupDetection = { ok: true; hierarchy: CgroupHierarchy } | { ok: false; reason: string };

const V1_CONTROLLERS = ["memory", "cpu", "pids", "freezer"] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];
const V2_CONTROLLERS = ["memory", "cpu", "pids"] as const;

/**
 * Finds a usable cgroup hierarchy: v2 when its root offers memory, cpu and pids, else v1 when
 * memory, cpu, pids and freezer are each mounted. The driver's root must be writable (root user).
 */
export async function detectCgroups(instanceId: string): Promise<CgroupDetection> {
  const mounts = parseCgroupMounts(await readFile("/proc/self/mounts", "utf8"));
  if (mounts.v2 !== undefined) {
    const controllers = await readFile(`${mounts.v2}/cgroup.controllers`, "utf8").catch(() => "");
    const offered = new Set(controllers.trim().split(/\s+/));
    if (V2_CONTROLLERS.every((c) => offered.has(c))) {
      return probe(new CgroupV2Hierarchy(mounts.v2, instanceId));
    }
  }
  const missing = V1_CONTROLLERS.filter((c) => mounts.v1.get(c) === undefined);
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `no cgroup v2 with memory+cpu+pids, and cgroup v1 lacks ${missing.join(", ")}`,
    };
  }
  const v1 = Object.fromEntries(V1_CONTROLLERS.map((c) => [c, mounts.v1.get(c) as string]));
  return probe(new CgroupV1Hierarchy(v1 as Record<V1Controller, string>, instanceId));
}

async function probe(hierarchy: CgroupV1Hierarchy | CgroupV2Hierarchy): Promise<CgroupDetection> {
  try {
    await hierarchy.prepare();
    return { ok: true, hierarchy };
  } catch (error) {
    return { ok: false, reason: `cgroup v${hierarchy.version} not writable: ${(error as Error).message}` };
  }
}

function parseCgroupMounts(text: string): { v2?: string; v1: Map<string, string> } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split("\n")) {
    const [, mountPoint, type, options] = line.split(" ");
    if (mountPoint === undefined || options === undefined) continue;
    if (type === "cgroup2") v2 ??= mountPoint;
    if (type !== "cgroup") continue;
    for (const option of options.split(",")) {
      if (!v1.has(option)) v1.set(option, mountPoint);
    }
  }
  return v2 === undefined ? { v1 } : { v2, v1 };
}
