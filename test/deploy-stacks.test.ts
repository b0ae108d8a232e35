/**
 * The stack record behind `lambent deploy` (`/_lambent/stacks`) and the CLI:
 * hostile names and bodies get AWS-shaped errors, a write naming a stale
 * revision is a ConflictException (two deploys cannot interleave), keys need
 * lambent:* stack actions, and `lambent deploy` / `lambent stacks` work as a
 * user runs them (bin/lambent.js against a real server).
 */
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LambentClient } from "../src/deploy/api.js";
import { deployStack } from "../src/deploy/deploy.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { createAccessKey, signedFetch } from "./helpers/signed.js";

const run = promisify(execFile);
let server: TestServer;
let work: string;

beforeAll(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), "lambent-stacks-"));
});

afterAll(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function put(name: string, body: unknown, creds?: { accessKeyId: string; secretAccessKey: string }) {
  const res = await signedFetch(
    `${server.url}/_lambent/stacks/${encodeURIComponent(name)}`,
    { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) },
    ...(creds ? [creds] : []),
  );
  return {
    status: res.status,
    type: res.headers.get("x-amzn-errortype"),
    body: (await res.json()) as Record<string, unknown>,
  };
}

describe("/_lambent/stacks", () => {
  it("keeps a stack by revision: a stale write is a ConflictException", async () => {
    const first = await put("rev", { ExpectedRevision: 0, Status: "CREATE_IN_PROGRESS", Resources: {} });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ StackName: "rev", Revision: 1, Status: "CREATE_IN_PROGRESS" });
    expect(String(first.body.StackId)).toMatch(
      /^arn:aws:cloudformation:us-east-1:000000000000:stack\/rev\/[0-9a-f-]{36}$/,
    );
    const again = await put("rev", { ExpectedRevision: 0, Status: "CREATE_IN_PROGRESS" });
    expect(again.status).toBe(409);
    expect(again.type).toBe("ConflictException");
    const next = await put("rev", {
      ExpectedRevision: 1,
      Status: "CREATE_COMPLETE",
      Outputs: { A: { Value: "x" } },
    });
    expect(next.body).toMatchObject({ Revision: 2, Outputs: { A: { Value: "x" } } });
    const stale = await signedFetch(`${server.url}/_lambent/stacks/rev?Revision=1`, { method: "DELETE" });
    expect(stale.status).toBe(409);
    const list = (await (await signedFetch(`${server.url}/_lambent/stacks`)).json()) as { Stacks: unknown[] };
    expect(list.Stacks).toContainEqual(
      expect.objectContaining({ StackName: "rev", Status: "CREATE_COMPLETE" }),
    );
    expect(
      (await signedFetch(`${server.url}/_lambent/stacks/rev?Revision=2`, { method: "DELETE" })).status,
    ).toBe(204);
    const missing = await signedFetch(`${server.url}/_lambent/stacks/rev`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("x-amzn-errortype")).toBe("ResourceNotFoundException");
  });

  it("answers hostile names and bodies with AWS-shaped errors", async () => {
    const cases: Array<[string, unknown, string]> = [
      ["../etc", { ExpectedRevision: 0, Status: "CREATE_COMPLETE" }, "ValidationException"],
      ["1starts-with-digit", { ExpectedRevision: 0, Status: "CREATE_COMPLETE" }, "ValidationException"],
      ["x".repeat(129), { ExpectedRevision: 0, Status: "CREATE_COMPLETE" }, "ValidationException"],
      ["ok", { ExpectedRevision: -1, Status: "CREATE_COMPLETE" }, "ValidationException"],
      ["ok", { ExpectedRevision: "0", Status: "CREATE_COMPLETE" }, "ValidationException"],
      ["ok", { ExpectedRevision: 0, Status: "HACKED" }, "ValidationException"],
      ["ok", { ExpectedRevision: 0, Status: "CREATE_COMPLETE", Resources: [] }, "ValidationException"],
      ["ok", { ExpectedRevision: 0, Status: "CREATE_IN_PROGRESS", Pending: [] }, "ValidationException"],
      ["ok", { ExpectedRevision: 0, Status: "CREATE_IN_PROGRESS", Pending: "x" }, "ValidationException"],
      [
        "ok",
        { ExpectedRevision: 0, Status: "CREATE_COMPLETE", StatusReason: "x".repeat(5000) },
        "ValidationException",
      ],
      [
        "ok",
        { ExpectedRevision: 0, Status: "CREATE_COMPLETE", Resources: { A: "x".repeat(5 * 1024 * 1024) } },
        "ValidationException",
      ],
      ["ok", [1, 2], "InvalidRequestContentException"],
    ];
    for (const [name, body, type] of cases) {
      const r = await put(name, body);
      expect(r.status, `${name} ${JSON.stringify(body).slice(0, 80)}`).toBe(400);
      expect(r.type).toBe(type);
    }
    const notJson = await signedFetch(`${server.url}/_lambent/stacks/ok`, { method: "PUT", body: "{nope" });
    expect(notJson.status).toBe(400);
    const badRevision = await signedFetch(`${server.url}/_lambent/stacks/ok?Revision=abc`, {
      method: "DELETE",
    });
    expect(badRevision.status).toBe(400);
    expect((await signedFetch(`${server.url}/_lambent/stacks/ok`)).status).toBe(404);
  });

  it("needs lambent:*Stack permissions; a key limited to one stack reaches only that one", async () => {
    const creds = await createAccessKey(server.url, "deployer", [
      { Effect: "Allow", Action: ["lambda:*", "scheduler:*"], Resource: "*" },
      {
        Effect: "Allow",
        Action: "lambent:*Stack",
        Resource: "arn:aws:lambent:us-east-1:000000000000:stack/mine",
      },
    ]);
    expect((await put("mine", { ExpectedRevision: 0, Status: "CREATE_COMPLETE" }, creds)).status).toBe(200);
    const other = await put("theirs", { ExpectedRevision: 0, Status: "CREATE_COMPLETE" }, creds);
    expect(other.status).toBe(403);
    expect(other.type).toBe("AccessDeniedException");
    const list = await signedFetch(`${server.url}/_lambent/stacks`, {}, creds);
    expect(list.status).toBe(403);
    // deployStack with this key: refused before anything is made.
    const dir = join(work, "denied");
    cpSync(join(import.meta.dirname, "fixtures", "sam", "multi"), dir, { recursive: true });
    const client = new LambentClient(server.url, "us-east-1", creds);
    const err = await deployStack({
      client,
      templateFile: join(dir, "template.yaml"),
      stackName: "theirs",
    }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/AccessDeniedException/);
    expect((await signedFetch(`${server.url}/_lambent/stacks/theirs`)).status).toBe(404);
  });
});

