import { existsSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import {
  ControlFile,
  KILL_DEADLINE_MS,
  killTree,
  parsePids,
  pidsOf,
  readControl,
  readKey,
  removeCgroupDir,
  until,
  writeControl,
} from "./cgroup-fs.js";
import type { CgroupLimits } from "./cgroup-limits.js";
import { CPU_PERIOD_US, CPU_SHARES, cpuQuotaUs } from "./cgroup-limits.js";
import type { CgroupHierarchy, SandboxCgroup, V1Controller } from "./cgroups.js";
import { SandboxError } from "./errors.js";

type Dirs = Record<V1Controller, string>;
const CONTROLLERS: readonly V1Controller[] = ["memory", "cpu", "pids", "freezer"];

/** cgroup v1: one directory per controller, `<mount>/lambent/<instanceId>/<sandboxId>`. */
export class CgroupV1Hierarchy implements CgroupHierarchy {
  readonly version = 1;
  readonly #roots: Dirs;

  constructor(mounts: Dirs, instanceId: string) {
    this.#roots = mapDirs((c) => `${mounts[c]}/lambent/${instanceId}`);
  }

  get roots(): readonly string[] {
    return Object.values(this.#roots);
  }

  get freezerRoot(): string {
    return this.#roots.freezer;
  }

  async prepare(): Promise<void> {
    await Promise.all(this.roots.map((dir) => mkdir(dir, { recursive: true })));
  }

  async create(sandboxId: string, limits: CgroupLimits): Promise<SandboxCgroup> {
    const dirs = mapDirs((c) => `${this.#roots[c]}/${sandboxId}`);
    try {
      await Promise.all(CONTROLLERS.map((c) => mkdir(dirs[c])));
      const memory = String(limits.memoryBytes);
      await writeFile(`${dirs.memory}/memory.limit_in_bytes`, memory);
      // Without swap accounting the file is absent; with it, swap must not extend the limit.
      if (existsSync(`${dirs.memory}/memory.memsw.limit_in_bytes`)) {
        await writeFile(`${dirs.memory}/memory.memsw.limit_in_bytes`, memory);
      }
      await Promise.all([
        writeFile(`${dirs.cpu}/cpu.cfs_period_us`, String(CPU_PERIOD_US)),
        writeFile(`${dirs.pids}/pids.max`, String(limits.pids)),
        ...(limits.background ? [writeFile(`${dirs.cpu}/cpu.shares`, String(CPU_SHARES.background))] : []),
      ]);
      await writeFile(`${dirs.cpu}/cpu.cfs_quota_us`, String(cpuQuotaUs(limits.cpus)));
    } catch (cause) {
      await new CgroupV1(dirs).destroy();
      throw new SandboxError("CgroupFailure", `cannot create cgroups for ${sandboxId}`, { cause });
    }
    return new CgroupV1(dirs);
  }

  async release(): Promise<void> {
    for (const root of this.roots) await removeCgroupDir(root);
  }

  async sweep(): Promise<number> {
    const names = new Set<string>();
    for (const root of this.roots) {
      const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) if (entry.isDirectory()) names.add(entry.name);
    }
    for (const name of names) await new CgroupV1(mapDirs((c) => `${this.#roots[c]}/${name}`)).destroy();
    return names.size;
  }
}

class CgroupV1 implements SandboxCgroup {
  readonly #freezerState: ControlFile;
  readonly #peak: ControlFile;
  /** Read after every invoke (Max Memory Used): kept open, an open and a close saved each time. */
  readonly #procs: ControlFile;

  processIds(): number[] {
    const text = this.#destroyed ? undefined : this.#procs.readAll();
    return text === undefined ? pidsOf(this.dirs.memory) : parsePids(text);
  }

  #destroyed: Promise<void> | undefined;

  constructor(private readonly dirs: Dirs) {
    this.#freezerState = new ControlFile(`${dirs.freezer}/freezer.state`);
    this.#peak = new ControlFile(`${dirs.memory}/memory.max_usage_in_bytes`);
    this.#procs = new ControlFile(`${dirs.memory}/cgroup.procs`, 4096, "r");
  }

  procsFiles(): string[] {
    return CONTROLLERS.map((c) => `${this.dirs[c]}/cgroup.procs`);
  }

  async join(pid: number): Promise<void> {
    try {
      await Promise.all(CONTROLLERS.map((c) => writeFile(`${this.dirs[c]}/cgroup.procs`, String(pid))));
    } catch (cause) {
      throw new SandboxError("CgroupFailure", `cannot move ${pid} into its cgroups`, { cause });
    }
  }

  async setLimits(limits: { memoryBytes?: number; cpus?: number; background?: boolean }): Promise<void> {
    if (limits.background !== undefined) {
      const shares = limits.background ? CPU_SHARES.background : CPU_SHARES.normal;
      await writeFile(`${this.dirs.cpu}/cpu.shares`, String(shares));
    }
    if (limits.cpus !== undefined) {
      await writeFile(`${this.dirs.cpu}/cpu.cfs_quota_us`, String(cpuQuotaUs(limits.cpus)));
    }
    if (limits.memoryBytes === undefined) return;
    const memory = String(limits.memoryBytes);
    const memsw = `${this.dirs.memory}/memory.memsw.limit_in_bytes`;
    const hasMemsw = existsSync(memsw);
    // memsw must stay >= the memory limit at every step: lower memory first, raise memsw first.
    const current = Number(readControl(this.dirs.memory, "memory.limit_in_bytes") ?? 0);
    if (limits.memoryBytes < current) {
      await writeFile(`${this.dirs.memory}/memory.limit_in_bytes`, memory);
      if (hasMemsw) await writeFile(memsw, memory);
    } else {
      if (hasMemsw) await writeFile(memsw, memory);
      await writeFile(`${this.dirs.memory}/memory.limit_in_bytes`, memory);
    }
  }

  /** Bumped by every thaw, so a pending freeze check knows it is stale. */
  #generation = 0;

  async freeze(wait = true): Promise<void> {
    if (wait) return this.#setFreezer("FROZEN");
    this.#freezerState.write("FROZEN");
    // A task in uninterruptible sleep can leave the cgroup FREEZING: look again later, off the
    // invoke path, and ask once more until it is FROZEN (or thawed meanwhile).
    const generation = this.#generation;
    let tries = 0;
    const check = () => {
      if (generation !== this.#generation || this.#destroyed) return;
      if (this.#freezerState.read()?.trim() !== "FREEZING" || ++tries > 50) return;
      this.#freezerState.write("FROZEN");
      setTimeout(check, 10).unref();
    };
    setTimeout(check, 10).unref();
  }

  async thaw(): Promise<void> {
    this.#generation++;
    this.#freezerState.write("THAWED");
    // Thawing takes effect at once; poll only in the rare case it did not.
    if (this.#freezerState.read()?.trim() !== "THAWED") await this.#setFreezer("THAWED");
  }

  resetPeakMemory(): void {
    this.#peak.write("0");
  }

  peakMemoryBytes(): number | undefined {
    const value = this.#peak.read();
    return value === undefined ? undefined : Number(value);
  }

  cacheBytes(): number | undefined {
    return readKey(this.dirs.memory, "memory.stat", "cache");
  }

  oomKilled(): boolean {
    return (readKey(this.dirs.memory, "memory.oom_control", "oom_kill") ?? 0) > 0;
  }

  destroy(): Promise<void> {
    this.#destroyed ??= this.#teardown();
    return this.#destroyed;
  }

  /**
   * FROZEN → SIGKILL each task → THAWED, repeated until every controller is empty (a frozen tree
   * cannot fork away from the kill), then rmdir. Never throws: a tree that will not die is reported
   * and left to the watchdog or the next start's sweep.
   */
  async #teardown(): Promise<void> {
    this.#generation++;
    this.#freezerState.close();
    this.#peak.close();
    this.#procs.close();
    const dirs = CONTROLLERS.map((c) => this.dirs[c]);
    // Dying tasks need CPU to exit: a throttled tree (128 MB = 7 % of a core) would die slowly.
    try {
      writeControl(this.dirs.cpu, "cpu.cfs_quota_us", "-1");
    } catch {
      // Already gone.
    }
    const empty = await killTree(existsSync(this.dirs.freezer) ? this.dirs.freezer : undefined, dirs);
    if (!empty)
      console.error(`lambent: processes of ${this.dirs.freezer} survived ${KILL_DEADLINE_MS} ms of kills`);
    for (const dir of dirs) {
      await removeCgroupDir(dir).catch((error: unknown) =>
        console.error(`lambent: ${(error as Error).message}`),
      );
    }
  }

  async #setFreezer(state: "FROZEN" | "THAWED"): Promise<void> {
    writeControl(this.dirs.freezer, "freezer.state", state);
    let reads = 0;
    await until(
      () => {
        const now = readControl(this.dirs.freezer, "freezer.state")?.trim();
        // A task in uninterruptible sleep can stall FREEZING; writing again retries the freeze.
        if (now === "FREEZING" && ++reads % 64 === 0) writeControl(this.dirs.freezer, "freezer.state", state);
        return now === state;
      },
      2000,
      `freezer.state ${state} in ${this.dirs.freezer}`,
    );
  }
}

function mapDirs(dir: (c: V1Controller) => string): Dirs {
  return { memory: dir("memory"), cpu: dir("cpu"), pids: dir("pids"), freezer: dir("freezer") };
}
