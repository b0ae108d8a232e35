/**
 * An assignment: everything a worker needs to run environments of one
 * function version, as plain data (it crosses a network between a frontend and
 * a worker on another machine). The frontend builds it from the store's rows
 * once per version and revision; the worker never reads the store for it.
 * Code and layers are named by sha256: the worker fetches them from its
 * artifact store (see `worker/artifacts.ts`).
 *
 * The initialization type is not part of it: an invoke starts `on-demand`
 * environments, a provision request `provisioned-concurrency` ones.
 */
import type { Runtime } from "../runtimes/catalog.js";

/** The function configuration an execution environment is built from (Lambda's own member names). */
export interface AssignedConfig {
  Runtime: Runtime;
  Handler: string;
  /** The execution role: its temporary credentials are issued to each environment at Init. */
  Role: string;
  Timeout: number;
  MemorySize: number;
  EphemeralStorageSize: number;
  Environment: Record<string, string>;
  Architectures: string[];
  LogFormat: "Text" | "JSON";
  LogGroup?: string;
  ApplicationLogLevel?: string;
  SystemLogLevel?: string;
  /**
   * Events one environment runs at once: set (≥ 1) only for a function on a capacity provider
   * (Lambda Managed Instances' multi-concurrency); its runtime gets AWS_LAMBDA_MAX_CONCURRENCY.
   */
  MaxConcurrency?: number;
}

/** A layer version, in the function's order (later layers win in /opt). */
export interface AssignedLayer {
  arn: string;
  sha256: string;
}

export interface Assignment {
  /** The function's unqualified ARN. */
  functionArn: string;
  name: string;
  /** `$LATEST` or a published version number. */
  version: string;
  /** Changes whenever the version's code or configuration does: environments of another revision are never reused. */
  revisionId: string;
  codeSha256: string;
  /**
   * A dev mount (`lambent dev`): the folder on the worker's machine this version runs from instead
   * of the code by sha256, shown read-only as /var/task as it is at each cold start.
   */
  codeDir?: string;
  config: AssignedConfig;
  layers: AssignedLayer[];
  /**
   * Set when the frontend could not resolve the function's layers (a layer gone
   * from the store): every cold start answers `Runtime.InitError` with it.
   */
  layersUnavailable?: string;
}

/** The key one version's environments are pooled under: environments of another revision are never shared. */
export function assignmentKey(a: Pick<Assignment, "name" | "version" | "revisionId">): string {
  return `${a.name}\0${a.version}\0${a.revisionId}`;
}
