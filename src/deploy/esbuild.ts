/**
 * `Metadata.BuildMethod: esbuild` as SAM interprets it: the handler's module
 * (or `BuildProperties.EntryPoints`) bundled for Node with esbuild; `Minify`
 * (default true), `Target` (default es2020), `Sourcemap` (default false; true
 * adds `NODE_OPTIONS=--enable-source-maps`), `SourcesContent`, `Format`,
 * `External`, `Loader` (".ext=loader"), `MainFields` (default main,module),
 * `OutExtension` (".js=.mjs"), `Banner` / `Footer` ("js=…"). Other properties
 * are refused by name rather than ignored.
 */
import { existsSync, realpathSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import type { BuildOptions, Format, Loader } from "esbuild";
import { BuildError, type PackFile } from "./package.js";

export interface BuildProperties {
  entryPoints?: string[] | undefined;
  external: string[];
  format: "cjs" | "esm";
  loader: Record<string, Loader>;
  mainFields: string[];
  minify: boolean;
  outExtension: Record<string, string>;
  sourcemap: boolean;
  sourcesContent: boolean;
  target: string[];
  banner?: string | undefined;
  footer?: string | undefined;
}

const LOADERS = new Set<Loader>([
  "base64",
  "binary",
  "copy",
  "css",
  "dataurl",
  "default",
  "empty",
  "file",
  "js",
  "json",
  "jsx",
  "local-css",
  "text",
  "ts",
  "tsx",
]);
const KNOWN = [
  "EntryPoints",
  "External",
  "Format",
  "Loader",
  "MainFields",
  "Minify",
  "OutExtension",
  "Sourcemap",
  "SourcesContent",
  "Target",
  "Banner",
  "Footer",
];
/** Extensions tried, in order, for a handler's module when no EntryPoints are given. */
const HANDLER_EXTENSIONS = [".ts", ".mts", ".cts", ".tsx", ".js", ".mjs", ".cjs", ".jsx"];

/** `Metadata.BuildProperties`, checked and with SAM's defaults. */
export function parseBuildProperties(id: string, metadata: unknown): BuildProperties {
  const raw = (metadata as Record<string, unknown>).BuildProperties ?? {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new BuildError(`${id}: Metadata.BuildProperties must be a mapping`);
  const props = raw as Record<string, unknown>;
  for (const k of Object.keys(props))
    if (!KNOWN.includes(k))
      throw new BuildError(`${id}: BuildProperties.${k} is not supported (supported: ${KNOWN.join(", ")})`);
  const bool = (k: string, dflt: boolean): boolean => {
    const v = props[k];
    if (v === undefined) return dflt;
    if (v === true || v === "true") return true;
    if (v === false || v === "false") return false;
    throw new BuildError(`${id}: BuildProperties.${k} must be true or false`);
  };
  const list = (k: string): string[] | undefined => {
    const v = props[k];
    if (v === undefined) return undefined;
    const items = typeof v === "string" ? v.split(",").map((s) => s.trim()) : v;
    if (!Array.isArray(items) || items.some((s) => typeof s !== "string" || s === "" || s.includes("\0")))
      throw new BuildError(`${id}: BuildProperties.${k} must be a list of non-empty strings`);
    return items as string[];
  };
  const pairs = (k: string, check: (key: string, value: string) => boolean): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const item of list(k) ?? []) {
      const eq = item.indexOf("=");
      const key = item.slice(0, eq);
      const value = item.slice(eq + 1);
      if (eq <= 0 || !check(key, value))
        throw new BuildError(
          `${id}: BuildProperties.${k} item ${JSON.stringify(item)} is not of the form .ext=value`,
        );
      out[key] = value;
    }
    return out;
  };
  const format = props.Format ?? "cjs";
  if (format !== "cjs" && format !== "esm")
    throw new BuildError(`${id}: BuildProperties.Format must be cjs or esm`);
  const target = list("Target") ?? ["es2020"];
  for (const t of target)
    if (!/^[a-z]+[0-9][0-9.]*$|^esnext$/i.test(t))
      throw new BuildError(
        `${id}: BuildProperties.Target ${JSON.stringify(t)} is not an esbuild target (e.g. es2020, node20)`,
      );
  const ext = /^\.[A-Za-z0-9_.-]+$/;
  const text = (k: string): string | undefined => {
    const v = props[k];
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !v.startsWith("js="))
      throw new BuildError(`${id}: BuildProperties.${k} must be "js=<text>"`);
    return v.slice(3);
  };
  return {
    entryPoints: list("EntryPoints"),
    external: list("External") ?? [],
    format,
    loader: pairs("Loader", (k, v) => ext.test(k) && LOADERS.has(v as Loader)) as Record<string, Loader>,
    mainFields: list("MainFields") ?? ["main", "module"],
    minify: bool("Minify", true),
    outExtension: pairs(
      "OutExtension",
      (k, v) => k === ".js" && (v === ".js" || v === ".mjs" || v === ".cjs"),
    ),
    sourcemap: bool("Sourcemap", false),
    sourcesContent: bool("SourcesContent", true),
    target,
    banner: text("Banner"),
    footer: text("Footer"),
  };
}

