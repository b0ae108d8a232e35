// Runs on `npm ci` / `npm install`: builds the TypeScript and installs the
// system packages the sandbox needs (when root on Debian; never fatal).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
  stdio: "inherit",
});
if (existsSync("scripts/install-system.sh") && !process.env.LAMBENT_SKIP_SYSTEM_INSTALL) {
  try {
    execFileSync("bash", ["scripts/install-system.sh"], { stdio: "inherit" });
  } catch {
    console.warn(
      "lambent: could not install system packages; the platform will fall back to the process sandbox",
    );
  }
}
