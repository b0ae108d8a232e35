// A stem cell: the Node.js runtime started before it knows its function. It loads the runtime
// (bootstrap.cjs) and warms the module loaders while nothing waits, asks the worker for its
// assignment (the function's environment and working dir), takes it on, then starts the runtime:
// a cold start costs only the function's own Init, not the runtime's start.
//
//   node stem.mjs [--runtime-api-socket=/path.sock]
//
// The assignment comes from `GET /lambent/stem-cell/assignment` on the Runtime API endpoint, as
// JSON: {"env": {...}, "cwd": "/var/task"}.
import Module, { createRequire } from "node:module";

globalThis.__lambentStemCell = true;
// An ES module itself, so the ES module loader an .mjs handler needs is warm too.
const runtime = createRequire(import.meta.url)("./bootstrap.cjs");
// Node 20 resolves ES module imports through a hook thread: start it now, not on the cold path
// (unless the sandbox shows NODE_PATH's packages to ES modules itself: then there is no hook).
if (!runtime.nodePathView()) runtime.startEsmHooks();
// The first CommonJS load pays for the loader's own warm-up: pay it now, with an empty module.
createRequire(import.meta.url)("./warm.cjs");

const assignment = await runtime.awaitAssignment().catch((err) => {
  process.stderr.write(`lambent stem cell: no assignment: ${err.message}\n`);
  process.exit(1);
});

for (const key of Object.keys(process.env)) if (!(key in assignment.env)) delete process.env[key];
Object.assign(process.env, assignment.env);
process.chdir(assignment.cwd);
// NODE_PATH is read once at start-up; read it again now that it is the function's.
Module._initPaths();
await runtime.main();
