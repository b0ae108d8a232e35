/**
 * Deployment packages (function code and layers): validation of an uploaded zip.
 *
 * An upload is an untrusted archive. `readPackage` turns its central directory
 * into a plan — a virtual tree — and refuses anything that could not be
 * extracted exactly as listed: names with a NUL byte, invalid UTF-8, an
 * absolute path, a `..` component, a component over 255 bytes or a path over
 * 4,095 bytes; duplicate entries; a name that is both a file and a directory;
 * an entry below a symlink (links are leaves, so extraction never goes through
 * one); symlinks whose target, resolved through the package's own links,
 * leaves the package; overlapping entries; more entries or more bytes than the
 * limits. `inspectPackage` (at upload) then inflates every file, counting the
 * bytes it really produces and checking each CRC. `extractPackage`
 * (extraction.ts) writes the plan with no-follow semantics, as an
 * unprivileged user.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import yauzl, { type Entry, type ZipFile } from "yauzl";
import type { Limits } from "../config.js";
import { InvalidParameterValue, LambdaError } from "../errors.js";

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
/** Linux's NAME_MAX. */
export const MAX_NAME_BYTES = 255;
/** Linux's PATH_MAX counts the terminating NUL: a relative path may have 4,095 bytes. */
export const MAX_PATH_BYTES = 4095;
const ZIP_LOCAL_HEADER_BYTES = 30;

export interface CodePackage {
  /** Hex sha256 of the zip (the content address). */
  sha256: string;
  /** The same digest in base64, as Lambda reports `CodeSha256`. */
  sha256Base64: string;
  size: number;
  unzippedSize: number;
}

/** One entry of a package, as it will be written. */
export interface PlannedFile {
  path: string;
  mode: 0o644 | 0o755;
  entry: Entry;
}

export interface PlannedLink {
  path: string;
  target: string;
}

/** What a package holds, validated: directories (parents first), files, then links. */
export interface PackagePlan {
  zip: ZipFile;
  dirs: string[];
  files: PlannedFile[];
  links: PlannedLink[];
}

const AGAIN = "Please check your file, then try to upload again.";

const unzipError = () => InvalidParameterValue(`Could not unzip uploaded file. ${AGAIN}`);

/** A specific reason a package cannot be unzipped, in Lambda's words plus the reason. */
export const packageError = (reason: string) =>
  InvalidParameterValue(`Could not unzip uploaded file. ${reason} ${AGAIN}`);

const emptyError = () => InvalidParameterValue("Uploaded file must be a non-empty zip");

const tooBigError = (limits: Limits) =>
  InvalidParameterValue(`Unzipped size must be smaller than ${limits.unzippedBytes} bytes`);

/** Whether an error means "this package is invalid" (as opposed to a fault of ours). */
export function isPackageError(err: unknown): boolean {
  return err instanceof LambdaError && err.type === "InvalidParameterValueException";
}

/** A name as it can be shown in a message: control bytes escaped, invalid UTF-8 replaced, long ones cut. */
export function showName(raw: Buffer | string): string {
  const text = (typeof raw === "string" ? raw : raw.toString("utf8")).replace(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping them is the point
    /[\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return text.length > 120 ? `${text.slice(0, 100)}…(${Buffer.byteLength(text)} bytes)` : text;
}

const entryError = (raw: Buffer | string, problem: string) =>
  packageError(`Entry '${showName(raw)}' ${problem}.`);

/** yauzl's own errors (corrupt archive, bad sizes, unsupported method) are Lambda's "could not unzip". */
function zipError(err: unknown): Error {
  return err instanceof LambdaError ? err : unzipError();
}

function openZip(buf: Buffer): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    try {
      yauzl.fromBuffer(
        buf,
        { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: false },
        (err, zip) => (err || !zip ? reject(zipError(err)) : resolve(zip)),
      );
    } catch (err) {
      reject(zipError(err));
    }
  });
}

