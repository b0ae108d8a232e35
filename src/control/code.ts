/**
 * Deployment packages: validation of an uploaded zip (corrupt, empty, unsafe
 * paths, escaping symlinks, unzipped size) and extraction, once per code
 * hash, into the data dir's code cache.
 */
import { createHash, randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat, symlink } from "node:fs/promises";
import { dirname, isAbsolute, join, normalize, posix } from "node:path";
import { pipeline } from "node:stream/promises";
import yauzl, { type Entry, type ZipFile } from "yauzl";
import type { Limits } from "../config.js";
import { InvalidParameterValue } from "../errors.js";

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;

export interface CodePackage {
  /** Hex sha256 of the zip (the content address). */
  sha256: string;
  /** The same digest in base64, as Lambda reports `CodeSha256`. */
  sha256Base64: string;
  size: number;
  unzippedSize: number;
}

const unzipError = () =>
  InvalidParameterValue("Could not unzip uploaded file. Please check your file, then try to upload again.");

const emptyError = () => InvalidParameterValue("Uploaded file must be a non-empty zip");

const absolutePathError = (name: string) =>
  InvalidParameterValue(`Invalid deployment package: entry '${name}' has an absolute path.`);

const outsidePathError = (name: string) =>
  InvalidParameterValue(`Invalid deployment package: entry '${name}' points outside the package.`);

/**
 * yauzl checks entry names itself (absolute paths, `..`) before we see the
 * entry; turn its errors into the same messages our own checks give, and
 * anything else into Lambda's "could not unzip".
 */
function zipError(err: unknown): Error {
  const message = err instanceof Error ? err.message : "";
  if (message.startsWith("absolute path: "))
    return absolutePathError(message.slice("absolute path: ".length));
  if (message.startsWith("invalid relative path: ")) {
    return outsidePathError(message.slice("invalid relative path: ".length));
  }
  return unzipError();
}

function openZip(buf: Buffer): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(
      buf,
      { lazyEntries: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: false },
      (err, zip) => (err || !zip ? reject(zipError(err)) : resolve(zip)),
    );
  });
}

function entryMode(entry: Entry): number {
  return (entry.externalFileAttributes >>> 16) & 0xffff;
}

function isSymlink(entry: Entry): boolean {
  return (entryMode(entry) & S_IFMT) === S_IFLNK;
}

function isDirectory(entry: Entry): boolean {
  return entry.fileName.endsWith("/") || (entryMode(entry) & S_IFMT) === S_IFDIR;
}

/** The entry's path, or an error if it is absolute or climbs out of the package. */
function safePath(name: string): string {
  const unix = name.replace(/\\/g, "/");
  if (unix.startsWith("/") || /^[a-zA-Z]:/.test(unix)) throw absolutePathError(name);
  const norm = posix.normalize(unix);
  if (norm === ".." || norm.startsWith("../")) throw outsidePathError(name);
  return norm;
}

function readEntry(zip: ZipFile, entry: Entry): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) return reject(unzipError());
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("error", () => reject(unzipError()));
      stream.on("end", () => resolve(Buffer.concat(chunks)));
    });
  });
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

function crc32(crc: number, chunk: Buffer): number {
  let c = ~crc;
  for (let i = 0; i < chunk.length; i++)
    c = (CRC_TABLE[(c ^ (chunk[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

/** Inflate an entry without keeping it, checking its size (yauzl) and CRC-32 (here). */
function verifyEntry(zip: ZipFile, entry: Entry): Promise<void> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) return reject(unzipError());
      let crc = 0;
      stream.on("data", (c: Buffer) => {
        crc = crc32(crc, c);
      });
      stream.on("error", () => reject(unzipError()));
      stream.on("end", () => (crc === entry.crc32 >>> 0 ? resolve() : reject(unzipError())));
    });
  });
}

