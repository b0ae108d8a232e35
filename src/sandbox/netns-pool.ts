/**
 * Ready-made network namespaces for isolated sandboxes, instead of a slirp4netns, an in-namespace
 * iptables-restore and a socat per sandbox. Each namespace (`lambent-N`, mounted at
 * /run/netns/lambent-N) is wired to the server's own namespace by a veth pair: host side `lmbN`
 * with 100.72.(2N) and the namespace side `eth0` with 100.72.(2N+1) (a /31 each, from POOL_CIDR,
 * which clashes with neither the tests' 198.18/15 cluster nor slirp4netns's 10.0.2/24), its default
 * route via the host side, its loopback up with sandbox.localdomain's address (10.0.2.100). ONE
 * masquerade rule routes every namespace out; shared host rules (`libexec/netns.sh rules`) refuse
 * sandbox → host (any of the host's addresses, the veth's own side, 0.0.0.0-bound services),
 * sandbox → sandbox, and anything opened into a sandbox. All of them live in the server's
 * namespace, where the sandbox user (no capability, no way to setns) cannot touch them.
 *
 * A namespace serves ONE environment and is deleted after it (never reused, so nothing a function
 * left in it — sockets in TIME_WAIT, abstract Unix sockets, neighbour entries — reaches another);
 * the pool makes new ones in the background, so a cold start only takes one that is ready.
 * Index N is claimed machine-wide by the file /run/lambent/netns/N, made atomically, holding the
 * server's instance id: the watchdog and the next start of any server sweep what a killed one left.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { SandboxError } from "./errors.js";
import { childExit } from "./exit.js";
import { HELPER_ENV } from "./network.js";

export const NETNS_SCRIPT = fileURLToPath(new URL("../../libexec/netns.sh", import.meta.url));
/** Every sandbox namespace's addresses come from here (/31 pairs: 32,768 namespaces). */
export const POOL_CIDR = "100.72.0.0/16";
const POOL_SIZE = 1 << 15;
const CLAIMS = "/run/lambent/netns";
/** Sandbox namespaces kept ready. */
const DEFAULT_READY = 6;
/**
 * Namespaces made at once in the background (each is a few `ip` processes); a start waiting for
 * one gets its own make besides, as a start through slirp4netns would make its own namespace.
 */
const PARALLEL = 2;

/** One sandbox's namespace, taken from the pool. */
export interface PooledNetns {
  readonly index: number;
  /** The namespace's mount (for nsenter --net=). */
  readonly path: string;
  /** The namespace's own address (eth0). */
  readonly address: string;
  /** The host side's address (the namespace's gateway). */
  readonly gateway: string;
  /** Deletes the namespace (its veth goes with it) and frees its index. Idempotent. */
  release(): Promise<void>;
}

export function poolAddresses(index: number): { gateway: string; address: string } {
  const host = index * 2;
  return {
    gateway: `100.72.${host >> 8}.${host & 255}`,
    address: `100.72.${(host + 1) >> 8}.${(host + 1) & 255}`,
  };
}