function entryMode(entry: Entry): number {
  return (entry.externalFileAttributes >>> 16) & 0xffff;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The entry's relative path ('/'-separated, no empty or "." parts) and whether its name says directory. */
function parseName(raw: Buffer): { path: string; dirName: boolean } {
  if (raw.includes(0)) throw entryError(raw, "has a NUL byte in its name");
  let name: string;
  try {
    name = utf8.decode(raw);
  } catch {
    throw entryError(raw, "has a name that is not valid UTF-8");
  }
  name = name.replace(/\\/g, "/");
  if (name.startsWith("/") || /^[a-zA-Z]:/.test(name)) throw entryError(raw, "has an absolute path");
  const parts = name.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw entryError(raw, "points outside the package (its path has '..')");
  for (const p of parts) {
    if (Buffer.byteLength(p) > MAX_NAME_BYTES)
      throw entryError(raw, `has a name component longer than ${MAX_NAME_BYTES} bytes`);
  }
  const path = parts.join("/");
  if (Buffer.byteLength(path) > MAX_PATH_BYTES)
    throw entryError(raw, `has a path longer than ${MAX_PATH_BYTES.toLocaleString("en-US")} bytes`);
  return { path, dirName: name.endsWith("/") };
}

function openEntry(zip: ZipFile, entry: Entry): Promise<Readable> {
  return new Promise((resolve, reject) => {
    try {
      zip.openReadStream(entry, (err, stream) => (err || !stream ? reject(zipError(err)) : resolve(stream)));
    } catch (err) {
      reject(zipError(err));
    }
  });
}

/** A symlink's target (small: at most a path's length). */
async function readLinkTarget(zip: ZipFile, entry: Entry, path: string): Promise<string> {
  if (entry.uncompressedSize > MAX_PATH_BYTES)
    throw entryError(path, "is a symlink whose target is longer than 4,095 bytes");
  const chunks: Buffer[] = [];
  try {
    for await (const c of await openEntry(zip, entry)) chunks.push(c as Buffer);
  } catch (err) {
    throw zipError(err);
  }
  const raw = Buffer.concat(chunks);
  if (raw.length === 0) throw entryError(path, "is a symlink with an empty target");
  if (raw.includes(0)) throw entryError(path, "is a symlink whose target has a NUL byte");
  let target: string;
  try {
    target = utf8.decode(raw);
  } catch {
    throw entryError(path, "is a symlink whose target is not valid UTF-8");
  }
  if (target.startsWith("/")) throw packageError(`Symlink '${showName(path)}' points outside the package.`);
  return target;
}

type Kind = "dir" | "file" | "link";

/**
 * Where each symlink leads, resolved the way the kernel would, through the
 * package's own links (each resolved once), with unknown components taken as
 * directories (conservative: a layer merged later may provide them). Throws
 * when a link leads outside the package or is part of a loop.
 */
function checkLinks(tree: Map<string, Kind>, targets: Map<string, string>): void {
  const resolved = new Map<string, string[]>();
  const resolving = new Set<string>();
  const outside = (path: string) => packageError(`Symlink '${showName(path)}' points outside the package.`);
  const resolve = (linkPath: string): string[] => {
    const done = resolved.get(linkPath);
    if (done) return done;
    if (resolving.has(linkPath)) throw packageError(`Symlink '${showName(linkPath)}' is part of a loop.`);
    resolving.add(linkPath);
    const stack = linkPath.split("/").slice(0, -1);
    for (const part of (targets.get(linkPath) as string).split("/")) {
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (stack.length === 0) throw outside(linkPath);
        stack.pop();
        continue;
      }
      stack.push(part);
      const here = stack.join("/");
      if (tree.get(here) === "link") stack.splice(0, stack.length, ...resolve(here));
    }
    resolving.delete(linkPath);
    resolved.set(linkPath, stack);
    return stack;
  };
  for (const path of targets.keys()) resolve(path);
}

/**
 * Read and validate a package's central directory into a plan. Nothing is
 * inflated but symlink targets. The caller closes `plan.zip`.
 */
