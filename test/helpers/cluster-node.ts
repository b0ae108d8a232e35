/**
 * One node of a test cluster as a child process (`lambent server --role …`),
 * optionally inside a network namespace (`ip netns exec`). Needs `dist/`
 * (see buildAsync).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./child-server.js";

export interface ClusterNode {
  name: string;
  proc: ChildProcess;
  dataDir: string;
  /** http://… for frontends and pollers, host:port for workers. */
  address: string;
  exited: Promise<number | null>;
  stderr: () => string;
  alive: () => boolean;
  kill9: () => Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop: (graceMs?: number) => Promise<void>;
}

export interface ClusterNodeOptions {
  name: string;
  /** Data dirs are made under it, one per node name. */
  root: string;
  secret: string;
  keyFile: string;
  args: string[];
  /** Run inside this network namespace. */
  netns?: string;
}

export async function startClusterNode(o: ClusterNodeOptions): Promise<ClusterNode> {
  const dataDir = join(o.root, o.name);
  const lambent = [
    process.execPath,
    "bin/lambent.js",
    "server",
    "--port",
    "0",
    "--data-dir",
    dataDir,
    "--sandbox",
    "process",
    "--server-key-file",
    o.keyFile,
    ...o.args,
  ];
  const [cmd, ...argv] = o.netns ? ["ip", "netns", "exec", o.netns, ...lambent] : lambent;
  const proc = spawn(cmd as string, argv, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LAMBENT_CLUSTER_SECRET: o.secret },
  });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  const address = await new Promise<string>((resolve, reject) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /ready at (\S+)/.exec(out);
      if (m?.[1]) {
        proc.stdout?.off("data", onData);
        resolve(m[1]);
      }
    };
    proc.stdout?.on("data", onData);
    void exited.then((code) => reject(new Error(`${o.name} exited (${code}) before ready: ${stderr}`)));
  });
  proc.stdout?.resume();
  return {
    name: o.name,
    proc,
    dataDir,
    address,
    exited,
    stderr: () => stderr,
    alive,
    async kill9() {
      proc.kill("SIGKILL");
      await exited;
    },
    async stop(graceMs = 15_000) {
      if (alive()) proc.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        exited.then(() => true),
        new Promise((r) => {
          timer = setTimeout(() => r(false), graceMs);
        }),
      ]);
      clearTimeout(timer);
      if (!stopped) {
        proc.kill("SIGKILL");
        await exited;
      }
    },
  };
}
