/**
 * /tmp is capped at EphemeralStorage whatever the memory size: a 128 MB function with 512 MB of
 * ephemeral storage writes 300 MB to /tmp (a tmpfs would have been charged to its memory cgroup and
 * OOM-killed it), and writing past the cap gets ENOSPC, which the handler catches. Once the
 * environments are torn down no loop device or disk image is left.
 */
import { CreateFunctionCommand, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scratchLeftovers } from "../helpers/cgroups.js";
import { invoke } from "../helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "../helpers/server.js";
import { zipEntries } from "../helpers/zip.js";

const FILL = `const fs = require("node:fs");
const MiB = 1024 * 1024;
function fill(path, limitMiB) {
  const chunk = Buffer.alloc(MiB, 7);
  const fd = fs.openSync(path, "w");
  let written = 0;
  try {
    while (limitMiB === undefined || written < limitMiB * MiB) written += fs.writeSync(fd, chunk);
    fs.fsyncSync(fd);
    return { written };
  } catch (e) {
    return { written, code: e.code };
  } finally {
    fs.closeSync(fd);
  }
}
exports.handler = async () => {
  // The last mount on /tmp is the one seen (a stem cell's disk is mounted over its placeholder).
  const mount = fs.readFileSync("/proc/self/mounts", "utf8").split("\\n").filter((l) => l.split(" ")[1] === "/tmp").pop();
  const first = fill("/tmp/first", 300);
  const rest = fill("/tmp/rest");
  const { bsize, blocks } = fs.statfsSync("/tmp");
  return { mount, first, rest, sizeMiB: Math.round((bsize * blocks) / MiB), entries: fs.readdirSync("/tmp") };
};`;

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ sandbox: "bwrap" });
});
afterAll(async () => {
  await server?.stop();
});

describe("/tmp in a bwrap sandbox", () => {
  it("takes 300 MB at 128 MB of memory, answers ENOSPC at EphemeralStorage, and leaves nothing behind", async () => {
    await server.lambda.send(
      new CreateFunctionCommand({
        FunctionName: "fill-tmp",
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: ROLE,
        Timeout: 120,
        MemorySize: 128,
        EphemeralStorage: { Size: 512 },
        Code: { ZipFile: await zipEntries([{ name: "index.js", content: FILL }]) },
      }),
    );
    await waitUntilFunctionActiveV2(
      { client: server.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
      { FunctionName: "fill-tmp" },
    );
    // Served by a stem cell: its disk is mounted into the running sandbox when it is adopted (the
    // driver's own tests cover a sandbox started with its disk).
    const stems = server.platform.worker.stemCells;
    await stems.whenReady("nodejs20.x");
    const taken = stems.stats.taken;
    const r = await invoke(server.lambda, "fill-tmp");
    expect(stems.stats.taken).toBe(taken + 1);
    expect(r.functionError).toBeUndefined();
    const out = r.json as {
      mount: string;
      first: { written: number; code?: string };
      rest: { written: number; code?: string };
      sizeMiB: number;
      entries: string[];
    };
    // Its own disk, not a tmpfs.
    expect(out.mount).toMatch(/^\/dev\/loop\d+ \/tmp ext4 /);
    expect(out.first).toEqual({ written: 300 * 1024 * 1024 });
    expect(out.rest.code).toBe("ENOSPC");
    expect(out.sizeMiB).toBeLessThanOrEqual(512);
    expect(out.first.written + out.rest.written).toBeGreaterThan(450 * 1024 * 1024);
    expect(out.entries.sort()).toEqual(["first", "rest"]);
    // While the environment lives, its disk is a loop device over an image in the data dir.
    expect(scratchLeftovers(server.dataDir).length).toBeGreaterThan(0);

    await server.platform.stop();
    expect(scratchLeftovers(server.dataDir)).toEqual([]);
  });
});
