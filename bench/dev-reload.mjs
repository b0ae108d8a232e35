#!/usr/bin/env node
// `lambent dev`'s edit loop: the time from writing a plain JS handler to the first invoke that
// answers with the edit (goal: under 300 ms). Starts `lambent server --dev-root` and `lambent dev`
// on a one-function template, then, per round: write index.js with a new value, invoke in a loop
// until the answer carries it. What is timed is what a user waits for: the watcher, the reload
// request, the environment restart and the cold start of the next invoke.
//
//   node bench/dev-reload.mjs [--rounds 20] [--sandbox process|bwrap]
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cleanEnv, killAllSync, onInterrupt, startChild } from "./lib/procs.mjs";
import { signedHeaders } from "./lib/sign.mjs";
import { ms, summarize } from "./lib/stats.mjs";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "20" }, sandbox: { type: "string", default: "process" } },
});
const rounds = Number(values.rounds);
const root = mkdtempSync(join(tmpdir(), "lambent-bench-dev-"));
const app = join(root, "app");
mkdirSync(join(app, "src"), { recursive: true });
for (const dir of [root, app, join(app, "src")]) chmodSync(dir, 0o755);
const handler = (n) => `exports.handler = async () => ({ round: ${n} });\n`;
writeFileSync(join(app, "src", "index.js"), handler(0));
writeFileSync(
  join(app, "template.yaml"),
  `Transform: AWS::Serverless-2016-10-31
Resources:
  Edited:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: index.handler
      Runtime: nodejs20.x
`,
);
onInterrupt(() => rmSync(root, { recursive: true, force: true }));

const env = cleanEnv();
const server = startChild(
  process.execPath,
  [
    "bin/lambent.js",
    "server",
    "--port",
    "0",
    "--data-dir",
    join(root, "data"),
    "--dev-root",
    root,
    "--sandbox",
    values.sandbox,
  ],
  { env },
);
const origin = (await server.waitFor(/ready at (http:\/\/\S+)/, 60000))[1];
const dev = startChild(
  process.execPath,
  ["bin/lambent.js", "dev", "--template", join(app, "template.yaml"), "--endpoint", origin],
  {
    env,
  },
);
await dev.waitFor(/dev: watching 1 function folder/, 120000);
const name = /dev: Edited \((\S+)\) runs from/.exec(dev.output())?.[1];

async function invoke() {
  const path = `/2015-03-31/functions/${name}/invocations`;
  const res = await fetch(origin + path, {
    method: "POST",
    body: "{}",
    headers: signedHeaders(origin, path, "POST", "{}"),
  });
  return (await res.json()).round;
}

await invoke();
const samples = [];
let invokes = 0;
for (let n = 1; n <= rounds; n++) {
  const started = performance.now();
  writeFileSync(join(app, "src", "index.js"), handler(n));
  for (;;) {
    invokes++;
    if ((await invoke()) === n) break;
  }
  samples.push(performance.now() - started);
}
const s = summarize(samples);
console.log(
  `| edit → first invoke seeing it (${values.sandbox}) | n | p50 ms | p90 ms | max ms | invokes per round |`,
);
console.log("|---|---:|---:|---:|---:|---:|");
console.log(
  `| plain JS handler | ${s.n} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.max)} | ${(invokes / rounds).toFixed(1)} |`,
);

const reloads = [...dev.output().matchAll(/dev: reloaded Edited in (\d+) ms/g)].map((m) => Number(m[1]));
if (reloads.length > 0) {
  const r = summarize(reloads);
  console.log(
    `| of which the reload (watcher → environments retired) | ${r.n} | ${ms(r.p50)} | ${ms(r.p90)} | ${ms(r.max)} | |`,
  );
}
dev.child.kill("SIGINT");
await dev.exited;
server.child.kill("SIGTERM");
await server.exited;
killAllSync();
rmSync(root, { recursive: true, force: true });
