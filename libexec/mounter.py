"""Lambent's mount helper (src/sandbox/mounts.ts): one long-lived process per server that makes the
mount(2) and umount2(2) calls of sandbox starts, stem-cell adoptions and teardowns, so none of them
forks the server into a `mount` or `umount` (each such exec costs a fork of the server and several
milliseconds of CPU; a call here costs microseconds).

Requests come on stdin, one JSON object a line; each gets one line on stdout, in order: `{}` when
done, `{"error": "..."}` when the kernel refused it. Nothing else is read or written; the helper
exits at the end of its input (its server gone).

  {"op": "bind", "source": S, "target": T}        mount --bind S T
  {"op": "shared", "target": T}                   mount --make-shared T
  {"op": "overlay", "lower": L, "empty": E, "target": T}
      a read-only overlay of L (E: the empty second layer) on T, both layers named /dev/fd/N
      (so the mount's options name no host path), mounted ro,nosuid,nodev
  {"op": "umount", "target": T}                   umount -l T
"""

import ctypes
import json
import os
import sys

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
MS_SHARED = 1 << 20
MNT_DETACH = 2

# The process's own symbols include libc's (no ldconfig lookup at start).
libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def path(value):
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
        raise ValueError("not an absolute path: %r" % (value,))
    return os.fsencode(value)


def check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, "%s: %s" % (what, os.strerror(errno)))


def mount(source, target, fstype, flags, data, what):
    check(libc.mount(source, target, fstype, flags, data), what)


def handle(request):
    op = request.get("op")
    target = path(request.get("target"))
    if op == "bind":
        mount(path(request.get("source")), target, None, MS_BIND, None, "bind")
    elif op == "shared":
        mount(None, target, None, MS_SHARED, None, "make-shared")
    elif op == "overlay":
        lower = os.open(path(request.get("lower")), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            empty = os.open(path(request.get("empty")), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                data = ("lowerdir=/dev/fd/%d:/dev/fd/%d" % (lower, empty)).encode()
                mount(b"overlay", target, b"overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, data, "overlay")
            finally:
                os.close(empty)
        finally:
            os.close(lower)
    elif op == "umount":
        check(libc.umount2(target, MNT_DETACH), "umount")
    else:
        raise ValueError("unknown op %r" % (op,))


def main():
    out = sys.stdout
    for line in sys.stdin:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
            handle(request)
            answer = {}
        except (OSError, ValueError, TypeError) as error:
            answer = {"error": str(error)}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
