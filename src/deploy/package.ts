/**
 * Code folders as zip entries, and zips that are the same bytes for the same
 * files: names sorted, one fixed timestamp, modes 0644 or 0755, no extra
 * fields. Symbolic links are followed only while they stay in the folder.
 */
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join, sep } from "node:path";
import yazl from "yazl";

/** A template or code folder a build cannot use; the message names the resource. */
export class BuildError extends Error {
  override name = "BuildError";
}

/** Lambda's limit on a function's unzipped code; a folder beyond it is refused before zipping. */
export const MAX_UNZIPPED_BYTES = 250 * 1024 * 1024;
/** The one timestamp every entry carries (local-time fields, so the DOS date is the same in every zone). */
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);
/** Folders a build never packs. */
const SKIPPED = new Set([".git", ".aws-sam"]);

/** `path` is `root` or below it (both absolute, symbolic links already resolved). */
export function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** A file to pack: its name in the zip (always with `/`), its bytes or the path holding them, its mode. */
export interface PackFile {
  name: string;
  source: string | Buffer;
  mode: number;
}

/**
 * Every regular file under `root`, sorted, as zip entries. Symbolic links are
 * followed when they stay inside `root` and refused when they leave it; a link
 * loop, a socket or a device is refused too.
 */
export function collectFiles(id: string, root: string, skip: string[] = [], prefix = ""): PackFile[] {
  const out: PackFile[] = [];
  let total = 0;
  const walk = (dir: string, name: string, seen: Set<string>): void => {
    for (const entry of readdirSync(dir).sort()) {
      if (SKIPPED.has(entry) || (name === "" && skip.includes(entry))) continue;
      const full = join(dir, entry);
      const entryName = name === "" ? entry : `${name}/${entry}`;
      let st = lstatSync(full);
      if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = realpathSync(full);
        } catch {
          throw new BuildError(`${id}: symbolic link ${entryName} points at nothing`);
        }
        if (!inside(root, target))
          throw new BuildError(`${id}: symbolic link ${entryName} points outside the code folder`);
        st = statSync(target);
      }
      if (st.isDirectory()) {
        const real = realpathSync(full);
        if (seen.has(real)) throw new BuildError(`${id}: symbolic link loop at ${entryName}`);
        walk(full, entryName, new Set([...seen, real]));
      } else if (st.isFile()) {
        total += st.size;
        if (total > MAX_UNZIPPED_BYTES)
          throw new BuildError(
            `${id}: the code folder holds more than ${MAX_UNZIPPED_BYTES / 1024 / 1024} MB, Lambda's limit for unzipped code`,
          );
        out.push({ name: prefix + entryName, source: full, mode: st.mode & 0o100 ? 0o100755 : 0o100644 });
      } else {
        throw new BuildError(`${id}: ${entryName} is neither a file nor a folder`);
      }
    }
  };
  walk(root, "", new Set([realpathSync(root)]));
  return out;
}

/** The same files give the same bytes: names sorted, one timestamp, no extra fields. */
export function zipFiles(files: PackFile[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]?.name === sorted[i - 1]?.name)
      throw new BuildError(`two files are named ${sorted[i]?.name}`);
  for (const f of sorted)
    zip.addBuffer(typeof f.source === "string" ? readFileSync(f.source) : f.source, f.name, {
      mtime: FIXED_MTIME,
      mode: f.mode,
      forceDosTimestamp: true,
    });
  zip.end();
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on("data", (c: Buffer) => chunks.push(c));
    zip.outputStream.on("error", reject);
    zip.outputStream.on("end", () => resolvePromise(Buffer.concat(chunks)));
  });
}
