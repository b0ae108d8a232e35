#!/usr/bin/env node
/**
 * Builds the web console (console/) into dist/console/: one minified ES module (app.js), its
 * stylesheet (app.css) and index.html. `npm run build` runs it after tsc; the server serves the
 * folder at /console (src/api/console.ts). Nothing generated is committed; nothing is fetched at
 * run time.
 */
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "console");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(root, "console", "src", "main.tsx") },
  outdir: out,
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  jsx: "automatic",
  jsxImportSource: "preact",
  tsconfig: join(root, "console", "tsconfig.json"),
  logLevel: "warning",
});
copyFileSync(join(root, "console", "index.html"), join(out, "index.html"));
