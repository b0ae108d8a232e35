import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerOptions } from "../../src/config.js";
import { invoke } from "../helpers/invoke.js";
import { createInlineFunction, startServer, type TestServer } from "../helpers/server.js";

const VICTIM = `let n = 0;
exports.handler = async () => ({ n: ++n, api: process.env.AWS_LAMBDA_RUNTIME_API });`;

/** For each target host:port, each request: its status (and body), or how the connection failed. */
const THIEF = `const http = require("node:http");
const ask = (target, method, path) => new Promise((resolve) => {
  const [host, port] = target.split(":");
  const req = http.request({ host, port: Number(port), method, path, agent: false, timeout: 3000 }, (res) => {
    let body = "";
    res.on("data", (c) => (body += c));
    res.on("end", () => resolve(res.statusCode + " " + body.slice(0, 200)));
  });
  req.on("timeout", () => { req.destroy(); resolve("timeout"); });
  req.on("error", (e) => resolve("error " + e.code));
  req.end(method === "POST" ? "{}" : undefined);
});
exports.handler = async (e) => {
  const out = {};
  await Promise.all(e.targets.flatMap((t) => [
    ["GET", "/2018-06-01/runtime/invocation/next"],
    ["POST", "/2018-06-01/runtime/invocation/anything/response"],
    ["GET", "/lambent/stem-cell/assignment"],
    ["POST", "/2020-01-01/extension/register"],
  ].map(async ([m, p]) => { out[t + " " + m + " " + p] = await ask(t, m, p); })));
  return { own: process.env.AWS_LAMBDA_RUNTIME_API, out };
};`;

async function deploy(s: TestServer, name: string, code: string): Promise<void> {
  await createInlineFunction(s.lambda, name, code, {
    Timeout: 30,
    Environment: { Variables: { SECRET: `${name}-secret` } },
  });
}

const MODES: Array<[string, Partial<ServerOptions>]> = [
  ["the process driver", { sandbox: "process" }],
  ["bwrap with --sandbox-network host", { sandbox: "bwrap", sandboxNetwork: "host" }],
];

describe.each(MODES)("Runtime API theft under %s", (_mode, options) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer(options);
    await deploy(server, "victim", VICTIM);
    await deploy(server, "thief", THIEF);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("cannot take another environment's events, answer them, or read a stem cell's assignment", async () => {
    const first = (await invoke(server.lambda, "victim")).json as { n: number; api: string };
    expect(first.n).toBe(1);
    // The thief's own environment exists first (a cold start may take a stem cell), then a fresh cell waits.
    const own = ((await invoke(server.lambda, "thief", { targets: [] })).json as { own: string }).own;
    await server.platform.worker.stemCells.whenReady("nodejs20.x");
    const stems = server.platform.worker.stemCells
      .endpoints()
      .flatMap((e) => (e.kind === "tcp" ? [`${e.host}:${e.port}`] : []));
    expect(stems.length).toBeGreaterThan(0);
    const targets = [first.api, ...stems];

    const theft = invoke(server.lambda, "thief", { targets });
    // The victim keeps answering while the thief tries.
    const during = await Promise.all([1, 2, 3].map(() => invoke(server.lambda, "victim")));
    const stolen = (await theft).json as { own: string; out: Record<string, string> };
    expect(stolen.own).toBe(own);
    expect(targets).not.toContain(own);
    expect(Object.keys(stolen.out)).toHaveLength(targets.length * 4);
    for (const [attempt, outcome] of Object.entries(stolen.out)) {
      expect(`${attempt} → ${outcome}`).toMatch(/ → error (ECONNRESET|ECONNREFUSED|EPIPE)$/);
    }
    expect(during.map((d) => d.functionError)).toEqual([undefined, undefined, undefined]);
    const after = (await invoke(server.lambda, "victim")).json as { n: number };
    // Every one of the victim's events reached the victim (one environment, or more under load).
    expect(after.n).toBeGreaterThanOrEqual(1);
    const counts = [first, ...during.map((d) => d.json as { n: number }), after].map((r) => r.n);
    expect(counts.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5);
  });

  it("still serves each environment's own runtime, stem cells included", async () => {
    // A cold start from a stem cell (its assignment reached it), then warm invokes.
    await deploy(server, "fresh", `exports.handler = async () => process.env.SECRET;`);
    expect((await invoke(server.lambda, "fresh")).json).toBe("fresh-secret");
    expect((await invoke(server.lambda, "fresh")).json).toBe("fresh-secret");
  });
});
