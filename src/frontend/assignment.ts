/**
 * Assignments: a function version as a worker sees it (protocol/assignment.ts),
 * built from the store's rows once per version and revision and kept until the
 * version changes. Layers are resolved to their content hashes here, so a
 * worker fetches them by sha256 and never reads the function's configuration.
 */
import { functionArn } from "../control/arn.js";
import { maxConcurrency } from "../control/function-config.js";
import type { FunctionVersion } from "../control/functions.js";
import type { AssignedLayer, Assignment } from "../protocol/assignment.js";
import { assignmentKey } from "../protocol/assignment.js";

/** Layer version ARNs → their content, in order (a failure names what is missing). */
export type LayerResolver = (arns: string[]) => Promise<AssignedLayer[]>;
/** The dev-mounted folder a version runs from, if any (control/dev-mounts.ts). */
export type DevFolderOf = (name: string, version: string) => string | undefined;

export function assignmentOf(
  fn: FunctionVersion,
  region: string,
  layers: AssignedLayer[],
  codeDir?: string,
): Assignment {
  const c = fn.config;
  return {
    functionArn: functionArn(region, fn.name),
    name: fn.name,
    version: fn.version,
    revisionId: fn.revisionId,
    codeSha256: fn.codeSha256,
    ...(codeDir !== undefined ? { codeDir } : {}),
    config: {
      Runtime: c.Runtime,
      Handler: c.Handler,
      Role: c.Role,
      Timeout: c.Timeout,
      MemorySize: c.MemorySize,
      EphemeralStorageSize: c.EphemeralStorageSize,
      Environment: c.Environment,
      Architectures: c.Architectures,
      LogFormat: c.LogFormat,
      ...(c.LogGroup !== undefined ? { LogGroup: c.LogGroup } : {}),
      ...(c.ApplicationLogLevel !== undefined ? { ApplicationLogLevel: c.ApplicationLogLevel } : {}),
      ...(c.SystemLogLevel !== undefined ? { SystemLogLevel: c.SystemLogLevel } : {}),
      ...(c.CapacityProvider ? { MaxConcurrency: maxConcurrency(c) } : {}),
    },
    layers,
  };
}

/**
 * The assignments of the versions this frontend has resolved. One whose layers
 * could not be resolved is handed out (its cold starts fail with the reason)
 * but not kept, so the next cold start tries again.
 */
export class Assignments {
  private readonly byKey = new Map<string, Assignment>();

  constructor(
    private readonly region: string,
    private readonly resolveLayers: LayerResolver,
    private readonly devFolderOf: DevFolderOf = () => undefined,
  ) {}

  /** The cached assignment of this version and revision, if any (the warm path: no await). */
  cached(fn: FunctionVersion): Assignment | undefined {
    return this.byKey.get(assignmentKey(fn));
  }

  async of(fn: FunctionVersion): Promise<Assignment> {
    const key = assignmentKey(fn);
    const hit = this.byKey.get(key);
    if (hit) return hit;
    const dev = this.devFolderOf(fn.name, fn.version);
    if (fn.config.Layers.length === 0) {
      const a = assignmentOf(fn, this.region, [], dev);
      this.byKey.set(key, a);
      return a;
    }
    try {
      const a = assignmentOf(fn, this.region, await this.resolveLayers(fn.config.Layers), dev);
      this.byKey.set(key, a);
      return a;
    } catch (err) {
      return {
        ...assignmentOf(fn, this.region, [], dev),
        layersUnavailable: err instanceof Error ? err.message : String(err),
      };
    }
  }

  /** Drop the assignments of a function (every version, or one). */
  forget(name: string, version?: string): void {
    for (const [key, a] of this.byKey) {
      if (a.name === name && (version === undefined || a.version === version)) this.byKey.delete(key);
    }
  }
}
