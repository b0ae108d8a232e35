/**
 * `lambent dev` as a user runs it: deploys a template with a plain JS function and an esbuild
 * TypeScript one, picks up edits (awaiting its "reloaded" line, then invoking), streams the
 * functions' logs, and on Ctrl-C takes the mounts off.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { startServer, type TestServer } from "./helpers/server.js";

const SAM = fileURLToPath(new URL("./fixtures/sam", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "lambent-dev-"));
const app = join(root, "app");
let server: TestServer;
let dev: ChildProcess | undefined;

/** Lines a child writes, and a way to await one matching a pattern. */
class Lines {
  private readonly seen: string[] = [];
  private waiters: Array<{ re: RegExp; from: number; resolve: (l: string) => void }> = [];
  constructor(stream: NodeJS.ReadableStream) {
    let rest = "";
    stream.on("data", (c: Buffer) => {
      const parts = (rest + c.toString("utf8")).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) {
        this.seen.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (!w.re.test(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
  }
  get count(): number {
    return this.seen.length;
  }
  /** The first line matching `re` written after line number `from`. */
  next(re: RegExp, from = 0): Promise<string> {
    const hit = this.seen.slice(from).find((l) => re.test(l));
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve) => this.waiters.push({ re, from, resolve }));
  }
  get text(): string {
    return this.seen.join("\n");
  }
}

beforeAll(async () => {
  mkdirSync(app);
  cpSync(join(SAM, "plain-js", "src"), join(app, "plain"), { recursive: true });
  cpSync(join(SAM, "esbuild-ts", "hello"), join(app, "hello"), { recursive: true });
  writeFileSync(
    join(app, "plain", "app.js"),
    'exports.handler = async (event) => { console.log("plain says hi"); return { version: "v1" }; };\n',
  );
  writeFileSync(
    join(app, "template.yaml"),
    `AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: nodejs20.x
    Timeout: 10
Resources:
  PlainFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: plain/
      Handler: app.handler
  HelloFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello/
      Handler: app.lambdaHandler
    Metadata:
      BuildMethod: esbuild
      BuildProperties:
        EntryPoints:
          - app.ts
`,
  );
  server = await startServer({ devRoot: root });
});
afterAll(async () => {
  if (dev && dev.exitCode === null) dev.kill("SIGKILL");
  await server?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe("lambent dev", () => {
  it("deploys, picks up edits of a JS and an esbuild TS function, streams logs, and stops on Ctrl-C", async () => {
    dev = spawn(
      process.execPath,
      ["bin/lambent.js", "dev", "--template", join(app, "template.yaml"), "--endpoint", server.url],
      { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const err = new Lines(dev.stderr as NodeJS.ReadableStream);
    const out = new Lines(dev.stdout as NodeJS.ReadableStream);
    const exited = new Promise<number | null>((resolve) => dev?.on("exit", (code) => resolve(code)));
    const ready = await Promise.race([
      err.next(/^dev: watching 2 function folder/),
      exited.then((code) => `exited ${code}: ${err.text}`),
    ]);
    expect(ready).toMatch(/^dev: watching/);
    const nameOf = (id: string) =>
      new RegExp(`^dev: ${id} \\((\\S+)\\) runs from`, "m").exec(err.text)?.[1] as string;
    const plain = nameOf("PlainFunction");
    const hello = nameOf("HelloFunction");
    expect(err.text).toContain(`runs from ${join(root, "app", "plain")}`);
    expect(err.text).toContain(`runs from ${join(root, "app", ".aws-sam", "lambent-dev", "HelloFunction")}`);

    expect((await invoke(server.lambda, plain)).json).toEqual({ version: "v1" });
    expect(await out.next(/^\[PlainFunction\] .*plain says hi/)).toBeTruthy();
    const first = await invoke(server.lambda, hello, { name: "dev" });
    expect(JSON.parse((first.json as { body: string }).body)).toMatchObject({ message: "hello dev" });

    let mark = err.count;
    writeFileSync(
      join(app, "plain", "app.js"),
      'exports.handler = async () => { console.log("edited"); return { version: "v2" }; };\n',
    );
    await err.next(/^dev: reloaded PlainFunction in \d+ ms/, mark);
    expect((await invoke(server.lambda, plain)).json).toEqual({ version: "v2" });
    expect(await out.next(/^\[PlainFunction\] .*edited/)).toBeTruthy();

    mark = err.count;
    writeFileSync(
      join(app, "hello", "lib", "greet.ts"),
      'export const greet = (n: string): string => "hi " + n;\n',
    );
    await err.next(/^dev: reloaded HelloFunction in \d+ ms/, mark);
    const second = await invoke(server.lambda, hello, { name: "dev" });
    expect(JSON.parse((second.json as { body: string }).body)).toMatchObject({ message: "hi dev" });

    // A TypeScript error keeps the last good build running and says why.
    mark = err.count;
    writeFileSync(join(app, "hello", "lib", "greet.ts"), "export const greet = (n: string) => {{;\n");
    expect(await err.next(/esbuild failed, keeping the last build/, mark)).toBeTruthy();
    const third = await invoke(server.lambda, hello, { name: "dev" });
    expect(JSON.parse((third.json as { body: string }).body)).toMatchObject({ message: "hi dev" });

    dev.kill("SIGINT");
    expect(await exited).toBe(0);
    // The mounts are off: the functions run their uploaded code again.
    expect((await invoke(server.lambda, plain)).json).toEqual({ version: "v1" });
  });
});