export async function readPackage(buf: Buffer, limits: Limits): Promise<PackagePlan> {
  if (buf.length === 0) throw emptyError();
  const zip = await openZip(buf);
  try {
    if (zip.entryCount > limits.unzippedFiles) {
      throw packageError(
        `The package has ${zip.entryCount} entries; at most ${limits.unzippedFiles} are allowed.`,
      );
    }
    const entries: Entry[] = [];
    await new Promise<void>((resolve, reject) => {
      zip.on("error", (err: unknown) => reject(zipError(err)));
      zip.on("end", () => resolve());
      zip.on("entry", (entry: Entry) => {
        entries.push(entry);
        zip.readEntry();
      });
      zip.readEntry();
    });
    checkNoOverlap(entries);
    const tree = new Map<string, Kind>();
    const files: PlannedFile[] = [];
    const linkEntries: { path: string; entry: Entry }[] = [];
    let declared = 0;
    for (const entry of entries) {
      const { path, dirName } = parseName(entry.fileNameRaw);
      const mode = entryMode(entry);
      const kind: Kind =
        dirName || (mode & S_IFMT) === S_IFDIR ? "dir" : (mode & S_IFMT) === S_IFLNK ? "link" : "file";
      if (path === "") {
        if (kind === "dir") continue;
        throw entryError(entry.fileNameRaw, "has an empty name");
      }
      const seen = tree.get(path);
      // The same directory listed twice is harmless; any other repeated name is not.
      if (seen !== undefined && !(seen === "dir" && kind === "dir")) {
        throw seen === "dir" || kind === "dir"
          ? entryError(path, "is both a file and a directory")
          : entryError(path, "appears more than once");
      }
      tree.set(path, kind);
      if (kind === "dir") continue;
      declared += entry.uncompressedSize;
      // The headers' sizes first, so an honest bomb is refused without inflating it.
      if (declared > limits.unzippedBytes) throw tooBigError(limits);
      if (kind === "link") linkEntries.push({ path, entry });
      else files.push({ path, mode: mode & 0o111 ? 0o755 : 0o644, entry });
    }
    if (files.length + linkEntries.length === 0) throw emptyError();
    // Every proper prefix of a path must be a directory: never a file, never a link.
    for (const path of [...tree.keys()]) {
      let at = path.indexOf("/");
      while (at !== -1) {
        const prefix = path.slice(0, at);
        const kind = tree.get(prefix);
        if (kind === "file") throw entryError(prefix, "is both a file and a directory");
        if (kind === "link")
          throw packageError(`Entry '${showName(path)}' is inside the symlink '${showName(prefix)}'.`);
        if (kind === undefined) tree.set(prefix, "dir");
        at = path.indexOf("/", at + 1);
      }
    }
    const targets = new Map<string, string>();
    for (const { path, entry } of linkEntries) targets.set(path, await readLinkTarget(zip, entry, path));
    checkLinks(tree, targets);
    const dirs = [...tree].filter(([, k]) => k === "dir").map(([p]) => p);
    // Parents before children.
    dirs.sort((a, b) => a.split("/").length - b.split("/").length);
    return { zip, dirs, files, links: [...targets].map(([path, target]) => ({ path, target })) };
  } catch (err) {
    zip.close();
    throw err;
  }
}

/**
 * Entries whose data overlap (the "overlapping files" zip bomb reuses one
 * compressed block for many entries) are refused: each entry's local header
 * and data must end before the next one starts.
 */
function checkNoOverlap(entries: Entry[]): void {
  const sorted = [...entries].sort((a, b) => a.relativeOffsetOfLocalHeader - b.relativeOffsetOfLocalHeader);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as Entry;
    const next = sorted[i] as Entry;
    if (
      prev.relativeOffsetOfLocalHeader + ZIP_LOCAL_HEADER_BYTES + prev.compressedSize >
      next.relativeOffsetOfLocalHeader
    ) {
      throw packageError("Its entries overlap each other.");
    }
  }
}

/** Counts the bytes inflation really produces, across a package, against the limit. */
export class ByteBudget {
  used = 0;
  constructor(private readonly limits: Limits) {}
  take(n: number): void {
    this.used += n;
    if (this.used > this.limits.unzippedBytes) throw tooBigError(this.limits);
  }
}

/**
 * Inflate one file entry, passing each chunk to `onChunk`, counting real bytes
 * against the budget and checking the CRC-32 (yauzl checks the size).
 */
export async function inflateEntry(
  zip: ZipFile,
  file: PlannedFile,
  budget: ByteBudget,
  onChunk: (chunk: Buffer) => Promise<void> | void,
): Promise<void> {
  const stream = await openEntry(zip, file.entry);
  let crc = 0;
  try {
    for await (const c of stream) {
      const chunk = c as Buffer;
      budget.take(chunk.length);
      crc = crc32(chunk, crc);
      await onChunk(chunk);
    }
  } catch (err) {
    stream.destroy();
    throw zipError(err);
  }
  if (crc !== file.entry.crc32 >>> 0) throw unzipError();
}

/** Validate an uploaded package and compute its content address. */
export async function inspectPackage(buf: Buffer, limits: Limits): Promise<CodePackage> {
  const plan = await readPackage(buf, limits);
  const budget = new ByteBudget(limits);
  try {
    for (const link of plan.links) budget.take(Buffer.byteLength(link.target));
    // Inflate every file once: damaged data (bad deflate stream, wrong size or CRC) and bombs whose
    // headers lie are refused at upload, not discovered when the package is extracted.
    for (const file of plan.files) await inflateEntry(plan.zip, file, budget, () => {});
  } finally {
    plan.zip.close();
  }
  const digest = createHash("sha256").update(buf).digest();
  return {
    sha256: digest.toString("hex"),
    sha256Base64: digest.toString("base64"),
    size: buf.length,
    unzippedSize: budget.used,
  };
}
