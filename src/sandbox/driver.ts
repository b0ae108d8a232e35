/**
 * The sandbox driver port: how one execution environment's process tree is
 * started, isolated, limited, frozen and torn down. `worker/` owns the
 * lifecycle; a driver only knows processes, namespaces and cgroups.
 */

/** Host paths the environment needs, and how they appear inside it. */
export interface SandboxMounts {
  /** Extracted function code (read-only), seen as /var/task where the driver can map it. */
  codeDir: string;
  /**
   * `codeDir` is a developer's folder that changes while mounted (a dev mount): bound read-only as
   * it is, not through a cached overlay, so every new environment sees the latest edit (its host
   * path then shows in the sandbox's /proc/self/mountinfo).
   */
  codeLive?: boolean;
  /** The runtime's own files (read-only), seen as /var/runtime where the driver can map it. */
  runtimeDir: string;
  /** Merged layers (read-only), seen as /opt where the driver can map it. */
  optDir?: string;
  /** The language build (a Node.js install), seen as /var/lang where the driver can map it. */
  langDir?: string;
  /** A runtime root filesystem: its usr/ (and its /etc basics) replace the host's where the driver can. */
  rootfs?: string;
  /** The runtime's AWS SDK: host folder, and where an isolating driver shows it. */
  sdk?: { dir: string; at: string };
  /**
   * A Node.js runtime's major version (`20`): its NODE_PATH has the layers' and the SDK's package
   * folders, which a driver may also show to ES modules (`SandboxView.nodePathView`).
   */
  nodeMajor?: string;
}

/** Paths and addresses as the process inside the sandbox sees them. */
export interface SandboxView {
  taskRoot: string;
  runtimeRoot: string;
  optRoot: string;
  /** Value for AWS_LAMBDA_RUNTIME_API inside the sandbox ("host:port"). */
  runtimeApiAddress: string;
  /** In-sandbox path of the Runtime API's Unix socket, for runtimes that can use it directly. */
  runtimeApiSocket?: string;
  /**
   * This platform's API as seen from inside, when the driver carries it itself (an isolated network:
   * `http://127.0.0.1:9000`, relayed to `SandboxSpec.platformApiSocket`). Absent: the sandbox reaches
   * the server at its real address.
   */
  platformApiUrl?: string;
  /** True when the sandbox has its own filesystem root (paths above are not the host's). */
  ownRoot: boolean;
  /** Where the language build (`langDir`) is seen, if mounted. */
  langRoot?: string;
  /** Where the runtime's SDK is seen, if any. */
  sdkRoot?: string;
  /**
   * TCP ports of the sandbox's own 127.0.0.1 that lead to Unix sockets seen inside it (the Runtime
   * API's 9001), where the driver carries them. A runtime that serves them itself
   * (`SandboxSpec.runtimeServesRelays`) spares the sandbox a relay process for each.
   */
  relays?: ReadonlyArray<{ port: number; socket: string }>;
  /**
   * The NODE_PATH packages (layers', SDK's) are linked at /node_modules, where every ES module's
   * resolution ends: the Node.js runtime needs no resolve hook of its own (nor Node 20's hook thread).
   */
  nodePathView?: boolean;
}

export interface SandboxLimits {
  memoryMb: number;
  ephemeralStorageMb: number;
  /** Process/thread limit for the whole tree (Lambda: 1024). */
  pids: number;
}

/** How the worker must expose the environment's Runtime API for this driver. */
export type RuntimeApiEndpoint =
  /**
   * Worker listens on a TCP port on the host loopback — and, when `socketPath`
   * is set, on that Unix socket too, for runtimes that can use it directly.
   */
  | { kind: "tcp"; host: string; port: number; socketPath?: string }
  /** Worker listens on a Unix socket; the driver carries it into the sandbox. */
  | { kind: "unix"; path: string };

