// Runs on `npm ci` / `npm install`: builds the TypeScript and the web console into dist/, installs the system packages
// the sandbox needs (when root on Debian; never fatal: without them the platform falls back to the
// process sandbox and says so) and the default language runtimes (Node.js 22 and 24 from the npm
// registry, Python 3.13 from Debian trixie) into the runtime cache. Says what it does, and how long it took.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);

console.error("lambent: building the TypeScript into dist/ (tsc -p tsconfig.build.json, ~30-60 s)…");
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
  stdio: "inherit",
});
execFileSync(process.execPath, ["scripts/build-console.mjs"], { stdio: "inherit" });
console.error(`lambent: built dist/ and the web console (${seconds()} s)`);
if (existsSync("scripts/install-system.sh") && !process.env.LAMBENT_SKIP_SYSTEM_INSTALL) {
  try {
    execFileSync("bash", ["scripts/install-system.sh"], { stdio: "inherit" });
  } catch {
    console.warn(
      "lambent: could not install system packages; the platform will fall back to the process sandbox",
    );
  }
}
if (!process.env.LAMBENT_SKIP_RUNTIME_INSTALL) {
  try {
    execFileSync(process.execPath, ["bin/lambent.js", "runtimes", "install"], { stdio: "inherit" });
  } catch {
    console.warn("lambent: could not install every default runtime; `lambent runtimes list` shows what runs");
  }
}
console.error("lambent: installed; start the server with `npm start` (see README.md)");
