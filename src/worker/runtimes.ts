/**
 * How each runtime is started and the environment Lambda gives it. Every
 * runtime speaks only the Runtime API; ours live in `runtimes/` and are
 * mounted read-only as the runtime dir.
 */
import { closeSync, openSync, readSync, type Stats, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Assignment } from "../protocol/assignment.js";
import { type Runtime, runtimeFamily } from "../runtimes/catalog.js";
import type { InstalledRuntime } from "../runtimes/store.js";
import type { SandboxMounts, SandboxView } from "../sandbox/driver.js";

/** Host path of the built-in runtimes (`runtimes/` at the package root). */
export const RUNTIMES_DIR = fileURLToPath(new URL("../../runtimes", import.meta.url));

/** What an environment of this runtime mounts: its language build, root filesystem and SDK. */
export function runtimeMounts(rt: InstalledRuntime | undefined): Partial<SandboxMounts> {
  const out: Partial<SandboxMounts> = {};
  if (rt?.langDir) out.langDir = rt.langDir;
  if (rt?.rootfs) out.rootfs = rt.rootfs;
  if (rt?.sdkDir && rt.sandboxSdkDir) out.sdk = { dir: rt.sdkDir, at: rt.sandboxSdkDir };
  if (rt?.family === "nodejs") out.nodeMajor = rt.id.slice(6, 8);
  return out;
}

/** The interpreter as this sandbox sees it. */
export function interpreter(rt: InstalledRuntime, view: SandboxView): string[] {
  return view.ownRoot ? [rt.sandboxInterpreter] : rt.hostInterpreter;
}

/** Arguments every Python runtime script gets: where layers and the SDK are. */
export function pythonRuntimeArgs(view: SandboxView): string[] {
  return [`--opt-root=${view.optRoot}`, ...(view.sdkRoot ? [`--sdk-root=${view.sdkRoot}`] : [])];
}

/** Why a custom runtime cannot start: Lambda's `Runtime.InvalidEntrypoint`. */
export class InvalidEntrypoint extends Error {}

/**
 * A custom runtime's executable, as Lambda picks it: the package's `bootstrap`, else a layer's
 * `/opt/bootstrap`. Checked on the host (the driver maps the folders), with Lambda's messages for
 * none, a non-executable one and one the kernel cannot execute.
 */