async function run(args: string[]): Promise<void> {
  const child = spawn("/bin/bash", [NETNS_SCRIPT, ...args], {
    env: HELPER_ENV,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let errors = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const { code, signal } = await childExit(child);
  if (code !== 0) {
    throw new SandboxError(
      "SandboxStartFailure",
      `netns.sh ${args[0]} failed (${code ?? signal}): ${errors.trim()}`,
    );
  }
}

/** Removes every namespace claimed by `instanceId` (a killed server's, or our own leftovers). */
export function sweepNamespaces(instanceId: string): Promise<void> {
  return run(["sweep", instanceId]);
}

export class NetnsPool {
  readonly #instanceId: string;
  readonly #ready: PooledNetns[] = [];
  readonly #waiting: Array<{ resolve: (ns: PooledNetns) => void; reject: (error: Error) => void }> = [];
  readonly #live = new Set<PooledNetns>();
  readonly #target: number;
  #making = 0;
  /** Makes and deletes under way (close waits for them). */
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;
  #lastError: Error | undefined;

  private constructor(instanceId: string, target: number) {
    this.#instanceId = instanceId;
    this.#target = target;
  }

  /**
   * Installs the host rules, sweeps what this instance left, and makes the first namespace: if any
   * of that fails (no veth, no NAT, no iptables), rejects with the reason (the caller falls back).
   */
  static async start(instanceId: string, ready = DEFAULT_READY): Promise<NetnsPool> {
    await mkdir(CLAIMS, { recursive: true });
    await run(["rules", POOL_CIDR]);
    await sweepNamespaces(instanceId);
    const pool = new NetnsPool(instanceId, ready);
    const first = await pool.#make();
    pool.#ready.push(first);
    pool.#refill();
    return pool;
  }

  /** A fresh namespace: a ready one, or the next one made. */
  take(): Promise<PooledNetns> {
    if (this.#closed) return Promise.reject(new SandboxError("SandboxStartFailure", "network pool closed"));
    const ready = this.#ready.shift();
    const taken = ready
      ? Promise.resolve(ready)
      : new Promise<PooledNetns>((resolve, reject) => {
          this.#waiting.push({ resolve, reject });
        });
    this.#refill();
    return taken;
  }

  #refill(): void {
    while (
      !this.#closed &&
      this.#making < PARALLEL + this.#waiting.length &&
      this.#ready.length + this.#making < this.#target + this.#waiting.length
    ) {
      this.#making++;
      this.#track(this.#make()).then(
        (ns) => {
          this.#making--;
          this.#lastError = undefined;
          const waiter = this.#waiting.shift();
          if (this.#closed) void ns.release();
          else if (waiter) waiter.resolve(ns);
          else this.#ready.push(ns);
          this.#refill();
        },
        (error: Error) => {
          this.#making--;
          // Two failures in a row: the waiting starts fail (each spawn tries once more).
          if (this.#lastError !== undefined) {
            for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
          } else if (!this.#closed) {
            this.#refill();
          }
          this.#lastError = error;
        },
      );
    }
  }

  /** Claims a free index (an atomic file create) and makes its namespace. */
  async #make(): Promise<PooledNetns> {
    const index = this.#claim();
    const { gateway, address } = poolAddresses(index);
    let released: Promise<void> | undefined;
    const ns: PooledNetns = {
      index,
      path: `/run/netns/lambent-${index}`,
      address,
      gateway,
      release: () => {
        released ??= this.#track(run(["delete", String(index)])).finally(() => this.#live.delete(ns));
        return released;
      },
    };
    this.#live.add(ns);
    try {
      await run(["create", String(index), gateway, address]);
    } catch (error) {
      await ns.release().catch(() => undefined);
      throw error;
    }
    return ns;
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#pending.add(promise);
    const done = () => this.#pending.delete(promise);
    promise.then(done, done);
    return promise;
  }

  #claim(): number {
    const start = Math.floor(Math.random() * POOL_SIZE);
    for (let i = 0; i < POOL_SIZE; i++) {
      const index = (start + i) % POOL_SIZE;
      let fd: number;
      try {
        fd = openSync(`${CLAIMS}/${index}`, "wx", 0o600);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") continue;
        throw error;
      }
      writeSync(fd, this.#instanceId);
      closeSync(fd);
      return index;
    }
    throw new SandboxError("SandboxStartFailure", "no free sandbox network index");
  }

  /** Deletes every namespace of this pool, ready or in use. */
  async close(): Promise<void> {
    this.#closed = true;
    const error = new SandboxError("SandboxStartFailure", "network pool closed");
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
    this.#ready.length = 0;
    // One sweep deletes them all (ready, in use, being released or made: each index is claimed).
    await Promise.allSettled([...this.#pending]);
    await sweepNamespaces(this.#instanceId).catch(() => undefined);
    this.#live.clear();
  }
}
