/**
 * The systems under test, each behind the same small interface:
 *   id, label, kind, pid, origin, path(fn) → invoke path,
 *   fn(handler, name) → a function name that runs bench/handlers/<handler>.cjs (created if needed),
 *   deleteFn(name), health() → /health JSON or null, stop().
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import yazl from "yazl";
import { cleanEnv, startChild } from "./procs.mjs";
import { signedHeaders } from "./sign.mjs";

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(BENCH_DIR);
const HANDLERS = join(BENCH_DIR, "handlers");
const CACHE = join(BENCH_DIR, ".cache");
const SLS_DIR = join(CACHE, "sls");
const LAMBENT_BIN = join(ROOT, "bin", "lambent.js");

const zips = new Map();
function zipOf(handler) {
  if (zips.has(handler)) return zips.get(handler);
  const p = new Promise((resolve, reject) => {
    const zip = new yazl.ZipFile();
    zip.addBuffer(readFileSync(join(HANDLERS, `${handler}.cjs`)), "index.js", { mtime: new Date(0) });
    zip.end();
    const chunks = [];
    zip.outputStream.on("data", (c) => chunks.push(c));
    zip.outputStream.on("end", () => resolve(Buffer.concat(chunks).toString("base64")));
    zip.outputStream.on("error", reject);
  });
  zips.set(handler, p);
  return p;
}

async function json(origin, method, path, body) {
  const text0 = body ? JSON.stringify(body) : undefined;
  const res = await request(origin + path, {
    method,
    headers: signedHeaders(origin, path, method, text0, body ? { "content-type": "application/json" } : {}),
    body: text0,
  });
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${path} → ${res.statusCode} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

/** A server's stdout and stderr go to `<logDir>/<id>.log` (when the bench keeps logs). */
const logOpt = (logDir, id) => (logDir ? { log: join(logDir, `${id}.log`) } : {});

/** `lambent server --help`, to see which options this build has. */
let help;
export function lambentHelp() {
  if (help !== undefined) return help;
  try {
    help = execFileSync(process.execPath, [LAMBENT_BIN, "server", "--help"], {
      env: cleanEnv(),
      encoding: "utf8",
    });
  } catch (err) {
    help = String(err.stdout ?? err.message);
  }
  return help;
}

export async function startLambent({ id, label, driver, prewarm, dataRoot, logDir, extraArgs = [] }) {
  const dataDir = join(dataRoot, id);
  rmSync(dataDir, { recursive: true, force: true });
  // Folders `lambent dev` may mount (the dev scenario), beside the data dir.
  const devRoot = join(dataRoot, `${id}-dev`);
  mkdirSync(devRoot, { recursive: true });
  const args = [
    LAMBENT_BIN,
    "server",
    "--port",
    "0",
    "--data-dir",
    dataDir,
    "--sandbox",
    driver,
    "--idle-timeout",
    "3600",
    ...(prewarm !== undefined ? ["--prewarm", String(prewarm)] : []),
    ...(/--dev-root\b/.test(lambentHelp()) ? ["--dev-root", devRoot] : []),
    ...extraArgs,
  ];
  const proc = startChild(process.execPath, args, { cwd: ROOT, ...logOpt(logDir, id) });
  let origin;
  try {
    const m = await proc.waitFor(/ready at (http:\/\/[^\s]+)/, 30000);
    origin = m[1].replace("localhost", "127.0.0.1");
  } catch (err) {
    await proc.stop();
    throw err;
  }
  const created = new Set();
  const sys = {
    id,
    label,
    kind: "lambent",
    dataDir,
    devRoot: args.includes("--dev-root") ? devRoot : undefined,
    pid: proc.pid,
    origin,
    proc,
    path: (fn) => `/2015-03-31/functions/${fn}/invocations`,
    /** `extra`: more CreateFunction members (Runtime, CapacityProviderConfig, …). */
    async fn(handler, name = handler, extra = {}) {
      if (created.has(name)) return name;
      await json(origin, "POST", "/2015-03-31/functions", {
        FunctionName: name,
        Runtime: "nodejs20.x",
        Handler: "index.handler",
        Role: "arn:aws:iam::000000000000:role/bench",
        Timeout: 30,
        MemorySize: 1769,
        Code: { ZipFile: await zipOf(handler) },
        ...extra,
      });
      created.add(name);
      return name;
    },
    /** A public (AuthType NONE) function URL on `name`; returns its path form on this server. */
    async url(name) {
      const cfg = await json(origin, "POST", `/2021-10-31/functions/${name}/url`, { AuthType: "NONE" });
      const grant = (StatementId, extra) =>
        json(origin, "POST", `/2015-03-31/functions/${name}/policy`, {
          StatementId,
          Principal: "*",
          ...extra,
        });
      await grant("bench-url", { Action: "lambda:InvokeFunctionUrl", FunctionUrlAuthType: "NONE" });
      await grant("bench-url-invoke", { Action: "lambda:InvokeFunction", InvokedViaFunctionUrl: true });
      return `/_lambent/urls/${new URL(cfg.FunctionUrl).hostname.split(".")[0]}/`;
    },
    async deleteFn(name) {
      created.delete(name);
      await json(origin, "DELETE", `/2015-03-31/functions/${name}`);
    },
    health: () => json(origin, "GET", "/health"),
    /** A capacity provider (Lambda Managed Instances): its ARN, created once per name. */
    async capacityProvider(name) {
      const arn = `arn:aws:lambda:us-east-1:000000000000:capacity-provider:${name}`;
      if (created.has(arn)) return arn;
      await json(origin, "POST", "/2025-11-30/capacity-providers", {
        CapacityProviderName: name,
        VpcConfig: { SubnetIds: ["subnet-0123456789abcdef0"], SecurityGroupIds: [] },
        PermissionsConfig: { CapacityProviderOperatorRoleArn: "arn:aws:iam::000000000000:role/bench" },
      });
      created.add(arn);
      return arn;
    },
    stop: () => proc.stop(8000),
  };
  return sys;
}

