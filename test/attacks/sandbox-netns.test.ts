/**
 * Attack: the pooled network namespaces (a veth pair per sandbox, one host-side NAT; see
 * src/sandbox/netns-pool.ts). A function reaches for the host through its own gateway (the veth's
 * host side), for a host service bound to 0.0.0.0 through every host address, for another
 * sandbox's address; a host process reaches into a sandbox. Every one must fail. A server killed
 * with -9 leaves no namespace, veth or claim behind; `--sandbox-network isolated-slirp` still gives
 * the slirp4netns path. A namespace index made again keeps none of its last holder's NAT entries.
 * (Outbound reach through the NAT: sandbox-network.test.ts's outside host.)
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NETNS_SCRIPT, poolAddresses } from "../../src/sandbox/netns-pool.js";
import { eventually, instanceOf } from "../helpers/cgroups.js";
import { buildAsync, type ChildServer, startChild } from "../helpers/child-server.js";
import { invoke } from "../helpers/invoke.js";
import { createInlineFunction, lambdaClient, startServer, type TestServer } from "../helpers/server.js";

/**
 * `{targets}`: tries each [host, port] ("connected" or the reason it did not); `{listen}`: keeps a
 * TCP server on 0.0.0.0:PORT; every answer tells the namespace's own address and its gateway.
 */
const PROBE = `const net = require("node:net");
const os = require("node:os");
const fs = require("node:fs");
let server;
const tryOne = (host, port) => new Promise((resolve) => {
  const s = net.connect({ host, port });
  const done = (r) => { s.destroy(); resolve(r); };
  s.setTimeout(2000, () => done("timeout"));
  s.once("connect", () => done("connected"));
  s.once("error", (e) => done(e.code));
});
function gateway() {
  for (const line of fs.readFileSync("/proc/net/route", "utf8").split("\\n").slice(1)) {
    const f = line.trim().split(/\\s+/);
    if (f[1] === "00000000" && f[2]) return Buffer.from(f[2], "hex").reverse().join(".");
  }
}
exports.handler = async (e) => {
  if (e.listen && !server) {
    server = net.createServer((s) => s.end("hello from a sandbox\\n"));
    await new Promise((r) => server.listen(e.listen, "0.0.0.0", r));
  }
  const out = {};
  await Promise.all((e.targets ?? []).map(async ([host, port]) => { out[host + ":" + port] = await tryOne(host, port); }));
  const address = Object.values(os.networkInterfaces()).flat().find((a) => a.family === "IPv4" && !a.internal)?.address;
  return { address, gateway: gateway(), out };
};`;

interface ProbeAnswer {
  address?: string;
  gateway?: string;
  out: Record<string, string>;
}

async function deployProbe(lambda: LambdaClient, name: string): Promise<void> {
  await createInlineFunction(lambda, name, PROBE, { Timeout: 30 });
}

async function probe(lambda: LambdaClient, name: string, event: object): Promise<ProbeAnswer> {
  return (await invoke(lambda, name, event)).json as ProbeAnswer;
}

function hostIPv4s(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === "IPv4" && !a.internal)
    .map((a) => a?.address as string);
}

/** The pool's claims (index → instance id) on this machine. */
function claimsOf(instance: string): number[] {
  const dir = "/run/lambent/netns";
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => {
      try {
        return readFileSync(join(dir, n), "utf8").trim() === instance;
      } catch {
        return false;
      }
    })
    .map(Number);
}

function namespaceLeft(index: number): boolean {
  return existsSync(`/run/netns/lambent-${index}`) || existsSync(`/proc/sys/net/ipv4/conf/lmb${index}`);
}

function hostConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (r: string) => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(2000, () => done("timeout"));
    s.once("connect", () => done("connected"));
    s.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

let server: TestServer;
let wildcard: { server: Server; port: number };
const LISTEN_PORT = 7777;

beforeAll(async () => {
  wildcard = await new Promise((resolve) => {
    const s = createServer((socket) => {
      // A probe that resets its connection must not become an unhandled error here.
      socket.on("error", () => {});
      socket.end("hello from the host\n");
    });
    s.listen(0, "0.0.0.0", () => {
      const a = s.address();
      resolve({ server: s, port: typeof a === "object" && a ? a.port : 0 });
    });
  });
  server = await startServer({ sandbox: "bwrap" });
  await deployProbe(server.lambda, "probe");
  await deployProbe(server.lambda, "neighbour");
}, 120_000);

afterAll(async () => {
  await server?.stop();
  wildcard?.server.close();
});

