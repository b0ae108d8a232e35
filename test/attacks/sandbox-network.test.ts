/**
 * Attack: a function in an isolated sandbox reaches for the host's loopback services (the platform's
 * own API, PostgreSQL, Redis, RabbitMQ, NATS, MariaDB) directly, through slirp4netns's host alias
 * 10.0.2.2, and through the host's own addresses. Every one must fail; the outside network, the
 * platform API's own channel and the host ports an operator opened must keep working.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:net";
import { networkInterfaces } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostPortsRefusal, ServerOptionError } from "../../src/config.js";
import { Platform } from "../../src/platform.js";
import { sandboxOriginOf } from "../../src/worker/platform-api.js";
import { invoke } from "../helpers/invoke.js";
import { createInlineFunction, startServer, type TestServer } from "../helpers/server.js";

/** The host's loopback services on this machine kind (see scripts/services.sh). */
const HOST_SERVICES = { postgresql: 5432, redis: 6379, rabbitmq: 5672, nats: 4222, mariadb: 3306 };

/** Tries every target at once; each ends "connected", or the reason it did not. */
const PROBE = `const net = require("node:net");
const tryOne = (host, port) => new Promise((resolve) => {
  const s = net.connect({ host, port });
  const done = (r) => { s.destroy(); resolve(r); };
  s.setTimeout(2000, () => done("timeout"));
  s.once("connect", () => done("connected"));
  s.once("error", (e) => done(e.code));
});
exports.handler = async (e) => {
  if (e.address) {
    return Object.values(require("node:os").networkInterfaces()).flat().find((a) => a.family === "IPv4" && !a.internal)?.address;
  }
  if (e.fetch) {
    const res = await fetch(e.fetch);
    return { status: res.status, body: await res.text() };
  }
  const out = {};
  await Promise.all(e.targets.map(async ([host, port]) => { out[host + ":" + port] = await tryOne(host, port); }));
  return out;
};`;

async function deployProbe(s: TestServer, name: string): Promise<void> {
  await createInlineFunction(s.lambda, name, PROBE, { Timeout: 30 });
}

function hostIPv4s(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === "IPv4" && !a.internal)
    .map((a) => a?.address as string);
}

function listen(host: string): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((socket) => socket.end("hello from the host\n"));
    server.listen(0, host, () => {
      const address = server.address();
      resolve({ server, port: typeof address === "object" && address ? address.port : 0 });
    });
  });
}

/** "The outside": an HTTP server in a network namespace of its own, behind a veth pair. */
class OutsideHost {
  readonly ns = `lbt-${randomBytes(3).toString("hex")}`;
  readonly address: string;
  private readonly hostSide: string;
  private server: ChildProcess | null = null;

  constructor() {
    const octet = 16 + ((randomBytes(1)[0] as number) % 200);
    this.address = `10.213.${octet}.2`;
    this.hostSide = `10.213.${octet}.1`;
  }

