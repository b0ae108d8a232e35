import { type ChildProcess, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { SandboxError } from "./errors.js";
import { childExit, childSpawned } from "./exit.js";

/** The Runtime API port inside an isolated environment, as on Lambda. */
export const RUNTIME_API_PORT = 9001;
/** slirp4netns's address for the host (its loopback included). */
const HOST_GATEWAY = "10.0.2.2";

/** Helpers get a bare environment: nothing of the server's leaks to them or through them. */
export const HELPER_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };

/** Helper programs an isolated network needs on the host. */
export const NETWORK_TOOLS = ["slirp4netns", "nsenter", "setpriv", "iptables-restore", "socat"] as const;

/**
 * The namespace's own 127.0.0.1:PORT reaches the host's 127.0.0.1:PORT through slirp4netns,
 * except the Runtime API port, which stays inside (served by the TCP shim).
 */
const LOOPBACK_RULES = `*nat
-A OUTPUT -d 127.0.0.1/32 -p tcp ! --dport ${RUNTIME_API_PORT} -j DNAT --to-destination ${HOST_GATEWAY}
-A POSTROUTING -d ${HOST_GATEWAY}/32 -j MASQUERADE
COMMIT
`;

/** The host-side helpers that give one environment's network namespace its connectivity. */
export interface SandboxNetwork {
  /** slirp4netns (outbound TCP/UDP, DNS at 10.0.2.3, host loopback at 10.0.2.2) and the Runtime API TCP shim. */
  readonly helpers: readonly ChildProcess[];
  close(): Promise<void>;
}

/**
 * Wires the network namespace of `pid` (blocked before exec, so nothing runs yet): slirp4netns,
 * host-loopback DNAT, and a socat listening on 127.0.0.1:9001 inside the namespace that relays
 * to the environment's Runtime API socket on the host. All three start in parallel.
 */
export async function attachNetwork(pid: number, runtimeApiSocket: string): Promise<SandboxNetwork> {
  const netns = `--net=/proc/${pid}/ns/net`;
  const slirp = spawn(
    "slirp4netns",
    ["--configure", "--mtu=65520", "--ready-fd=3", "--exit-fd=4", String(pid), "tap0"],
    // fd 4 stays open in this process: slirp4netns exits when the server dies.
    { env: HELPER_ENV, stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"] },
  );
  const shim = spawnNamespaceRelay(
    netns,
    `TCP-LISTEN:${RUNTIME_API_PORT},bind=127.0.0.1,reuseaddr,fork`,
    `UNIX-CONNECT:${runtimeApiSocket}`,
  );
  const helpers = [slirp, shim];
  const network: SandboxNetwork = { helpers, close: () => closeHelpers(helpers) };
  try {
    await Promise.all([
      firstOutput(slirp, slirp.stdio[3] as Readable, () => true, "slirp4netns"),
      relayListening(shim),
      routeHostLoopback(netns),
    ]);
  } catch (error) {
    await network.close();
    throw error;
  }
  return network;
}

/**
 * A socat relay that runs inside a network namespace (`netns` = `--net=/proc/PID/ns/net`) as host
 * uid 0 without any capability, and dies with the server: `listen` and `connect` are socat addresses.
 */
export function spawnNamespaceRelay(netns: string, listen: string, connect: string): ChildProcess {
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
    { env: HELPER_ENV, stdio: ["ignore", "ignore", "pipe"] },
  );
}

/** Resolves once a relay listens (rejects if it ends first); its log is drained from then on. */
export async function relayListening(relay: ChildProcess): Promise<void> {
  await firstOutput(relay, relay.stderr, (text) => text.includes(" listening on "), "socat");
  // socat logs each accepted connection at this level: keep draining its stderr.
  relay.stderr?.resume();
}

async function routeHostLoopback(netns: string): Promise<void> {
  const setup = spawn(
    "nsenter",
    [netns, "--", "sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet && exec iptables-restore"],
    { env: HELPER_ENV, stdio: ["pipe", "ignore", "pipe"] },
  );
  let errors = "";
  setup.stderr?.on("data", (chunk: Buffer) => {
    errors += chunk.toString();
  });
  // iptables-restore may exit right after COMMIT, before this side shuts down: its exit code is the verdict.
  setup.stdin?.on("error", () => {});
  setup.stdin?.end(LOOPBACK_RULES);
  await startOrFail(setup, "nsenter");
  const { code } = await childExit(setup);
  if (code !== 0) {
    throw new SandboxError("SandboxStartFailure", `host loopback routing failed (${code}): ${errors.trim()}`);
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
