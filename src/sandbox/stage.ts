/**
 * The stage: where every host-side source of a sandbox's mounts lives, so that nothing a sandbox
 * can read in /proc (mountinfo's root field, mounts' options) names a host path.
 *
 * /proc/self/mountinfo shows, for a bind mount, the source's path inside its own filesystem: a
 * bind of `<data dir>/code/<sha>` shows that whole path. So the stage is a small tmpfs of the
 * server's own (`<run dir>/stage`): generated files and sockets written on it show as `/etc/passwd`
 * or `/sock/<id>.sock`; directories the sandbox sees (code, layers, runtime files, language builds,
 * runtime root filesystems) are each shown through a read-only overlay whose layers are named
 * `/dev/fd/3:/dev/fd/4`, so its root is `/` and its options name nothing.
 */
import { mkdir, rmdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { bindMount, mountOverlay, mountTmpfs, removeMountPoints, unmount } from "./mounts.js";

interface Overlay {
  hostDir: string;
  /** The directory it shows (a directory replaced since gets a new overlay). */
  dev: number;
  ino: number;
  refs: number;
  /** Pinned overlays (runtime files, language builds) stay until the stage is unmounted. */
  pinned: boolean;
  /** Its mount point once mounted (or `hostDir` itself if overlayfs refused it). */
  ready: Promise<string>;
}

/** A directory shown through the stage; `release` once the environment using it is gone. */
export interface StagedDir {
  path: string;
  release(): Promise<void>;
}

/** Unused overlays kept mounted for the next cold start of the same code (oldest unmounted first). */
const MAX_IDLE_OVERLAYS = 32;

export class Stage {
  /** Generated /etc files (passwd, group, hosts, resolv.conf). */
  readonly etcDir: string;
  /** Where the worker creates environments' sockets. */
  readonly socketDir: string;
  /** Stem cells' shared mount points. */
  readonly stemsDir: string;
  /** Mount points of per-environment /tmp disks. */
  readonly scratchDir: string;
  readonly #emptyDir: string;
  readonly #overlaysDir: string;
  readonly #overlays = new Map<string, Overlay>();
  /** Overlays no environment uses now, oldest first. */
  readonly #idle = new Set<Overlay>();
  #sequence = 0;
  /** Set when an overlay cannot be mounted here (an unusual filesystem): binds show their host paths. */
  overlayFailure: string | undefined;

  constructor(readonly dir: string) {
    this.etcDir = join(dir, "etc");
    this.socketDir = join(dir, "sock");
    this.stemsDir = join(dir, "stems");
    this.scratchDir = join(dir, "tmp");
    this.#emptyDir = join(dir, "empty");
    this.#overlaysDir = join(dir, "v");
  }

  /** A fresh stage (whatever a killed server left there is unmounted first). */
  async mount(): Promise<void> {
    await this.unmount();
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    // Small files and sockets only: 16 MB is plenty, and nothing on it is executable or a device.
    await mountTmpfs(this.dir, "size=16m,mode=0755,nosuid,nodev,noexec");
    await Promise.all(
      [this.etcDir, this.socketDir, this.stemsDir, this.scratchDir, this.#emptyDir, this.#overlaysDir].map(
        (d) => mkdir(d, { mode: 0o755 }),
      ),
    );
  }

  /** Unmounts everything on the stage and the stage itself. */
  async unmount(): Promise<void> {
    this.#overlays.clear();
    this.#idle.clear();
    await removeMountPoints(this.dir);
  }

  /**
   * `hostDir`'s content shown with no host path in /proc (an overlay on the stage), shared by every
   * environment using the same directory and kept a while after the last one is gone. Falls back to
   * `hostDir` itself if overlayfs refuses it (logged once, kept in `overlayFailure`).
   */
  async acquire(hostDir: string, pinned = false): Promise<StagedDir> {
    const now = await stat(hostDir);
    let overlay = this.#overlays.get(hostDir);
    if (overlay !== undefined && (overlay.dev !== now.dev || overlay.ino !== now.ino)) {
      // The directory was replaced (code removed and extracted again): the old overlay shows the old one.
      this.#overlays.delete(hostDir);
      this.#idle.delete(overlay);
      if (overlay.refs === 0) void this.#drop(overlay);
      overlay = undefined;
    }
    if (overlay === undefined) {
      // A fresh mount point per mount: an unmount of a dropped one never meets a new one.
      const path = join(this.#overlaysDir, `${++this.#sequence}`);
      const ready = mkdir(path)
        .then(() => mountOverlay(hostDir, this.#emptyDir, path))
        .then(
          () => path,
          (error: unknown) => {
            if (this.overlayFailure === undefined) {
              this.overlayFailure = (error as Error).message;
              console.warn(
                `lambent: ${this.overlayFailure}: bound directly instead, so its host path shows in sandboxes' /proc/self/mountinfo`,
              );
            }
            return hostDir;
          },
        );
      overlay = { hostDir, dev: now.dev, ino: now.ino, refs: 0, pinned, ready };
      this.#overlays.set(hostDir, overlay);
    }
    this.#idle.delete(overlay);
    overlay.refs++;
    overlay.pinned ||= pinned;
    const held = overlay;
    let released = false;
    return {
      path: await held.ready,
      release: async () => {
        if (released) return;
        released = true;
        await this.#release(held);
      },
    };
  }

  /**
   * `hostDir`'s content as an overlay mounted right on `target` (a stem cell's shared mount point),
   * owned by whoever unmounts `target`: one mount instead of an overlay on the stage and a bind of it.
   * Falls back to a bind of `hostDir` itself, as `acquire` does.
   */
  async mountAt(hostDir: string, target: string): Promise<void> {
    try {
      await mountOverlay(hostDir, this.#emptyDir, target);
    } catch (error) {
      if (this.overlayFailure === undefined) {
        this.overlayFailure = (error as Error).message;
        console.warn(
          `lambent: ${this.overlayFailure}: bound directly instead, so its host path shows in sandboxes' /proc/self/mountinfo`,
        );
      }
      await bindMount(hostDir, target);
    }
  }

  async #release(overlay: Overlay): Promise<void> {
    if (--overlay.refs > 0 || overlay.pinned) return;
    if (this.#overlays.get(overlay.hostDir) !== overlay) return this.#drop(overlay);
    this.#idle.add(overlay);
    while (this.#idle.size > MAX_IDLE_OVERLAYS) {
      const [oldest] = this.#idle;
      if (oldest === undefined) break;
      this.#idle.delete(oldest);
      this.#overlays.delete(oldest.hostDir);
      await this.#drop(oldest);
    }
  }

  async #drop(overlay: Overlay): Promise<void> {
    const path = await overlay.ready;
    if (path === overlay.hostDir) return;
    await unmount(path);
    await rmdir(path).catch(() => undefined);
  }
}
