/**
 * How each runtime is started and the environment Lambda gives it. Every
 * runtime speaks only the Runtime API; ours live in `runtimes/` and are
 * mounted read-only as the runtime dir.
 */
import { fileURLToPath } from "node:url";
import { runtimeFamily } from "../control/function-config.js";
import type { FunctionVersion } from "../control/functions.js";
import type { SandboxView } from "../sandbox/driver.js";

/** Host path of the built-in runtimes (`runtimes/` at the package root). */
export const RUNTIMES_DIR = fileURLToPath(new URL("../../runtimes", import.meta.url));

/** The system interpreters (never a user's shim, e.g. pyenv under /root). */
export const NODE = process.execPath;
export const PYTHON = "/usr/bin/python3";

export function runtimeArgv(fn: FunctionVersion, view: SandboxView): string[] {
  const socket = view.runtimeApiSocket ? [`--runtime-api-socket=${view.runtimeApiSocket}`] : [];
  switch (runtimeFamily(fn.config.Runtime)) {
    case "nodejs":
      return [NODE, `${view.runtimeRoot}/nodejs/bootstrap.mjs`, ...socket];
    case "python":
      return [PYTHON, `${view.runtimeRoot}/python/bootstrap.py`, ...socket, `--opt-root=${view.optRoot}`];
    case "provided":
      return [`${view.taskRoot}/bootstrap`];
  }
}

export interface EnvironmentIdentity {
  region: string;
  logGroup: string;
  logStream: string;
  initializationType: "on-demand" | "provisioned-concurrency";
}

/** Exactly Lambda's environment: the reserved variables, then the function's own. */
export function runtimeEnvironment(
  fn: FunctionVersion,
  view: SandboxView,
  id: EnvironmentIdentity,
): Record<string, string> {
  const c = fn.config;
  const family = runtimeFamily(c.Runtime);
  const nodeMajor = c.Runtime.startsWith("nodejs") ? c.Runtime.slice(6, 8) : "";
  const env: Record<string, string> = {
    PATH: `/usr/local/bin:/usr/bin:/bin:${view.optRoot}/bin`,
    LD_LIBRARY_PATH: `/lib64:/usr/lib64:${view.runtimeRoot}:${view.runtimeRoot}/lib:${view.taskRoot}:${view.taskRoot}/lib:${view.optRoot}/lib`,
    LANG: "en_US.UTF-8",
    TZ: ":UTC",
    LAMBDA_TASK_ROOT: view.taskRoot,
    LAMBDA_RUNTIME_DIR: view.runtimeRoot,
  };
  if (family === "nodejs") {
    env.NODE_PATH = `${view.optRoot}/nodejs/node${nodeMajor}/node_modules:${view.optRoot}/nodejs/node_modules:${view.runtimeRoot}/node_modules:${view.runtimeRoot}:${view.taskRoot}`;
  }
  if (family === "python") env.PYTHONPATH = `${view.runtimeRoot}`;
  for (const [k, v] of Object.entries(c.Environment)) env[k] = v;
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
  return env;
}