  async start(): Promise<void> {
    const veth = this.ns.replace("lbt-", "lv");
    const run = (...args: string[]) => {
      const r = spawnSync(args[0] as string, args.slice(1), { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`);
    };
    run("ip", "netns", "add", this.ns);
    run("ip", "link", "add", `${veth}h`, "type", "veth", "peer", "name", `${veth}n`);
    run("ip", "link", "set", `${veth}n`, "netns", this.ns);
    run("ip", "addr", "add", `${this.hostSide}/30`, "dev", `${veth}h`);
    run("ip", "link", "set", `${veth}h`, "up");
    run("ip", "netns", "exec", this.ns, "ip", "addr", "add", `${this.address}/30`, "dev", `${veth}n`);
    run("ip", "netns", "exec", this.ns, "ip", "link", "set", `${veth}n`, "up");
    run("ip", "netns", "exec", this.ns, "ip", "link", "set", "lo", "up");
    const code = `require("node:http").createServer((q, r) => r.end("hello from outside")).listen(8080, "${this.address}", () => console.log("up"));`;
    this.server = spawn("ip", ["netns", "exec", this.ns, process.execPath, "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.stdout?.once("data", () => resolve());
      this.server?.once("exit", (c) => reject(new Error(`outside server exited ${c}`)));
    });
  }

  async stop(): Promise<void> {
    if (this.server && this.server.exitCode === null) {
      const gone = new Promise((r) => this.server?.once("exit", r));
      this.server.kill("SIGKILL");
      await gone;
    }
    spawnSync("ip", ["netns", "del", this.ns]);
  }
}

let server: TestServer;
let outside: OutsideHost;
let wildcard: { server: Server; port: number };

beforeAll(async () => {
  outside = new OutsideHost();
  await outside.start();
  wildcard = await listen("0.0.0.0");
  server = await startServer({ sandbox: "bwrap" });
  await deployProbe(server, "probe");
});

afterAll(async () => {
  await server?.stop();
  wildcard?.server.close();
  await outside?.stop();
});

describe("isolated sandbox network", () => {
  it("cannot reach the platform API or any loopback service of the host, by any of its addresses", async () => {
    const apiPort = Number(new URL(server.url).port);
    const ports = [apiPort, ...Object.values(HOST_SERVICES), wildcard.port];
    const hosts = ["127.0.0.1", "10.0.2.2", "localhost", ...hostIPv4s()];
    const targets = hosts.flatMap((host) => ports.map((port) => [host, port]));
    const r = (await invoke(server.lambda, "probe", { targets })).json as Record<string, string>;
    expect(Object.keys(r)).toHaveLength(targets.length);
    const reached = Object.entries(r).filter(([, outcome]) => outcome === "connected");
    expect(reached).toEqual([]);
    // A host process does reach them: the probe is not failing for some other reason.
    expect(spawnSync("bash", ["-c", `exec 3<>/dev/tcp/127.0.0.1/${HOST_SERVICES.redis}`]).status).toBe(0);
  });

  it("reaches the outside network", async () => {
    const r = (await invoke(server.lambda, "probe", { fetch: `http://${outside.address}:8080/` })).json;
    expect(r).toEqual({ status: 200, body: "hello from outside" });
  });

  it("reaches this platform's API through its own channel, tagged with the environment it came from", async () => {
    const seen: Array<ReturnType<typeof sandboxOriginOf>> = [];
    const onRequest = (req: { socket: import("node:net").Socket; url?: string }) => {
      if (req.url === "/health") seen.push(sandboxOriginOf(req.socket));
    };
    server.platform.app.server.on("request", onRequest);
    try {
      const r = (await invoke(server.lambda, "probe", { fetch: "http://127.0.0.1:9000/health" })).json as {
        status: number;
        body: string;
      };
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ status: "ok" });
      const [env] = server.platform.worker.environmentsOf("probe");
      expect(seen).toContainEqual({
        environmentId: env?.id,
        functionName: "probe",
        functionVersion: "$LATEST",
      });
      // The API's own port is not tagged.
      await fetch(`${server.url}/health`);
      expect(seen.at(-1)).toBeUndefined();
    } finally {
      server.platform.app.server.off("request", onRequest);
    }
  });
});

