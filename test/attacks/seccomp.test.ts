/**
 * Defence in depth inside a bwrap sandbox: the seccomp filter refuses new (user) namespaces,
 * io_uring, the kernel keyring, ptrace and the mount family, while ordinary work (child processes,
 * threads, Node and Python) still runs.
 */
import { CreateFunctionCommand, type Runtime, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seccompFilter } from "../../src/sandbox/seccomp.js";
import { invoke } from "../helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "../helpers/server.js";
import { zipEntries } from "../helpers/zip.js";

/** Each attempt: the syscall's result and errno, as the function saw them. */
const PYTHON_PROBE = `import ctypes, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def attempt(fn):
    ctypes.set_errno(0)
    r = fn()
    return [int(r), os.strerror(ctypes.get_errno()) if r < 0 else ""]

def handler(event, context):
    params = ctypes.create_string_buffer(120)
    out = {
        "unshare(CLONE_NEWUSER)": attempt(lambda: libc.unshare(0x10000000)),
        "unshare(CLONE_NEWNET)": attempt(lambda: libc.unshare(0x40000000)),
        "unshare(CLONE_NEWNS)": attempt(lambda: libc.unshare(0x00020000)),
        "io_uring_setup": attempt(lambda: libc.syscall(425, 4, params)),
        "keyctl": attempt(lambda: libc.syscall(250, 0, -3, 0, 0, 0)),
        "add_key": attempt(lambda: libc.syscall(248, b"user", b"k", b"v", 1, -3)),
        "ptrace(TRACEME)": attempt(lambda: libc.syscall(101, 0, 0, 0, 0)),
        "mount": attempt(lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
        "bpf": attempt(lambda: libc.syscall(321, 0, 0, 0)),
        "perf_event_open": attempt(lambda: libc.syscall(298, 0, 0, -1, -1, 0)),
        "userfaultfd": attempt(lambda: libc.syscall(323, 0)),
        "setns": attempt(lambda: libc.syscall(308, 0, 0)),
        # clone(CLONE_NEWUSER | SIGCHLD) with no stack: refused before it could fork.
        "clone(CLONE_NEWUSER)": attempt(lambda: libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)),
    }
    cmd = subprocess.run(["unshare", "-U", "true"], capture_output=True, text=True)
    out["unshare -U (command)"] = [cmd.returncode, cmd.stderr.strip()]
    # Ordinary work: a child process, threads, a fork.
    out["child"] = subprocess.run(["/bin/sh", "-c", "echo child ok"], capture_output=True, text=True).stdout.strip()
    box = []
    threads = [threading.Thread(target=lambda: box.append(1)) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    out["threads"] = len(box)
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return out
`;

const NODE_WORK = `const { execFileSync } = require("node:child_process");
const { Worker } = require("node:worker_threads");
exports.handler = async () => {
  const child = execFileSync("/bin/sh", ["-c", "echo from a child"]).toString().trim();
  const fromWorker = await new Promise((resolve, reject) => {
    const w = new Worker("require('node:worker_threads').parentPort.postMessage(6 * 7)", { eval: true });
    w.once("message", resolve);
    w.once("error", reject);
  });
  const fs = require("node:fs");
  fs.writeFileSync("/tmp/x", "written");
  return { child, fromWorker, file: fs.readFileSync("/tmp/x", "utf8") };
};`;

let server: TestServer;

async function deploy(name: string, runtime: Runtime, file: string, content: string): Promise<void> {
  await server.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: runtime,
      Handler: "index.handler",
      Role: ROLE,
      Timeout: 30,
      Code: { ZipFile: await zipEntries([{ name: file, content }]) },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
    { FunctionName: name },
  );
}

beforeAll(async () => {
  server = await startServer({ sandbox: "bwrap" });
});
afterAll(async () => {
  await server?.stop();
});

describe("seccomp inside a bwrap sandbox", () => {
  it("is a valid BPF program for this machine", () => {
    const filter = seccompFilter();
    expect(filter).toBeDefined();
    expect((filter as Buffer).length % 8).toBe(0);
    expect(seccompFilter("arm64")).toBeUndefined();
  });

  it("refuses namespaces, io_uring, keyctl, ptrace, mount, bpf; a Python function still forks, threads and spawns", async () => {
    await deploy("py-probe", "python3.11", "index.py", PYTHON_PROBE);
    const r = await invoke(server.lambda, "py-probe");
    expect(r.functionError).toBeUndefined();
    const out = r.json as Record<string, unknown>;
    for (const call of [
      "unshare(CLONE_NEWUSER)",
      "unshare(CLONE_NEWNET)",
      "unshare(CLONE_NEWNS)",
      "io_uring_setup",
      "keyctl",
      "add_key",
      "ptrace(TRACEME)",
      "mount",
      "bpf",
      "perf_event_open",
      "userfaultfd",
      "setns",
      "clone(CLONE_NEWUSER)",
    ]) {
      expect([call, out[call]]).toEqual([call, [-1, "Operation not permitted"]]);
    }
    const [code, stderr] = out["unshare -U (command)"] as [number, string];
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/Operation not permitted/);
    expect(out.child).toBe("child ok");
    expect(out.threads).toBe(8);
    expect(out.fork).toBe(7);
  });

  it("lets a Node function spawn children, run worker threads and write /tmp", async () => {
    await deploy("node-work", "nodejs20.x", "index.js", NODE_WORK);
    const r = await invoke(server.lambda, "node-work");
    expect(r.json).toEqual({ child: "from a child", fromWorker: 42, file: "written" });
  });
});
