import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { chmod, link, mkdir, rm } from "node:fs/promises";
import { constants } from "node:os";
import { resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import { MEMORY_MB_PER_VCPU } from "./cgroup-limits.js";
import type { CgroupHierarchy, SandboxCgroup } from "./cgroups.js";
import { detectCgroups } from "./cgroups.js";
import type {
  RuntimeApiEndpoint,
  Sandbox,
  SandboxDriver,
  SandboxExit,
  SandboxLimits,
  SandboxMounts,
  SandboxSpec,
  SandboxView,
} from "./driver.js";
import { SandboxError } from "./errors.js";
import { type ChildExit, childExit, childSpawned } from "./exit.js";
import {
  abandonedInstances,
  isAbandoned,
  registerInstance,
  unregisterInstance,
  withInstanceLock,
} from "./instances.js";
import { bindMount, ReadOnlyViews, removeMountPoints, sharedMountPoint, startMounter } from "./mounts.js";
import { DEFAULT_POOL_CIDR, NetnsPool, parsePoolCidr, sweepNamespaces } from "./netns-pool.js";
import {
  attachNetwork,
  HELPER_ENV,
  hostAddresses,
  PLATFORM_API_PORT,
  RUNTIME_API_PORT,
  relayListening,
  type SandboxNetwork,
  spawnHostPortRelay,
} from "./network.js";
import { readOutput } from "./output.js";
import { nodePathFolders, PackagesViews } from "./packages-view.js";
import { PeakRss } from "./peak-rss.js";
import { SANDBOX_USER } from "./sandbox-user.js";
import { ScratchDisks, sweepScratch } from "./scratch.js";
import { seccompFilter } from "./seccomp.js";
import { Stage } from "./stage.js";
import { systemViewArgs, writeSandboxEtc } from "./system-view.js";
import { Watchdog } from "./watchdog.js";

export type SandboxNetworkMode = "isolated" | "host";

export interface BwrapDriverOptions {
  /** Working directory inside the server's data dir; the driver keeps its generated /etc in `sandbox-etc/`. */
  runDir: string;
  /** `isolated`: a network namespace per environment (slirp4netns); `host`: share the host's (faster, weaker). */
  network: SandboxNetworkMode;
  cgroups: CgroupHierarchy;
  /** bwrap executable (default: found on PATH). */
  bwrap?: string;
  /**
   * Directories whose subfolders stem cells may be given as code or layers
   * (the code cache, the layers cache). Empty: no stem cells.
   */
  adoptableRoots?: readonly string[];
  /** This server's instance id (names its cgroup root). */
  instanceId?: string;
  /**
   * Host loopback ports an isolated environment may reach (at its own 127.0.0.1:PORT), opened by the
   * operator (`--sandbox-allow-host-port`). Nothing else of the host's loopback is reachable.
   */
  allowHostPorts?: readonly number[];
  /**
   * Isolated network from a pool of ready-made namespaces (veth + one host-side NAT, see
   * netns-pool.ts) instead of a slirp4netns per sandbox (default true; needs an instanceId). When
   * the machine cannot (no veth, no NAT, no iptables, only a loopback DNS resolver), the driver says
   * so and uses slirp4netns.
   */
  netnsPool?: boolean;
  /** The pool's range (`--sandbox-pool-cidr`, checked by parsePoolCidr); DEFAULT_POOL_CIDR otherwise. */
  poolCidr?: string;
}

/** Where things appear inside every environment. */
export const SANDBOX_PATHS = {
  taskRoot: "/var/task",
  runtimeRoot: "/var/runtime",
  optRoot: "/opt",
  langRoot: "/var/lang",
  /** NODE_PATH's packages for ES modules (see packages-view.ts). */
  nodeModules: "/node_modules",
  runtimeApiSocket: "/run/lambent/runtime-api.sock",
  platformApiSocket: "/run/lambent/platform-api.sock",
} as const;

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** How long a start or a sweep waits for another server holding an instance's lock (its own start-up sweep). */
const INSTANCE_LOCK_WAIT_MS = 30_000;

/**
 * Execution environments as bubblewrap sandboxes in their own cgroups. bwrap runs as root without a
 * user namespace (so any host path can be mapped and no userns is created); the process drops to
 * the sandbox user through setpriv before it execs the runtime.
 */
export class BwrapDriver implements SandboxDriver {
  readonly name = "bwrap";
  readonly isolates = true;
  readonly #options: BwrapDriverOptions;
  /** Where every host-side source of a sandbox's mounts is shown from (see stage.ts). */
  readonly #stage: Stage;
  /** Per-environment /tmp disks (loop-mounted ext4 of EphemeralStorage bytes). */
  readonly #scratch: ScratchDisks;
  readonly #systemArgs: string[];
  /** System views over runtime root filesystems, by root. */
  readonly #rootfsArgs = new Map<string, Promise<string[]>>();
  readonly #live = new Set<BwrapSandbox>();
  /** Spawns in progress (close waits for them; each sees `#closing` and kills what it started). */
  readonly #starting = new Set<Promise<unknown>>();
  #closing = false;
  readonly #views: ReadOnlyViews;
  /** NODE_PATH's packages for ES modules, one view per layer set and SDK. */
  readonly #packages: PackagesViews;
  readonly #hostPortsDir: string;
  /** Host-side relays of the opened host ports, and what namespaces are wired to. */
  #hostPortRelays: ChildProcess[] = [];
  #hostPorts: Array<{ port: number; socket: string }> = [];
  #blockedAddresses: string[] = [];
  /** Ready-made network namespaces (isolated network without slirp4netns), when the machine can. */
  #netns: NetnsPool | undefined;
  /** Why the pool is not used, when it was wanted. */
  netnsPoolUnavailable: string | undefined;
  readonly supportsStemCells: boolean;
  #watchdog: Watchdog | undefined;
  /** The sandbox's seccomp filter (BPF), read by bwrap from fd 5; undefined on an ABI it does not cover. */
  readonly seccomp: Buffer | undefined = seccompFilter();

  constructor(options: BwrapDriverOptions) {
    this.#options = options;
    this.#stage = new Stage(`${resolve(options.runDir)}/stage`);
    this.#scratch = new ScratchDisks(options.runDir, this.#stage.scratchDir);
    this.#systemArgs = systemViewArgs(this.#stage.etcDir, options.network);
    this.#views = new ReadOnlyViews(`${options.runDir}/ro-views`, options.adoptableRoots ?? []);
    this.#hostPortsDir = `${options.runDir}/host-ports`;
    this.#packages = new PackagesViews(`${resolve(options.runDir)}/node-path-views`);
    this.supportsStemCells = (options.adoptableRoots ?? []).length > 0;
  }

  /** Sockets bound into sandboxes must sit on the stage: the worker creates them here. */
  get socketDir(): string {
    return this.#stage.socketDir;
  }

  /** The read-only system part of the root: the host's, or a runtime root filesystem's (through the stage). */
  #systemView(rootfs: string | undefined): Promise<string[]> {
    if (rootfs === undefined) return Promise.resolve(this.#systemArgs);
    let args = this.#rootfsArgs.get(rootfs);
    if (!args) {
      args = this.#stage
        .acquire(rootfs, true)
        .then((root) => systemViewArgs(this.#stage.etcDir, this.#options.network, root.path));
      this.#rootfsArgs.set(rootfs, args);
    }
    return args;
  }

  async init(): Promise<void> {
    const { instanceId } = this.#options;
    if (instanceId === undefined) return this.#init();
    // After a kill -9 and a quick restart, the old server's watchdog may still be sweeping.
    await Watchdog.waitForPrevious(instanceId);
    // Under the instance's lock, registered first thing: another server starting meanwhile neither
    // sweeps this instance (its entry names a live owner) nor overlaps a sweep of it.
    await withInstanceLock(instanceId, INSTANCE_LOCK_WAIT_MS, async () => {
      await registerInstance(instanceId, this.#options.runDir);
      await this.#init();
    });
    const { roots, freezerRoot } = this.#options.cgroups;
    this.#watchdog = await Watchdog.start({
      instanceId,
      runDir: resolve(this.#options.runDir),
      roots,
      ...(freezerRoot ? { freezerRoot } : {}),
    });
  }

  async #init(): Promise<void> {
    // The mount helper starts while the rest is prepared (sandboxes' mounts go through it).
    startMounter();
    await this.#options.cgroups.prepare();
    await this.#options.cgroups.sweep();
    await this.#sweepAbandoned();
    // A fresh stage: what a killed server left on it (stem cells' mounts, overlays, /tmp disks) is
    // unmounted first; then its /tmp images and loop devices go.
    await this.#stage.mount();
    this.#rootfsArgs.clear();
    await this.#scratch.init();
    if (this.#scratch.unavailable !== undefined) {
      console.warn(
        `lambent: loop devices unavailable (${this.#scratch.unavailable}): each sandbox's /tmp is a tmpfs, charged to the function's memory (a function filling /tmp is OOM-killed instead of getting ENOSPC)`,
      );
    }
    if (this.#options.network === "isolated") await this.#startNetnsPool();
    await writeSandboxEtc(
      this.#stage.etcDir,
      this.#options.network,
      this.#netns ? hostResolvers() : undefined,
    );
    if (this.supportsStemCells) await this.#views.mount();
    await this.#packages.reset();
    if (this.#options.network === "isolated") await this.#openHostPorts();
  }

  /** The namespace pool, or the reason it cannot be had (then every sandbox gets slirp4netns). */
  async #startNetnsPool(): Promise<void> {
    await this.#netns?.close();
    this.#netns = undefined;
    const { instanceId } = this.#options;
    if (this.#options.netnsPool === false || instanceId === undefined) return;
    if (hostResolvers().length === 0) {
      this.netnsPoolUnavailable = "the host's DNS resolvers are all on its loopback";
    } else {
      try {
        this.#netns = await NetnsPool.start(
          instanceId,
          parsePoolCidr(this.#options.poolCidr ?? DEFAULT_POOL_CIDR),
        );
        this.netnsPoolUnavailable = undefined;
        return;
      } catch (error) {
        this.netnsPoolUnavailable = (error as Error).message;
      }
    }
    console.warn(
      `lambent: sandbox network namespaces via slirp4netns (slower cold starts): ${this.netnsPoolUnavailable}`,
    );
  }

  /** One host-side relay per opened host port; the host's own addresses are read once, here. */
  async #openHostPorts(): Promise<void> {
    this.#blockedAddresses = hostAddresses();
    await rm(this.#hostPortsDir, { recursive: true, force: true });
    await mkdir(this.#hostPortsDir, { recursive: true, mode: 0o700 });
    for (const port of this.#options.allowHostPorts ?? []) {
      const socket = `${this.#hostPortsDir}/${port}.sock`;
      // Bound under a relative name (the relay runs in the host-ports directory): a sandbox's
      // connection belongs to its namespace, whose /proc/net/unix shows the name the listener bound.
      const relay = spawnHostPortRelay(port, socket);
      this.#hostPortRelays.push(relay);
      this.#hostPorts.push({ port, socket });
      await relayListening(relay);
    }
  }

  /** Sandboxes of servers that were killed and never started again: kill them, free their cgroups and mounts. */
  async #sweepAbandoned(): Promise<void> {
    for (const { instanceId, runDir } of await abandonedInstances()) {
      if (instanceId === this.#options.instanceId) continue;
      const sweep = async () => {
        // Its owner may have restarted while we waited for the lock: then it sweeps for itself.
        if (!(await isAbandoned(instanceId))) return;
        const found = await detectCgroups(instanceId);
        if (found.ok) {
          await found.hierarchy.sweep();
          await found.hierarchy.release();
        }
        // A failed namespace sweep (a fork refused under load) keeps the instance registered: the
        // next start sweeps it again, where unregistering it would leak its namespaces for good.
        const namespacesSwept = await sweepNamespaces(instanceId).then(
          () => true,
          () => false,
        );
        if (runDir) {
          // Its stage (stem cells' mounts, overlays, /tmp disks) and read-only views; then its /tmp
          // images and their loop devices.
          await removeMountPoints(runDir);
          await sweepScratch(`${runDir}/scratch`);
        }
        if (namespacesSwept) await unregisterInstance(instanceId);
      };
      // A server busy starting up holds its lock for a few seconds at most; if it takes longer,
      // it is alive and will sweep for itself.
      await withInstanceLock(instanceId, INSTANCE_LOCK_WAIT_MS, sweep).catch(() => undefined);
    }
  }

  runtimeApiEndpointKind(): "tcp" | "unix" {
    return this.#options.network === "isolated" ? "unix" : "tcp";
  }

  view(mounts: SandboxMounts, runtimeApi: RuntimeApiEndpoint): SandboxView {
    const { taskRoot, runtimeRoot, optRoot, runtimeApiSocket } = SANDBOX_PATHS;
    const runtime = {
      ownRoot: true,
      ...(mounts.langDir ? { langRoot: SANDBOX_PATHS.langRoot } : {}),
      ...(mounts.sdk ? { sdkRoot: mounts.sdk.at } : {}),
      ...(nodeMajor(mounts) !== undefined ? { nodePathView: true } : {}),
    };
    if (runtimeApi.kind === "unix") {
      const { platformApiSocket } = SANDBOX_PATHS;
      return {
        taskRoot,
        runtimeRoot,
        optRoot,
        runtimeApiAddress: `127.0.0.1:${RUNTIME_API_PORT}`,
        runtimeApiSocket,
        platformApiUrl: `http://127.0.0.1:${PLATFORM_API_PORT}`,
        // The Runtime API's and the platform API's sockets are inside (a runtime serving its relays
        // carries both); opened host ports keep their socat.
        relays: [
          { port: RUNTIME_API_PORT, socket: runtimeApiSocket },
          { port: PLATFORM_API_PORT, socket: platformApiSocket },
        ],
        ...runtime,
      };
    }
    if (this.#options.network === "isolated") {
      throw new SandboxError(
        "InvalidSandboxSpec",
        "an isolated network carries the Runtime API over a unix socket",
      );
    }
    return {
      taskRoot,
      runtimeRoot,
      optRoot,
      runtimeApiAddress: `${runtimeApi.host}:${runtimeApi.port}`,
      ...runtime,
    };
  }

  async spawn(spec: SandboxSpec): Promise<Sandbox> {
    if (!SAFE_ID.test(spec.id)) throw new SandboxError("InvalidSandboxSpec", `unsafe sandbox id ${spec.id}`);
    if (spec.argv.length === 0) throw new SandboxError("InvalidSandboxSpec", "empty argv");
    if (this.#closing) throw new SandboxError("SandboxStartFailure", "the sandbox driver is shutting down");
    const spawning = this.#spawn(spec);
    this.#starting.add(spawning);
    try {
      return await spawning;
    } finally {
      this.#starting.delete(spawning);
    }
  }

  async #spawn(spec: SandboxSpec): Promise<Sandbox> {
    const socket = spec.runtimeApi.kind === "unix" ? spec.runtimeApi.path : undefined;
    if (this.#options.network === "isolated" && socket === undefined) {
      throw new SandboxError(
        "InvalidSandboxSpec",
        "an isolated network carries the Runtime API over a unix socket",
      );
    }
    const stemDir = spec.stemCell ? `${this.#stage.stemsDir}/${spec.id}` : undefined;
    if (stemDir !== undefined && !this.supportsStemCells)
      throw new SandboxError("InvalidSandboxSpec", "stem cells need adoptableRoots");
    // Init runs with at least one vCPU; endInit() applies the function's share.
    const cgroup = await this.#options.cgroups.create(spec.id, {
      memoryBytes: spec.limits.memoryMb * 1024 * 1024,
      cpus: Math.max(1, spec.limits.memoryMb / MEMORY_MB_PER_VCPU),
      pids: spec.limits.pids,
      // A stem cell boots with the lowest CPU weight until adopted (see priority.ts).
      ...(spec.stemCell ? { background: true } : {}),
    });
    const resources = new EnvironmentResources(spec.id, this.#stage, this.#scratch, stemDir);
    try {
      // The sandbox user must be able to connect(); the worker listens on it before spawning.
      if (socket !== undefined) await chmod(socket, 0o666);
      // The runtime serves 127.0.0.1:9000 itself: the platform API's socket is bound in, under a
      // second name (a hard link on the stage) that says nothing of the server's own socket names.
      const platformApi =
        spec.runtimeServesRelays && spec.platformApiSocket !== undefined
          ? await resources.link(spec.platformApiSocket, `${this.#stage.socketDir}/${spec.id}.9000`)
          : undefined;
      if (platformApi !== undefined) await chmod(platformApi, 0o666);
      const sources = await this.#sources(spec, resources);
      const args = this.#args(
        spec,
        socket,
        platformApi === undefined ? sources : { ...sources, platformApi },
      );
      // A start can fail transiently (the blocked child vanishing before it joins its cgroups was seen
      // under heavy load); one more try before the invoke has to report it.
      const sandbox = await this.#start(spec, cgroup, socket, args, resources).catch(() =>
        this.#start(spec, cgroup, socket, args, resources),
      );
      // A shutdown began meanwhile: close() no longer sees new sandboxes, so this one goes now.
      if (this.#closing) {
        await sandbox.destroy();
        throw new SandboxError("SandboxStartFailure", "the sandbox driver is shutting down");
      }
      this.#live.add(sandbox);
      void sandbox.exited.then(() => this.#live.delete(sandbox));
      return sandbox;
    } catch (error) {
      await cgroup.destroy();
      await resources.release();
      throw error;
    }
  }

  /** The host folder of the NODE_PATH packages view for these mounts (a Node.js runtime's), made once. */
  #packagesView(mounts: SandboxMounts): Promise<string> | undefined {
    const major = nodeMajor(mounts);
    if (major === undefined) return undefined;
    const { optRoot, runtimeRoot } = SANDBOX_PATHS;
    return this.#packages.view(
      nodePathFolders(major, mounts.optDir, optRoot, mounts.sdk, mounts.runtimeDir, runtimeRoot),
    );
  }

  /**
   * Where each mount of the sandbox comes from, through the stage: code and layers (overlays held
   * while the environment lives), runtime files and language builds (pinned overlays), /tmp (its own
   * disk, or a tmpfs when loop devices are unavailable), stem cells' shared mount points.
   */
  async #sources(spec: SandboxSpec, resources: EnvironmentResources): Promise<MountSources> {
    const { mounts, limits } = spec;
    const pinned = (dir: string | undefined) =>
      dir === undefined ? undefined : this.#stage.acquire(dir, true).then((staged) => staged.path);
    const disk = this.#scratch.unavailable === undefined;
    const stemDir = resources.stemDir;
    const packages = this.#packagesView(mounts);
    const [system, runtimeDir, langDir, sdkDir, task, opt, tmp, nodeModules] = await Promise.all([
      this.#systemView(mounts.rootfs),
      pinned(mounts.runtimeDir),
      pinned(mounts.langDir),
      pinned(mounts.sdk?.dir),
      stemDir !== undefined
        ? sharedMountPoint(`${stemDir}/task`)
        : mounts.codeLive
          ? mounts.codeDir
          : resources.overlay(mounts.codeDir),
      stemDir === undefined
        ? mounts.optDir === undefined
          ? undefined
          : resources.overlay(mounts.optDir)
        : sharedMountPoint(`${stemDir}/opt`),
      !disk
        ? undefined
        : stemDir === undefined
          ? resources.disk(limits.ephemeralStorageMb)
          : // A stem cell gets a disk of its start size now: a function asking for that size (most
            // keep the default) adopts it as it is, with no mount on the adoption's path.
            sharedMountPoint(`${stemDir}/tmp`).then(() =>
              resources.disk(limits.ephemeralStorageMb, `${stemDir}/tmp`).then((path) => {
                resources.stemDiskMb = limits.ephemeralStorageMb;
                return path;
              }),
            ),
      // A stem cell's shows the SDK's packages from the start (a function without layers needs no
      // mount at adoption); a function's layers are bound over them when it is adopted.
      packages === undefined
        ? undefined
        : stemDir !== undefined
          ? sharedMountPoint(`${stemDir}/nm`).then(async () => {
              await bindMount(await resources.overlay(await packages), `${stemDir}/nm`);
              return `${stemDir}/nm`;
            })
          : packages.then((dir) => resources.overlay(dir)),
    ]);
    return {
      system,
      runtimeDir: runtimeDir as string,
      ...(langDir !== undefined ? { langDir } : {}),
      ...(sdkDir !== undefined ? { sdkDir } : {}),
      task: stemDir === undefined ? (task as string) : `${stemDir}/task`,
      ...(stemDir !== undefined
        ? { opt: `${stemDir}/opt` }
        : opt !== undefined
          ? { opt: opt as string }
          : {}),
      ...(stemDir !== undefined && disk
        ? { tmp: `${stemDir}/tmp` }
        : tmp !== undefined
          ? { tmp: tmp as string }
          : {}),
      ...(nodeModules !== undefined ? { nodeModules } : {}),
    };
  }

  /** Every step runs even when an earlier one failed (a failure is reported); the watchdog sweeps last. */
  async close(): Promise<void> {
    const report = (error: unknown) => console.error(`lambent: sandbox cleanup: ${(error as Error).message}`);
    // No spawn starts from here on; those under way finish, see the flag and destroy what they made.
    this.#closing = true;
    await Promise.allSettled([...this.#starting]);
    await Promise.all([...this.#live].map((sandbox) => sandbox.destroy().catch(report)));
    await this.#options.cgroups.sweep().catch(report);
    await this.#options.cgroups.release().catch(report);
    await this.#scratch.close().catch(report);
    await this.#stage.unmount().catch(report);
    await sweepScratch(this.#scratch.imagesDir).catch(report);
    await this.#views.unmountAll().catch(report);
    await this.#netns?.close().catch(report);
    this.#netns = undefined;
    for (const relay of this.#hostPortRelays) if (relay.exitCode === null) relay.kill("SIGKILL");
    this.#hostPortRelays = [];
    if (this.#options.instanceId) await unregisterInstance(this.#options.instanceId).catch(report);
    this.#watchdog?.close();
    this.#watchdog = undefined;
  }

  /**
   * bwrap blocks its child before exec; meanwhile it gets its network. bwrap is started by a shell
   * that first joins the environment's cgroups, so the sandbox's cgroup namespace is rooted at its
   * own cgroup (/proc/self/cgroup shows `/`); its options come through fd 6 (`--args`), so the
   * sandbox's pid 1 (bwrap) shows `bwrap --args 6 -- <command>` as its command line, not host paths.
   */
  async #start(
    spec: SandboxSpec,
    cgroup: SandboxCgroup,
    socket: string | undefined,
    args: string[],
    resources: EnvironmentResources,
  ): Promise<BwrapSandbox> {
    const pooled = socket !== undefined ? await this.#netns?.take() : undefined;
    const child = spawn(
      "/bin/sh",
      [
        "-c",
        JOIN_CGROUPS_AND_EXEC,
        "lambent-sandbox",
        this.#options.bwrap ?? "bwrap",
        pooled?.path ?? "-",
        ...cgroup.procsFiles(),
        "--",
        ...dropToSandboxUser(),
        ...spec.argv,
      ],
      {
        env: HELPER_ENV,
        // 3: --info-fd (child pid), 4: --block-fd (released once the network is ready),
        // 5: --seccomp (the filter's bytes), 6: --args (NUL-separated).
        stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", this.seccomp ? "pipe" : "ignore", "pipe"],
      },
    );
    const pipes = child.stdio as unknown as Array<Writable | null>;
    if (this.seccomp) {
      const filter = pipes[5] as Writable;
      filter.on("error", () => {});
      filter.end(this.seccomp);
    }
    const argsPipe = pipes[6] as Writable;
    argsPipe.on("error", () => {});
    argsPipe.end(args.map((arg) => `${arg}\0`).join(""));
    readOutput(child.stdout, spec.onOutput);
    readOutput(child.stderr, spec.onOutput);
    try {
      await childSpawned(child);
    } catch (cause) {
      await pooled?.release();
      throw new SandboxError("SandboxStartFailure", "cannot start bwrap", { cause });
    }
    const closed = childExit(child);
    let network: SandboxNetwork | undefined;
    try {
      const pid = await readChildPid(child.stdio[3] as Readable);
      if (socket !== undefined) {
        network = await attachNetwork(pid, {
          // The runtime may serve 127.0.0.1:9001 itself (see SandboxView.relays).
          ...(spec.runtimeServesRelays ? {} : { runtimeApiSocket: socket }),
          ...(spec.platformApiSocket !== undefined ? { platformApiSocket: spec.platformApiSocket } : {}),
          ...(spec.runtimeServesRelays ? { platformApiServed: true } : {}),
          ...(pooled !== undefined ? { pooled } : {}),
          hostPorts: this.#hostPorts,
          blockedAddresses: this.#blockedAddresses,
        });
      }
      // bwrap's own setup can fail early (seen under load: "loopback: Failed RTM_NEWADDR"); its
      // sandbox process is then gone before it is released: fail this try (spawn makes another).
      if (!running(pid)) throw new SandboxError("SandboxStartFailure", "bwrap's setup of the sandbox failed");
      // bwrap may have died meanwhile (its own setup failed): the write then fails with EPIPE, which
      // must not become an unhandled error; the sandbox's exit reports the failure.
      const block = child.stdio[4] as Writable;
      block.on("error", () => {});
      block.end("1");
    } catch (error) {
      child.kill("SIGKILL");
      await closed;
      await network?.close();
      await pooled?.release();
      throw error;
    }
    const adopt =
      resources.stemDir === undefined
        ? undefined
        : (mounts: SandboxMounts, limits: SandboxLimits) =>
            // The runtime's parts (SDK, Node.js version) are the cell's own; the layers the function's.
            resources.adopt(
              this.#views,
              mounts,
              limits,
              mounts.optDir === undefined
                ? undefined
                : this.#packagesView({ ...spec.mounts, optDir: mounts.optDir }),
            );
    return new BwrapSandbox(
      spec.id,
      child,
      closed,
      cgroup,
      network,
      adopt,
      resources,
      spec.limits.memoryMb / MEMORY_MB_PER_VCPU,
    );
  }

  #args(spec: SandboxSpec, socket: string | undefined, sources: MountSources): string[] {
    const { mounts, limits, env } = spec;
    const args = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"];
    // A pooled namespace is joined before bwrap starts (see JOIN_CGROUPS_AND_EXEC).
    if (this.#options.network === "isolated" && this.#netns === undefined) args.push("--unshare-net");
    args.push("--die-with-parent", "--new-session", "--hostname", "localhost", "--clearenv");
    for (const [name, value] of Object.entries(env)) args.push("--setenv", name, value);
    args.push(...sources.system, "--proc", "/proc", "--dev", "/dev");
    if (sources.tmp !== undefined) {
      // Its own disk (or, for a stem cell, the shared mount point its disk is mounted on at adoption).
      args.push("--bind", sources.tmp, "/tmp");
    } else {
      args.push(
        "--perms",
        "1777",
        "--size",
        String(limits.ephemeralStorageMb * 1024 * 1024),
        "--tmpfs",
        "/tmp",
      );
    }
    // A stem cell's are empty until it is adopted; a mount on the host side then shows up here.
    args.push("--ro-bind", sources.task, SANDBOX_PATHS.taskRoot);
    if (sources.opt !== undefined) args.push("--ro-bind", sources.opt, SANDBOX_PATHS.optRoot);
    if (sources.nodeModules !== undefined)
      args.push("--ro-bind", sources.nodeModules, SANDBOX_PATHS.nodeModules);
    args.push(...runtimeMountArgs(mounts, sources));
    if (socket !== undefined) args.push("--ro-bind", socket, SANDBOX_PATHS.runtimeApiSocket);
    // The runtime serves 127.0.0.1:9000 from it (else a socat in the namespace does).
    if (sources.platformApi !== undefined)
      args.push("--ro-bind", sources.platformApi, SANDBOX_PATHS.platformApiSocket);
    if (this.seccomp) args.push("--seccomp", "5");
    args.push("--chdir", SANDBOX_PATHS.taskRoot, "--info-fd", "3", "--block-fd", "4");
    return args;
  }
}

/**
 * Joins the cgroups named as arguments (up to `--`), then becomes bwrap reading its options from fd 6
 * — inside the pooled network namespace named by its second argument (`-`: none, bwrap makes one);
 * the command (in-sandbox paths only) follows `--` on the command line, where bwrap wants it.
 */
const JOIN_CGROUPS_AND_EXEC =
  'bwrap=$1 net=$2; shift 2; while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; ' +
  '[ "$net" = - ] && exec "$bwrap" --args 6 "$@"; exec nsenter --net="$net" -- "$bwrap" --args 6 "$@"';

/** Host paths of a sandbox's mounts, every one on the stage (see stage.ts). */
interface MountSources {
  system: string[];
  runtimeDir: string;
  langDir?: string;
  sdkDir?: string;
  task: string;
  opt?: string;
  /** Undefined: /tmp is a tmpfs (no loop devices). */
  tmp?: string;
  /** The platform API's socket, bound in when the runtime serves 9000 (a link to it on the stage). */
  platformApi?: string;
  /** NODE_PATH's packages view (a stem cell's shared mount point for it), seen as /node_modules. */
  nodeModules?: string;
}

/**
 * What one environment holds on the stage (code and layer overlays, its /tmp disk, a stem cell's
 * mount points), released together when it ends (or when its start fails).
 */
class EnvironmentResources {
  readonly #releases: Array<() => Promise<void>> = [];
  #released: Promise<void> | undefined;
  /** The size of the /tmp disk a stem cell started with (bound on its mount point), if it has one. */
  stemDiskMb: number | undefined;

  constructor(
    readonly id: string,
    private readonly stage: Stage,
    private readonly scratch: ScratchDisks,
    readonly stemDir: string | undefined,
  ) {
    if (stemDir !== undefined) this.#releases.push(() => removeMountPoints(stemDir));
  }

  /** A second name for `target` (a Unix socket on the stage), removed when the environment ends. */
  async link(target: string, name: string): Promise<string> {
    await rm(name, { force: true });
    await link(target, name);
    this.#releases.push(() => rm(name, { force: true }));
    return name;
  }

  async overlay(hostDir: string): Promise<string> {
    const acquiring = this.stage.acquire(hostDir);
    this.#releases.push(() =>
      acquiring.then(
        (staged) => staged.release(),
        () => undefined,
      ),
    );
    return (await acquiring).path;
  }

  /** A /tmp disk of its own (a ready spare when there is one), also bound on `at` if given (a stem cell's /tmp). */
  async disk(sizeMb: number, at?: string): Promise<string> {
    const taking = this.scratch.take(sizeMb);
    this.#releases.push(() =>
      taking.then(
        (disk) => this.scratch.remove(disk),
        () => undefined,
      ),
    );
    const disk = await taking;
    if (at !== undefined) await bindMount(disk.path, at);
    return disk.path;
  }

  /**
   * A stem cell gets its function: code and layers on its shared mount points, its /tmp disk. Live
   * code (a dev mount) is bound as it is, read-only, so edits show; packages go through an overlay.
   */
  async adopt(
    views: ReadOnlyViews,
    mounts: SandboxMounts,
    limits: SandboxLimits,
    packages: Promise<string> | undefined,
  ): Promise<void> {
    const stemDir = this.stemDir as string;
    // One mount each: the overlay goes right on the cell's mount point (unmounted with it).
    await Promise.all([
      mounts.codeLive
        ? bindMount(views.readOnly(mounts.codeDir), `${stemDir}/task`)
        : this.stage.mountAt(views.readOnly(mounts.codeDir), `${stemDir}/task`),
      mounts.optDir !== undefined
        ? this.stage.mountAt(views.readOnly(mounts.optDir), `${stemDir}/opt`)
        : undefined,
      // The disk the cell started with fits unless the function asks for another size: then its
      // own goes over it.
      this.scratch.unavailable === undefined && this.stemDiskMb !== limits.ephemeralStorageMb
        ? this.disk(limits.ephemeralStorageMb, `${stemDir}/tmp`)
        : undefined,
      packages?.then((dir) => this.stage.mountAt(dir, `${stemDir}/nm`)),
    ]);
  }

  /** Idempotent; the stem cell's mount points go first (they hold binds of the overlays). */
  release(): Promise<void> {
    this.#released ??= (async () => {
      const [first, ...rest] = this.#releases;
      if (this.stemDir !== undefined && first) await first();
      await Promise.all((this.stemDir !== undefined ? rest : this.#releases).map((release) => release()));
    })();
    return this.#released;
  }
}

/**
 * /var/runtime (Lambent's runtime scripts, each entry bound on its own so the SDK can sit beside them
 * as /var/runtime/node_modules) and /var/lang (the language build).
 */
function runtimeMountArgs(mounts: SandboxMounts, sources: MountSources): string[] {
  const args: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(sources.runtimeDir);
  } catch {
    entries = [];
  }
  // An SDK inside a runtime root filesystem (/usr/lib/python3/dist-packages) comes with it.
  if (mounts.sdk === undefined || !mounts.sdk.at.startsWith(`${SANDBOX_PATHS.runtimeRoot}/`)) {
    args.push("--ro-bind", sources.runtimeDir, SANDBOX_PATHS.runtimeRoot);
  } else {
    // Privileged bwrap would create the parent as 0700.
    args.push("--perms", "0755", "--dir", SANDBOX_PATHS.runtimeRoot);
    for (const entry of entries) {
      if (entry === "node_modules" || `${SANDBOX_PATHS.runtimeRoot}/${entry}` === mounts.sdk.at) continue;
      args.push("--ro-bind", `${sources.runtimeDir}/${entry}`, `${SANDBOX_PATHS.runtimeRoot}/${entry}`);
    }
    args.push("--ro-bind", sources.sdkDir ?? mounts.sdk.dir, mounts.sdk.at);
  }
  if (sources.langDir !== undefined) args.push("--ro-bind", sources.langDir, SANDBOX_PATHS.langRoot);
  return args;
}

/** A Node.js runtime's major version, if it is one (a version the driver can name a folder after). */
function nodeMajor(mounts: SandboxMounts): string | undefined {
  return mounts.nodeMajor !== undefined && /^[0-9]{1,3}$/.test(mounts.nodeMajor)
    ? mounts.nodeMajor
    : undefined;
}

/** setpriv inside the sandbox: become the sandbox user with no capabilities left to regain. */
function dropToSandboxUser(): string[] {
  const { uid, gid } = SANDBOX_USER;
  return [
    "/usr/bin/setpriv",
    `--reuid=${uid}`,
    `--regid=${gid}`,
    "--clear-groups",
    "--bounding-set=-all",
    "--inh-caps=-all",
    "--",
  ];
}

/** Whether process `pid` exists and is not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** bwrap writes `{"child-pid": N, …}` to --info-fd once the namespaces exist, then closes it. */
function readChildPid(info: Readable): Promise<number> {
  return new Promise((resolve, reject) => {
    let text = "";
    info.on("data", (chunk: Buffer) => {
      text += chunk.toString();
    });
    info.once("end", () => {
      const match = /"child-pid":\s*(\d+)/.exec(text);
      if (match?.[1] === undefined) reject(new SandboxError("SandboxStartFailure", "bwrap failed to start"));
      else resolve(Number(match[1]));
    });
  });
}

/** bwrap reports a runtime killed by signal N as exit code 128+N: give the signal back its name. */
function runtimeExit(exit: ChildExit): ChildExit {
  const signal = exit.code !== null && exit.code > 128 ? signalName(exit.code - 128) : undefined;
  return signal === undefined ? exit : { code: null, signal };
}

function signalName(number: number): NodeJS.Signals | undefined {
  return (Object.keys(constants.signals) as NodeJS.Signals[]).find(
    (name) => constants.signals[name] === number,
  );
}

class BwrapSandbox implements Sandbox {
  readonly exited: Promise<SandboxExit>;
  readonly pid: number;

  constructor(
    readonly id: string,
    child: ChildProcess,
    closed: Promise<ChildExit>,
    private readonly cgroup: SandboxCgroup,
    network: SandboxNetwork | undefined,
    private readonly mountCode: ((mounts: SandboxMounts, limits: SandboxLimits) => Promise<void>) | undefined,
    resources: EnvironmentResources,
    /** The function's CPU share, applied when Init ends. */
    private cpus: number,
  ) {
    this.pid = child.pid as number;
    // A dead environment releases everything at once: its OOM verdict and its peak memory are read
    // before the cgroup goes.
    this.exited = closed.then(async (exit) => {
      const oomKilled = cgroup.oomKilled();
      this.#finalPeak = this.#measurePeak();
      this.#rss.close();
      // Cleanup problems are reported, never turned into a failed exit (nobody could handle it).
      await Promise.all([cgroup.destroy(), network?.close(), resources.release()]).catch((error: unknown) =>
        console.error(`lambent: sandbox ${id} cleanup: ${(error as Error).message}`),
      );
      return { ...runtimeExit(exit), oomKilled };
    });
  }

  /** A stem cell gets its function: code (and layers) bound into place, the function's limits applied. */
  async adopt(mounts: SandboxMounts, limits: SandboxLimits): Promise<void> {
    if (!this.mountCode)
      throw new SandboxError("InvalidSandboxSpec", "only a stem cell can adopt a function");
    this.cpus = limits.memoryMb / MEMORY_MB_PER_VCPU;
    await Promise.all([
      this.mountCode(mounts, limits),
      this.cgroup.setLimits({ memoryBytes: limits.memoryMb * 1024 * 1024, background: false }),
    ]);
  }

  endInit(): Promise<void> {
    return this.cgroup.setLimits({ cpus: this.cpus });
  }

  /** Between invokes: ask the kernel to freeze, without waiting (a thaw cancels it). */
  freeze(): Promise<void> {
    return this.cgroup.freeze(false);
  }

  thaw(): Promise<void> {
    return this.cgroup.thaw();
  }

  /** Resets the cgroup's counter (the processes' own VmHWM marks stay). */
  resetPeakMemory(): void {
    this.cgroup.resetPeakMemory();
  }

  /** The environment's peak memory; once it is gone, the last peak it had (an OOM kill: about its limit). */
  peakMemoryBytes(): number | undefined {
    return this.#finalPeak ?? this.#measurePeak();
  }

  #finalPeak: number | undefined;
  readonly #rss = new PeakRss();

  /**
   * The larger of the tree's peak RSS (each process's VmHWM: file pages a process maps count even
   * when another cgroup touched them first and is charged for them) and the cgroup's peak without
   * its page cache (covers processes that already exited, and the tree at an OOM kill).
   */
  #measurePeak(): number | undefined {
    const charged = this.cgroup.peakMemoryBytes();
    const rss = this.#rss.bytes(this.cgroup.processIds());
    if (charged === undefined) return rss > 0 ? rss : undefined;
    // The page cache only lowers the charged peak: not worth reading when the RSS is higher anyway.
    if (charged <= rss) return rss;
    return Math.max(rss, charged - (this.cgroup.cacheBytes() ?? 0));
  }

  oomKilled(): boolean {
    return this.cgroup.oomKilled();
  }

  async processIds(): Promise<number[]> {
    return this.cgroup.processIds();
  }

  async destroy(): Promise<void> {
    await this.cgroup.destroy();
    await this.exited;
  }
}

/** The host's nameservers a sandbox can use through the NAT (not its loopback ones). */
function hostResolvers(): string[] {
  let text = "";
  try {
    text = readFileSync("/etc/resolv.conf", "utf8");
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)]
    .map((m) => m[1] as string)
    .filter((address) => /^\d+\.\d+\.\d+\.\d+$/.test(address) && !address.startsWith("127."));
}
