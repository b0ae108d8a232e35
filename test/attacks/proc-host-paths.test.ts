/**
 * /proc shows no host paths: a function reads every /proc file that used to name the data dir, the
 * repository (Lambent's runtime scripts), the runtime cache or the server's sockets — the mount
 * table's bind sources, pid 1's command line (bwrap's arguments), its cgroup, its environment, the
 * Unix sockets of its network namespace — and none of them does any more.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CreateFunctionCommand, type Runtime, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultRuntimeCache } from "../../src/runtimes/store.js";
import { invoke } from "../helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "../helpers/server.js";
import { zipEntries } from "../helpers/zip.js";

const FILES = [
  "/proc/self/mountinfo",
  "/proc/self/mounts",
  "/proc/1/mountinfo",
  "/proc/1/cmdline",
  "/proc/1/environ",
  "/proc/self/cmdline",
  "/proc/self/environ",
  "/proc/self/cgroup",
  "/proc/1/cgroup",
  "/proc/net/unix",
];

const NODE_PROBE = `const fs = require("node:fs");
exports.handler = async (event) => {
  const out = {};
  const pids = fs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p));
  for (const file of [...event.files, ...pids.map((p) => "/proc/" + p + "/cmdline")]) {
    try { out[file] = fs.readFileSync(file, "latin1"); } catch (e) { out[file] = "unreadable: " + e.code; }
  }
  return out;
};`;

const PYTHON_PROBE = `import os
def handler(event, context):
    out = {}
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    for f in event["files"] + ["/proc/%s/cmdline" % p for p in pids]:
        try:
            with open(f, "rb") as h:
                out[f] = h.read().decode("latin-1")
        except OSError as e:
            out[f] = "unreadable: %s" % e.strerror
    return out
`;

const REPOSITORY = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

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

/** Every string a function must not learn about the host. */
function forbidden(): string[] {
  const paths = [server.dataDir, REPOSITORY, defaultRuntimeCache()];
  return [
    ...new Set([...paths, ...paths.map((p) => realpathSync(p))]),
    // The server's own directories and socket names.
    "run/rapi",
    "run/sandbox",
    ".api.sock",
    "host-ports",
  ];
}

function leaks(files: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [file, text] of Object.entries(files)) {
    for (const needle of forbidden()) if (text.includes(needle)) found.push(`${file} shows ${needle}`);
  }
  return found;
}

beforeAll(async () => {
  server = await startServer({ sandbox: "bwrap" });
});
afterAll(async () => {
  await server?.stop();
});

describe("/proc inside a bwrap sandbox", () => {
  it("shows a Node function no data dir, repository, runtime cache or socket path", async () => {
    await deploy("proc-node", "nodejs20.x", "index.js", NODE_PROBE);
    const r = await invoke(server.lambda, "proc-node", { files: FILES });
    expect(r.functionError).toBeUndefined();
    const files = r.json as Record<string, string>;
    // The probe did read them (an unreadable mount table would prove nothing).
    expect(files["/proc/self/mountinfo"]).toContain(" /var/task ");
    expect(files["/proc/self/mounts"]).toContain(" /tmp ");
    expect(files["/proc/1/cmdline"]).toMatch(/bwrap/);
    expect(files["/proc/self/environ"]).toContain("AWS_LAMBDA_FUNCTION_NAME=proc-node");
    expect(leaks(files)).toEqual([]);
    // Its cgroup namespace is rooted at its own cgroup.
    expect(files["/proc/self/cgroup"]).not.toContain("lambent");
    for (const line of files["/proc/self/cgroup"]?.trim().split("\n") ?? []) expect(line).toMatch(/:\/$/);
  });

  it("shows a Python function on a runtime root filesystem none either", async () => {
    await deploy("proc-python", "python3.13", "index.py", PYTHON_PROBE);
    const r = await invoke(server.lambda, "proc-python", { files: FILES });
    expect(r.functionError).toBeUndefined();
    const files = r.json as Record<string, string>;
    expect(files["/proc/self/mountinfo"]).toContain(" /usr ");
    expect(leaks(files)).toEqual([]);
  });
});
