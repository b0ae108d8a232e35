/**
 * The official AWS runtime interface client (npm aws-lambda-ric), unchanged,
 * as a `provided` runtime's bootstrap: proof that Lambent's Runtime API is
 * the real one.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { CreateFunctionCommand, waitUntilFunctionActiveV2 } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { type ZipEntry, zipEntries } from "./helpers/zip.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Where scripts/ric-fixture.sh builds it: once per machine, beside the runtime cache. */
const RIC = join(
  process.env.LAMBENT_TEST_FIXTURES_DIR ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "lambent", "test-fixtures"),
  "ric-3.3.0/node_modules/aws-lambda-ric",
);

function files(dir: string, prefix: string, out: ZipEntry[]): void {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const st = statSync(full);
    if (st.isDirectory()) files(full, prefix, out);
    else
      out.push({
        name: join(prefix, relative(RIC, full)),
        content: readFileSync(full),
        mode: 0o100000 | (st.mode & 0o777),
      });
  }
}

let server: TestServer;

describe.each(["process", "bwrap"] as const)("with the %s sandbox driver", (sandbox) => {
  beforeAll(async () => {
    if (!existsSync(join(RIC, "dist/rapid-client.node"))) {
      execFileSync("bash", [join(ROOT, "scripts/ric-fixture.sh")], { stdio: "inherit" });
    }
    server = await startServer({ sandbox });
    const entries: ZipEntry[] = [
      {
        name: "bootstrap",
        mode: 0o100755,
        content:
          '#!/bin/sh\nexec node "$LAMBDA_TASK_ROOT/node_modules/aws-lambda-ric/bin/index.mjs" "$_HANDLER"\n',
      },
      { name: "package.json", content: '{"type":"commonjs"}' },
      {
        name: "app.js",
        content:
          "let n = 0;\nexports.handler = async (event, context) => { n++; console.log('ric says hi'); if (event.fail) throw new Error('ric failure'); return { event, n, requestId: context.awsRequestId, fn: context.functionName }; };\n",
      },
      { name: "node_modules/aws-lambda-ric/package.json", content: readFileSync(join(RIC, "package.json")) },
    ];
    files(join(RIC, "dist"), "node_modules/aws-lambda-ric", entries);
    files(join(RIC, "bin"), "node_modules/aws-lambda-ric", entries);
    await server.lambda.send(
      new CreateFunctionCommand({
        FunctionName: "ric",
        Runtime: "provided.al2023",
        Handler: "app.handler",
        Role: ROLE,
        Code: { ZipFile: await zipEntries(entries) },
      }),
    );
    await waitUntilFunctionActiveV2(
      { client: server.lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
      { FunctionName: "ric" },
    );
  }, 300_000);

  afterAll(async () => {
    await server?.stop();
  });

  describe("aws-lambda-ric as a provided runtime's bootstrap", () => {
    it("answers invokes, keeps its environment warm and reports errors", async () => {
      const first = await invoke(server.lambda, "ric", { a: 1 }, { LogType: "Tail" });
      expect(first.functionError).toBeUndefined();
      expect(first.json).toMatchObject({ event: { a: 1 }, n: 1, fn: "ric" });
      expect(first.log).toContain("ric says hi");
      const second = await invoke(server.lambda, "ric", { a: 2 });
      expect(second.json).toMatchObject({ event: { a: 2 }, n: 2 });
      const failed = await invoke(server.lambda, "ric", { fail: true });
      expect(failed.functionError).toBe("Unhandled");
      expect(failed.json).toMatchObject({ errorType: "Error", errorMessage: "ric failure" });
    });
  });
});
