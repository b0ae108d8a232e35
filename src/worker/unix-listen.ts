/**
 * Unix sockets a sandbox connects to, bound under a name that shows no host path. The address a
 * socket was bound to is what /proc/net/unix lists, and a connection accepted on it belongs to the
 * *client's* network namespace: a sandbox that connects to `<data dir>/…/<id>.sock` would read that
 * path in its own /proc/net/unix. So the socket is bound as `/proc/self/fd/<n>/<name>`, `<n>` being
 * a descriptor of its directory this process keeps open (libuv unlinks a socket by the name it was
 * bound to when it closes: the descriptor must stay valid as long as any socket bound through it).
 */
import { openSync, statSync } from "node:fs";
import type { Server } from "node:net";
import { basename, dirname } from "node:path";

const directories = new Map<string, { fd: number; dev: number; ino: number }>();

/** The name to bind `path` under: through a kept descriptor of its directory (reopened if the directory was replaced). */
export function neutralSocketName(path: string): string {
  const dir = dirname(path);
  const now = statSync(dir);
  let held = directories.get(dir);
  if (held === undefined || held.dev !== now.dev || held.ino !== now.ino) {
    // A replaced directory's descriptor stays open: sockets bound through it may still be listening.
    held = { fd: openSync(dir, "r"), dev: now.dev, ino: now.ino };
    directories.set(dir, held);
  }
  return `/proc/self/fd/${held.fd}/${basename(path)}`;
}

/** `server.listen` on the Unix socket `path`, bound under its neutral name. */
export function listenUnix(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(neutralSocketName(path), () => {
      server.off("error", reject);
      resolve();
    });
  });
}