describe("pooled sandbox network namespaces", { timeout: 60_000 }, () => {
  it("each sandbox has its own address from the pool, routed via the veth's host side", async () => {
    const a = await probe(server.lambda, "probe", {});
    const b = await probe(server.lambda, "neighbour", { listen: LISTEN_PORT });
    expect(a.address).toMatch(/^100\.72\.\d+\.\d+$/);
    expect(b.address).toMatch(/^100\.72\.\d+\.\d+$/);
    expect(a.address).not.toBe(b.address);
    expect(a.gateway).toMatch(/^100\.72\.\d+\.\d+$/);
  });

  it("cannot reach the host through its gateway, nor a 0.0.0.0 service through any host address", async () => {
    const { gateway } = await probe(server.lambda, "probe", {});
    const apiPort = Number(new URL(server.url).port);
    // The host's addresses include every pooled namespace's gateway (its own among them).
    const hosts = [...new Set([gateway as string, ...hostIPv4s()])];
    const targets = hosts.flatMap((host) => [wildcard.port, apiPort, 5432, 22].map((port) => [host, port]));
    const r = await probe(server.lambda, "probe", { targets });
    expect(Object.keys(r.out)).toHaveLength(targets.length);
    expect(Object.entries(r.out).filter(([, outcome]) => outcome === "connected")).toEqual([]);
    // A host process does reach the wildcard service: the probe is not failing for another reason.
    expect(await hostConnect("127.0.0.1", wildcard.port)).toBe("connected");
  });

  it("cannot reach another sandbox, and no host process can reach into one", async () => {
    const neighbour = await probe(server.lambda, "neighbour", { listen: LISTEN_PORT });
    const address = neighbour.address as string;
    // The listener is up: the neighbour reaches itself.
    const self = await probe(server.lambda, "neighbour", { targets: [[address, LISTEN_PORT]] });
    expect(self.out[`${address}:${LISTEN_PORT}`]).toBe("connected");
    const r = await probe(server.lambda, "probe", { targets: [[address, LISTEN_PORT]] });
    expect(r.out[`${address}:${LISTEN_PORT}`]).not.toBe("connected");
    expect(await hostConnect(address, LISTEN_PORT)).not.toBe("connected");
  });

  it("refuses slirp4netns's addresses (10.0.2.2, 10.0.2.3): nothing routed out for them", async () => {
    const r = await probe(server.lambda, "probe", {
      targets: [
        ["10.0.2.2", 80],
        ["10.0.2.3", 53],
      ],
    });
    // Refused by the host's rule at once (a reset), not sent anywhere and timed out.
    expect(r.out["10.0.2.2:80"]).toBe("ECONNREFUSED");
    expect(r.out["10.0.2.3:53"]).toBe("ECONNREFUSED");
  });
});

describe("a namespace index used again", { timeout: 60_000 }, () => {
  it("starts with none of the last holder's NAT entries (conntrack): no late reply reaches the new one", () => {
    const sh = (args: string[]) => spawnSync("bash", [NETNS_SCRIPT, ...args], { encoding: "utf8" });
    const entries = (address: string) =>
      spawnSync("conntrack", ["-L", "-s", address], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    // A free index, claimed as a server would (so no server of a parallel test takes it meanwhile).
    let index = 30_000 + Math.floor(Math.random() * 2000);
    for (; ; index++) {
      try {
        closeSync(openSync(`/run/lambent/netns/${index}`, "wx"));
        break;
      } catch {}
    }
    const { gateway, address } = poolAddresses(index);
    try {
      expect(sh(["create", String(index), gateway, address]).status).toBe(0);
      // A UDP flow out through the NAT (TEST-NET-2: nobody answers; the entry stays ~30 s).
      const send = spawnSync("ip", [
        "netns",
        "exec",
        `lambent-${index}`,
        "bash",
        "-c",
        "echo hi >/dev/udp/198.51.100.7/5353",
      ]);
      expect(send.status).toBe(0);
      expect(entries(address).some((e) => e.includes("dport=5353"))).toBe(true);
      // The namespace goes; the index is made again (as a claim of another server would).
      expect(sh(["create", String(index), gateway, address]).status).toBe(0);
      expect(entries(address)).toEqual([]);
    } finally {
      sh(["delete", String(index)]);
    }
  });
});

describe("a killed server's namespaces", { timeout: 180_000 }, () => {
  const dirs: string[] = [];
  const children: ChildServer[] = [];
  beforeAll(() => buildAsync(), 300_000);
  afterAll(async () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) await c.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("are swept by its watchdog after a kill -9: no namespace, veth or claim is left", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "lambent-netns-"));
    dirs.push(dataDir);
    const child = await startChild(dataDir, ["--sandbox", "bwrap"]);
    children.push(child);
    const lambda = lambdaClient(child.url);
    try {
      await deployProbe(lambda, "probe");
      const r = await probe(lambda, "probe", {});
      expect(r.address).toMatch(/^100\.72\./);
      const claimed = claimsOf(instanceOf(dataDir));
      // The environment's namespace and the pool's ready ones.
      expect(claimed.length).toBeGreaterThan(1);
      expect(claimed.every(namespaceLeft)).toBe(true);
      await child.kill9();
      await eventually(
        () => claimsOf(instanceOf(dataDir)).length === 0 && !claimed.some(namespaceLeft),
        30_000,
        "the watchdog to delete the namespaces",
      );
    } finally {
      lambda.destroy();
    }
  });

  it("--sandbox-network isolated-slirp keeps the slirp4netns path (no pooled namespace)", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "lambent-slirp-"));
    dirs.push(dataDir);
    const child = await startChild(dataDir, ["--sandbox", "bwrap", "--sandbox-network", "isolated-slirp"]);
    children.push(child);
    const lambda = lambdaClient(child.url);
    try {
      await deployProbe(lambda, "probe");
      const r = await probe(lambda, "probe", { targets: [["10.0.2.2", 80]] });
      expect(r.address).toBe("10.0.2.100");
      expect(r.out["10.0.2.2:80"]).not.toBe("connected");
      expect(claimsOf(instanceOf(dataDir))).toEqual([]);
      expect(await child.stop()).toBe(0);
    } finally {
      lambda.destroy();
    }
  });
});