describe("lambent deploy and lambent stacks (CLI)", () => {
  const lambent = (...args: string[]) =>
    run(process.execPath, ["bin/lambent.js", ...args, "--endpoint", server.url], {
      env: { PATH: process.env.PATH ?? "" },
    });

  it("shows the plan with --dry-run, deploys, prints Outputs, lists, describes and deletes", async () => {
    const dir = join(work, "hello-cli");
    cpSync(join(import.meta.dirname, "fixtures", "sam", "hello-world"), dir, { recursive: true });
    const template = join(dir, "template.yaml");
    const dry = await lambent("deploy", "--template", template, "--stack-name", "cli-hello", "--dry-run");
    expect(dry.stderr).toContain("plan for stack cli-hello:");
    expect(dry.stderr).toMatch(/\+ create\s+HelloWorldFunction \(AWS::Lambda::Function\)/);
    expect(dry.stdout).toBe("dry run: nothing changed\n");
    const list0 = await lambent("stacks", "list");
    expect(list0.stdout).not.toContain("cli-hello");

    const done = await lambent(
      "deploy",
      "--template",
      template,
      "--stack-name",
      "cli-hello",
      "--parameter-overrides",
      "Stage=prod Greeting=hi",
    );
    expect(done.stderr).toMatch(/creating HelloWorldFunction/);
    expect(done.stdout).toContain("stack cli-hello: CREATE_COMPLETE");
    expect(done.stdout).toMatch(
      /HelloWorldApi = http:\/\/[a-z0-9]{32}\.lambda-url\.us-east-1\.localhost:\d+\//,
    );

    const list = await lambent("stacks", "list");
    expect(list.stdout).toMatch(/cli-hello\s+CREATE_COMPLETE\s+4/);
    const desc = await lambent("stacks", "describe", "cli-hello");
    expect(desc.stdout).toContain("Greeting = ****");
    expect(desc.stdout).toContain("Stage = prod");
    expect(desc.stdout).toMatch(/HelloWorldFunction\s+AWS::Lambda::Function\s+cli-hello-HelloWorldFunction-/);

    const bad = await lambent(
      "deploy",
      "--template",
      template,
      "--stack-name",
      "cli-hello",
      "--parameter-overrides",
      "Stage=qa",
    ).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toContain("value 'qa' is not one of AllowedValues");

    const del = await lambent("stacks", "delete", "cli-hello");
    expect(del.stdout).toBe("stack cli-hello deleted\n");
    const missing = await lambent("stacks", "describe", "cli-hello").catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((missing as { stderr: string }).stderr).toContain("does not exist");
    // Each CLI start loads the whole program: on a loaded two-core machine that alone takes seconds.
  }, 300_000);
});
