import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { delimiter, resolve } from "node:path";
import { BwrapDriver, type SandboxNetworkMode } from "./bwrap.js";
import { type CgroupHierarchy, detectCgroups } from "./cgroups.js";
import type { SandboxDriver } from "./driver.js";
import { SandboxError } from "./errors.js";
import { childExit, childSpawned } from "./exit.js";
import { HELPER_ENV, NETWORK_TOOLS } from "./network.js";
import { ProcessDriver } from "./process.js";

export type { SandboxNetworkMode } from "./bwrap.js";
export { BwrapDriver } from "./bwrap.js";
export type * from "./driver.js";
export { SandboxError } from "./errors.js";
export { ProcessDriver } from "./process.js";

export type SandboxMode = "auto" | "bwrap" | "process";

export interface SandboxDriverOptions {
  /** The driver's working directory inside the server's data dir; it is wiped by `init()`. */
  runDir: string;
  /** `isolated-slirp`: isolated, always through slirp4netns (no namespace pool). */
  network: SandboxNetworkMode | "isolated-slirp";
  /** Host loopback ports an isolated sandbox may reach (`--sandbox-allow-host-port`). */
  allowHostPorts?: readonly number[];
  /** Directories whose subfolders stem cells may be given (code and layers caches). */
  adoptableRoots?: readonly string[];
  /** The namespace pool's range (`--sandbox-pool-cidr`); its default otherwise. */
  poolCidr?: string;
}

export interface DetectedSandboxDriver {
  driver: SandboxDriver;
  /** Why the driver is weaker than asked for (process fallback, shared network): print it loudly, show it in /health. */
  warning?: string;
}

/**
 * Picks the sandbox driver. `auto` uses bwrap when a probe works (bwrap present, namespaces can be
 * created, cgroups writable) and falls back to the process driver with a warning; `bwrap` fails
 * with a SandboxError instead. Without slirp4netns & co an isolated network degrades to `host` in
 * `auto` mode, with a warning.
 */
export async function detectSandboxDriver(
  mode: SandboxMode,
  options: SandboxDriverOptions,
): Promise<DetectedSandboxDriver> {
  if (mode === "process") return { driver: new ProcessDriver() };
  const probe = await probeBwrap(options.runDir);
  if (!probe.ok) {
    if (mode === "bwrap")
      throw new SandboxError("SandboxStartFailure", `bwrap sandbox unavailable: ${probe.reason}`);
    return {
      driver: new ProcessDriver(),
      warning: `functions run UNISOLATED (process sandbox): ${probe.reason}`,
    };
  }
  const isolated = options.network !== "host";
  const missing = isolated ? NETWORK_TOOLS.filter((tool) => !onPath(tool)) : [];
  if (missing.length > 0 && mode === "bwrap") {
    throw new SandboxError("SandboxStartFailure", `isolated sandbox network needs ${missing.join(", ")}`);
  }
  const network = missing.length > 0 || !isolated ? "host" : "isolated";
  return {
    driver: new BwrapDriver({
      runDir: options.runDir,
      network,
      cgroups: probe.cgroups,
      instanceId: instanceIdFor(options.runDir),
      netnsPool: options.network !== "isolated-slirp",
      ...(options.poolCidr ? { poolCidr: options.poolCidr } : {}),
      ...(options.allowHostPorts ? { allowHostPorts: options.allowHostPorts } : {}),
      ...(options.adoptableRoots ? { adoptableRoots: options.adoptableRoots } : {}),
    }),
    ...(missing.length > 0 && {
      warning: `sandboxes share the host network (every service on the host's loopback, this API included, is reachable from functions): ${missing.join(", ")} not installed`,
    }),
  };
}

/** The cgroup root of this server is named after its run dir, so two servers never sweep each other. */
export function instanceIdFor(runDir: string): string {
  return createHash("sha256").update(resolve(runDir)).digest("hex").slice(0, 12);
}

async function probeBwrap(
  runDir: string,
): Promise<{ ok: true; cgroups: CgroupHierarchy } | { ok: false; reason: string }> {
  if (process.platform !== "linux") return { ok: false, reason: "not Linux" };
  if (process.getuid?.() !== 0)
    return { ok: false, reason: "not running as root (cgroups and bwrap need it)" };
  if (!onPath("bwrap")) return { ok: false, reason: "bwrap not installed (apt-get install bubblewrap)" };
  if (!onPath("setpriv")) return { ok: false, reason: "setpriv not installed (util-linux)" };
  const namespaces = await canCreateNamespaces();
  if (namespaces !== undefined) return { ok: false, reason: namespaces };
  const cgroups = await detectCgroups(instanceIdFor(runDir));
  return cgroups.ok ? { ok: true, cgroups: cgroups.hierarchy } : cgroups;
}

/** Runs `bwrap … true` with the namespaces a sandbox uses; returns why it failed, if it did. */
async function canCreateNamespaces(): Promise<string | undefined> {
  const child = spawn(
    "bwrap",
    ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-net", "--ro-bind", "/", "/", "--", "true"],
    { env: HELPER_ENV, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  try {
    await childSpawned(child);
  } catch (error) {
    return `cannot run bwrap: ${(error as Error).message}`;
  }
  const { code } = await childExit(child);
  return code === 0 ? undefined : `bwrap cannot create namespaces: ${stderr.trim() || `exit ${code}`}`;
}

function onPath(command: string): boolean {
  const dirs = (process.env.PATH ?? "/usr/bin:/bin").split(delimiter).concat("/usr/sbin", "/sbin");
  return dirs.some((dir) => {
    try {
      accessSync(`${dir}/${command}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
