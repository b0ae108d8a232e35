/**
 * NODE_PATH's packages where ES modules find them, with no resolve hook: a directory of symlinks
 * shown read-only at the sandbox's /node_modules.
 *
 * Node's ES module resolver ignores NODE_PATH: it only walks up the importing file's folders
 * (/var/task/node_modules, /var/node_modules, /node_modules; /opt/nodejs/node_modules, ...,
 * /node_modules). Every walk ends at /node_modules, so one symlink per package there (scoped
 * packages as a real folder of symlinks), pointing at the package's in-sandbox path, gives every
 * module — the function's, a layer's, one written to /tmp — the packages of the layers' and the
 * SDK's folders, each name from the first folder (NODE_PATH's order) that has it. Node resolves a
 * package through the link and then takes the real path of its files, so a package's own imports
 * and its identity are those it has in its own folder.
 *
 * The view is made on the host, once per set of folders (a merged layer set, the runtime's SDK),
 * and never changes: a merged layer directory is never changed once made (a new layer version
 * makes a new one). Listing never follows a link out of the folder being listed (a layer's
 * `nodejs -> /`), and every name written is one path component: nothing is written outside the
 * view's own directory.
 */
import { createHash, randomUUID } from "node:crypto";
import { type Dirent, existsSync } from "node:fs";
import { mkdir, readdir, realpath, rename, rm, stat, symlink } from "node:fs/promises";
import { join } from "node:path";

/** One folder of packages: where the host has it, the folder it must stay inside, where the sandbox sees it. */
export interface PackageFolder {
  hostDir: string;
  /** Links under `hostDir` are followed only while they stay inside this folder (a layer set, the SDK). */
  root: string;
  at: string;
}

/** More packages than any real set of layers has: past it the rest are left out (and said so). */
export const MAX_VIEW_ENTRIES = 50_000;

/** A name a package folder can have: one path component, not hidden (`.bin`, `.package-lock.json`). */
function packageName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !name.startsWith(".") && !/[/\0]/.test(name);
}

