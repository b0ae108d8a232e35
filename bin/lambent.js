#!/usr/bin/env node
import { existsSync } from "node:fs";

// dist/ is built by `npm ci` / `npm install` (scripts/prepare.mjs) or `npm run build`.
const main = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  console.error(
    `lambent: ${new URL("..", import.meta.url).pathname} is not built yet: run \`npm ci\` (or \`npm run build\`) there first`,
  );
  process.exit(1);
}
await import(main.href);
