import { type ChildProcess, spawn } from "node:child_process";
import { networkInterfaces } from "node:os";
import { basename, dirname } from "node:path";
import type { Readable } from "node:stream";
import { SandboxError } from "./errors.js";
import { childExit, childSpawned } from "./exit.js";

/** The Runtime API port inside an isolated environment, as on Lambda. */
export const RUNTIME_API_PORT = 9001;
/**
 * Inside an isolated environment, `127.0.0.1:9000` is this platform's own API (Lambda API), relayed
 * over a per-environment Unix socket to the server: the way back for functions that call the platform
 * with their own credentials. No TCP path leads from a sandbox to the host's loopback.
 */
export const PLATFORM_API_PORT = 9000;
/** Ports the namespace's own loopback uses itself: never a host port an operator can open. */
export const RESERVED_SANDBOX_PORTS: readonly number[] = [RUNTIME_API_PORT, PLATFORM_API_PORT];

/** Helpers get a bare environment: nothing of the server's leaks to them or through them. */
export const HELPER_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };

/** Helper programs an isolated network needs on the host. */
export const NETWORK_TOOLS = ["slirp4netns", "nsenter", "setpriv", "iptables-restore", "socat"] as const;

/**
 * The rules every isolated namespace gets (the sandbox user has no capability to change them):
 * nothing addressed to one of the host's own addresses leaves the namespace (a service bound to
 * 0.0.0.0 on the host is reachable through them, through slirp4netns). The host's loopback itself is
 * out of reach already: slirp4netns runs with `--disable-host-loopback` and nothing is DNATed.
 */
export function namespaceRules(blockedAddresses: readonly string[]): string {
  const lines = ["*filter"];
  for (const address of blockedAddresses) {
    lines.push(`-A OUTPUT -d ${address}/32 -p tcp -j REJECT --reject-with tcp-reset`);
    lines.push(`-A OUTPUT -d ${address}/32 -j REJECT --reject-with icmp-port-unreachable`);
  }
  lines.push("COMMIT", "");
  return lines.join("\n");
}

/** The host's own IPv4 addresses (every interface but loopback): a sandbox may reach none of them. */
export function hostAddresses(): string[] {
  const found = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const address of list ?? []) {
      if (address.family === "IPv4" && !address.internal) found.add(address.address);
    }
  }
  return [...found].sort();
}

/** What one environment's network namespace is wired to. */
export interface NamespaceWiring {
  /**
   * A ready-made namespace from the pool (netns-pool.ts): it already has its veth, routes and the
   * host's rules, so only the relays start (none at all when the runtime serves 9001 and 9000).
   * Absent: the namespace of `pid` is new and gets slirp4netns and its firewall rules.
   */
  pooled?: { readonly path: string; release(): Promise<void> };
  /** The runtime serves 127.0.0.1:9000 itself (`SandboxSpec.runtimeServesRelays`): no relay for it. */
  platformApiServed?: boolean;
  /**
   * The environment's Runtime API socket, served inside at 127.0.0.1:9001; absent when the runtime
   * serves that port itself (`SandboxSpec.runtimeServesRelays`).
   */
  runtimeApiSocket?: string;
  /** The environment's platform API socket (served inside at 127.0.0.1:9000), if the server offers one. */
  platformApiSocket?: string;
  /** Host services the operator opened: inside at 127.0.0.1:port, relayed through `socket` to the host. */
  hostPorts?: ReadonlyArray<{ port: number; socket: string }>;
  /** Addresses nothing inside may reach (the host's own; see `hostAddresses`). */
  blockedAddresses?: readonly string[];
}

/** The host-side helpers that give one environment's network namespace its connectivity. */
export interface SandboxNetwork {
  /** slirp4netns (outbound TCP/UDP, DNS at 10.0.2.3) and the relays to the environment's sockets. */
  readonly helpers: readonly ChildProcess[];
  close(): Promise<void>;
}

/**
 * Wires the network namespace of `pid` (blocked before exec, so nothing runs yet): slirp4netns
 * (outbound only: `--disable-host-loopback`), the namespace's firewall rules, and socat relays
 * listening on the namespace's own 127.0.0.1 (9001: the Runtime API; 9000: the platform API; any
 * host port the operator opened), each relaying to a Unix socket on the host. All start in parallel.
 */
