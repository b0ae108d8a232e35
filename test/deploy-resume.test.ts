/**
 * A deploy killed midway (kill -9 of the CLI between CreateFunction and the
 * stack's record of it) leaves a pending deployment in the stack record, not a
 * silent orphan: `lambent stacks describe` shows it, and the next
 * `lambent deploy` settles the unfinished step (deletes the function the killed
 * create made), says so, and completes the stack.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ListFunctionsCommand } from "@aws-sdk/client-lambda";
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

/** Resolves with the first match of `re` in the child's stderr. */
function stderrMatch(child: ChildProcess, re: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const m = re.exec(seen);
      if (m) {
        child.stderr?.off("data", onData);
        resolve(m);
      }
    };
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`the CLI exited (${code}) before ${re}:\n${seen}`)));
  });
}

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

  it("is resumed by the next deploy: the orphaned function goes, the stack completes", async () => {
    const dir = join(work, "multi");
    cpSync(join(import.meta.dirname, "fixtures", "sam", "multi"), dir, { recursive: true });
    const template = join(dir, "template.yaml");
    const cli = spawn(
      process.execPath,
      [
        "bin/lambent.js",
        "deploy",
        "--template",
        template,
        "--stack-name",
        "resumed",
        "--endpoint",
        server.url,
      ],
      { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = new Promise<void>((resolve) => cli.once("exit", () => resolve()));
    // The second function's create is on its way: freeze the CLI, kill it once the server has made
    // the function (the CLI cannot have recorded it: it never saw the answer).
    const orphan = (await stderrMatch(cli, /SecondFunction: creating function (\S+)/))[1] as string;
    cli.kill("SIGSTOP");
    if (!(await functionExists(orphan))) {
      cli.kill("SIGCONT");
      while (!(await functionExists(orphan))) await new Promise((r) => setImmediate(r));
    }
    cli.kill("SIGKILL");
    await exited;

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
});
