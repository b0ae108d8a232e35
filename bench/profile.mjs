#!/usr/bin/env node
/**
 * Profiles Lambent's warm invoke path: starts `node --cpu-prof bin/lambent.js server`, sends
 * warm invokes of the hello-world handler (sequential, then at concurrency 16), stops the server
 * (SIGTERM writes the profile) and prints the functions with the most self time.
 *
 *   node bench/profile.mjs [--invokes 5000] [--concurrency 16] [--sandbox process] [--top 30] [--event]
 *
 * --event sends `InvocationType: Event` invokes instead and waits 10 s for the queue to drain.
 * --cold N profiles cold starts instead: N × (CreateFunction, first invoke, DeleteFunction).
 *
 * The .cpuprofile is kept in bench/results/ (open it in Chrome DevTools → Performance).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { Pool, request } from "undici";
import { startChild } from "./lib/procs.mjs";
import { signedHeaders } from "./lib/sign.mjs";
import { BENCH_DIR, ROOT } from "./lib/systems.mjs";

const { values: opts } = parseArgs({
  options: {
    invokes: { type: "string", default: "5000" },
    concurrency: { type: "string", default: "16" },
    sandbox: { type: "string", default: "process" },
    top: { type: "string", default: "30" },
    event: { type: "boolean", default: false },
    cold: { type: "string", default: "0" },
  },
});

const work = mkdtempSync(join(tmpdir(), "lambent-prof-"));
const profDir = join(work, "prof");
const server = startChild(
  process.execPath,
  [
    "--cpu-prof",
    "--cpu-prof-dir",
    profDir,
    join(ROOT, "bin", "lambent.js"),
    "server",
    "--port",
    "0",
    "--data-dir",
    join(work, "data"),
    "--sandbox",
    opts.sandbox,
  ],
  { cwd: ROOT },
);

try {
  const origin = (await server.waitFor(/ready at (http:\/\/[^\s]+)/))[1].replace("localhost", "127.0.0.1");
  const { default: yazl } = await import("yazl");
  const zip = new yazl.ZipFile();
  zip.addBuffer(readFileSync(join(BENCH_DIR, "handlers", "hello.cjs")), "index.js");
  zip.end();
  const chunks = [];
  for await (const c of zip.outputStream) chunks.push(c);
  const zipFile = Buffer.concat(chunks).toString("base64");
  const create = async (name) => {
    const body = JSON.stringify({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: "arn:aws:iam::000000000000:role/bench",
      Code: { ZipFile: zipFile },
    });
    const res = await request(`${origin}/2015-03-31/functions`, {
      method: "POST",
      headers: signedHeaders(origin, "/2015-03-31/functions", "POST", body, {
        "content-type": "application/json",
      }),
      body,
    });
    if (res.statusCode !== 201)
      throw new Error(`CreateFunction → ${res.statusCode} ${await res.body.text()}`);
    await res.body.dump();
  };
  await create("hello");

  const cold = Number(opts.cold);
  if (cold > 0) {
    const times = [];
    for (let i = 0; i < cold; i++) {
      await create(`cold${i}`);
      const t = performance.now();
      const invokePath = `/2015-03-31/functions/cold${i}/invocations`;
      const r = await request(origin + invokePath, {
        method: "POST",
        body: "{}",
        headers: signedHeaders(origin, invokePath, "POST", "{}"),
      });
      await r.body.dump();
      times.push(performance.now() - t);
      const fnPath = `/2015-03-31/functions/cold${i}`;
      await request(origin + fnPath, {
        method: "DELETE",
        headers: signedHeaders(origin, fnPath, "DELETE"),
      }).then((x) => x.body.dump());
      await new Promise((r) => setTimeout(r, 150));
    }
    times.sort((a, b) => a - b);
    console.log(`${cold} cold starts: p50 ${times[Math.floor(cold / 2)].toFixed(1)} ms`);
  }

  const n = cold > 0 ? 0 : Number(opts.invokes);
  const c = Number(opts.concurrency);
  const path = "/2015-03-31/functions/hello/invocations";
  const headers = opts.event ? { "x-amz-invocation-type": "Event" } : {};
  const one = new Pool(origin, { connections: 1 });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = await one.request({
      path,
      method: "POST",
      body: "{}",
      headers: signedHeaders(origin, path, "POST", "{}", headers),
    });
    await r.body.dump();
  }
  const seqMs = performance.now() - t0;
  const many = new Pool(origin, { connections: c });
  let left = n;
  const t1 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (left-- > 0) {
        const r = await many.request({
          path,
          method: "POST",
          body: "{}",
          headers: signedHeaders(origin, path, "POST", "{}", headers),
        });
        await r.body.dump();
      }
    }),
  );
  const parMs = performance.now() - t1;
  await Promise.all([one.close(), many.close()]);
  if (opts.event) await new Promise((r) => setTimeout(r, 10_000));
  if (n > 0)
    console.log(
      `${n} sequential invokes: ${((seqMs / n) * 1000).toFixed(0)} µs mean; ${n} at c=${c}: ${((n / parMs) * 1000).toFixed(0)} invokes/s`,
    );
} finally {
  await server.stop(15000);
}

const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
if (!file) throw new Error(`no profile written:\n${server.output().slice(-2000)}`);
mkdirSync(join(BENCH_DIR, "results"), { recursive: true });
const kept = join(BENCH_DIR, "results", "server.cpuprofile");
renameSync(join(profDir, file), kept);
rmSync(work, { recursive: true, force: true });

const prof = JSON.parse(readFileSync(kept, "utf8"));
const byId = new Map(prof.nodes.map((nd) => [nd.id, nd]));
const self = new Map();
let total = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i] ?? 0;
  const nd = byId.get(prof.samples[i]);
  const cf = nd.callFrame;
  const url = cf.url.replace(/^file:\/\//, "");
  const where = url ? `${url.startsWith(ROOT) ? relative(ROOT, url) : url}:${cf.lineNumber + 1}` : "";
  const key = `${cf.functionName || "(anonymous)"}\t${where}`;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
}
const idle = [...self].filter(([k]) => k.startsWith("(idle)")).reduce((a, [, v]) => a + v, 0);
console.log(
  `\nprofile: ${kept}\nbusy ${((total - idle) / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled\n`,
);
console.log("| self ms | % of busy | function | where |\n|---:|---:|---|---|");
for (const [k, v] of [...self]
  .filter(([key]) => !key.startsWith("(idle)"))
  .sort((a, b) => b[1] - a[1])
  .slice(0, Number(opts.top))) {
  const [fn, where] = k.split("\t");
  console.log(
    `| ${(v / 1000).toFixed(1)} | ${((v / (total - idle)) * 100).toFixed(1)} | \`${fn}\` | ${where} |`,
  );
}
