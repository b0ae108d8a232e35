import { closeSync, existsSync, openSync, readSync, writeSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import {
  ControlFile,
  parsePids,
  pidsOf,
  readControl,
  readKey,
  removeCgroupDir,
  until,
  writeControl,
} from "./cgroup-fs.js";
import type { CgroupLimits } from "./cgroup-limits.js";
import { CPU_PERIOD_US, CPU_WEIGHT, cpuQuotaUs } from "./cgroup-limits.js";
import type { CgroupHierarchy, SandboxCgroup } from "./cgroups.js";
import { SandboxError } from "./errors.js";

const ENABLE = "+memory +cpu +pids";

/** cgroup v2: one directory per environment, `<mount>/lambent/<instanceId>/<sandboxId>`. */
export class CgroupV2Hierarchy implements CgroupHierarchy {
  readonly version = 2;
  readonly roots: readonly string[];

  constructor(
    private readonly mount: string,
    instanceId: string,
  ) {
    this.roots = [`${mount}/lambent/${instanceId}`];
  }

  get #root(): string {
    return this.roots[0] as string;
  }

  /** Creates the Lambent root and delegates memory, cpu and pids down to the environments. */
  async prepare(): Promise<void> {
    await mkdir(this.#root, { recursive: true });
    for (const dir of [this.mount, `${this.mount}/lambent`, this.#root]) {
      await writeFile(`${dir}/cgroup.subtree_control`, ENABLE);
    }
  }

  async create(sandboxId: string, limits: CgroupLimits): Promise<SandboxCgroup> {
    const dir = `${this.#root}/${sandboxId}`;
    try {
      await mkdir(dir);
      await Promise.all([
        writeFile(`${dir}/memory.max`, String(limits.memoryBytes)),
        writeFile(`${dir}/memory.swap.max`, "0").catch(() => undefined),
        writeFile(`${dir}/cpu.max`, `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}`),
        writeFile(`${dir}/pids.max`, String(limits.pids)),
        ...(limits.background ? [writeFile(`${dir}/cpu.weight`, String(CPU_WEIGHT.background))] : []),
      ]);
    } catch (cause) {
      await new CgroupV2(dir).destroy();
      throw new SandboxError("CgroupFailure", `cannot create cgroup ${dir}`, { cause });
    }
    return new CgroupV2(dir);
  }

  async release(): Promise<void> {
    for (const root of this.roots) await removeCgroupDir(root);
  }

  async sweep(): Promise<number> {
    const entries = await readdir(this.#root, { withFileTypes: true }).catch(() => []);
    const stale = entries.filter((entry) => entry.isDirectory());
    for (const entry of stale) await new CgroupV2(`${this.#root}/${entry.name}`).destroy();
    return stale.length;
  }
}

class CgroupV2 implements SandboxCgroup {
  #destroyed: Promise<void> | undefined;
  /** memory.peak resets per open file (Linux ≥ 6.12): keep one descriptor for reset and read. */
  #peak: number | undefined;
  /** Read after every invoke (Max Memory Used): kept open, an open and a close saved each time. */
  readonly #procs: ControlFile;

  constructor(private readonly dir: string) {
    this.#procs = new ControlFile(`${dir}/cgroup.procs`, 4096, "r");
  }

  processIds(): number[] {
    const text = this.#destroyed ? undefined : this.#procs.readAll();
    return text === undefined ? pidsOf(this.dir) : parsePids(text);
  }

  procsFiles(): string[] {
    return [`${this.dir}/cgroup.procs`];
  }

  async join(pid: number): Promise<void> {
    try {
      await writeFile(`${this.dir}/cgroup.procs`, String(pid));
    } catch (cause) {
      throw new SandboxError("CgroupFailure", `cannot move ${pid} into ${this.dir}`, { cause });
    }
  }

  async setLimits(limits: { memoryBytes?: number; cpus?: number; background?: boolean }): Promise<void> {
    if (limits.background !== undefined) {
      const weight = limits.background ? CPU_WEIGHT.background : CPU_WEIGHT.normal;
      await writeFile(`${this.dir}/cpu.weight`, String(weight));
    }
    if (limits.memoryBytes !== undefined)
      await writeFile(`${this.dir}/memory.max`, String(limits.memoryBytes));
    if (limits.cpus !== undefined)
      await writeFile(`${this.dir}/cpu.max`, `${cpuQuotaUs(limits.cpus)} ${CPU_PERIOD_US}`);
  }

  async freeze(wait = true): Promise<void> {
    if (wait) await this.#setFrozen(true);
    else writeControl(this.dir, "cgroup.freeze", "1");
  }

  async thaw(): Promise<void> {
    writeControl(this.dir, "cgroup.freeze", "0");
    if (readKey(this.dir, "cgroup.events", "frozen") !== 0) await this.#setFrozen(false);
  }

  resetPeakMemory(): void {
    try {
      this.#peak ??= openSync(`${this.dir}/memory.peak`, "r+");
      writeSync(this.#peak, "reset");
    } catch {
      // Kernels before 6.12 cannot reset memory.peak: it then covers the environment's whole life.
    }
  }

  peakMemoryBytes(): number | undefined {
    if (this.#peak === undefined) {
      const value = readControl(this.dir, "memory.peak");
      return value === undefined ? undefined : Number(value);
    }
    const buffer = Buffer.alloc(32);
    const length = readSync(this.#peak, buffer, 0, buffer.length, 0);
    return Number(buffer.subarray(0, length).toString());
  }

  cacheBytes(): number | undefined {
    return readKey(this.dir, "memory.stat", "file");
  }

  oomKilled(): boolean {
    return (readKey(this.dir, "memory.events", "oom_kill") ?? 0) > 0;
  }

  destroy(): Promise<void> {
    this.#destroyed ??= this.#teardown();
    return this.#destroyed;
  }

  /** cgroup.kill takes the whole tree atomically, frozen or not; then wait until it is empty. */
  async #teardown(): Promise<void> {
    if (this.#peak !== undefined) closeSync(this.#peak);
    this.#procs.close();
    if (existsSync(this.dir)) {
      writeControl(this.dir, "cgroup.kill", "1");
      await until(() => pidsOf(this.dir).length === 0, 5000, `empty ${this.dir}`);
    }
    await removeCgroupDir(this.dir);
  }

  async #setFrozen(frozen: boolean): Promise<void> {
    writeControl(this.dir, "cgroup.freeze", frozen ? "1" : "0");
    const want = frozen ? 1 : 0;
    await until(
      () => readKey(this.dir, "cgroup.events", "frozen") === want,
      2000,
      `cgroup.freeze in ${this.dir}`,
    );
  }
}
