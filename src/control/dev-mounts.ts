/**
 * Dev mounts (`lambent dev`): a function's `$LATEST` runs from a folder on the
 * server's machine, mounted read-only as /var/task, instead of its uploaded
 * code, so an edit is live without a new package. Lambent-only, and fenced:
 *
 * - off unless the server was started with `--dev-root <dir>`; a folder must
 *   resolve (symbolic links followed) to the dev root or below it, and be a
 *   directory — a client never names an arbitrary host path;
 * - setting one needs the IAM action `lambent:DevMount` on the function
 *   (auth/actions.ts), which only a policy naming it (or `*`) grants;
 * - kept in this server's memory: a restart drops them (the function runs its
 *   uploaded code again) and `lambent dev` sets them again when it starts.
 *
 * Setting one (again) is also how a change is announced: it emits the
 * functions' "change" event, so the frontend forgets the cached assignment and
 * the worker retires the function's environments; then `changed` starts one
 * environment right away (a stem cell, the folder bound read-only as
 * /var/task), so the next invoke finds the edit initialised.
 */
import { realpathSync, statSync } from "node:fs";
import { isAbsolute, sep } from "node:path";
import { InvalidParameterValue } from "../errors.js";
import { type FunctionService, LATEST } from "./functions.js";

export class DevMounts {
  private readonly byName = new Map<string, string>();
  /** The dev root with symbolic links resolved; undefined when dev mounts are off. */
  readonly root: string | undefined;

  /** Told after a mount was set (again), once the old environments are retired. */
  changed: (name: string, region: string) => Promise<void> = async () => {};

  constructor(
    root: string | undefined,
    private readonly functions: FunctionService,
  ) {
    this.root = root === undefined ? undefined : realpathSync(root);
  }

  /** The folder `$LATEST` of this function runs from, if it has a dev mount. */
  folderOf(name: string, version: string): string | undefined {
    return version === LATEST ? this.byName.get(name) : undefined;
  }

  /** Mount `path` for the function's `$LATEST` (or announce a change to the folder mounted already). */
  async set(name: string, region: string, path: unknown): Promise<{ FunctionName: string; Path: string }> {
    const root = this.root;
    if (root === undefined)
      throw InvalidParameterValue("Dev mounts are off on this server: start it with --dev-root <dir>.");
    if (typeof path !== "string" || path === "" || path.includes("\0") || !isAbsolute(path))
      throw InvalidParameterValue("Path must be an absolute path to a folder under the server's dev root.");
    let real: string;
    try {
      real = realpathSync(path);
    } catch {
      throw InvalidParameterValue(`Path ${path} does not exist on the server.`);
    }
    if (real !== root && !real.startsWith(root.endsWith(sep) ? root : root + sep))
      throw InvalidParameterValue(`Path ${path} is outside the server's dev root.`);
    if (!statSync(real).isDirectory()) throw InvalidParameterValue(`Path ${path} is not a folder.`);
    await this.functions.getVersion({ name }, region);
    this.byName.set(name, real);
    this.functions.events.emit("change", { name, version: LATEST });
    // A failed start is the next invoke's to report: it starts an environment again.
    this.changed(name, region).catch(() => {});
    return { FunctionName: name, Path: real };
  }

  /** Back to the uploaded code. */
  async remove(name: string, region: string): Promise<void> {
    await this.functions.getVersion({ name }, region);
    if (this.byName.delete(name)) this.functions.events.emit("change", { name, version: LATEST });
  }

  get(name: string): string | undefined {
    return this.byName.get(name);
  }
}
