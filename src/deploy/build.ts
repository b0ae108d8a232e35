/**
 * Builds a SAM function's code package the way `sam build` does, into the
 * bytes `CreateFunction`/`UpdateFunctionCode` take:
 *
 * - `CodeUri` naming a folder: a deterministic zip (entries sorted by name,
 *   one fixed timestamp, modes 0644 or 0755 by the owner's execute bit;
 *   `.git` and `.aws-sam` left out), so the same tree gives the same bytes
 *   and a redeploy can compare sha256s. A `package.json` with dependencies
 *   is installed with `npm install --omit=dev` into a staging copy, a
 *   non-empty `requirements.txt` with `pip install -t` into it.
 * - `CodeUri` naming a `.zip` file: its bytes, unchanged.
 * - `InlineCode`: one file `index.js` / `index.py`, as CloudFormation's
 *   `ZipFile` writes it.
 * - `Metadata.BuildMethod: esbuild`: the handler (or `EntryPoints`) bundled
 *   with esbuild under SAM's `BuildProperties` (esbuild.ts).
 *
 * Every path stays inside the template's folder: `CodeUri` may not climb
 * out of it and a symbolic link may not point out of the code folder.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { bundleWithEsbuild, parseBuildProperties } from "./esbuild.js";
import { installDependencies } from "./install.js";
import { BuildError, collectFiles, inside, zipFiles } from "./package.js";

export { BuildError } from "./package.js";

/** One line of progress for a long step ("LogicalId: installing npm dependencies…"). */
import type { Progress } from "./install.js";

export type { Progress } from "./install.js";

export interface FunctionCodeSource {
  /** The folder the template is in; `CodeUri` is relative to it. */
  templateDir: string;
  /** The resource's logical id, named in progress lines and errors. */
  logicalId: string;
  /** `CodeUri`: a folder or a `.zip` file (as a string; S3 locations are refused). */
  codeUri?: unknown;
  /** `InlineCode`. */
  inlineCode?: unknown;
  handler?: string;
  runtime?: string;
  /** The resource's `Metadata` (`BuildMethod`, `BuildProperties`). */
  metadata?: unknown;
  /** Where installed dependencies are kept by the hash of what declares them (default `<templateDir>/.aws-sam/lambent-build`). */
  cacheDir?: string;
}

export interface BuiltCode {
  zip: Buffer;
  /** Hex sha256 of `zip`. */
  sha256: string;
  /** Base64 sha256 of `zip`, as Lambda reports `CodeSha256`. */
  codeSha256: string;
  /** Environment variables SAM adds for this build (`NODE_OPTIONS` for esbuild source maps). */
  environment: Record<string, string>;
}

/** Build one function's code package. */
export async function buildFunctionCode(source: FunctionCodeSource, progress: Progress): Promise<BuiltCode> {
  const id = source.logicalId;
  const method = buildMethodOf(source);
  if (source.inlineCode !== undefined) {
    if (source.codeUri !== undefined) throw new BuildError(`${id}: give CodeUri or InlineCode, not both`);
    if (method) throw new BuildError(`${id}: Metadata.BuildMethod needs CodeUri, not InlineCode`);
    return finish(await inlinePackage(source), {});
  }
  const path = codePath(source);
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new BuildError(`${id}: CodeUri ${String(source.codeUri)} does not exist`);
  if (st.isFile()) {
    if (method) throw new BuildError(`${id}: Metadata.BuildMethod needs a CodeUri folder, not a file`);
    if (!path.toLowerCase().endsWith(".zip"))
      throw new BuildError(`${id}: CodeUri ${String(source.codeUri)} is a file but not a .zip`);
    progress(`${id}: using ${relative(source.templateDir, path) || path} as it is`);
    return finish(readFileSync(path), {});
  }
  if (!st.isDirectory()) throw new BuildError(`${id}: CodeUri ${String(source.codeUri)} is not a folder`);
  const folder = realpathSync(path);

  const cacheDir = source.cacheDir ?? join(source.templateDir, ".aws-sam", "lambent-build");
  if (method === "esbuild") {
    const properties = parseBuildProperties(id, source.metadata);
    const deps = await installDependencies(
      folder,
      { id, cacheDir, mode: "all", runtime: source.runtime },
      progress,
    );
    progress(`${id}: bundling with esbuild`);
    const files = await bundleWithEsbuild(id, folder, source.handler, properties, deps?.nodeModules);
    return finish(
      await zipFiles(files),
      properties.sourcemap ? { NODE_OPTIONS: "--enable-source-maps" } : {},
    );
  }
  const deps = await installDependencies(
    folder,
    { id, cacheDir, mode: "production", runtime: source.runtime },
    progress,
  );
  progress(`${id}: zipping ${relative(source.templateDir, folder) || "."}`);
  const files = collectFiles(id, folder, deps?.nodeModules ? ["node_modules"] : []);
  if (deps) {
    const own = new Set(files.map((f) => f.name));
    files.push(...collectFiles(id, deps.root, [], deps.prefix).filter((f) => !own.has(f.name)));
  }
  return finish(await zipFiles(files), {});
}