export function customBootstrap(mounts: SandboxMounts, view: SandboxView): string {
  const candidates: Array<[string, string]> = [[`${mounts.codeDir}/bootstrap`, `${view.taskRoot}/bootstrap`]];
  if (mounts.optDir !== undefined)
    candidates.push([`${mounts.optDir}/bootstrap`, `${view.optRoot}/bootstrap`]);
  for (const [host, seen] of candidates) {
    let stat: Stats;
    try {
      stat = statSync(host);
    } catch {
      continue;
    }
    if (!stat.isFile()) continue;
    if ((stat.mode & 0o111) === 0) throw new InvalidEntrypoint(`Error: fork/exec ${seen}: permission denied`);
    const head = Buffer.alloc(4);
    const fd = openSync(host, "r");
    try {
      readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
    if (head.subarray(0, 2).toString() !== "#!" && !head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) {
      throw new InvalidEntrypoint(`Error: fork/exec ${seen}: exec format error`);
    }
    return seen;
  }
  throw new InvalidEntrypoint(
    "Error: Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]",
  );
}

/**
 * Whether the runtime serves the sandbox's TCP relays itself (`SandboxSpec.runtimeServesRelays`):
 * Lambent's Node.js and Python runtimes do, when they are the sandbox's first program (no launcher
 * before them). Custom runtimes (`provided`) do not.
 */
export function runtimeServesRelays(runtime: Runtime, view: SandboxView, launcher: boolean): boolean {
  return runtimeFamily(runtime) !== "provided" && !launcher && (view.relays?.length ?? 0) > 0;
}

/** A built-in runtime's transport arguments: its Runtime API socket, and the relays it serves. */
export function transportArgs(view: SandboxView, relays: boolean): string[] {
  const args = view.runtimeApiSocket ? [`--runtime-api-socket=${view.runtimeApiSocket}`] : [];
  if (relays) for (const { port, socket } of view.relays ?? []) args.push(`--tcp-relay=${port}:${socket}`);
  return args;
}

/** The Node.js runtime's own arguments: `--node-path-view` when ES modules find NODE_PATH's packages without its hook. */
export function nodeRuntimeArgs(view: SandboxView): string[] {
  return view.nodePathView ? ["--node-path-view"] : [];
}

/**
 * The flags Lambda's Node.js runtimes start `node` with, memory aside: its base images'
 * `/var/runtime/bootstrap` runs `node --expose-gc --max-http-header-size 81920 ${MEMORY_ARGS[@]}
 * /var/runtime/index.mjs` (the nodejs18.x+ image's script, as reproduced in public write-ups and in the
 * AWS Toolkit's debug configurations; a 128 MB function's `process.execArgv` on Lambda is `--expose-gc
 * --max-http-header-size 81920 --max-semi-space-size=6 --max-old-space-size=116`). So `global.gc` exists.
 * Stem cells start with these too (they do not depend on the function).
 */
export const NODE_FLAGS: readonly string[] = ["--expose-gc", "--max-http-header-size", "81920"];

/**
 * V8's heap limits for a function of `memoryMb`, as that bootstrap computes them (shell `expr`, integer
 * division): `new_space = mem / 10`, `--max-semi-space-size=new_space / 2`,
 * `--max-old-space-size=mem - new_space`. A stem cell is started before its function's memory is
 * known and keeps V8's default limits after adoption (README, "Cold starts and stem cells").
 */
export function nodeHeapFlags(memoryMb: number): string[] {
  // MemorySize is validated (128-10240); anything else falls back to Lambda's default, 128.
  const mb = Number.isFinite(memoryMb) && memoryMb >= 1 ? Math.floor(memoryMb) : 128;
  const newSpace = Math.floor(mb / 10);
  return [
    `--max-semi-space-size=${Math.max(1, Math.floor(newSpace / 2))}`,
    `--max-old-space-size=${mb - newSpace}`,
  ];
}

export function runtimeArgv(
  fn: Assignment,
  view: SandboxView,
  rt: InstalledRuntime | undefined,
  mounts?: SandboxMounts,
  relays = false,
): string[] {
  const family = runtimeFamily(fn.config.Runtime);
  if (family === "provided") return [mounts ? customBootstrap(mounts, view) : `${view.taskRoot}/bootstrap`];
  if (!rt) throw new RuntimeNotInstalled(fn.config.Runtime);
  if (family === "nodejs")
    return [
      ...interpreter(rt, view),
      ...NODE_FLAGS,
      ...nodeHeapFlags(fn.config.MemorySize),
      `${view.runtimeRoot}/nodejs/bootstrap.cjs`,
      ...transportArgs(view, relays),
      ...nodeRuntimeArgs(view),
    ];
  // -s: no user site-packages; the runtime itself keeps host packages off sys.path.
  return [
    ...interpreter(rt, view),
    "-s",
    `${view.runtimeRoot}/python/bootstrap.py`,
    ...transportArgs(view, relays),
    ...pythonRuntimeArgs(view),
  ];
}

/** Lambda's `Runtime Version` label (`nodejs:22.v45`) with the real version: `nodejs:22.23.5`, `python:3.13.5`. */
export function runtimeVersionLabel(runtime: Runtime, rt: InstalledRuntime | undefined): string {
  if (!rt) return runtime.replace(/^(nodejs|python|provided)\.?/, "$1:");
  return `${rt.family}:${rt.version}`;
}

export class RuntimeNotInstalled extends Error {
  constructor(readonly runtime: string) {
    super(`the ${runtime} runtime is not installed on this server (lambent runtimes install ${runtime})`);
  }
}

export interface EnvironmentIdentity {
  region: string;
  logGroup: string;
  logStream: string;
  initializationType: "on-demand" | "provisioned-concurrency";
  /** The execution role's temporary credentials (AWS_ACCESS_KEY_ID, …), fresh at every Init. */
  credentials?: Record<string, string>;
}

/** Exactly Lambda's environment: the reserved variables, then the function's own. */
export function runtimeEnvironment(
  fn: Assignment,
  view: SandboxView,
  id: EnvironmentIdentity,
): Record<string, string> {
  const c = fn.config;
  const family = runtimeFamily(c.Runtime);
  const nodeMajor = c.Runtime.startsWith("nodejs") ? c.Runtime.slice(6, 8) : "";
  const env: Record<string, string> = {
    PATH: `${view.langRoot ? `${view.langRoot}/bin:` : ""}/usr/local/bin:/usr/bin:/bin:${view.optRoot}/bin`,
    LD_LIBRARY_PATH: `/lib64:/usr/lib64:${view.runtimeRoot}:${view.runtimeRoot}/lib:${view.taskRoot}:${view.taskRoot}/lib:${view.optRoot}/lib`,
    LANG: "en_US.UTF-8",
    TZ: ":UTC",
    LAMBDA_TASK_ROOT: view.taskRoot,
    LAMBDA_RUNTIME_DIR: view.runtimeRoot,
  };
  if (family === "nodejs") {
    env.NODE_PATH = `${view.optRoot}/nodejs/node${nodeMajor}/node_modules:${view.optRoot}/nodejs/node_modules:${view.sdkRoot ?? `${view.runtimeRoot}/node_modules`}:${view.runtimeRoot}:${view.taskRoot}`;
  }
  if (family === "python") env.PYTHONPATH = `${view.runtimeRoot}`;
  for (const [k, v] of Object.entries(c.Environment)) env[k] = v;
  // LoggingConfig as Lambda hands it to its runtimes: they format and filter their own records.
  if (c.LogFormat === "JSON") {
    env.AWS_LAMBDA_LOG_FORMAT = "JSON";
    if (c.ApplicationLogLevel) env.AWS_LAMBDA_LOG_LEVEL = c.ApplicationLogLevel;
  }
  Object.assign(env, {
    _HANDLER: c.Handler,
    AWS_REGION: id.region,
    AWS_DEFAULT_REGION: id.region,
    AWS_EXECUTION_ENV: `AWS_Lambda_${c.Runtime}`,
    AWS_LAMBDA_FUNCTION_NAME: fn.name,
    AWS_LAMBDA_FUNCTION_VERSION: fn.version,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(c.MemorySize),
    AWS_LAMBDA_LOG_GROUP_NAME: id.logGroup,
    AWS_LAMBDA_LOG_STREAM_NAME: id.logStream,
    AWS_LAMBDA_INITIALIZATION_TYPE: id.initializationType,
    AWS_LAMBDA_RUNTIME_API: view.runtimeApiAddress,
  });
  if (family === "provided") delete env.AWS_EXECUTION_ENV;
  // How many events the runtime runs at once: the platform's value (only multi-concurrency
  // functions have one; a function's own variable of that name does not change how it is served).
  if (c.MaxConcurrency !== undefined) env.AWS_LAMBDA_MAX_CONCURRENCY = String(c.MaxConcurrency);
  else delete env.AWS_LAMBDA_MAX_CONCURRENCY;
  // The execution role's credentials and the way back to this platform's Lambda API, so that
  // `new LambdaClient({})` / boto3 inside the function calls this platform with no code change.
  // AWS_ENDPOINT_URL too, unless the function names endpoints of its own.
  if (id.credentials) Object.assign(env, id.credentials);
  if (view.platformApiUrl) {
    env.AWS_ENDPOINT_URL_LAMBDA = view.platformApiUrl;
    if (!Object.keys(c.Environment).some((k) => k.startsWith("AWS_ENDPOINT_URL"))) {
      env.AWS_ENDPOINT_URL = view.platformApiUrl;
    }
  }
  return env;
}
