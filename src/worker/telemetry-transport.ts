/**
 * How the worker reaches a listener inside an environment (a Telemetry API
 * subscriber). Under the process driver, or bwrap sharing the host's network,
 * the listener is on the host's loopback: plain HTTP. In an isolated network
 * namespace it is not reachable from the host; so a socat started in the namespace
 * (nsenter, no capabilities) listens on a host Unix socket and connects to the
 * namespace's own address (slirp4netns's 10.0.2.100): the listener must bind
 * `sandbox.localdomain` (that address, as on Lambda) or 0.0.0.0. One relay per subscribed
 * environment, started on the first delivery.
 */
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { relayListening, spawnNamespaceRelay } from "../sandbox/network.js";
import type { TelemetryPost } from "./telemetry-api.js";

/** slirp4netns's address for the namespace itself. */
const NAMESPACE_ADDRESS = "10.0.2.100";

function postVia(
  target: { socketPath?: string; host?: string; port?: number },
  path: string,
  body: string,
  agent: Agent,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...target,
        agent,
        method: "POST",
        path,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        timeout: 5000,
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          (res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("telemetry delivery timed out")));
    req.on("error", reject);
    req.end(body);
  });
}

function hostOf(uri: URL): string {
  const h = uri.hostname.replace(/^\[(.*)\]$/, "$1");
  return h === "sandbox.localdomain" || h === "sandbox" || h === "0.0.0.0" ? "127.0.0.1" : h;
}

export interface TelemetryTransport {
  post: TelemetryPost;
  close(): Promise<void>;
}

/** Direct HTTP to the host's loopback (process driver, host network). */
export function directTransport(): TelemetryTransport {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return {
    post: (uri, body) =>
      postVia({ host: hostOf(uri), port: Number(uri.port || 80) }, uri.pathname + uri.search, body, agent),
    close: async () => agent.destroy(),
  };
}

/** The pid of a process inside the sandbox (bwrap's child) of host pid `bwrapPid`. */
function namespacePid(bwrapPid: number): number {
  const children = readFileSync(`/proc/${bwrapPid}/task/${bwrapPid}/children`, "utf8").trim().split(/\s+/);
  const pid = Number(children[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error("sandbox has no process");
  return pid;
}

/** Through a socat relay in the sandbox's network namespace. */
export function namespaceTransport(bwrapPid: number, runDir: string, id: string): TelemetryTransport {
  const relays = new Map<number, Promise<{ child: ChildProcess; socketPath: string }>>();
  const telemetryDir = join(runDir, `${id}.telemetry`);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const relay = (port: number) => {
    let r = relays.get(port);
    if (!r) {
      const socketPath = join(telemetryDir, `${port}.sock`);
      // The relay listens inside the sandbox's namespace, whose /proc/net/unix shows the name it bound:
      // a name relative to the environment's own directory (its working directory) tells nothing.
      const child = mkdir(telemetryDir, { recursive: true, mode: 0o700 }).then(() =>
        spawnNamespaceRelay(
          `--net=/proc/${namespacePid(bwrapPid)}/ns/net`,
          `UNIX-LISTEN:${port}.sock,fork,unlink-early,mode=600`,
          `TCP:${NAMESPACE_ADDRESS}:${port}`,
          telemetryDir,
        ),
      );
      r = child.then(async (c) => {
        await relayListening(c);
        return { child: c, socketPath };
      });
      relays.set(port, r);
    }
    return r;
  };
  return {
    async post(uri, body) {
      const { socketPath } = await relay(Number(uri.port || 80));
      await postVia({ socketPath }, uri.pathname + uri.search, body, agent);
    },
    async close() {
      agent.destroy();
      await Promise.all(
        [...relays.values()].map((r) =>
          r.then(
            ({ child }) => {
              if (child.exitCode === null) child.kill("SIGKILL");
            },
            () => {},
          ),
        ),
      );
      await rm(telemetryDir, { recursive: true, force: true });
    },
  };
}
