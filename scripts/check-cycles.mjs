#!/usr/bin/env node
/**
 * Fails when the modules under src/ import each other in a cycle at run time.
 *
 * Every static `import … from "./x.js"` / `export … from "./x.js"` between
 * files of src/ is an edge; `import type`, `export type` and imports whose
 * every name is `type X` are left out (TypeScript erases them), and so are
 * dynamic `import()` calls (they run after every module has loaded). A cycle
 * is a strongly connected component of more than one module (or a module that
 * imports itself); each is printed with one path through it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = resolve(root, process.argv[2] ?? "src");

function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Comments and string contents are blanked first so that an example import inside a comment counts for nothing. */
function stripComments(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, " "))
    .replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

const STATIC = /(?:^|[;\n])\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+["']([^"']+)["']/g;
const BARE = /(?:^|[;\n])\s*import\s+["']([^"']+)["']/g;

/** The relative specifiers a module needs at run time. */
function runtimeImports(text) {
  const code = stripComments(text);
  const specs = [];
  for (const m of code.matchAll(STATIC)) {
    const [, , typeOnly, clause, spec] = m;
    if (typeOnly) continue;
    const braces = /^\{([\s\S]*)\}$/.exec(clause.trim());
    if (braces) {
      const names = braces[1]
        .split(",")
        .map((n) => n.trim())
        .filter(Boolean);
      if (names.length > 0 && names.every((n) => n.startsWith("type "))) continue;
    }
    specs.push(spec);
  }
  for (const m of code.matchAll(BARE)) specs.push(m[1]);
  return specs.filter((s) => s.startsWith("."));
}

function resolveSpec(from, spec) {
  const base = resolve(dirname(from), spec);
  const candidates = [
    base.replace(/\.js$/, ".ts"),
    base.replace(/\.mjs$/, ".mts"),
    `${base}.ts`,
    join(base, "index.ts"),
  ];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

const files = sourceFiles(srcDir);
const edges = new Map();
for (const file of files) {
  const targets = new Set();
  for (const spec of runtimeImports(readFileSync(file, "utf8"))) {
    const target = resolveSpec(file, spec);
    if (target) targets.add(target);
  }
  edges.set(file, [...targets].sort());
}

// Tarjan's strongly connected components.
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const components = [];
function visit(v) {
  idx.set(v, index);
  low.set(v, index);
  index++;
  stack.push(v);
  onStack.add(v);
  for (const w of edges.get(v) ?? []) {
    if (!idx.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v), idx.get(w)));
    }
  }
  if (low.get(v) === idx.get(v)) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (edges.get(v) ?? []).includes(v)) components.push(component);
  }
}
for (const f of files.sort()) if (!idx.has(f)) visit(f);

/** One cycle inside a component, as a path that starts and ends at the same module. */
function cycleIn(component) {
  const members = new Set(component);
  const start = [...component].sort()[0];
  const path = [start];
  const seen = new Set([start]);
  let at = start;
  for (;;) {
    const next = (edges.get(at) ?? []).filter((w) => members.has(w));
    if (next.includes(start) && path.length > 1) return [...path, start];
    const fresh = next.find((w) => !seen.has(w)) ?? next[0];
    if (fresh === undefined || seen.has(fresh)) return [...path, fresh ?? start];
    path.push(fresh);
    seen.add(fresh);
    at = fresh;
  }
}

const rel = (f) => relative(root, f);
if (components.length > 0) {
  console.error(`check-cycles: ${components.length} import cycle(s) at run time in ${rel(srcDir)}/:`);
  for (const c of components) {
    console.error(`  ${cycleIn(c).map(rel).join(" → ")}`);
    if (c.length > 2) console.error(`    (modules in this cycle: ${c.map(rel).sort().join(", ")})`);
  }
  console.error(
    "Break each cycle (move what both sides need into a module of its own, or import types with `import type`).",
  );
  process.exit(1);
}
console.log(`check-cycles: ${files.length} modules in ${rel(srcDir)}/, no import cycles at run time`);