/** A folder's entries, if it is a folder inside `root` once links are followed (else none). */
async function listInside(root: string, dir: string): Promise<Dirent[]> {
  try {
    const [realRoot, real] = await Promise.all([realpath(root), realpath(dir)]);
    if (real !== realRoot && !real.startsWith(`${realRoot}/`)) return [];
    if (!(await stat(real)).isDirectory()) return [];
    return await readdir(real, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Could be a package: a folder, or a link the sandbox follows (never followed here). */
const candidate = (e: Dirent) => (e.isDirectory() || e.isSymbolicLink()) && packageName(e.name);

interface Plan {
  /** Top-level name → link target (a package, or a scope taken whole). */
  links: Map<string, string>;
  /** Scope → its packages (name → link target). */
  scopes: Map<string, Map<string, string>>;
  truncated: boolean;
}

/** Which links the view of `folders` holds (nothing written). */
export async function planPackagesView(folders: readonly PackageFolder[]): Promise<Plan> {
  const plan: Plan = { links: new Map(), scopes: new Map(), truncated: false };
  let count = 0;
  const room = () => {
    if (count < MAX_VIEW_ENTRIES) return true;
    plan.truncated = true;
    return false;
  };
  for (const folder of folders) {
    for (const entry of await listInside(folder.root, folder.hostDir)) {
      if (!candidate(entry) || !room()) continue;
      const name = entry.name;
      if (!name.startsWith("@")) {
        if (!plan.links.has(name) && !plan.scopes.has(name)) {
          plan.links.set(name, `${folder.at}/${name}`);
          count++;
        }
        continue;
      }
      // A scope a link took whole (it could not be listed) gets nothing merged into it.
      if (plan.links.has(name)) continue;
      const inner = await listInside(folder.root, join(folder.hostDir, name));
      if (inner.length === 0 && entry.isSymbolicLink() && !plan.scopes.has(name)) {
        // A link out of the folder (or to nothing): the sandbox follows it as the hook would have.
        plan.links.set(name, `${folder.at}/${name}`);
        count++;
        continue;
      }
      let scope = plan.scopes.get(name);
      for (const pkg of inner) {
        if (!candidate(pkg) || !room()) continue;
        if (scope === undefined) {
          scope = new Map();
          plan.scopes.set(name, scope);
        }
        if (!scope.has(pkg.name)) {
          scope.set(pkg.name, `${folder.at}/${name}/${pkg.name}`);
          count++;
        }
      }
    }
  }
  return plan;
}

/** Writes the view of `folders` into `dest` (made whole in a temporary folder, then renamed into place). */
export async function writePackagesView(dest: string, folders: readonly PackageFolder[]): Promise<Plan> {
  const plan = await planPackagesView(folders);
  const tmp = `${dest}.tmp-${randomUUID()}`;
  try {
    await mkdir(tmp, { recursive: true, mode: 0o755 });
    const links: Array<[string, string]> = [];
    for (const [name, target] of plan.links) links.push([join(tmp, name), target]);
    for (const [scope, packages] of plan.scopes) {
      await mkdir(join(tmp, scope), { mode: 0o755 });
      for (const [name, target] of packages) links.push([join(tmp, scope, name), target]);
    }
    // A few at a time: thousands of packages take a few hundred ms, not seconds.
    for (let i = 0; i < links.length; i += 64) {
      await Promise.all(links.slice(i, i + 64).map(([path, target]) => symlink(target, path)));
    }
    await rename(tmp, dest);
  } catch (error) {
    await rm(tmp, { recursive: true, force: true });
    // Another server process made it meanwhile: theirs is the same.
    if (!existsSync(dest)) throw error;
  }
  return plan;
}

/** The views of one driver: `<dir>/<key>/`, one per set of folders, made once and kept while the driver runs. */
export class PackagesViews {
  readonly #made = new Map<string, Promise<string>>();

  constructor(readonly dir: string) {}

  /** Removes the views a previous run made (the SDK may have been installed again since). */
  async reset(): Promise<void> {
    this.#made.clear();
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
  }

  view(folders: readonly PackageFolder[]): Promise<string> {
    const key = createHash("sha256").update(JSON.stringify(folders)).digest("hex").slice(0, 32);
    let made = this.#made.get(key);
    if (made === undefined) {
      const dest = join(this.dir, key);
      made = writePackagesView(dest, folders).then((plan) => {
        if (plan.truncated) {
          console.warn(
            `lambent: more than ${MAX_VIEW_ENTRIES} packages in ${folders.map((f) => f.at).join(", ")}: ES modules see the first ${MAX_VIEW_ENTRIES} only`,
          );
        }
        return dest;
      });
      made.catch(() => this.#made.delete(key));
      this.#made.set(key, made);
    }
    return made;
  }
}

/**
 * The folders of a Node.js runtime's NODE_PATH that hold packages, in its order (see
 * `runtimeEnvironment`), with the layers' top-level node_modules where the old resolve hook's walk
 * from /opt/nodejs/nodeNN found it: /opt/nodejs/nodeNN/node_modules, /opt/nodejs/node_modules,
 * /opt/node_modules, then the SDK's (or /var/runtime/node_modules).
 */
export function nodePathFolders(
  nodeMajor: string,
  optDir: string | undefined,
  optRoot: string,
  sdk: { dir: string; at: string } | undefined,
  runtimeDir: string,
  runtimeRoot: string,
): PackageFolder[] {
  const folders: PackageFolder[] = [];
  if (optDir !== undefined) {
    for (const sub of [`nodejs/node${nodeMajor}/node_modules`, "nodejs/node_modules", "node_modules"]) {
      folders.push({ hostDir: join(optDir, sub), root: optDir, at: `${optRoot}/${sub}` });
    }
  }
  folders.push(
    sdk !== undefined
      ? { hostDir: sdk.dir, root: sdk.dir, at: sdk.at }
      : { hostDir: join(runtimeDir, "node_modules"), root: runtimeDir, at: `${runtimeRoot}/node_modules` },
  );
  return folders;
}