function buildMethodOf(source: FunctionCodeSource): "esbuild" | undefined {
  const metadata = source.metadata;
  if (metadata === undefined || metadata === null) return undefined;
  if (typeof metadata !== "object" || Array.isArray(metadata))
    throw new BuildError(`${source.logicalId}: Metadata must be a mapping`);
  const method = (metadata as Record<string, unknown>).BuildMethod;
  if (method === undefined) return undefined;
  if (method === "esbuild") return "esbuild";
  throw new BuildError(
    `${source.logicalId}: Metadata.BuildMethod ${JSON.stringify(method)} is not supported (only esbuild; leave it out to zip the folder)`,
  );
}

/** `CodeUri` resolved against the template's folder; refuses anything outside it. */
export function codePath(source: FunctionCodeSource): string {
  const id = source.logicalId;
  const uri = source.codeUri;
  if (uri === undefined) throw new BuildError(`${id}: CodeUri or InlineCode is required`);
  if (typeof uri !== "string")
    throw new BuildError(
      `${id}: CodeUri must be a local folder or .zip path (S3 locations are not supported)`,
    );
  if (uri === "" || uri.includes("\0")) throw new BuildError(`${id}: CodeUri is empty or not a path`);
  if (/^s3:\/\//i.test(uri)) throw new BuildError(`${id}: CodeUri ${uri}: S3 locations are not supported`);
  const root = realpathSync(source.templateDir);
  const path = resolve(root, uri);
  if (!inside(root, path))
    throw new BuildError(`${id}: CodeUri ${uri} is outside the template's folder ${root}`);
  if (existsSync(path) && !inside(root, realpathSync(path)))
    throw new BuildError(
      `${id}: CodeUri ${uri} leads (through a symbolic link) outside the template's folder`,
    );
  return path;
}

function inlinePackage(source: FunctionCodeSource): Promise<Buffer> {
  const id = source.logicalId;
  if (typeof source.inlineCode !== "string" || source.inlineCode === "")
    throw new BuildError(`${id}: InlineCode must be a non-empty string`);
  const runtime = source.runtime ?? "";
  const ext = runtime.startsWith("nodejs") ? "js" : runtime.startsWith("python") ? "py" : undefined;
  if (!ext)
    throw new BuildError(`${id}: InlineCode needs a nodejs or python Runtime (got ${runtime || "none"})`);
  return zipFiles([{ name: `index.${ext}`, source: Buffer.from(source.inlineCode, "utf8"), mode: 0o100644 }]);
}

function finish(zip: Buffer, environment: Record<string, string>): BuiltCode {
  const digest = createHash("sha256").update(zip).digest();
  return { zip, sha256: digest.toString("hex"), codeSha256: digest.toString("base64"), environment };
}
