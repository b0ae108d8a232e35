/**
 * Ready-made network namespaces for isolated sandboxes, instead of a slirp4netns, an in-namespace
 * iptables-restore and a socat per sandbox. Each namespace (`lambent-N`, mounted at
 * /run/netns/lambent-N) is wired to the server's own namespace by a veth pair: host side `lmbN`
 * with the pool's address 2N and the namespace side `eth0` with 2N+1 (a /31 each, from the pool's
 * range: DEFAULT_POOL_CIDR, or `--sandbox-pool-cidr`; the pool refuses a range any of the host's
 * routes or addresses overlaps, such as Tailscale's 100.64.0.0/10, and then the driver falls back to
 * slirp4netns), its default
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
import { execFileSync, spawn } from "node:child_process";
import { closeSync, openSync, writeSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { SandboxError } from "./errors.js";
import { childExit } from "./exit.js";
import { HELPER_ENV } from "./network.js";

export const NETNS_SCRIPT = fileURLToPath(new URL("../../libexec/netns.sh", import.meta.url));
/** Every sandbox namespace's addresses come from here unless told otherwise (/31 pairs: 32,768 namespaces). */
export const DEFAULT_POOL_CIDR = "100.72.0.0/16";
/** The most namespaces a pool numbers (its index claims are machine-wide, whatever the range). */
const MAX_POOL_SIZE = 1 << 15;
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

/** An IPv4 range: its first address as a number, and its prefix length. */
export interface PoolRange {
  readonly text: string;
  readonly base: number;
  readonly prefix: number;
}

const ipv4 = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

function parseIpv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255))
    return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** Ranges a pool may not take: what the host, slirp4netns and the sandbox's own names use. */
const RESERVED: Array<[string, string]> = [
  ["0.0.0.0/8", "this network"],
  ["10.0.2.0/24", "slirp4netns' network and sandbox.localdomain's address"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local (cloud metadata services)"],
  ["224.0.0.0/3", "multicast and reserved"],
];

/**
 * `--sandbox-pool-cidr`: a network address with a prefix from /8 to /24 (its host bits zero), outside
 * loopback, link-local, multicast and slirp4netns' 10.0.2.0/24. Throws a message for the user.
 */
export function parsePoolCidr(text: string): PoolRange {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  const base = m ? parseIpv4(m[1] as string) : undefined;
  const prefix = m ? Number(m[2]) : Number.NaN;
  if (base === undefined || !(prefix >= 8 && prefix <= 24)) {
    throw new Error(
      `${JSON.stringify(text)} is not an IPv4 range from /8 to /24 (like ${DEFAULT_POOL_CIDR})`,
    );
  }
  const range = { text, base, prefix };
  if (base % 2 ** (32 - prefix) !== 0) {
    throw new Error(
      `${text} has host bits set: the range starts at ${ipv4(base - (base % 2 ** (32 - prefix)))}`,
    );
  }
  for (const [cidr, what] of RESERVED) {
    if (rangesOverlap(range, parsePoolCidrUnchecked(cidr)))
      throw new Error(`${text} overlaps ${cidr} (${what})`);
  }
  return range;
}

function parsePoolCidrUnchecked(text: string): PoolRange {
  const [addr, bits] = text.split("/");
  return { text, base: parseIpv4(addr as string) ?? 0, prefix: Number(bits) };
}

function rangesOverlap(a: PoolRange, b: PoolRange): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  const size = 2 ** (32 - prefix);
  return Math.floor(a.base / size) === Math.floor(b.base / size);
}

/** Namespaces a range numbers: /31 pairs, at most MAX_POOL_SIZE. */
export function poolSize(range: PoolRange): number {
  return Math.min(MAX_POOL_SIZE, 2 ** (31 - range.prefix));
}

export function poolAddresses(
  index: number,
  range: PoolRange = parsePoolCidr(DEFAULT_POOL_CIDR),
): {
  gateway: string;
  address: string;
} {
  const host = range.base + index * 2;
  return { gateway: ipv4(host), address: ipv4(host + 1) };
}

