/** Shared pieces of the control-plane tests: small packages, store snapshots, error capture. */
import { createHash } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import {
  CreateFunctionCommand,
  type CreateFunctionCommandInput,
  type LambdaClient,
  LambdaServiceException,
  paginateListFunctions,
} from "@aws-sdk/client-lambda";
import { expect } from "vitest";
import { ROLE, type TestServer } from "./server.js";
import { zipEntries } from "./zip.js";

export const HANDLER_JS = "exports.handler = async (event) => ({ ok: true, event });\n";

/** A small valid package; `tag` makes its bytes (and so its sha256) unique. */
export function smallZip(tag = "a"): Promise<Buffer> {
  return zipEntries([
    { name: "index.js", content: `${HANDLER_JS}// ${tag}\n` },
    { name: "lib/util.js", content: `module.exports = ${JSON.stringify(tag)};\n` },
  ]);
}

export function sha256Hex(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

export function sha256B64(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("base64");
}

export async function createFn(
  lambda: LambdaClient,
  name: string,
  zip: Buffer,
  extra: Partial<CreateFunctionCommandInput> = {},
) {
  return lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: zip },
      ...extra,
    }),
  );
}

export async function allFunctionNames(lambda: LambdaClient): Promise<string[]> {
  const names: string[] = [];
  for await (const page of paginateListFunctions({ client: lambda, pageSize: 50 }, {})) {
    for (const f of page.Functions ?? []) names.push(f.FunctionName as string);
  }
  return names;
}

export interface StoreSnapshot {
  functions: string[];
  versions: string[];
  blobs: string[];
  codeDirs: string[];
}

/** What the store and the code cache hold: compared before and after a rejected request. */
export async function snapshot(server: TestServer): Promise<StoreSnapshot> {
  const db = server.platform.store.db;
  const functions = (await db.selectFrom("functions").select("name").orderBy("name").execute()).map(
    (r) => r.name,
  );
  const versions = (
    await db
      .selectFrom("function_versions")
      .select(["function_name", "version", "revision_id"])
      .orderBy("function_name")
      .orderBy("version")
      .execute()
  ).map((r) => `${r.function_name}:${r.version}:${r.revision_id}`);
  const blobs = (await db.selectFrom("code_blobs").select("sha256").orderBy("sha256").execute()).map(
    (r) => r.sha256,
  );
  let codeDirs: string[] = [];
  try {
    codeDirs = readdirSync(join(server.dataDir, "code")).sort();
  } catch {
    codeDirs = [];
  }
  return { functions, versions, blobs, codeDirs };
}

/** Run `fn`, expect it to reject, and return the SDK's exception. */
export async function rejection(fn: () => Promise<unknown>): Promise<LambdaServiceException> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LambdaServiceException);
    return err as LambdaServiceException;
  }
  throw new Error("expected the request to be rejected");
}

/** Assert an SDK exception's class, HTTP status and message. */
export function expectError(
  err: LambdaServiceException,
  // biome-ignore lint/suspicious/noExplicitAny: any exception class of the SDK
  cls: abstract new (...args: any[]) => LambdaServiceException,
  status: number,
  message: string | RegExp,
): void {
  expect(err).toBeInstanceOf(cls);
  expect(err.$metadata.httpStatusCode).toBe(status);
  if (typeof message === "string") expect(err.message).toBe(message);
  else expect(err.message).toMatch(message);
}
