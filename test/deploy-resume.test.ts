/**
 * A deploy killed midway (kill -9 of the CLI after the server made a resource, before the CLI heard
 * of it) leaves a pending deployment in the stack record, not a silent orphan: `lambent stacks
 * describe` shows it, and the next `lambent deploy` settles the unfinished step (deletes the function,
 * layer version or function version the killed step made), says so, and completes the stack. A proxy
 * between the CLI and the server holds back the one answer, so the kill always lands in that gap.
 */
import { execFile, spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  ListFunctionsCommand,
  ListLayerVersionsCommand,
  ListVersionsByFunctionCommand,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";

const run = promisify(execFile);
let server: TestServer;
let work: string;

beforeAll(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), "lambent-resume-"));
});

afterAll(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function functionExists(name: string): Promise<boolean> {
  return server.platform.functions.getVersion({ name }, "us-east-1").then(
    () => true,
    () => false,
  );
}

async function stackRecord(name: string): Promise<Record<string, unknown>> {
  const res = await signedFetch(`${server.url}/_lambent/stacks/${name}`);
  return (await res.json()) as Record<string, unknown>;
}

describe("a deploy killed midway", () => {
  const lambent = (...args: string[]) =>
    run(process.execPath, ["bin/lambent.js", ...args, "--endpoint", server.url], {
      env: { PATH: process.env.PATH ?? "" },
    });

  /**
   * Runs `lambent deploy` of the fixture through a proxy that passes every request on to the server
   * but holds back the answer to the first one `hold` picks; once the server has answered that one,
   * the CLI is killed. The server made the resource, the CLI never heard of it: its stack record
   * cannot name it. Resolves with the held request's path and the server's answer.
   */
  async function killDuring(
    fixture: string,
    stack: string,
    hold: (method: string, path: string, body: string) => boolean,
  ): Promise<{ template: string; path: string; answer: Record<string, unknown> }> {
    const dir = join(work, fixture);
    cpSync(join(import.meta.dirname, "fixtures", "sam", fixture), dir, { recursive: true });
    const template = join(dir, "template.yaml");
    const target = new URL(server.url);
    let held: ((v: { path: string; answer: Record<string, unknown> }) => void) | undefined;
    const answered = new Promise<{ path: string; answer: Record<string, unknown> }>((r) => {
      held = r;
    });
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const path = req.url ?? "/";
        const holdThis = held !== undefined && hold(req.method ?? "GET", path, body.toString());
        const release = held;
        if (holdThis) held = undefined;
        const out = httpRequest(
          { host: target.hostname, port: target.port, method: req.method, path, headers: req.headers },
          (up) => {
            const back: Buffer[] = [];
            up.on("data", (c: Buffer) => back.push(c));
            up.on("end", () => {
              const text = Buffer.concat(back).toString();
              if (holdThis) return release?.({ path, answer: JSON.parse(text) as Record<string, unknown> });
              res.writeHead(up.statusCode ?? 502, up.headers).end(text);
            });
          },
        );
        out.on("error", () => res.destroy());
        out.end(body);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
    const { port } = proxy.address() as AddressInfo;
    const cli = spawn(
      process.execPath,
      [
        "bin/lambent.js",
        "deploy",
        "--template",
        template,
        "--stack-name",
        stack,
        "--endpoint",
        `http://127.0.0.1:${port}`,
      ],
      { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    cli.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => cli.once("exit", (code) => resolve(code)));
    const first = await Promise.race([answered, exited]);
    if (typeof first !== "object" || first === null) {
      proxy.close();
      throw new Error(`the CLI exited (${first}) before the held request:\n${stderr}`);
    }
    cli.kill("SIGKILL");
    await exited;
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
    return { template, ...first };
  }

  it("is resumed by the next deploy: the orphaned function goes, the stack completes", async () => {
    // The second function's create: the server makes it, the CLI is killed before it hears so.
    const { template, answer } = await killDuring(
      "multi",
      "resumed",
      (method, path, body) =>
        method === "POST" && path === "/2015-03-31/functions" && body.includes("SecondFunction"),
    );
    const orphan = answer.FunctionName as string;
    expect(await functionExists(orphan)).toBe(true);

    const left = await stackRecord("resumed");
    expect(left.Status).toBe("CREATE_IN_PROGRESS");
    expect(Object.keys(left.Resources as object)).not.toContain("SecondFunction");
    expect(left.Pending).toMatchObject({
      Done: expect.arrayContaining(["FirstFunction"]),
      InFlight: { Action: "create", LogicalId: "SecondFunction", PhysicalId: orphan },
    });
    expect(await functionExists(orphan)).toBe(true);

    const desc = await lambent("stacks", "describe", "resumed");
    expect(desc.stdout).toContain("CREATE_IN_PROGRESS");
    expect(desc.stdout).toContain("Pending deploy (started");
    expect(desc.stdout).toMatch(/done\s+create FirstFunction/);
    expect(desc.stdout).toMatch(/running create SecondFunction/);
    expect(desc.stdout).toContain(`${orphan} is deleted if it was made`);

    const again = await lambent("deploy", "--template", template, "--stack-name", "resumed");
    expect(again.stderr).toContain("has a deploy that did not finish");
    expect(again.stderr).toContain(
      `the unfinished create of SecondFunction (AWS::Lambda::Function) is undone`,
    );
    expect(again.stdout).toContain("stack resumed: CREATE_COMPLETE");

    const done = await stackRecord("resumed");
    expect(done.Status).toBe("CREATE_COMPLETE");
    expect(done.Pending).toBeUndefined();
    const recorded = Object.values(done.Resources as Record<string, { Type: string; PhysicalId: string }>)
      .filter((r) => r.Type === "AWS::Lambda::Function")
      .map((r) => r.PhysicalId)
      .sort();
    expect(recorded).toHaveLength(3);
    expect(await functionExists(orphan)).toBe(false);
    const all = await server.lambda.send(new ListFunctionsCommand({ MaxItems: 50 }));
    const ofStack = (all.Functions ?? [])
      .map((f) => f.FunctionName as string)
      .filter((n) => n.startsWith("resumed-"))
      .sort();
    expect(ofStack).toEqual(recorded);

    await lambent("stacks", "delete", "resumed");
    // Each CLI start loads the whole program: on a loaded two-core machine that alone takes seconds.
  }, 300_000);

  it("undoes a layer version and a function version whose publish the kill cut off", async () => {
    const layerVersions = async () =>
      (await server.lambda.send(new ListLayerVersionsCommand({ LayerName: "greeting" }))).LayerVersions ?? [];
    const layer = await killDuring(
      "layers-ts",
      "layered",
      (method, path) => method === "POST" && path === "/2018-10-31/layers/greeting/versions",
    );
    const orphanLayer = layer.answer.LayerVersionArn as string;
    expect((await layerVersions()).map((v) => v.LayerVersionArn)).toEqual([orphanLayer]);
    expect((await stackRecord("layered")).Pending).toMatchObject({
      InFlight: { Action: "create", LogicalId: "GreetingLayer" },
    });
    const again = await lambent("deploy", "--template", layer.template, "--stack-name", "layered");
    expect(again.stderr).toContain(`deleting ${orphanLayer}, made by the unfinished create of GreetingLayer`);
    expect(again.stdout).toContain("stack layered: CREATE_COMPLETE");
    const kept = (await layerVersions()).map((v) => v.LayerVersionArn);
    expect(kept).toHaveLength(1);
    expect(kept).not.toContain(orphanLayer);
    await lambent("stacks", "delete", "layered");

    const versions = async (fn: string) =>
      (
        (await server.lambda.send(new ListVersionsByFunctionCommand({ FunctionName: fn }))).Versions ?? []
      ).filter((v) => v.Version !== "$LATEST");
    const version = await killDuring(
      "alias-pc",
      "published",
      (method, path) => method === "POST" && /^\/2015-03-31\/functions\/[^/]+\/versions$/.test(path),
    );
    const fn = decodeURIComponent(version.path.split("/")[3] as string);
    const orphanVersion = version.answer.FunctionArn as string;
    expect((await versions(fn)).map((v) => v.FunctionArn)).toEqual([orphanVersion]);
    const logicalId = ((await stackRecord("published")).Pending as { InFlight: { LogicalId: string } })
      .InFlight.LogicalId;
    const resumed = await lambent("deploy", "--template", version.template, "--stack-name", "published");
    expect(resumed.stderr).toContain(
      `deleting ${orphanVersion}, made by the unfinished create of ${logicalId}`,
    );
    expect(resumed.stdout).toContain("stack published: CREATE_COMPLETE");
    const left = (await versions(fn)).map((v) => v.FunctionArn);
    expect(left).toHaveLength(1);
    expect(left).not.toContain(orphanVersion);
    await lambent("stacks", "delete", "published");
  }, 300_000);
});