function checkSymlink(entryPath: string, target: string): void {
  if (posix.isAbsolute(target)) {
    throw InvalidParameterValue(
      `Invalid deployment package: symlink '${entryPath}' points outside the package.`,
    );
  }
  const resolved = posix.normalize(posix.join(posix.dirname(entryPath), target));
  if (resolved === ".." || resolved.startsWith("../")) {
    throw InvalidParameterValue(
      `Invalid deployment package: symlink '${entryPath}' points outside the package.`,
    );
  }
}

/**
 * Walk every entry of a zip. `onEntry` gets the safe relative path; the walk
 * rejects with Lambda's errors for anything unsafe or corrupt.
 */
async function walkZip(
  buf: Buffer,
  onEntry: (zip: ZipFile, entry: Entry, path: string) => Promise<void>,
): Promise<void> {
  const zip = await openZip(buf);
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on("error", (err: unknown) => reject(zipError(err)));
      zip.on("end", () => resolve());
      zip.on("entry", (entry: Entry) => {
        let path: string;
        try {
          path = safePath(entry.fileName);
        } catch (err) {
          return reject(err);
        }
        onEntry(zip, entry, path).then(() => zip.readEntry(), reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
}

/** Validate an uploaded package and compute its content address. */
export async function inspectPackage(
  buf: Buffer,
  limits: Limits,
  extraUnzippedBytes = 0,
): Promise<CodePackage> {
  if (buf.length === 0) throw emptyError();
  let unzippedSize = 0;
  let files = 0;
  const tooBig = () =>
    InvalidParameterValue(`Unzipped size must be smaller than ${limits.unzippedBytes} bytes`);
  await walkZip(buf, async (zip, entry, path) => {
    if (isDirectory(entry)) return;
    files++;
    unzippedSize += entry.uncompressedSize;
    // Checked before reading, so a zip bomb is refused without inflating it.
    if (unzippedSize + extraUnzippedBytes > limits.unzippedBytes) throw tooBig();
    if (isSymlink(entry)) checkSymlink(path, (await readEntry(zip, entry)).toString("utf8"));
    // Read every entry once: damaged data (bad deflate stream, wrong size or CRC) is refused at upload,
    // not discovered later when the package is extracted.
    else await verifyEntry(zip, entry);
  });
  if (files === 0) throw emptyError();
  const digest = createHash("sha256").update(buf).digest();
  return {
    sha256: digest.toString("hex"),
    sha256Base64: digest.toString("base64"),
    size: buf.length,
    unzippedSize,
  };
}

/** Extract a validated zip into `dest` (which must not exist yet). */
export async function extractPackage(buf: Buffer, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  await walkZip(buf, async (zip, entry, path) => {
    const target = join(dest, path);
    if (isDirectory(entry)) {
      await mkdir(target, { recursive: true, mode: 0o755 });
      return;
    }
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    if (isSymlink(entry)) {
      const link = (await readEntry(zip, entry)).toString("utf8");
      checkSymlink(path, link);
      await symlink(link, target);
      return;
    }
    // World-readable so an unprivileged sandbox user can load it; keep the executable bit.
    const mode = 0o644 | (entryMode(entry) & 0o111 ? 0o755 : 0);
    await new Promise<void>((resolve, reject) => {
      zip.openReadStream(entry, (err, stream) => {
        if (err || !stream) return reject(unzipError());
        pipeline(stream, createWriteStream(target, { mode })).then(resolve, reject);
      });
    });
  });
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
  ) {}

  pathFor(sha256: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`bad code hash ${sha256}`);
    const p = join(this.dir, sha256);
    if (!isAbsolute(p) || normalize(p) !== p) throw new Error(`bad code path ${p}`);
    return p;
  }

  async ensure(sha256: string): Promise<string> {
    const dest = this.pathFor(sha256);
    const inFlight = this.pending.get(sha256);
    if (inFlight) return inFlight;
    const job = (async () => {
      if (await exists(dest)) return dest;
      const tmp = join(this.dir, `.tmp-${sha256}-${randomUUID()}`);
      try {
        await extractPackage(await this.loadZip(sha256), tmp);
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