describe("host ports an operator opens", () => {
  it("are reachable at the sandbox's own 127.0.0.1:PORT; nothing else is", async () => {
    const opened = await listen("127.0.0.1");
    const closed = await listen("127.0.0.1");
    const s = await startServer({ sandbox: "bwrap", sandboxAllowHostPorts: [opened.port] });
    try {
      await deployProbe(s, "probe");
      const targets = [
        ["127.0.0.1", opened.port],
        ["127.0.0.1", closed.port],
        ["127.0.0.1", HOST_SERVICES.postgresql],
        ["10.0.2.2", opened.port],
      ];
      const r = (await invoke(s.lambda, "probe", { targets })).json as Record<string, string>;
      expect(r[`127.0.0.1:${opened.port}`]).toBe("connected");
      expect(r[`127.0.0.1:${closed.port}`]).not.toBe("connected");
      expect(r[`127.0.0.1:${HOST_SERVICES.postgresql}`]).not.toBe("connected");
      expect(r[`10.0.2.2:${opened.port}`]).not.toBe("connected");
    } finally {
      await s.stop();
      opened.server.close();
      closed.server.close();
    }
  });

  it("never include the platform's own API port, its store's port or the sandbox's own ports", async () => {
    const apiPort = await listen("127.0.0.1").then(({ server: s, port }) => {
      s.close();
      return port;
    });
    await expect(
      Platform.start({ port: apiPort, quiet: true, sandboxAllowHostPorts: [apiPort] }),
    ).rejects.toThrow(ServerOptionError);
    expect(hostPortsRefusal([5432], { apiPort: 9000, database: "postgres://u@127.0.0.1/db" })).toMatch(
      /store/,
    );
    expect(hostPortsRefusal([6543], { apiPort: 9000, database: "postgres://u@127.0.0.1:6543/db" })).toMatch(
      /store/,
    );
    expect(hostPortsRefusal([9001], { apiPort: 8000 })).toMatch(/used inside every sandbox/);
    expect(hostPortsRefusal([0], { apiPort: 8000 })).toMatch(/not a port/);
    expect(hostPortsRefusal([70000], { apiPort: 8000 })).toMatch(/not a port/);
    expect(hostPortsRefusal([5432, 6379], { apiPort: 9000 })).toBeUndefined();
  });

  it("the CLI refuses the API's own port at start, with a clear message", () => {
    const r = spawnSync(
      process.execPath,
      [
        "bin/lambent.js",
        "server",
        "--port",
        "9123",
        "--sandbox-allow-host-port",
        "6379,9123",
        "--data-dir",
        "/nonexistent/x",
      ],
      { encoding: "utf8", timeout: 30_000 },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/9123 is this server's own API port/);
    const bad = spawnSync(
      process.execPath,
      ["bin/lambent.js", "server", "--sandbox-allow-host-port", "x,1"],
      {
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/comma-separated/);
  });
});

describe("--sandbox-pool-cidr", { timeout: 120_000 }, () => {
  // A range nothing on this machine uses, and one a route of the host's covers (as Tailscale's
  // 100.64.0.0/10 would the default range).
  const FREE = "100.99.7.0/24";
  const TAKEN = "100.98.0.0/16";

  it("gives sandboxes addresses from the range, beside a server on the default range; both reach out", async () => {
    const other = await startServer({ sandbox: "bwrap", sandboxPoolCidr: FREE });
    try {
      await deployProbe(other, "probe");
      expect((await invoke(other.lambda, "probe", { address: true })).json).toMatch(/^100\.99\.7\.\d+$/);
      const fetchOutside = { fetch: `http://${outside.address}:8080/` };
      expect((await invoke(other.lambda, "probe", fetchOutside)).json).toEqual({
        status: 200,
        body: "hello from outside",
      });
      // The first server's pool (the default range) still gets out: each range has its own NAT rule.
      expect((await invoke(server.lambda, "probe", { address: true })).json).toMatch(/^100\.72\./);
      expect((await invoke(server.lambda, "probe", fetchOutside)).json).toEqual({
        status: 200,
        body: "hello from outside",
      });
    } finally {
      await other.stop();
    }
  });

  it("refuses a range the host's routes overlap: the server says why and sandboxes go through slirp4netns", async () => {
    expect(spawnSync("ip", ["route", "add", "blackhole", TAKEN]).status).toBe(0);
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
    let other: TestServer | undefined;
    try {
      other = await startServer({ sandbox: "bwrap", sandboxPoolCidr: "100.98.5.0/24" });
      expect(warnings.join("\n")).toContain(
        `the sandbox pool's range 100.98.5.0/24 overlaps the host's route blackhole ${TAKEN}`,
      );
      await deployProbe(other, "probe");
      expect((await invoke(other.lambda, "probe", { address: true })).json).toBe("10.0.2.100");
      expect(
        (await invoke(other.lambda, "probe", { fetch: `http://${outside.address}:8080/` })).json,
      ).toEqual({
        status: 200,
        body: "hello from outside",
      });
    } finally {
      console.warn = warn;
      spawnSync("ip", ["route", "del", "blackhole", TAKEN]);
      await other?.stop();
    }
  });

  it("the CLI refuses a range that is not one, or is loopback or slirp4netns's", () => {
    for (const [cidr, message] of [
      ["100.72.0.0/33", /not an IPv4 range from \/8 to \/24/],
      ["100.72.1.0/16", /host bits set/],
      ["127.0.0.0/16", /overlaps 127.0.0.0\/8 \(loopback\)/],
      ["10.0.0.0/8", /slirp4netns/],
    ] as const) {
      const r = spawnSync(process.execPath, ["bin/lambent.js", "server", "--sandbox-pool-cidr", cidr], {
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(r.status, cidr).not.toBe(0);
      expect(r.stderr, cidr).toMatch(message);
    }
  });
});
