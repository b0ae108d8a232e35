// The writing half of package extraction (see src/control/extraction.ts).
//
// Runs as an unprivileged user with its working directory set to a fresh,
// empty directory that it owns. The server validates the package, inflates it
// and sends this program one operation per frame on stdin; this program only
// creates what it is told to, and never follows a link:
//   - paths are relative, with no empty, "." or ".." component and no NUL;
//   - a path's parent must be a directory this process made (O_NOFOLLOW only
//     guards the last component: the kernel follows links in the others);
//   - directories are created with mkdir (fails if anything exists there);
//   - files with O_CREAT|O_EXCL|O_NOFOLLOW (fails on an existing name or link);
//   - symlinks with symlink (never follows its own name), sent last.
// Any error ends the process with status 1 and a one-line reason on stderr.
//
// Frame: 1 byte type, 4 bytes big-endian payload length, payload.
//   "D" {path, mode}   make a directory      "F" {path, mode}  open a new file
//   "W" raw bytes      append to the file    "C" (empty)       close the file
//   "L" {path, target} make a symlink        "E" (empty)       done
import { closeSync, constants, mkdirSync, openSync, symlinkSync, writeSync } from "node:fs";

const FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** Directories this process created ("" is its working directory). */
const made = new Set([""]);

function checkPath(path) {
  if (typeof path !== "string" || path.length === 0 || path.includes("\0") || path.startsWith("/"))
    fail(`refused path ${JSON.stringify(path)}`);
  const parts = path.split("/");
  for (const part of parts) {
    if (part === "" || part === "." || part === "..") fail(`refused path ${JSON.stringify(path)}`);
  }
  if (!made.has(parts.slice(0, -1).join("/")))
    fail(`refused path ${JSON.stringify(path)}: parent not made here`);
  return path;
}

function checkMode(mode) {
  if (mode !== 0o755 && mode !== 0o644) fail(`refused mode ${mode}`);
  return mode;
}

process.umask(0o022);
let fd = -1;
let done = false;
let pending = Buffer.alloc(0);

function apply(type, payload) {
  if (done) fail("data after the end");
  if (type === 0x57 /* W */) {
    if (fd < 0) fail("write without an open file");
    let off = 0;
    while (off < payload.length) off += writeSync(fd, payload, off);
    return;
  }
  if (fd >= 0 && type !== 0x43 /* C */) fail("a file is still open");
  switch (type) {
    case 0x44 /* D */:
      {
        const { path, mode } = JSON.parse(payload.toString("utf8"));
        mkdirSync(checkPath(path), { mode: checkMode(mode) });
        made.add(path);
        return;
      }
    case 0x46 /* F */:
      {
        const { path, mode } = JSON.parse(payload.toString("utf8"));
        fd = openSync(checkPath(path), FILE_FLAGS, checkMode(mode));
        return;
      }
    case 0x43 /* C */:
      if (fd < 0) fail("close without an open file");
      closeSync(fd);
      fd = -1;
      return;
    case 0x4c /* L */:
      {
        const { path, target } = JSON.parse(payload.toString("utf8"));
        if (
          typeof target !== "string" ||
          target.length === 0 ||
          target.includes("\0") ||
          target.startsWith("/")
        )
          fail("refused link target");
        symlinkSync(target, checkPath(path));
        return;
      }
    case 0x45 /* E */:
      done = true;
      return;
    default:
      fail(`unknown frame ${type}`);
  }
}

process.stdin.on("data", (chunk) => {
  try {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    while (pending.length - off >= 5) {
      const len = pending.readUInt32BE(off + 1);
      if (pending.length - off - 5 < len) break;
      apply(pending[off], pending.subarray(off + 5, off + 5 + len));
      off += 5 + len;
    }
    pending = pending.subarray(off);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
});
process.stdin.on("end", () => {
  if (!done || pending.length > 0) fail("input ended early");
  process.exit(0);
});
