/** `src/deploy/build.ts`: SAM code packages from folders, zips, InlineCode and esbuild, and what they refuse. */
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CreateFunctionCommand, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yauzl from "yauzl";
import { type BuildError, buildFunctionCode, type FunctionCodeSource } from "../src/deploy/build.js";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";

const SAM = fileURLToPath(new URL("./fixtures/sam", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "lambent-build-"));
const lines: string[] = [];
const progress = (l: string) => lines.push(l);

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A fresh copy of a fixture project (builds write `.aws-sam/` next to the template). */
function project(name: string): string {
  const dir = mkdtempSync(join(work, `${name}-`));
  cpSync(join(SAM, name), dir, { recursive: true });
  return dir;
}

function entries(zip: Buffer): Promise<Array<{ name: string; mode: number; time: number; data: string }>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(zip, { lazyEntries: true }, (err, z) => {
      if (err) return reject(err);
      const out: Array<{ name: string; mode: number; time: number; data: string }> = [];
      z.on("entry", (e: yauzl.Entry) => {
        z.openReadStream(e, (err2, s) => {
          if (err2) return reject(err2);
          const chunks: Buffer[] = [];
          s.on("data", (c: Buffer) => chunks.push(c));
          s.on("end", () => {
            out.push({
              name: e.fileName,
              mode: e.externalFileAttributes >>> 16,
              time: e.lastModFileTime,
              data: Buffer.concat(chunks).toString("utf8"),
            });
            z.readEntry();
          });
        });
      });
      z.on("end", () => resolve(out));
      z.readEntry();
    });
  });
}

const plain = (templateDir: string, extra: Partial<FunctionCodeSource> = {}): FunctionCodeSource => ({
  templateDir,
  logicalId: "PlainFunction",
  codeUri: "src/",
  handler: "app.handler",
  runtime: "nodejs20.x",
  ...extra,
});

async function refusal(source: FunctionCodeSource): Promise<string> {
  const err = (await buildFunctionCode(source, progress).then(
    () => undefined,
    (e: unknown) => e,
  )) as BuildError | undefined;
  expect(err?.name).toBe("BuildError");
  return err?.message ?? "";
}

