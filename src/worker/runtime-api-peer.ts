/**
 * Who is on the other end of a loopback TCP connection to an environment's Runtime API. Where the
 * Runtime API must be TCP on the host's loopback (`--sandbox-network host`, the process driver: the
 * official `aws-lambda-ric` only knows `AWS_LAMBDA_RUNTIME_API=host:port`, so no secret can travel
 * with it), any process on the host could connect to any environment's port. So each connection is
 * admitted only if the socket on its client side belongs to a process of that environment: the
 * client's port leads to the socket's inode in /proc/net/tcp, and the inode must be among the open
 * file descriptors of the environment's processes (its cgroup, or its process tree). Once per
 * connection (runtimes keep theirs alive).
 */
import { readdir, readFile, readlink } from "node:fs/promises";
import type { Socket } from "node:net";
import type { RuntimeApiEndpoint, Sandbox, SandboxDriver } from "../sandbox/driver.js";

const LOOPBACK_HEX = "0100007F";

function portHex(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}

/** The inode of the client-side socket of a 127.0.0.1 connection from `clientPort` to `serverPort`. */
export async function loopbackClientInode(
  clientPort: number,
  serverPort: number,
): Promise<string | undefined> {
  const table = await readFile("/proc/net/tcp", "latin1");
  const local = ` ${LOOPBACK_HEX}:${portHex(clientPort)} ${LOOPBACK_HEX}:${portHex(serverPort)} `;
  const at = table.indexOf(local);
  if (at === -1) return undefined;
  const line = table.slice(at, table.indexOf("\n", at) === -1 ? undefined : table.indexOf("\n", at));
  // local rem st tx:rx tr:when retrnsmt uid timeout inode
  return line.trim().split(/\s+/)[8];
}

/** Whether one of `pids` holds the socket with this inode open. */
export async function heldBy(pids: readonly number[], inode: string): Promise<boolean> {
  const target = `socket:[${inode}]`;
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")) === target) return true;
    }
  }
  return false;
}

/** Whether the client of `socket` (a loopback TCP connection) is one of `pids`. */
export async function connectedFrom(socket: Socket, pids: readonly number[]): Promise<boolean> {
  const { remoteAddress, remotePort, localPort } = socket;
  if (remoteAddress !== "127.0.0.1" || remotePort === undefined || localPort === undefined) return false;
  const inode = await loopbackClientInode(remotePort, localPort);
  return inode !== undefined && inode !== "0" && (await heldBy(pids, inode));
}

/** The admission check of an environment's Runtime API: its client must be one of the sandbox's processes. */
export function ownProcessesOnly(sandbox: Sandbox): (socket: Socket) => Promise<boolean> {
  return async (socket) => connectedFrom(socket, await sandbox.processIds());
}

/**
 * A TCP Runtime API endpoint on the host's loopback. Drivers that isolate also serve it on a Unix
 * socket bound into the sandbox alone (cheaper); the process driver does not: any process of the
 * host could connect to a socket file.
 */
export function tcpEndpoint(driver: SandboxDriver, socketPath: string): RuntimeApiEndpoint {
  return driver.isolates
    ? { kind: "tcp", host: "127.0.0.1", port: 0, socketPath }
    : { kind: "tcp", host: "127.0.0.1", port: 0 };
}
