/**
 * Writing a validated package to disk, never following a link.
 *
 * Node has no openat2(RESOLVE_NO_SYMLINKS), so safety comes from the plan
 * (zip-package.ts): every path component is a directory this extraction
 * creates in a fresh directory, links are leaves and are written last, so no
 * path walked during extraction can contain a link. The writing itself is done
 * by a small child program (libexec/extract-writer.mjs) that creates
 * directories with mkdir, files with O_CREAT|O_EXCL|O_NOFOLLOW and links with
 * symlink, and — when the server runs as root — runs as an unprivileged user
 * whose only writable place is the fresh directory: a mistake in the plan can
 * then not write anywhere else. The server inflates (counting the real bytes
 * against the unzipped limit) and streams the data to the writer; afterwards
 * the tree is handed back to root and made visible with a rename.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, chown, lchown, mkdir, readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Limits } from "../config.js";
import { ByteBudget, inflateEntry, readPackage } from "./zip-package.js";

/**
 * The identity the writer runs as when the server is root: a uid of its own (neither root nor the
 * sandbox user, so a running function never owns a package being written).
 */
export const EXTRACT_USER = { uid: 992, gid: 992 } as const;

const WRITER = fileURLToPath(new URL("../../libexec/extract-writer.mjs", import.meta.url));
/** How much of the writer's stderr is kept for the error message. */
const MAX_STDERR = 4096;

/** Extract a package into `dest`, which must not exist yet (its parent must). */
export async function extractPackage(buf: Buffer, dest: string, limits: Limits): Promise<void> {
  const plan = await readPackage(buf, limits);
  try {
    await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
    // Fresh: fails if anything is there already.
    await mkdir(dest, { mode: 0o700 });
    const asRoot = process.getuid?.() === 0;
    if (asRoot) await chown(dest, EXTRACT_USER.uid, EXTRACT_USER.gid);
    const writer = new Writer(dest, asRoot);
    try {
      for (const path of plan.dirs) await writer.send("D", { path, mode: 0o755 });
      const budget = new ByteBudget(limits);
      for (const file of plan.files) {
        await writer.send("F", { path: file.path, mode: file.mode });
        await inflateEntry(plan.zip, file, budget, (chunk) => writer.frame("W", chunk));
        await writer.frame("C");
      }
      for (const link of plan.links) {
        budget.take(Buffer.byteLength(link.target));
        await writer.send("L", link);
      }
      await writer.frame("E");
      await writer.finish();
    } catch (err) {
      writer.kill();
      throw err;
    }
    if (asRoot) await ownByRoot(dest);
    // Readable by the sandbox user, as the package's own directories are.
    await chmod(dest, 0o755);
  } finally {
    plan.zip.close();
  }
}

/** Give a tree the writer made back to root, without following anything in it. */
async function ownByRoot(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    await lchown(p, 0, 0);
    if (e.isDirectory()) await ownByRoot(p);
  }
  await lchown(dir, 0, 0);
}

class Writer {
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private stderr = "";
  private failed: Error | null = null;

  constructor(cwd: string, asRoot: boolean) {
    this.child = spawn(process.execPath, [WRITER], {
      cwd,
      env: {},
      stdio: ["pipe", "ignore", "pipe"],
      ...(asRoot ? { uid: EXTRACT_USER.uid, gid: EXTRACT_USER.gid } : {}),
    });
    this.child.stderr?.on("data", (d: Buffer) => {
      if (this.stderr.length < MAX_STDERR) this.stderr += d.toString("utf8").slice(0, MAX_STDERR);
    });
    // A writer that died makes the next write fail with EPIPE: reported by finish(), never thrown here.
    this.child.stdin?.on("error", (err) => {
      this.failed ??= err;
    });
    this.exited = new Promise((resolve) => {
      this.child.once("error", (err) => {
        this.failed ??= err;
        resolve(null);
      });
      this.child.once("exit", (code) => resolve(code));
    });
  }

  send(type: string, body: object): Promise<void> {
    return this.frame(type, Buffer.from(JSON.stringify(body)));
  }

  async frame(type: string, payload: Buffer = Buffer.alloc(0)): Promise<void> {
    const stdin = this.child.stdin;
    if (!stdin || this.failed || stdin.destroyed) throw await this.failure();
    const head = Buffer.alloc(5);
    head.write(type, 0, "latin1");
    head.writeUInt32BE(payload.length, 1);
    stdin.write(head);
    if (!stdin.write(payload)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          stdin.off("drain", done);
          stdin.off("close", done);
          resolve();
        };
        stdin.on("drain", done);
        stdin.on("close", done);
      });
    }
  }

  async finish(): Promise<void> {
    this.child.stdin?.end();
    const code = await this.exited;
    if (code !== 0) throw await this.failure();
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }

  private async failure(): Promise<Error> {
    this.kill();
    await this.exited;
    const why = this.stderr.trim() || this.failed?.message || "the writer stopped";
    return new Error(`extraction failed: ${why}`);
  }
}
