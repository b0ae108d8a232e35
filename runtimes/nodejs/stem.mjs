// A stem cell: the Node.js runtime started before it knows its function. It asks
// the worker for its assignment (the function's environment and working dir),
// takes it on, then runs the ordinary runtime (bootstrap.mjs) — so a cold start
// costs only the function's own Init, not the runtime's start.
//
//   node stem.mjs [--runtime-api-socket=/path.sock]
//
// The assignment comes from `GET /lambent/stem-cell/assignment` on the same
// endpoint as the Runtime API, as JSON: {"env": {...}, "cwd": "/var/task"}.
import { request } from "node:http";
import Module from "node:module";

// Load and compile the runtime now, while nothing waits; it starts only when main() is called.
globalThis.__lambentStemCell = true;
const runtime = await import("./bootstrap.mjs");

let socketPath;
for (const arg of process.argv.slice(2)) {
  if (arg.startsWith("--runtime-api-socket=")) socketPath = arg.slice(21);
}
const api = process.env.AWS_LAMBDA_RUNTIME_API || "127.0.0.1:9001";
const colon = api.lastIndexOf(":");

const assignment = await new Promise((resolve, reject) => {
  const req = request(
    {
      socketPath,
      host: socketPath ? undefined : api.slice(0, colon),
      port: socketPath ? undefined : Number(api.slice(colon + 1)),
      path: "/lambent/stem-cell/assignment",
      headers: { connection: "close" },
    },
    (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        if (res.statusCode !== 200) reject(new Error(`assignment answered ${res.statusCode}`));
        else resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      });
    },
  );
  req.on("error", reject);
  req.end();
}).catch((err) => {
  process.stderr.write(`lambent stem cell: no assignment: ${err.message}\n`);
  process.exit(1);
});

for (const key of Object.keys(process.env)) if (!(key in assignment.env)) delete process.env[key];
Object.assign(process.env, assignment.env);
process.chdir(assignment.cwd);
// NODE_PATH is read once at start-up; read it again now that it is the function's.
Module._initPaths();
await runtime.main();
