/**
 * The code cache: each deployment package extracted once per code hash into
 * the data dir. Validation lives in zip-package.ts, writing in extraction.ts.
 */
import { randomUUID } from "node:crypto";
import { readdir, rename, rm, stat } from "node:fs/promises";
import { isAbsolute, join, normalize } from "node:path";
import { DEFAULT_LIMITS, type Limits } from "../config.js";
import { extractPackage } from "./extraction.js";

export { extractPackage } from "./extraction.js";
export { type CodePackage, inspectPackage, isPackageError } from "./zip-package.js";

/**
 * Remove the temporary directories of extractions a crash interrupted
 * (`.tmp-*` directly under `dir`). Call at start, before anything extracts.
 */
export async function sweepInterrupted(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let swept = 0;
  for (const name of names) {
    if (!name.startsWith(".tmp-")) continue;
    await rm(join(dir, name), { recursive: true, force: true });
    swept++;
  }
  return swept;
}

/**
 * The code cache: `<dir>/<sha256>/` holds each package extracted once. Concurrent
 * requests for one hash share a single extraction; a partial extraction never
 * becomes visible (extract to a temp dir, then rename).
 */
export class CodeCache {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    readonly dir: string,
    private readonly loadZip: (sha256: string) => Promise<Buffer>,
    private readonly limits: Limits = DEFAULT_LIMITS,
  ) {}

  pathFor(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`bad code hash ${sha256}`);
    const p = join(this.dir, sha256);
    if (!isAbsolute(p) || normalize(p) !== p) throw new Error(`bad code path ${p}`);
    return p;
  }

  /** Sweep extractions a crash interrupted (at start). */
  sweep(): Promise<number> {
    return sweepInterrupted(this.dir);
  }

  async ensure(sha256: string): Promise<string> {
    const dest = this.pathFor(sha256);
    const inFlight = this.pending.get(sha256);
    if (inFlight) return inFlight;
    const job = (async () => {
      if (await exists(dest)) return dest;
      const tmp = join(this.dir, `.tmp-${sha256}-${randomUUID()}`);
      try {
        await extractPackage(await this.loadZip(sha256), tmp, this.limits);
        await rename(tmp, dest).catch(async (err: NodeJS.ErrnoException) => {
          // Another server process on the same cache won the race.
          if (err.code !== "ENOTEMPTY" && err.code !== "EEXIST") throw err;
          await rm(tmp, { recursive: true, force: true });
        });
        return dest;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    })();
    this.pending.set(sha256, job);
    try {
      return await job;
    } finally {
      this.pending.delete(sha256);
    }
  }
}

export async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