/**
 * esbuild's options for one function: explicit EntryPoints keep esbuild's own
 * output layout (SAM passes them straight through); the handler's module keeps
 * its path under the code folder so the Handler setting finds it.
 */
export function esbuildOptions(
  id: string,
  folder: string,
  handler: string | undefined,
  props: BuildProperties,
  nodeModules: string | undefined,
  outdir: string,
): BuildOptions {
  let entryPoints: string[];
  let outbase: string | undefined;
  if (props.entryPoints) {
    entryPoints = props.entryPoints.map((e) => insideFile(id, folder, e, "EntryPoints"));
  } else {
    entryPoints = [handlerModule(id, folder, handler)];
    outbase = folder;
  }
  return {
    absWorkingDir: folder,
    entryPoints,
    ...(outbase ? { outbase } : {}),
    outdir,
    bundle: true,
    platform: "node",
    format: props.format as Format,
    target: props.target,
    minify: props.minify,
    sourcemap: props.sourcemap,
    sourcesContent: props.sourcesContent,
    external: props.external,
    loader: props.loader,
    mainFields: props.mainFields,
    outExtension: props.outExtension,
    ...(props.banner !== undefined ? { banner: { js: props.banner } } : {}),
    ...(props.footer !== undefined ? { footer: { js: props.footer } } : {}),
    nodePaths: nodeModules ? [nodeModules] : [],
    logLevel: "silent",
  };
}

/** Bundle into memory; the files to pack, named relative to the output folder. */
export async function bundleWithEsbuild(
  id: string,
  folder: string,
  handler: string | undefined,
  props: BuildProperties,
  nodeModules: string | undefined,
): Promise<PackFile[]> {
  const esbuild = await import("esbuild");
  const outdir = join(folder, ".aws-sam", "lambent-esbuild");
  let result: Awaited<ReturnType<typeof esbuild.build>>;
  try {
    result = await esbuild.build({
      ...esbuildOptions(id, folder, handler, props, nodeModules, outdir),
      write: false,
    });
  } catch (err) {
    throw new BuildError(`${id}: esbuild failed:\n${esbuildMessages(err)}`);
  }
  return (result.outputFiles ?? []).map((f) => ({
    name: relative(outdir, f.path).split(sep).join("/"),
    source: Buffer.from(f.contents),
    mode: 0o100644,
  }));
}

/** esbuild's errors as "file:line:col: text" lines. */
export function esbuildMessages(err: unknown): string {
  const errors = (
    err as {
      errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }>;
    }
  ).errors;
  if (!errors?.length) return String((err as Error).message ?? err);
  return errors
    .map((e) =>
      e.location ? `  ${e.location.file}:${e.location.line}:${e.location.column}: ${e.text}` : `  ${e.text}`,
    )
    .join("\n");
}

function insideFile(id: string, folder: string, rel: string, what: string): string {
  const path = resolve(folder, rel);
  if (!(path === folder || path.startsWith(folder + sep)) || !existsSync(path))
    throw new BuildError(`${id}: ${what} ${rel} is not a file inside the code folder`);
  const real = realpathSync(path);
  if (!real.startsWith(folder + sep) || !statSync(real).isFile())
    throw new BuildError(`${id}: ${what} ${rel} is not a file inside the code folder`);
  return real;
}

/** "src/app.handler" → the file src/app.ts (or .js, …) under the code folder. */
function handlerModule(id: string, folder: string, handler: string | undefined): string {
  const dot = handler?.lastIndexOf(".") ?? -1;
  if (!handler || dot <= 0)
    throw new BuildError(
      `${id}: esbuild needs BuildProperties.EntryPoints or a Handler of the form file.function`,
    );
  const base = handler.slice(0, dot);
  for (const ext of HANDLER_EXTENSIONS) {
    const path = resolve(folder, base + ext);
    if (existsSync(path)) return insideFile(id, folder, base + ext, "Handler module");
  }
  throw new BuildError(
    `${id}: no ${base}{${HANDLER_EXTENSIONS.join(",")}} in the code folder for Handler ${handler}; set BuildProperties.EntryPoints`,
  );
}
