/** Child processes the bench starts: clean environment, process groups, teardown, /proc memory. */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Every process group the bench started and has not yet seen exit: killed on any exit. */
const groups = new Set();

export function killAllSync() {
  for (const pgid of groups) {
    for (const pid of descendants(pgid)) safeKill(pid, "SIGKILL");
    safeKill(-pgid, "SIGKILL");
  }
  groups.clear();
}

process.on("exit", killAllSync);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    killAllSync();
    process.exit(130);
  });
}

function safeKill(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {}
}

/**
 * The environment children get: the bench's own minus what would skew them. An inherited
 * NODE_EXTRA_CA_CERTS makes every node start ~55 ms slower (DESIGN.md field notes), and
 * serverless must not see AWS credentials to stay offline.
 */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("AWS_") || k.startsWith("NODE_") || k.startsWith("npm_")) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** Spawns a long-running child in its own process group; stdout/stderr kept in a ring for errors. */
export function startChild(cmd, args, opts = {}) {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? cleanEnv(),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  groups.add(child.pid);
  let out = "";
  const keep = (chunk) => {
    out += chunk.toString();
    if (out.length > 20000) out = out.slice(-10000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  exited.then(() => groups.delete(child.pid));
  return {
    child,
    pid: child.pid,
    exited,
    output: () => out,
    /** Resolves with the first match of `re` in the output, rejects on exit or timeout. */
    waitFor(re, timeoutMs = 30000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(re);
          if (m) {
            done();
            resolve(m);
          }
        };
        const onExit = () => {
          done();
          reject(new Error(`${cmd} exited before ready:\n${out.slice(-2000)}`));
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${cmd} not ready after ${timeoutMs} ms:\n${out.slice(-2000)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          child.stdout.off("data", check);
          child.stderr.off("data", check);
          child.off("exit", onExit);
        };
        child.stdout.on("data", check);
        child.stderr.on("data", check);
        child.once("exit", onExit);
        check();
      });
    },
    /** SIGTERM (graceful), then SIGKILL to the group and every descendant left. */
    async stop(graceMs = 5000) {
      if (!groups.has(child.pid)) return;
      const tree = descendants(child.pid);
      safeKill(child.pid, "SIGTERM");
      const t = new Promise((r) => setTimeout(r, graceMs, "timeout"));
      await Promise.race([exited, t]);
      for (const pid of [...tree, ...descendants(child.pid)]) safeKill(pid, "SIGKILL");
      safeKill(-child.pid, "SIGKILL");
      groups.delete(child.pid);
    },
  };
}

/** All processes below `root` (not including it), from /proc. */
export function descendants(root) {
  const children = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {}
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    for (const c of children.get(stack.pop()) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/** Resident and proportional set size of one process in bytes (0 if gone). */
export function memoryOf(pid) {
  let rss = 0;
  let pss = 0;
  try {
    const s = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    rss = Number(s.match(/^Rss:\s+(\d+) kB/m)?.[1] ?? 0) * 1024;
    pss = Number(s.match(/^Pss:\s+(\d+) kB/m)?.[1] ?? 0) * 1024;
  } catch {}
  return { rss, pss };
}

export function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
}