describe("folder builds", () => {
  it("the same tree gives the same bytes; a changed file, a new file or an execute bit changes them", async () => {
    const dir = project("plain-js");
    mkdirSync(join(dir, "src", ".git"));
    writeFileSync(join(dir, "src", ".git", "HEAD"), "ref: main");
    mkdirSync(join(dir, "src", "z"));
    writeFileSync(join(dir, "src", "z", "b.txt"), "b");
    writeFileSync(join(dir, "src", "a.txt"), "a");
    const first = await buildFunctionCode(plain(dir), progress);
    const second = await buildFunctionCode(plain(dir), progress);
    expect(second.zip.equals(first.zip)).toBe(true);
    expect(first.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Buffer.from(first.codeSha256, "base64").toString("hex")).toBe(first.sha256);

    const list = await entries(first.zip);
    expect(list.map((e) => e.name)).toEqual(["a.txt", "app.js", "z/b.txt"]);
    expect(new Set(list.map((e) => e.mode))).toEqual(new Set([0o100644]));
    expect(new Set(list.map((e) => e.time)).size).toBe(1);

    writeFileSync(join(dir, "src", "a.txt"), "A");
    const changed = await buildFunctionCode(plain(dir), progress);
    expect(changed.sha256).not.toBe(first.sha256);
    chmodSync(join(dir, "src", "a.txt"), 0o755);
    const executable = await buildFunctionCode(plain(dir), progress);
    expect(executable.sha256).not.toBe(changed.sha256);
    expect((await entries(executable.zip)).find((e) => e.name === "a.txt")?.mode).toBe(0o100755);
    writeFileSync(join(dir, "src", "new.js"), "");
    expect((await buildFunctionCode(plain(dir), progress)).sha256).not.toBe(executable.sha256);
  });

  it("follows symbolic links that stay in the folder and refuses ones that leave it", async () => {
    const dir = project("plain-js");
    symlinkSync("app.js", join(dir, "src", "alias.js"));
    const inner = await entries((await buildFunctionCode(plain(dir), progress)).zip);
    expect(inner.find((e) => e.name === "alias.js")?.data).toContain("exports.handler");

    const out = project("plain-js");
    writeFileSync(join(out, "secret.txt"), "secret");
    symlinkSync("../secret.txt", join(out, "src", "leak.txt"));
    expect(await refusal(plain(out))).toMatch(/symbolic link leak.txt points outside the code folder/);
    const abs = project("plain-js");
    symlinkSync("/etc", join(abs, "src", "etc"));
    expect(await refusal(plain(abs))).toMatch(/symbolic link etc points outside/);
    const loop = project("plain-js");
    symlinkSync(".", join(loop, "src", "self"));
    expect(await refusal(plain(loop))).toMatch(/symbolic link loop at self/);
    const dangling = project("plain-js");
    symlinkSync("nowhere", join(dangling, "src", "gone"));
    expect(await refusal(plain(dangling))).toMatch(/gone points at nothing/);
  });

  it("refuses a CodeUri outside the template's folder, by ../ or by a link, and other hostile values", async () => {
    const dir = project("plain-js");
    expect(await refusal(plain(dir, { codeUri: "../" }))).toMatch(/outside the template's folder/);
    expect(await refusal(plain(dir, { codeUri: "../../../etc" }))).toMatch(/outside the template's folder/);
    expect(await refusal(plain(dir, { codeUri: "/etc" }))).toMatch(/outside the template's folder/);
    symlinkSync("/etc", join(dir, "linked"));
    expect(await refusal(plain(dir, { codeUri: "linked" }))).toMatch(/through a symbolic link/);
    expect(await refusal(plain(dir, { codeUri: "s3://bucket/key.zip" }))).toMatch(
      /S3 locations are not supported/,
    );
    expect(await refusal(plain(dir, { codeUri: { Bucket: "b", Key: "k" } }))).toMatch(/S3 locations/);
    expect(await refusal(plain(dir, { codeUri: "src\0/x" }))).toMatch(/not a path/);
    expect(await refusal(plain(dir, { codeUri: "missing" }))).toMatch(/does not exist/);
    expect(await refusal(plain(dir, { codeUri: "template.yaml" }))).toMatch(/not a .zip/);
    expect(await refusal(plain(dir, { codeUri: undefined }))).toMatch(/CodeUri or InlineCode is required/);
    expect(await refusal(plain(dir, { metadata: { BuildMethod: "makefile" } }))).toMatch(
      /BuildMethod "makefile" is not supported/,
    );
    expect(await refusal(plain(dir, { metadata: "esbuild" }))).toMatch(/Metadata must be a mapping/);
  });

  it("passes a .zip CodeUri through unchanged and writes InlineCode as index.js / index.py", async () => {
    const dir = project("plain-js");
    const zip = (await buildFunctionCode(plain(dir), progress)).zip;
    writeFileSync(join(dir, "code.zip"), zip);
    expect((await buildFunctionCode(plain(dir, { codeUri: "code.zip" }), progress)).zip.equals(zip)).toBe(
      true,
    );

    const inline = await buildFunctionCode(
      plain(dir, { codeUri: undefined, inlineCode: "exports.handler = async () => 1;" }),
      progress,
    );
    expect(await entries(inline.zip)).toMatchObject([
      { name: "index.js", data: "exports.handler = async () => 1;" },
    ]);
    const py = await buildFunctionCode(
      plain(dir, { codeUri: undefined, inlineCode: "def handler(e, c): return 1", runtime: "python3.13" }),
      progress,
    );
    expect((await entries(py.zip))[0]?.name).toBe("index.py");
    expect(
      await refusal(plain(dir, { codeUri: undefined, inlineCode: "x", runtime: "provided.al2023" })),
    ).toMatch(/InlineCode needs a nodejs or python Runtime/);
    expect(await refusal(plain(dir, { inlineCode: "x" }))).toMatch(/not both/);
    expect(await refusal(plain(dir, { codeUri: undefined, inlineCode: 42 }))).toMatch(/non-empty string/);
  });

  it("refuses a broken package.json and a requirements.txt without a python runtime, clearly", async () => {
    const dir = project("plain-js");
    writeFileSync(join(dir, "src", "package.json"), "{not json");
    expect(await refusal(plain(dir))).toMatch(/package.json is not valid JSON/);
    const py = project("plain-js");
    writeFileSync(join(py, "src", "requirements.txt"), "# only a comment\n\n");
    await buildFunctionCode(plain(py), progress);
    writeFileSync(join(py, "src", "requirements.txt"), "six==1.16.0\n");
    expect(await refusal(plain(py))).toMatch(/requirements.txt needs a python Runtime/);
  });
});

describe("esbuild builds", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const ts = (templateDir: string, properties: Record<string, unknown> = {}): FunctionCodeSource => ({
    templateDir,
    logicalId: "HelloFunction",
    codeUri: "hello/",
    handler: "app.lambdaHandler",
    runtime: "nodejs20.x",
    metadata: { BuildMethod: "esbuild", BuildProperties: { EntryPoints: ["app.ts"], ...properties } },
  });

  it("bundles a TypeScript handler with an npm dependency, and the function runs", async () => {
    const dir = project("esbuild-ts");
    lines.length = 0;
    const built = await buildFunctionCode(ts(dir, { Sourcemap: true }), progress);
    expect(lines.some((l) => /HelloFunction: npm install/.test(l))).toBe(true);
    expect(lines.some((l) => /HelloFunction: bundling with esbuild/.test(l))).toBe(true);
    expect(built.environment).toEqual({ NODE_OPTIONS: "--enable-source-maps" });
    expect((await entries(built.zip)).map((e) => e.name)).toEqual(["app.js", "app.js.map"]);

    lines.length = 0;
    const again = await buildFunctionCode(ts(dir, { Sourcemap: true }), progress);
    expect(again.zip.equals(built.zip)).toBe(true);
    expect(lines.some((l) => /npm dependencies unchanged, reusing them/.test(l))).toBe(true);

    await server.lambda.send(
      new CreateFunctionCommand({
        FunctionName: "esbuild-ts",
        Runtime: "nodejs20.x",
        Handler: "app.lambdaHandler",
        Role: ROLE,
        Code: { ZipFile: built.zip },
        Environment: { Variables: built.environment },
      }),
    );
    await waitUntilFunctionActiveV2(
      { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
      { FunctionName: "esbuild-ts" },
    );
    const res = await invoke(server.lambda, "esbuild-ts", { name: "lambent", wait: "1s" });
    expect(res.functionError).toBeUndefined();
    expect(JSON.parse((res.json as { body: string }).body)).toEqual({
      message: "hello lambent",
      waitMs: 1000,
    });
  });

  it("takes the handler's module when no EntryPoints are given, keeping its path", async () => {
    const dir = project("esbuild-ts");
    mkdirSync(join(dir, "hello", "handlers"));
    writeFileSync(
      join(dir, "hello", "handlers", "fn.ts"),
      "export const run = async (): Promise<number> => 7;\n",
    );
    const built = await buildFunctionCode(
      {
        ...ts(dir),
        handler: "handlers/fn.run",
        metadata: { BuildMethod: "esbuild", BuildProperties: { Minify: false } },
      },
      progress,
    );
    const files = await entries(built.zip);
    expect(files.map((e) => e.name)).toEqual(["handlers/fn.js"]);
    expect(files[0]?.data).toContain("run");
  });

  it("refuses hostile or unknown BuildProperties and reports esbuild's errors", async () => {
    const dir = project("esbuild-ts");
    expect(await refusal(ts(dir, { EntryPoints: ["../template.yaml"] }))).toMatch(
      /not a file inside the code folder/,
    );
    expect(await refusal(ts(dir, { EntryPoints: ["/etc/passwd"] }))).toMatch(
      /not a file inside the code folder/,
    );
    expect(await refusal(ts(dir, { Plugins: ["x"] }))).toMatch(/BuildProperties.Plugins is not supported/);
    expect(await refusal(ts(dir, { Format: "iife" }))).toMatch(/Format must be cjs or esm/);
    expect(await refusal(ts(dir, { Target: "es2020; rm -rf /" }))).toMatch(/not an esbuild target/);
    expect(await refusal(ts(dir, { Loader: [".png=evil"] }))).toMatch(/is not of the form/);
    expect(await refusal(ts(dir, { Minify: "yes" }))).toMatch(/Minify must be true or false/);
    expect(await refusal(ts(dir, { EntryPoints: [42] }))).toMatch(/list of non-empty strings/);
    expect(await refusal({ ...ts(dir), metadata: { BuildMethod: "esbuild", BuildProperties: [] } })).toMatch(
      /must be a mapping/,
    );
    expect(
      await refusal({ ...ts(dir), handler: "missing.handler", metadata: { BuildMethod: "esbuild" } }),
    ).toMatch(/no missing\{\.ts/);
    writeFileSync(join(dir, "hello", "app.ts"), "export const lambdaHandler = async () => {{;\n");
    expect(await refusal(ts(dir))).toMatch(/esbuild failed:\n {2}app.ts:\d+:\d+: Unexpected end of file/);
  });
});
