/**
 * Dev mounts (`PUT/DELETE /_lambent/dev-mounts/<fn>`): $LATEST runs from a folder under
 * `--dev-root`, environments restart when the mount is set again, and nothing outside the dev
 * root, no relative or odd path, and no key without lambent:DevMount gets a mount.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateFunctionCommand,
  PublishVersionCommand,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { createAccessKey, signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

const top = mkdtempSync(join(tmpdir(), "lambent-devmount-"));
const root = join(top, "projects");
const outside = join(top, "elsewhere");
const project = join(root, "app");
let server: TestServer;

const handler = (answer: string) => `exports.handler = async () => (${JSON.stringify(answer)});\n`;

async function mount(
  fn: string,
  body: unknown,
  credentials?: { accessKeyId: string; secretAccessKey: string },
  method = "PUT",
  url = server.url,
): Promise<{ status: number; type: string | null; json: Record<string, unknown> }> {
  const res = await signedFetch(
    `${url}/_lambent/dev-mounts/${encodeURIComponent(fn)}`,
    {
      method,
      headers: { "content-type": "application/json" },
      ...(method === "PUT" ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    },
    credentials,
  );
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get("x-amzn-errortype"),
    json: text ? JSON.parse(text) : {},
  };
}

beforeAll(async () => {
  mkdirSync(project, { recursive: true });
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(project, "index.js"), handler("dev-1"));
  writeFileSync(join(outside, "index.js"), handler("outside"));
  writeFileSync(join(root, "file.js"), "");
  symlinkSync(outside, join(root, "escape"));
  server = await startServer({ devRoot: root });
  await server.lambda.send(
    new CreateFunctionCommand({
      FunctionName: "dev-fn",
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: handler("uploaded") }]) },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
    { FunctionName: "dev-fn" },
  );
});
afterAll(async () => {
  await server?.stop();
  rmSync(top, { recursive: true, force: true });
});

describe("dev mounts", () => {
  it("run $LATEST from the folder, restart environments when set again, and go back on DELETE", async () => {
    expect((await invoke(server.lambda, "dev-fn")).json).toBe("uploaded");
    await server.lambda.send(new PublishVersionCommand({ FunctionName: "dev-fn" }));

    const set = await mount("dev-fn", { Path: project });
    expect(set).toMatchObject({ status: 200, json: { FunctionName: "dev-fn", Path: project } });
    expect((await invoke(server.lambda, "dev-fn")).json).toBe("dev-1");
    // A published version keeps its uploaded code.
    expect((await invoke(server.lambda, "dev-fn", {}, { Qualifier: "1" })).json).toBe("uploaded");

    writeFileSync(join(project, "index.js"), handler("dev-2"));
    // The warm environment loaded the module already; setting the mount again restarts it.
    await mount("dev-fn", { Path: project });
    expect((await invoke(server.lambda, "dev-fn")).json).toBe("dev-2");

    expect((await mount("dev-fn", null, undefined, "DELETE")).status).toBe(204);
    expect((await invoke(server.lambda, "dev-fn")).json).toBe("uploaded");
  });

  it("start an environment from a stem cell as soon as a mount is set: the next invoke finds it initialised", async () => {
    const worker = server.platform.worker;
    const latest = () => worker.environmentsOf("dev-fn").filter((e) => e.fn.version === "$LATEST");
    const readyAgain = new Promise<void>((resolve) => {
      const off = worker.onEnvironmentsChanged(() => {
        const envs = latest();
        if (envs.length === 1 && envs[0]?.state === "ready") {
          off();
          resolve();
        }
      });
    });
    await worker.stemCells.whenReady("nodejs20.x");
    const taken = worker.stemCells.stats.taken;
    writeFileSync(join(project, "index.js"), handler("dev-3"));
    expect((await mount("dev-fn", { Path: project })).status).toBe(200);
    // No invoke yet: the reload itself started (and initialised) the environment, from a stem cell.
    await readyAgain;
    expect(worker.stemCells.stats.taken).toBe(taken + 1);
    expect((await invoke(server.lambda, "dev-fn")).json).toBe("dev-3");
    expect(latest()).toHaveLength(1);
    expect((await mount("dev-fn", null, undefined, "DELETE")).status).toBe(204);
  });

  it("refuses paths outside the dev root, relative or odd paths, files, and unknown functions", async () => {
    const refused = async (body: unknown, pattern: RegExp, fn = "dev-fn") => {
      const r = await mount(fn, body);
      expect(r.status).toBe(400);
      expect(r.type).toBe("InvalidParameterValueException");
      expect(String(r.json.message ?? r.json.Message)).toMatch(pattern);
    };
    await refused({ Path: outside }, /outside the server's dev root/);
    await refused({ Path: `${root}/../elsewhere` }, /outside the server's dev root/);
    await refused({ Path: join(root, "escape") }, /outside the server's dev root/);
    await refused({ Path: "/" }, /outside the server's dev root/);
    await refused({ Path: "/etc" }, /outside the server's dev root/);
    await refused({ Path: "projects/app" }, /absolute path/);
    await refused({ Path: `${project}\u0000` }, /absolute path/);
    await refused({ Path: ["/"] }, /absolute path/);
    await refused({}, /absolute path/);
    await refused({ Path: join(root, "missing") }, /does not exist/);
    await refused({ Path: join(root, "file.js") }, /not a folder/);
    await refused({ Path: project }, /\$LATEST only/, "dev-fn:1");
    const bad = await mount("dev-fn", "{not json");
    expect(bad.type).toBe("InvalidRequestContentException");
    const missing = await mount("no-such-fn", { Path: project });
    expect(missing).toMatchObject({ status: 404, type: "ResourceNotFoundException" });
    expect((await invoke(server.lambda, "dev-fn")).json).toBe("uploaded");
  });

  it("needs lambent:DevMount: a key allowed lambda:* is denied", async () => {
    const creds = await createAccessKey(server.url, "deployer", [
      { Effect: "Allow", Action: "lambda:*", Resource: "*" },
    ]);
    expect(await mount("dev-fn", { Path: project }, creds)).toMatchObject({
      status: 403,
      type: "AccessDeniedException",
    });
    expect((await mount("dev-fn", null, creds, "DELETE")).status).toBe(403);

    const devCreds = await createAccessKey(server.url, "developer", [
      {
        Effect: "Allow",
        Action: "lambent:DevMount",
        Resource: "arn:aws:lambda:us-east-1:000000000000:function:dev-fn",
      },
    ]);
    expect((await mount("dev-fn", { Path: project }, devCreds)).status).toBe(200);
    expect((await mount("other-fn", { Path: project }, devCreds)).status).toBe(403);
    expect((await mount("dev-fn", null, devCreds, "DELETE")).status).toBe(204);
  });

  it("are off on a server without --dev-root", async () => {
    const plain = await startServer();
    try {
      const r = await mount("dev-fn", { Path: project }, undefined, "PUT", plain.url);
      expect(r).toMatchObject({ status: 400, type: "InvalidParameterValueException" });
      expect(String(r.json.message ?? r.json.Message)).toMatch(/--dev-root/);
    } finally {
      await plain.stop();
    }
  });
});

describe("dev mounts in the bwrap sandbox", () => {
  it("show the folder read-only at /var/task, with each restart seeing the latest edit", async () => {
    // The sandbox user reads the folder, as it would a checkout in a home directory.
    for (const dir of [top, root, project]) chmodSync(dir, 0o755);
    const isolated = await startServer({ devRoot: root, sandbox: "bwrap" });
    try {
      await isolated.deploy("dev-bwrap", "node-cjs");
      writeFileSync(
        join(project, "index.js"),
        `const fs = require("node:fs");
exports.handler = async () => {
  let write;
  try { fs.writeFileSync("/var/task/x", "x"); write = "written"; } catch (e) { write = e.code; }
  return { answer: "bwrap-1", cwd: process.cwd(), write };
};
`,
      );
      expect((await mount("dev-bwrap", { Path: project }, undefined, "PUT", isolated.url)).status).toBe(200);
      expect((await invoke(isolated.lambda, "dev-bwrap")).json).toEqual({
        answer: "bwrap-1",
        cwd: "/var/task",
        write: "EROFS",
      });
      writeFileSync(join(project, "index.js"), handler("bwrap-2"));
      await mount("dev-bwrap", { Path: project }, undefined, "PUT", isolated.url);
      expect((await invoke(isolated.lambda, "dev-bwrap")).json).toBe("bwrap-2");
    } finally {
      await isolated.stop();
    }
  });
});