export async function attachNetwork(pid: number, wiring: NamespaceWiring): Promise<SandboxNetwork> {
  const { pooled } = wiring;
  const netns = `--net=${pooled?.path ?? `/proc/${pid}/ns/net`}`;
  const relayTo = (port: number, socket: string) =>
    spawnNamespaceRelay(netns, `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${socket}`);
  const relays: ChildProcess[] = [];
  if (wiring.runtimeApiSocket !== undefined) relays.push(relayTo(RUNTIME_API_PORT, wiring.runtimeApiSocket));
  if (wiring.platformApiSocket !== undefined && !wiring.platformApiServed)
    relays.push(relayTo(PLATFORM_API_PORT, wiring.platformApiSocket));
  for (const { port, socket } of wiring.hostPorts ?? []) relays.push(relayTo(port, socket));
  if (pooled !== undefined) {
    const network: SandboxNetwork = {
      helpers: relays,
      // The namespace is deleted in the background (the pool tracks it; its close waits): an
      // environment's exit is reported without waiting for `ip`.
      close: async () => {
        await closeHelpers(relays);
        pooled.release().catch((error: Error) => console.error(`lambent: ${error.message}`));
      },
    };
    try {
      await Promise.all(relays.map(relayListening));
    } catch (error) {
      await network.close();
      throw error;
    }
    return network;
  }
  const slirp = spawn(
    "slirp4netns",
    [
      "--configure",
      "--mtu=65520",
      "--disable-host-loopback",
      "--ready-fd=3",
      "--exit-fd=4",
      String(pid),
      "tap0",
    ],
    // fd 4 stays open in this process: slirp4netns exits when the server dies.
    { env: HELPER_ENV, stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] },
  );
  const helpers = [slirp, ...relays];
  const network: SandboxNetwork = { helpers, close: () => closeHelpers(helpers) };
  try {
    await Promise.all([
      firstOutput(slirp, slirp.stdio[3] as Readable, () => true, "slirp4netns"),
      ...relays.map(relayListening),
      applyRules(netns, namespaceRules(wiring.blockedAddresses ?? [])),
    ]);
  } catch (error) {
    await network.close();
    throw error;
  }
  return network;
}

/**
 * The host side of an opened host port: a socat on the host that takes connections on `socket` (a
 * Unix socket in the server's run dir, which no sandbox can see) and connects them to
 * 127.0.0.1:`port`. It dies with the server.
 */
export function spawnHostPortRelay(port: number, socket: string): ChildProcess {
  return spawn(
    "setpriv",
    [
      "--pdeathsig=KILL",
      "--",
      "socat",
      "-d",
      "-d",
      `UNIX-LISTEN:${basename(socket)},fork,unlink-early,mode=600`,
      `TCP:127.0.0.1:${port}`,
    ],
    { env: HELPER_ENV, stdio: ["ignore", "ignore", "pipe"], cwd: dirname(socket) },
  );
}

/**
 * A socat relay that runs inside a network namespace (`netns` = `--net=/proc/PID/ns/net`) as host
 * uid 0 without any capability, and dies with the server: `listen` and `connect` are socat addresses.
 */
export function spawnNamespaceRelay(
  netns: string,
  listen: string,
  connect: string,
  /** Working directory (relative Unix socket names are bound there). */
  cwd?: string,
): ChildProcess {
  return spawn(
    "nsenter",
    [
      netns,
      "--",
      "setpriv",
      "--pdeathsig=KILL",
      "--bounding-set=-all",
      "--inh-caps=-all",
      "--",
      "socat",
      "-d",
      "-d",
      listen,
      connect,
    ],
    { env: HELPER_ENV, stdio: ["ignore", "ignore", "pipe"], ...(cwd !== undefined ? { cwd } : {}) },
  );
}

/** Resolves once a relay listens (rejects if it ends first); its log is drained from then on. */
export async function relayListening(relay: ChildProcess): Promise<void> {
  await firstOutput(relay, relay.stderr, (text) => text.includes(" listening on "), "socat");
  // socat logs each accepted connection at this level: keep draining its stderr.
  relay.stderr?.resume();
}

async function applyRules(netns: string, rules: string): Promise<void> {
  const setup = spawn("nsenter", [netns, "--", "iptables-restore"], {
    env: HELPER_ENV,
    stdio: ["pipe", "ignore", "pipe"],
  });
  let errors = "";
  setup.stderr?.on("data", (chunk: Buffer) => {
    errors += chunk.toString();
  });
  // iptables-restore may exit right after COMMIT, before this side shuts down: its exit code is the verdict.
  setup.stdin?.on("error", () => {});
  setup.stdin?.end(rules);
  await startOrFail(setup, "nsenter");
  const { code } = await childExit(setup);
  if (code !== 0) {
    throw new SandboxError(
      "SandboxStartFailure",
      `sandbox firewall rules failed (${code}): ${errors.trim()}`,
    );
  }
}

/** Resolves when `stream` of `child` produces text satisfying `ready`; rejects if the child ends first. */
function firstOutput(
  child: ChildProcess,
  stream: Readable | null,
  ready: (text: string) => boolean,
  what: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const fail = (reason: string) => reject(new SandboxError("SandboxStartFailure", `${what}: ${reason}`));
    child.once("error", (error) => fail(error.message));
    child.once("exit", (code, signal) => fail(`exited before ready (${code ?? signal}): ${seen.trim()}`));
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (!ready(seen)) return;
      stream?.removeListener("data", onData);
      resolve();
    };
    stream?.on("data", onData);
  });
}

async function startOrFail(child: ChildProcess, what: string): Promise<void> {
  try {
    await childSpawned(child);
  } catch (cause) {
    throw new SandboxError("SandboxStartFailure", `cannot start ${what}`, { cause });
  }
}

async function closeHelpers(helpers: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    helpers.map((child) => {
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
        return Promise.resolve();
      }
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      return exited;
    }),
  );
}
