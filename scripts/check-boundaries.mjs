#!/usr/bin/env node
/**
 * Fails when a component imports one it may not use (ARCHITECTURE.md's
 * table), type-only imports included: a worker must be able to run on a
 * machine of its own, so `worker/` may not name the control plane, the store
 * or anything above it, not even for a type.
 *
 * Each rule lists, for the files of one folder of src/ (tests beside them
 * excepted), the only places their relative imports may point at: a folder
 * (`sandbox/`) or one module (`errors.ts`).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");

const RULES = {
  // What frontend and worker share: plain data and the data-plane error types.
  "protocol/": ["protocol/", "runtimes/catalog.ts"],
  // Code and layers by sha256: the store's tables or a cache on disk, nothing of the control plane.
  "artifacts/": ["artifacts/", "store/", "config.ts"],
  // The worker: the protocol, the sandbox drivers, the artifact store, log sinks and installed runtimes.
  "worker/": ["worker/", "protocol/", "sandbox/", "artifacts/", "logs/", "runtimes/", "errors.ts"],
  // The sandbox drivers know nothing above them.
  "sandbox/": ["sandbox/"],
};

const SPEC =
  /(?:^|[;\n])\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']|(?:^|[;\n])\s*import\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function stripComments(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, " "))
    .replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts") && !name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const violations = [];
let checked = 0;
for (const [folder, allowed] of Object.entries(RULES)) {
  let files;
  try {
    files = sourceFiles(join(src, folder));
  } catch {
    continue;
  }
  for (const file of files) {
    checked++;
    for (const m of stripComments(readFileSync(file, "utf8")).matchAll(SPEC)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec?.startsWith(".")) continue;
      const target = relative(src, resolve(dirname(file), spec)).replace(/\.js$/, ".ts");
      if (target.startsWith("..")) continue;
      if (!allowed.some((a) => (a.endsWith("/") ? target.startsWith(a) : target === a))) {
        violations.push(
          `  src/${relative(src, file)} imports src/${target} (${folder} may use: ${allowed.join(", ")})`,
        );
      }
    }
  }
}
if (violations.length > 0) {
  console.error(`check-boundaries: ${violations.length} import(s) across a component boundary:`);
  for (const v of violations) console.error(v);
  console.error(
    "Move what both sides need into protocol/ (plain data) or inject it from the composition root.",
  );
  process.exit(1);
}
console.log(
  `check-boundaries: ${checked} modules of ${Object.keys(RULES).join(", ")} import only what they may`,
);
