/** Picks the sandbox driver for `--sandbox auto|bwrap|process`. */
import type { ServerOptions } from "../config.js";
import type { SandboxDriver } from "./driver.js";
import { ProcessDriver } from "./process.js";

export interface SandboxChoice {
  driver: SandboxDriver;
  /** Why the choice isolates nothing, said loudly at start and in /health. */
  warning?: string;
}

export async function chooseSandboxDriver(options: ServerOptions, _runDir: string): Promise<SandboxChoice> {
  return {
    driver: new ProcessDriver(),
    warning:
      "sandbox driver 'process': functions run as plain processes with no isolation and no enforced limits",
  };
}