export async function startFloor({ logDir } = {}) {
  const proc = startChild(process.execPath, [join(BENCH_DIR, "floor-server.mjs")], {
    cwd: BENCH_DIR,
    ...logOpt(logDir, "floor"),
  });
  const m = await proc.waitFor(/ready at (http:\/\/[^\s]+)/, 10000);
  return {
    id: "floor",
    label: "floor: bare node:http + handler",
    kind: "floor",
    pid: proc.pid,
    origin: m[1],
    proc,
    path: (fn) => `/2015-03-31/functions/${fn}/invocations`,
    fn: async (handler, name) => (name ? `${handler}-${name.replace(/\D/g, "") || 0}` : handler),
    deleteFn: async () => {},
    health: async () => null,
    stop: () => proc.stop(),
  };
}

// ---- serverless-offline ----

export const SLS_COLD_FUNCTIONS = 40;
export const SLS_SCALE_FUNCTIONS = 6;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** Installs serverless@3 + serverless-offline@13 into bench/.cache/sls on first use. */
export async function ensureServerless(log) {
  const bin = join(SLS_DIR, "node_modules", "serverless", "bin", "serverless.js");
  const plugin = join(SLS_DIR, "node_modules", "serverless-offline", "package.json");
  if (existsSync(bin) && existsSync(plugin)) return bin;
  mkdirSync(SLS_DIR, { recursive: true });
  writeFileSync(join(SLS_DIR, "package.json"), '{ "name": "lambent-bench-sls", "private": true }\n');
  log("installing serverless@3 + serverless-offline@13 into bench/.cache/sls (first run only) …");
  await new Promise((resolve, reject) => {
    const npm = spawn(
      "npm",
      ["install", "--no-audit", "--no-fund", "--loglevel=error", "serverless@3", "serverless-offline@13"],
      // npm keeps the bench's environment (registry, proxy and CA settings); only the runs are cleaned.
      { cwd: SLS_DIR, stdio: ["ignore", "inherit", "inherit"] },
    );
    npm.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`npm install exited ${code}`))));
    npm.on("error", reject);
  });
  return bin;
}

/** The service directory: every handler as a CommonJS .js file and one function per name used. */
function writeService() {
  const dir = join(SLS_DIR, "service");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), '{ "name": "bench-service", "private": true }\n');
  for (const h of ["hello", "sleep", "echo", "probe"])
    copyFileSync(join(HANDLERS, `${h}.cjs`), join(dir, `${h}.js`));
  const fns = ["  hello:\n    handler: hello.handler", "  echo:\n    handler: echo.handler"];
  fns.push("  sleep:\n    handler: sleep.handler");
  for (let i = 0; i < SLS_COLD_FUNCTIONS; i++) fns.push(`  cold${i}:\n    handler: hello.handler`);
  for (let i = 0; i < SLS_SCALE_FUNCTIONS; i++) fns.push(`  scale${i}:\n    handler: sleep.handler`);
  writeFileSync(
    join(dir, "serverless.yml"),
    [
      "service: bench",
      "frameworkVersion: '3'",
      "provider:",
      "  name: aws",
      "  runtime: nodejs20.x",
      "  region: us-east-1",
      "  stage: dev",
      "  timeout: 30",
      "plugins:",
      "  - serverless-offline",
      "functions:",
      ...fns,
      "",
    ].join("\n"),
  );
  mkdirSync(join(SLS_DIR, "home"), { recursive: true });
  return dir;
}

export async function startServerless({ id, label, inProcess, logDir }) {
  const bin = join(SLS_DIR, "node_modules", "serverless", "bin", "serverless.js");
  const dir = writeService();
  const [lambdaPort, httpPort, websocketPort, albPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const args = [
    bin,
    "offline",
    "start",
    "--host",
    "127.0.0.1",
    "--lambdaPort",
    String(lambdaPort),
    "--httpPort",
    String(httpPort),
    "--websocketPort",
    String(websocketPort),
    "--albPort",
    String(albPort),
    "--noTimeout",
    "--terminateIdleLambdaTime",
    "3600",
    ...(inProcess ? ["--useInProcess"] : []),
  ];
  const env = cleanEnv({
    HOME: join(SLS_DIR, "home"),
    SLS_TELEMETRY_DISABLED: "1",
    SLS_TRACKING_DISABLED: "1",
    SLS_NOTIFICATIONS_MODE: "off",
    SLS_DEPRECATION_DISABLE: "*",
  });
  const proc = startChild(process.execPath, args, { cwd: dir, env, ...logOpt(logDir, id) });
  try {
    await proc.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/, 60000);
    // The lambda server may print before the HTTP server; wait until it answers.
    await proc.waitFor(new RegExp(`127\\.0\\.0\\.1:${lambdaPort}`), 60000);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  const origin = `http://127.0.0.1:${lambdaPort}`;
  return {
    id,
    label,
    kind: "sls",
    pid: proc.pid,
    origin,
    proc,
    path: (fn) => `/2015-03-31/functions/bench-dev-${fn}/invocations`,
    fn: async (handler, name) => name ?? handler,
    deleteFn: async () => {},
    health: async () => null,
    stop: () => proc.stop(),
  };
}
