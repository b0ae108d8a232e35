/**
 * A function's dependencies installed the way `sam build` installs them, in
 * a staging folder (never in the user's code folder): `package.json`
 * dependencies with `npm ci` (a lock file is there) or `npm install`,
 * `--omit=dev` for a zipped folder; `requirements.txt` with
 * `pip install -r requirements.txt -t <staging>` by the runtime's own Python
 * (`python3.13` for python3.13) or, failing that, by `python3` fetching
 * wheels for the runtime's version and this machine's architecture. A
 * staging folder is kept by the hash of the files that declare it, so an
 * unchanged declaration installs nothing.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { BuildError } from "./package.js";

export type Progress = (line: string) => void;

export interface InstalledDependencies {
  /** The folder whose files go into the package, each under `prefix`. */
  root: string;
  prefix: string;
  /** The node_modules folder esbuild resolves bare imports from (npm only). */
  nodeModules?: string;
}

export interface InstallOptions {
  id: string;
  cacheDir: string;
  /** "production" leaves devDependencies out (a zipped folder); "all" is what an esbuild bundle may import. */
  mode: "production" | "all";
  runtime?: string | undefined;
}

const NPM_FILES = ["package.json", "package-lock.json", "npm-shrinkwrap.json", ".npmrc"];
/** How often a long install says it is still running. */
const STILL_RUNNING_MS = 10_000;

/** Which installer the folder asks for: npm (package.json with dependencies), pip (requirements.txt with a requirement), or none. */
export function declaresDependencies(
  folder: string,
  id: string,
  mode: InstallOptions["mode"],
): "npm" | "pip" | undefined {
  const pkgPath = join(folder, "package.json");
  if (existsSync(pkgPath)) {
    let pkg: unknown;
    try {
      pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
    } catch (err) {
      throw new BuildError(`${id}: package.json is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof pkg !== "object" || pkg === null || Array.isArray(pkg))
      throw new BuildError(`${id}: package.json must be a JSON object`);
    const p = pkg as Record<string, unknown>;
    const fields = mode === "all" ? [p.dependencies, p.devDependencies] : [p.dependencies];
    if (fields.some((d) => typeof d === "object" && d !== null && Object.keys(d).length > 0)) return "npm";
  }
  const reqPath = join(folder, "requirements.txt");
  if (existsSync(reqPath)) {
    const lines = readFileSync(reqPath, "utf8")
      .split("\n")
      .map((l) => l.replace(/#.*/, "").trim());
    if (lines.some((l) => l !== "")) return "pip";
  }
  return undefined;
}

/** Install the folder's declared dependencies into a (cached) staging folder; undefined when it declares none. */
export async function installDependencies(
  folder: string,
  opts: InstallOptions,
  progress: Progress,
): Promise<InstalledDependencies | undefined> {
  const kind = declaresDependencies(folder, opts.id, opts.mode);
  if (!kind) return undefined;
  const declaring = kind === "npm" ? NPM_FILES : ["requirements.txt"];
  const h = createHash("sha256").update(JSON.stringify([kind, opts.mode, opts.runtime ?? "", process.arch]));
  for (const f of declaring) {
    const path = join(folder, f);
    h.update(`\0${f}\0`);
    if (existsSync(path)) h.update(readFileSync(path));
  }
  const depsDir = join(opts.cacheDir, "deps");
  const staging = join(depsDir, h.digest("hex").slice(0, 32));
  const result: InstalledDependencies =
    kind === "npm"
      ? {
          root: join(staging, "node_modules"),
          prefix: "node_modules/",
          nodeModules: join(staging, "node_modules"),
        }
      : { root: join(staging, "python"), prefix: "" };
  if (existsSync(join(staging, ".complete"))) {
    progress(`${opts.id}: ${kind} dependencies unchanged, reusing them`);
    return result;
  }
  mkdirSync(depsDir, { recursive: true });
  const tmp = mkdtempSync(join(depsDir, "tmp-"));
  try {
    for (const f of declaring) if (existsSync(join(folder, f))) cpSync(join(folder, f), join(tmp, f));
    if (kind === "npm") await npmInstall(tmp, opts, progress);
    else await pipInstall(tmp, opts, progress);
    writeFileSync(join(tmp, ".complete"), "");
    rmSync(staging, { recursive: true, force: true });
    renameSync(tmp, staging);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return result;
}

async function npmInstall(dir: string, opts: InstallOptions, progress: Progress): Promise<void> {
  const locked = existsSync(join(dir, "package-lock.json")) || existsSync(join(dir, "npm-shrinkwrap.json"));
  const args = [locked ? "ci" : "install", "--no-audit", "--no-fund", "--no-update-notifier"];
  if (opts.mode === "production") args.push("--omit=dev");
  await run(
    opts.id,
    "npm",
    args,
    dir,
    progress,
    "npm is not on PATH: install Node.js's npm to build functions with a package.json",
  );
  if (!existsSync(join(dir, "node_modules"))) mkdirSync(join(dir, "node_modules"));
}

async function pipInstall(dir: string, opts: InstallOptions, progress: Progress): Promise<void> {
  const version = /^python(\d+\.\d+)$/.exec(opts.runtime ?? "")?.[1];
  if (!version)
    throw new BuildError(
      `${opts.id}: requirements.txt needs a python Runtime (got ${opts.runtime ?? "none"})`,
    );
  const target = join(dir, "python");
  const base = [
    "-m",
    "pip",
    "install",
    "-r",
    "requirements.txt",
    "-t",
    target,
    "--disable-pip-version-check",
    "--no-input",
  ];
  if (await hasPip(`python${version}`)) {
    await run(opts.id, `python${version}`, base, dir, progress, "");
    return;
  }
  if (!(await hasPip("python3")))
    throw new BuildError(
      `${opts.id}: requirements.txt needs pip, and neither python${version} nor python3 with pip is on PATH (install python3-pip)`,
    );
  const platform = process.arch === "arm64" ? "manylinux2014_aarch64" : "manylinux2014_x86_64";
  await run(
    opts.id,
    "python3",
    [
      ...base,
      "--platform",
      platform,
      "--implementation",
      "cp",
      "--python-version",
      version,
      "--only-binary=:all:",
    ],
    dir,
    progress,
    "",
  );
}

function hasPip(python: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(python, ["-m", "pip", "--version"], { stdio: "ignore" });
    child.on("error", () => resolve(false));
    child.on("close", (code) => resolve(code === 0));
  });
}

/** Run an installer, saying what runs and, every 10 s, that it still does; its output's tail goes into the error. */
function run(
  id: string,
  cmd: string,
  args: string[],
  cwd: string,
  progress: Progress,
  missing: string,
): Promise<void> {
  const line = `${cmd} ${args.filter((a) => !a.startsWith("/")).join(" ")}`;
  progress(`${id}: ${line}`);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    const keep = (c: Buffer) => {
      tail = (tail + c.toString("utf8")).slice(-4000);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const ticker = setInterval(
      () => progress(`${id}: still running ${cmd} (${Math.round((Date.now() - started) / 1000)} s)`),
      STILL_RUNNING_MS,
    );
    child.on("error", (err) => {
      clearInterval(ticker);
      reject(new BuildError(`${id}: ${missing || `${cmd} could not start`} (${err.message})`));
    });
    child.on("close", (code) => {
      clearInterval(ticker);
      if (code === 0) {
        progress(`${id}: ${cmd} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        resolve();
      } else reject(new BuildError(`${id}: ${line} failed (exit ${code}):\n${tail.trim()}`));
    });
  });
}
