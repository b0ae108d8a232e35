/** Child processes the bench starts: clean environment, process groups, teardown, /proc memory. */
import { spawn } from "node:child_process";
import { createWriteStream, readdirSync, readFileSync } from "node:fs";

/** Every process group the bench started and has not yet seen exit: killed on any exit. */
const groups = new Set();

/** Async cleanups (the servers' own shutdown, then a sweep) run on SIGINT/SIGTERM/SIGHUP. */
const cleanups = [];
export function onInterrupt(fn) {
  cleanups.push(fn);
  return () => cleanups.splice(cleanups.indexOf(fn) >>> 0, 1);
}

export function killAllSync() {
  for (const pgid of groups) {
    for (const pid of descendants(pgid)) safeKill(pid, "SIGKILL");
    safeKill(-pgid, "SIGKILL");
  }
  groups.clear();
}

process.on("exit", killAllSync);
/** When the first signal came: Ctrl-C under `npm run` delivers SIGINT twice at once (npm forwards it). */
let interruptedAt = 0;
for (const [sig, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
  ["SIGHUP", 129],
]) {
  process.on(sig, () => {
    // Another signal a while later, during the cleanup: no more waiting.
    if (interruptedAt > 0) {
      if (Date.now() - interruptedAt < 2000) return;
      killAllSync();
      process.exit(code);
    }
    interruptedAt = Date.now();
    process.stderr.write(`\n${sig}: stopping the servers and sweeping what they left (again to force) …\n`);
    (async () => {
      for (const fn of [...cleanups].reverse())
        await Promise.resolve()
          .then(fn)
          .catch(() => {});
    })().finally(() => {
      killAllSync();
      process.exit(code);
    });
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

/**
 * Spawns a long-running child in its own process group; stdout/stderr kept in a ring for errors
 * and, with `opts.log`, appended in full to that file. `exitStatus` is set once it exits.
 */
export function startChild(cmd, args, opts = {}) {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? cleanEnv(),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  groups.add(child.pid);
  let out = "";
  const logFile = opts.log ? createWriteStream(opts.log, { flags: "a" }) : undefined;
  logFile?.on("error", () => {});
  const keep = (chunk) => {
    logFile?.write(chunk);
    out += chunk.toString();
    if (out.length > 20000) out = out.slice(-10000);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  // The log is closed once the pipes are drained (after "exit" they may still hold output).
  child.once("close", () => logFile?.end());
  const handle = {
    child,
    pid: child.pid,
    exited,
    /** `{ code, signal }` once the child exited, else undefined. */
    exitStatus: undefined,
    /** Whether the bench itself stopped it (then its exit is not a failure). */
    stopping: false,
    log: opts.log,
    output: () => out,
    /** The last `n` lines of its output. */
    tail: (n = 20) => out.split("\n").filter(Boolean).slice(-n).join("\n"),
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
      handle.stopping = true;
      if (!groups.has(child.pid)) return;
      if (handle.exitStatus) {
        safeKill(-child.pid, "SIGKILL");
        groups.delete(child.pid);
        return;
      }
      const tree = descendants(child.pid);
      safeKill(child.pid, "SIGTERM");
      const t = new Promise((r) => setTimeout(r, graceMs, "timeout"));
      await Promise.race([exited, t]);
      for (const pid of [...tree, ...descendants(child.pid)]) safeKill(pid, "SIGKILL");
      safeKill(-child.pid, "SIGKILL");
      groups.delete(child.pid);
    },
  };
  // The group stays listed after the leader exits: what it left in the group is killed with it.
  exited.then((status) => {
    handle.exitStatus = status;
  });
  return handle;
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

/** CPU time (user + system, ms) a process has used so far (0 if gone). */
export function cpuMsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 (utime, stime), in clock ticks: 100 per second on Linux.
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}