export interface SandboxSpec {
  /** Unique environment id (safe for file names). */
  id: string;
  /** Command to run, with paths as seen inside the sandbox (see `view`). */
  argv: string[];
  /** The exact environment of the process (nothing else is inherited). */
  env: Record<string, string>;
  mounts: SandboxMounts;
  limits: SandboxLimits;
  runtimeApi: RuntimeApiEndpoint;
  /**
   * A Unix socket on the host where the server accepts this environment's connections to the
   * platform API; drivers that show `platformApiUrl` relay it there.
   */
  platformApiSocket?: string;
  /**
   * Receives everything the process tree writes to stdout and stderr. A returned promise pauses
   * the reading until it resolves (back-pressure: the pipe fills and the writer blocks).
   */
  onOutput: (chunk: Buffer) => Promise<void> | undefined | void;
  /**
   * A stem cell: started before its function is known. `mounts.codeDir` is a
   * placeholder and `limits` generous; `Sandbox.adopt` supplies the real ones.
   */
  stemCell?: boolean;
  /**
   * The runtime serves `SandboxView.relays` itself from its first moment (Lambent's Node.js and
   * Python runtimes with `--tcp-relay`, nothing started before them): the driver binds their sockets into the sandbox
   * and starts no relay of its own.
   */
  runtimeServesRelays?: boolean;
}

export interface SandboxExit {
  code: number | null;
  signal: string | null;
  /** True when the kernel's OOM killer ended the tree (memory limit). */
  oomKilled: boolean;
}

export interface Sandbox {
  readonly id: string;
  readonly pid: number;
  /** Resolves once the sandbox's main process has exited. */
  readonly exited: Promise<SandboxExit>;
  /** Stop every process of the tree from running (between invokes). */
  freeze(): Promise<void>;
  /** Let it run again. */
  thaw(): Promise<void>;
  /** Reset the peak-memory counter (before an invoke); no-op where unsupported. */
  resetPeakMemory(): void;
  /** Peak memory of the tree since the last reset, in bytes, if the driver can measure it. */
  peakMemoryBytes(): number | undefined;
  /**
   * The processes of the environment now (its cgroup; or its process tree): who may use its
   * Runtime API over TCP.
   */
  processIds(): Promise<number[]>;
  /** Whether the memory limit's OOM killer has killed a process of the tree (drivers that enforce one). */
  oomKilled?(): boolean;
  /** Kill the whole tree and release every resource (cgroups, sockets, dirs). Idempotent. */
  destroy(): Promise<void>;
  /**
   * Give a stem cell (spawned with `stemCell: true`, before its function was
   * known) its function: the code (and layers) appear at the view's paths and
   * the function's limits apply. Only drivers with `supportsStemCells` have it.
   */
  adopt?(mounts: SandboxMounts, limits: SandboxLimits): Promise<void>;
  /**
   * Init is over. Init runs with at least one full vCPU (as a runtime's start
   * at a 128 MB share would take ten times longer); from here on the
   * function's own CPU share applies.
   */
  endInit?(): Promise<void>;
}

export interface SandboxDriver {
  readonly name: "bwrap" | "process";
  /** False for drivers that isolate nothing (the process driver). */
  readonly isolates: boolean;
  /** Host-wide setup; also removes leftovers of a previous run (after a SIGKILL). */
  init(): Promise<void>;
  /** How the Runtime API endpoint for environment `id` must be exposed. */
  runtimeApiEndpointKind(): "tcp" | "unix";
  /** How the given mounts and endpoint appear inside the sandbox. */
  view(mounts: SandboxMounts, runtimeApi: RuntimeApiEndpoint): SandboxView;
  spawn(spec: SandboxSpec): Promise<Sandbox>;
  /**
   * Where the worker creates environments' Unix sockets, when the driver wants them somewhere of its
   * own (bwrap: on its stage, so a socket bound into a sandbox shows no host path in /proc).
   */
  readonly socketDir?: string;
  /** Whether `spawn` takes stem cells and its sandboxes can `adopt` a function. */
  readonly supportsStemCells?: boolean;
  /** Destroy every sandbox still alive and release host-wide resources. */
  close(): Promise<void>;
}
