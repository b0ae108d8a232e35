/**
 * What a Lambent server can leave behind when it dies or is killed: its sandboxes' cgroups (with
 * processes in them), mounts on its stage, loop-mounted /tmp images and their loop devices, its
 * entry in the instance registry. The bench sweeps them for each data dir it used after the
 * servers' own shutdown, with the same functions a server's start-up sweep uses (from dist/),
 * then detaches anything still mounted or looped under the bench's data root.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dist = (root, m) => import(pathToFileURL(join(root, "dist", "sandbox", m)).href);

/** Mount points at or below `dir`, deepest first. */
function mountsUnder(dir) {
  const prefix = resolve(dir);
  let table = "";
  try {
    table = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {}
  const points = table
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p) => p !== undefined && (p === prefix || p.startsWith(`${prefix}/`)))
    .map((p) => p.replace(/\\040/g, " "));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Loop devices whose backing file is at or below `dir`. */
function loopsUnder(dir) {
  const prefix = `${resolve(dir)}/`;
  const out = [];
  let devices = [];
  try {
    devices = readdirSync("/sys/block").filter((d) => d.startsWith("loop"));
  } catch {}
  for (const d of devices) {
    try {
      const backing = readFileSync(`/sys/block/${d}/loop/backing_file`, "utf8").trim();
      if (backing.startsWith(prefix)) out.push(`/dev/${d}`);
    } catch {}
  }
  return out;
}

const quiet = (cmd, args) => {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};

/**
 * Sweeps what the (stopped) Lambent servers that used `dataDirs` left, then anything mounted or
 * looped under `dataRoot`. Returns a list of what it found (empty when the servers cleaned up
 * after themselves). Never throws.
 */
export async function sweepLambent({ root, dataRoot, dataDirs }) {
  const found = [];
  let mods;
  try {
    mods = {
      index: await dist(root, "index.js"),
      instances: await dist(root, "instances.js"),
      cgroups: await dist(root, "cgroups.js"),
      mounts: await dist(root, "mounts.js"),
      scratch: await dist(root, "scratch.js"),
    };
  } catch (err) {
    found.push(`could not load dist/sandbox (${err.message}): only mounts and loop devices swept`);
  }
  for (const dataDir of mods ? dataDirs : []) {
    const runDir = resolve(dataDir, "run", "sandbox");
    const instanceId = mods.index.instanceIdFor(runDir);
    try {
      // A server still running (or restarted) owns its instance: never sweep it from under it.
      if (!(await mods.instances.isAbandoned(instanceId))) {
        found.push(`${dataDir}: its server is still running; not swept`);
        continue;
      }
      const registered = await readFileSafe(mods.instances.registryFile(instanceId));
      const detected = await mods.cgroups.detectCgroups(instanceId);
      if (detected.ok) {
        const n = await detected.hierarchy.sweep();
        if (n > 0) found.push(`${dataDir}: ${n} sandbox cgroup(s) left, killed and removed`);
        await detected.hierarchy.release().catch(() => {});
      }
      const mounted = mountsUnder(runDir).length;
      if (mounted > 0) found.push(`${dataDir}: ${mounted} mount(s) left, unmounted`);
      await mods.mounts.removeMountPoints(runDir);
      const looped = loopsUnder(join(runDir, "scratch")).length;
      if (looped > 0) found.push(`${dataDir}: ${looped} loop device(s) left, detached`);
      await mods.scratch.sweepScratch(join(runDir, "scratch"));
      if (registered) {
        found.push(`${dataDir}: instance ${instanceId} still registered, unregistered`);
        await mods.instances.unregisterInstance(instanceId);
      }
    } catch (err) {
      found.push(`${dataDir}: sweep failed: ${err.message}`);
    }
  }
  // Whatever else is under the data root (the process driver's or an unknown layout's).
  for (let round = 0; round < 8; round++) {
    const points = mountsUnder(dataRoot);
    if (points.length === 0) break;
    if (round === 0) found.push(`${points.length} mount(s) under ${dataRoot}, unmounted`);
    for (const p of points) quiet("umount", ["-l", p]);
  }
  const loops = loopsUnder(dataRoot);
  if (loops.length > 0) found.push(`${loops.length} loop device(s) under ${dataRoot}, detached`);
  for (const d of loops) quiet("losetup", ["-d", d]);
  return found;
}

async function readFileSafe(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
