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
import { mkdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { mountOverlay, mountTmpfs, removeMountPoints, unmount } from "./mounts.js";

interface Overlay {
  path: string;
  refs: number;
  /** Pinned overlays (runtime files, language builds) stay until the stage is unmounted. */
  pinned: boolean;
  ready: Promise<string>;
}

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
    await removeMountPoints(this.dir);
  }

  /**
   * A path showing `hostDir`'s content with no host path in /proc (an overlay on the stage), shared
   * by every environment that uses the same directory; `release` it when done (unless pinned).
   * Falls back to `hostDir` itself if overlayfs refuses it (logged once, kept in `overlayFailure`).
   */
  acquire(hostDir: string, pinned = false): Promise<string> {
    let overlay = this.#overlays.get(hostDir);
    if (overlay === undefined) {
      // A fresh mount point per mount: an unmount of a released one never meets a new one.
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
      overlay = { path, refs: 0, pinned, ready };
      this.#overlays.set(hostDir, overlay);
    }
    overlay.refs++;
    overlay.pinned ||= pinned;
    return overlay.ready;
  }

  /** One user of `hostDir` is gone; the last one unmounts its overlay. */
  async release(hostDir: string): Promise<void> {
    const overlay = this.#overlays.get(hostDir);
    if (overlay === undefined || --overlay.refs > 0 || overlay.pinned) return;
    this.#overlays.delete(hostDir);
    const path = await overlay.ready;
    if (path === hostDir) return;
    await unmount(path);
    await rmdir(path).catch(() => undefined);
  }
}
