/**
 * Per-environment /tmp disks. A tmpfs /tmp is memory charged to the function's memory cgroup: a
 * 128 MB function filling it is OOM-killed long before its EphemeralStorage. A scratch disk is a
 * sparse file of exactly EphemeralStorage bytes, formatted ext4 (no journal, lazy inode tables: a
 * few hundred KB written) and loop-mounted: what a function writes is page cache the kernel can write
 * back and reclaim, so the function gets ENOSPC at the cap whatever its memory size, and the host's
 * disk holds only the blocks actually written, until the environment goes.
 *
 * Images live in `<run dir>/scratch/<id>.img`, mount points on the stage. `mount -o loop` marks the
 * loop device autoclear: it detaches itself once the last mount of it (the host's and the sandbox's)
 * is gone. A killed server's images and loop devices are removed at the next start (`sweepScratch`)
 * and by its watchdog.
 */
import { chmod, mkdir, open, readdir, readFile, rm, rmdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { run, unmount } from "./mounts.js";

const MiB = 1024 * 1024;

export class ScratchDisks {
  readonly imagesDir: string;
  /** Why loop-mounted disks cannot be used here (then /tmp stays a tmpfs); undefined once probed fine. */
  unavailable: string | undefined = "not probed";

  constructor(
    runDir: string,
    private readonly mountsDir: string,
  ) {
    this.imagesDir = join(resolve(runDir), "scratch");
  }

  /** Removes what a killed server left, then checks once that a disk can be made and mounted. */
  async init(): Promise<void> {
    await sweepScratch(this.imagesDir);
    await mkdir(this.imagesDir, { recursive: true, mode: 0o700 });
    try {
      const at = await this.create("probe", 16);
      await this.remove("probe", at);
      this.unavailable = undefined;
    } catch (error) {
      this.unavailable = (error as Error).message;
    }
  }

  /**
   * A fresh disk of `sizeMb` for environment `id`, mounted at `at` (default: its own mount point on
   * the stage), its root world-writable and sticky like /tmp. Returns where it is mounted.
   */
  async create(id: string, sizeMb: number, at?: string): Promise<string> {
    const image = join(this.imagesDir, `${id}.img`);
    const target = at ?? join(this.mountsDir, id);
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
      if (at === undefined) await mkdir(target);
      // noinit_itable: no background zeroing of inode tables (it would allocate the whole table on disk).
      await run("mount", ["-o", "loop,nosuid,nodev,noinit_itable", image, target]);
      // An empty /tmp, as on Lambda: sticky and world-writable, no lost+found.
      await Promise.all([chmod(target, 0o1777), rmdir(join(target, "lost+found"))]);
      return target;
    } catch (error) {
      await this.remove(id, at);
      throw error;
    }
  }

  /** Unmounts environment `id`'s disk (the loop device detaches with its last mount) and deletes its image. */
  async remove(id: string, at?: string): Promise<void> {
    const target = at ?? join(this.mountsDir, id);
    await unmount(target);
    if (at === undefined) await rmdir(target).catch(() => undefined);
    await rm(join(this.imagesDir, `${id}.img`), { force: true });
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
