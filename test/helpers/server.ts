/**
 * Starts a real Lambent server on a free port with a temp data dir, and an
 * AWS SDK v3 Lambda client pointed at it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateFunctionCommand,
  type CreateFunctionCommandInput,
  LambdaClient,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import type { ServerOptions } from "../../src/config.js";
import { Platform } from "../../src/platform.js";
import { zipEntries, zipFixture } from "./zip.js";

export const ROLE = "arn:aws:iam::000000000000:role/lambda-role";

export interface TestServer {
  platform: Platform;
  url: string;
  dataDir: string;
  lambda: LambdaClient;
  /** Create a function from a fixture folder and wait until it is Active. */
  deploy(name: string, fixture: string, extra?: Partial<CreateFunctionCommandInput>): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Creates a function whose code is one file (`index.js`, or `index.py` for a Python runtime; Node.js
 * 20 unless `extra` names a runtime; handler `index.handler`) and waits until it is Active.
 */
export async function createInlineFunction(
  lambda: LambdaClient,
  name: string,
  code: string,
  extra: Partial<CreateFunctionCommandInput> = {},
): Promise<void> {
  const file = extra.Runtime?.startsWith("python") ? "index.py" : "index.js";
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      ...extra,
      Code: { ZipFile: await zipEntries([{ name: file, content: code }]) },
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
    { FunctionName: name },
  );
}

export function lambdaClient(url: string, region = "us-east-1"): LambdaClient {
  return new LambdaClient({
    endpoint: url,
    region,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    maxAttempts: 1,
  });
}

export async function startServer(overrides: Partial<ServerOptions> = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), "lambent-test-"));
  const platform = await Platform.start({ port: 0, quiet: true, sandbox: "process", ...overrides, dataDir });
  const lambda = lambdaClient(platform.url);
  return {
    platform,
    url: platform.url,
    dataDir,
    lambda,
    async deploy(name, fixture, extra = {}) {
      const runtime = fixture.startsWith("python")
        ? "python3.11"
        : fixture.startsWith("provided")
          ? "provided.al2023"
          : "nodejs20.x";
      await lambda.send(
        new CreateFunctionCommand({
          FunctionName: name,
          Runtime: runtime,
          Handler: "index.handler",
          Role: ROLE,
          Code: { ZipFile: await zipFixture(fixture) },
          ...extra,
        }),
      );
      await waitUntilFunctionActiveV2(
        { client: lambda, maxWaitTime: 30, minDelay: 0.1, maxDelay: 0.5 },
        { FunctionName: name },
      );
    },
    async stop() {
      lambda.destroy();
      await platform.stop();
      if (!overrides.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