/**
 * The host's routes (every table) and addresses that overlap `range`, as `ip` prints them: a pool
 * there would shadow them (a VPN's peers, a container network, the LAN). The pool's own veths
 * (`lmb…`) and default routes do not count. `routes` and `addresses` are `ip -4 -o` output.
 */
export function hostOverlaps(range: PoolRange, routes: string, addresses: string): string[] {
  const out: string[] = [];
  for (const line of routes.split("\n")) {
    const words = line.trim().split(/\s+/);
    // [type] destination … dev X …: the type word (unicast, local, broadcast, blackhole, …) is optional.
    const dest = /^\d/.test(words[0] ?? "") ? words[0] : words[1];
    if (!dest || dest === "default" || /\bdev lmb\d+\b/.test(line)) continue;
    const cidr = dest.includes("/") ? dest : `${dest}/32`;
    const r = parsePoolCidrUnchecked(cidr);
    if (r.prefix > 0 && parseIpv4(cidr.split("/")[0] as string) !== undefined && rangesOverlap(range, r))
      out.push(`route ${line.trim()}`);
  }
  for (const line of addresses.split("\n")) {
    const m = /^\d+:\s+(\S+)\s+inet\s+([0-9.]+)\/(\d+)/.exec(line.trim());
    if (!m || /^lmb\d+$/.test(m[1] as string)) continue;
    if (rangesOverlap(range, { text: "", base: parseIpv4(m[2] as string) ?? 0, prefix: 32 }))
      out.push(`address ${m[2]}/${m[3]} on ${m[1]}`);
  }
  return out;
}

function readHostNetwork(): { routes: string; addresses: string } {
  const ip = (args: string[]) => execFileSync("ip", args, { env: HELPER_ENV, encoding: "utf8" });
  return {
    routes: ip(["-4", "-o", "route", "show", "table", "all"]),
    addresses: ip(["-4", "-o", "addr", "show"]),
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
  readonly #range: PoolRange;
  #making = 0;
  /** Makes and deletes under way (close waits for them). */
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;
  #lastError: Error | undefined;

  private constructor(instanceId: string, target: number, range: PoolRange) {
    this.#instanceId = instanceId;
    this.#target = target;
    this.#range = range;
  }

  /**
   * Checks that nothing of the host's overlaps the range, installs the host rules, sweeps what this
   * instance left, and makes the first namespace: if any of that fails (an overlap, no veth, no NAT,
   * no iptables), rejects with the reason (the caller falls back).
   */
  static async start(
    instanceId: string,
    range: PoolRange = parsePoolCidr(DEFAULT_POOL_CIDR),
    ready = DEFAULT_READY,
  ): Promise<NetnsPool> {
    const { routes, addresses } = readHostNetwork();
    const overlaps = hostOverlaps(range, routes, addresses);
    if (overlaps.length > 0) {
      throw new SandboxError(
        "SandboxStartFailure",
        `the sandbox pool's range ${range.text} overlaps the host's ${overlaps.slice(0, 3).join("; ")} (choose a free range with --sandbox-pool-cidr)`,
      );
    }
    await mkdir(CLAIMS, { recursive: true });
    await run(["rules", range.text]);
    await sweepNamespaces(instanceId);
    const pool = new NetnsPool(instanceId, ready, range);
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
    const { gateway, address } = poolAddresses(index, this.#range);
    let released: Promise<void> | undefined;
    const ns: PooledNetns = {
      index,
      path: `/run/netns/lambent-${index}`,
      address,
      gateway,
      release: () => {
        // The claim goes once the namespace is gone (removed here: no `rm` exec per environment).
        released ??= this.#track(
          run(["delete", String(index)]).then(() => rm(`${CLAIMS}/${index}`, { force: true })),
        ).finally(() => this.#live.delete(ns));
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
    const size = poolSize(this.#range);
    const start = Math.floor(Math.random() * size);
    for (let i = 0; i < size; i++) {
      const index = (start + i) % size;
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
