/**
 * Per-environment /tmp disks. A tmpfs /tmp is memory charged to the function's memory cgroup: a
 * 128 MB function filling it is OOM-killed long before its EphemeralStorage. A scratch disk is a
 * sparse file of exactly EphemeralStorage bytes, formatted ext4 (no journal, lazy inode tables: a
 * few hundred KB written) and loop-mounted: what a function writes is page cache the kernel can write
 * back and reclaim, so the function gets ENOSPC at the cap whatever its memory size, and the host's
 * disk holds only the blocks actually written, until the environment goes.
 *
 * Images live in `<run dir>/scratch/<disk id>.img`, mount points on the stage. `mount -o loop` marks the
 * loop device autoclear: it detaches itself once the last mount of it (the host's and the sandbox's)
 * is gone. A killed server's images and loop devices are removed at the next start (`sweepScratch`)
 * and by its watchdog.
 */
import { chmod, mkdir, open, readdir, readFile, rm, rmdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { run, unmount } from "./mounts.js";

const MiB = 1024 * 1024;
/** Sizes (MB) for which a spare disk is kept ready; the first is prepared at start. */
const MAX_SPARE_SIZES = 4;
const DEFAULT_SIZE_MB = 512;

export interface ScratchDisk {
  id: string;
  /** Where it is mounted on the host (on the stage). */
  path: string;
}

/**
 * Makes, hands out and removes /tmp disks. Making one (sparse file, mkfs, loop mount) takes tens of
 * milliseconds — hundreds on a busy machine — so one spare per recently asked size is kept mounted
 * and ready: a cold start takes it and another is prepared in the background.
 */
export class ScratchDisks {
  readonly imagesDir: string;
  /** Why loop-mounted disks cannot be used here (then /tmp stays a tmpfs); undefined once probed fine. */
  unavailable: string | undefined = "not probed";
  #sequence = 0;
  /** Spare disks by size, ready or being made. */
  readonly #spares = new Map<number, Array<Promise<ScratchDisk | undefined>>>();
  #closed = false;

  constructor(
    runDir: string,
    private readonly mountsDir: string,
  ) {
    this.imagesDir = join(resolve(runDir), "scratch");
  }

  /** Removes what a killed server left, checks once that a disk can be made, and prepares a spare. */
  async init(): Promise<void> {
    this.#closed = false;
    this.#spares.clear();
    await sweepScratch(this.imagesDir);
    await mkdir(this.imagesDir, { recursive: true, mode: 0o700 });
    try {
      await this.remove(await this.#create(16));
      this.unavailable = undefined;
      this.#refill(DEFAULT_SIZE_MB);
    } catch (error) {
      this.unavailable = (error as Error).message;
    }
  }

  /** A fresh, empty disk of `sizeMb`: a spare if one is ready (another is then prepared), else made now. */
  async take(sizeMb: number): Promise<ScratchDisk> {
    const spares = this.#spares.get(sizeMb) ?? [];
    let disk: ScratchDisk | undefined;
    while (disk === undefined && spares.length > 0) disk = await spares.shift();
    this.#refill(sizeMb);
    return disk ?? this.#create(sizeMb);
  }

  #refill(sizeMb: number): void {
    if (this.#closed || this.unavailable !== undefined) return;
    let spares = this.#spares.get(sizeMb);
    if (spares === undefined) {
      if (this.#spares.size >= MAX_SPARE_SIZES) return;
      spares = [];
      this.#spares.set(sizeMb, spares);
    }
    if (spares.length === 0) spares.push(this.#create(sizeMb).catch(() => undefined));
  }

  /** Stops preparing spares and removes those made. */
  async close(): Promise<void> {
    this.#closed = true;
    const spares = [...this.#spares.values()].flat();
    this.#spares.clear();
    for (const disk of await Promise.all(spares)) if (disk) await this.remove(disk);
  }

  /** A disk of `sizeMb` mounted on the stage, its root world-writable and sticky like /tmp. */
  async #create(sizeMb: number): Promise<ScratchDisk> {
    const disk = { id: `d${++this.#sequence}`, path: join(this.mountsDir, `d${this.#sequence}`) };
    const image = join(this.imagesDir, `${disk.id}.img`);
    try {
      const file = await open(image, "wx", 0o600);
      try {
        await file.truncate(sizeMb * MiB);
      } finally {
        await file.close();
      }
      await run("mkfs.ext4", [
        "-q",
        "-F",
        "-b",
        "4096",
        "-m",
        "0",
        "-O",
        "^has_journal",
        "-E",
        "lazy_itable_init=1,nodiscard",
        image,
      ]);
      await mkdir(disk.path);
      // noinit_itable: no background zeroing of inode tables (it would allocate the whole table on disk).
      await run("mount", ["-o", "loop,nosuid,nodev,noinit_itable", image, disk.path]);
      // An empty /tmp, as on Lambda: sticky and world-writable, no lost+found.
      await Promise.all([chmod(disk.path, 0o1777), rmdir(join(disk.path, "lost+found"))]);
      return disk;
    } catch (error) {
      await this.remove(disk);
      throw error;
    }
  }

  /** Unmounts a disk (its loop device detaches with its last mount) and deletes its image. */
  async remove(disk: ScratchDisk): Promise<void> {
    await unmount(disk.path);
    await rmdir(disk.path).catch(() => undefined);
    await rm(join(this.imagesDir, `${disk.id}.img`), { force: true });
  }
}

/**
 * Detaches every loop device backed by an image under `imagesDir` (a device still mounted somewhere
 * is marked to detach with its last unmount) and removes the images.
 */
export async function sweepScratch(imagesDir: string): Promise<void> {
  const prefix = `${resolve(imagesDir)}/`;
  const devices = await readdir("/sys/block").catch(() => [] as string[]);
  for (const device of devices.filter((d) => d.startsWith("loop"))) {
    const backing = await readFile(`/sys/block/${device}/loop/backing_file`, "utf8").catch(() => "");
    if (backing.startsWith(prefix)) await run("losetup", ["-d", `/dev/${device}`]).catch(() => undefined);
  }
  await rm(imagesDir, { recursive: true, force: true });
}
