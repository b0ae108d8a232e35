/**
 * Every rejected control-plane request: the AWS SDK raises the right exception
 * class with Lambda's status and message, and nothing half-written is left in
 * the store or the code cache.
 */
import { randomBytes } from "node:crypto";
import {
  CreateFunctionCommand,
  type CreateFunctionCommandInput,
  DeleteFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  InvalidParameterValueException,
  InvalidRequestContentException,
  type LambdaClient,
  LambdaServiceException,
  ListTagsCommand,
  ListVersionsByFunctionCommand,
  PublishVersionCommand,
  ResourceNotFoundException,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  allFunctionNames,
  createFn,
  expectError,
  rejection,
  type StoreSnapshot,
  smallZip,
  snapshot,
} from "./helpers/control-plane.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

const ACCOUNT = "000000000000";
const arn = (name: string) => `arn:aws:lambda:us-east-1:${ACCOUNT}:function:${name}`;
const ZIP_LIMIT = 16 * 1024;
const UNZIPPED_LIMIT = 64 * 1024;

let server: TestServer;
let lambda: LambdaClient;
let good: Buffer;
let before: StoreSnapshot;
let namesBefore: string[];

beforeAll(async () => {
  server = await startServer({
    limits: {
      ...(await import("../src/config.js")).DEFAULT_LIMITS,
      zipBytes: ZIP_LIMIT,
      unzippedBytes: UNZIPPED_LIMIT,
    },
  });
  lambda = server.lambda;
  good = await smallZip("good");
  await createFn(lambda, "existing-fn", good, { Environment: { Variables: { KEEP: "me" } } });
});

afterAll(async () => {
  await server?.stop();
});

beforeEach(async () => {
  before = await snapshot(server);
  namesBefore = await allFunctionNames(lambda);
});

/** Nothing changed: same functions, versions (and revisions), blobs and extracted packages. */
async function expectUnchanged(): Promise<void> {
  expect(await snapshot(server)).toEqual(before);
  expect(await allFunctionNames(lambda)).toEqual(namesBefore);
}

const validation = (value: string, member: string, constraint: string) =>
  `1 validation error detected: Value '${value}' at '${member}' failed to satisfy constraint: ${constraint}`;

describe("names", () => {
  it.each([
    ["bad name!", "Member must satisfy regular expression pattern"],
    ["a".repeat(65), "Member must have length less than or equal to 64"],
    // An empty name breaks two model constraints of FunctionName: min length 1 and the pattern.
    ["", "Member must have length greater than or equal to 1"],
  ])("CreateFunction rejects %j", async (name, constraint) => {
    const err = await rejection(() => createFn(lambda, name, good));
    expect(err.name).toBe("ValidationException");
    expect(err.$metadata.httpStatusCode).toBe(400);
    expect(err.message).toContain(constraint);
    await expectUnchanged();
  });

  it("a qualified name cannot be created", async () => {
    const err = await rejection(() => createFn(lambda, "new-fn:1", good));
    expectError(err, InvalidParameterValueException, 400, /qualifier/);
    await expectUnchanged();
  });

  it("other operations reject a malformed name with ValidationException", async () => {
    for (const send of [
      () => lambda.send(new GetFunctionCommand({ FunctionName: "bad name" })),
      () => lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "bad/name" })),
      () => lambda.send(new DeleteFunctionCommand({ FunctionName: "x".repeat(65) })),
      () => lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: "bad name", Timeout: 3 })),
    ]) {
      const err = await rejection(send);
      expect(err.name).toBe("ValidationException");
      expect(err.$metadata.httpStatusCode).toBe(400);
      expect(err.message).toMatch(
        /^1 validation error detected: Value '.*' at 'functionName' failed to satisfy constraint: /,
      );
    }
    await expectUnchanged();
  });
});

describe("configuration values", () => {
  const create = (extra: Record<string, unknown>) => () =>
    createFn(lambda, "invalid-fn", good, extra as Parameters<typeof createFn>[3]);
  const update = (extra: Record<string, unknown>) => () =>
    lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: "existing-fn", ...extra }));

  it.each([
    ["MemorySize", 127, "memorySize", "Member must have value greater than or equal to 128"],
    ["MemorySize", 10241, "memorySize", "Member must have value less than or equal to 10240"],
    ["Timeout", 0, "timeout", "Member must have value greater than or equal to 1"],
    ["Timeout", 901, "timeout", "Member must have value less than or equal to 900"],
    ["Handler", "index handler", "handler", "Member must satisfy regular expression pattern: [^\\s]+"],
    ["Handler", "h".repeat(129), "handler", "Member must have length less than or equal to 128"],
    ["Description", "d".repeat(257), "description", "Member must have length less than or equal to 256"],
  ])("%s = %j is a ValidationException on create and update", async (member, value, path, constraint) => {
    for (const send of [create({ [member]: value }), update({ [member]: value })]) {
      const err = await rejection(send);
      expect(err).toBeInstanceOf(LambdaServiceException);
      expect(err.name).toBe("ValidationException");
      expect(err.$metadata.httpStatusCode).toBe(400);
      expect(err.message).toBe(validation(String(value), path, constraint));
    }
    await expectUnchanged();
  });

  it.each([511, 10241])("EphemeralStorage %i is a ValidationException", async (size) => {
    for (const send of [
      create({ EphemeralStorage: { Size: size } }),
      update({ EphemeralStorage: { Size: size } }),
    ]) {
      const err = await rejection(send);
      expect(err.name).toBe("ValidationException");
      expect(err.$metadata.httpStatusCode).toBe(400);
      expect(err.message).toBe(
        validation(
          String(size),
          "ephemeralStorage.size",
          size < 512
            ? "Member must have value greater than or equal to 512"
            : "Member must have value less than or equal to 10240",
        ),
      );
    }
    await expectUnchanged();
  });

  it("an unknown runtime is an InvalidParameterValueException", async () => {
    for (const send of [create({ Runtime: "nodejs99.x" }), update({ Runtime: "java21" })]) {
      const err = await rejection(send);
      expectError(
        err,
        InvalidParameterValueException,
        400,
        /^Value (nodejs99\.x|java21) at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: \[nodejs18\.x, nodejs20\.x, nodejs22\.x, nodejs24\.x, python3\.9, .*provided\.al2023\] or be a valid ARN$/,
      );
    }
    await expectUnchanged();
  });

  it("missing Runtime, Handler, Role or Code are rejected on create", async () => {
    const base = {
      FunctionName: "partial-fn",
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: good },
    };
    const without = (k: keyof typeof base) => {
      const { [k]: _, ...rest } = base;
      return () => lambda.send(new CreateFunctionCommand(rest as CreateFunctionCommandInput));
    };
    expectError(
      await rejection(without("Runtime")),
      InvalidParameterValueException,
      400,
      /Runtime is required/,
    );
    expectError(
      await rejection(without("Handler")),
      InvalidParameterValueException,
      400,
      /Handler is required/,
    );
    const role = await rejection(without("Role"));
    expect(role.name).toBe("ValidationException");
    // AWS shows a missing member as `Value null` (unquoted): "Value null at 'tags.1.member.value' failed to
    // satisfy constraint: Member must not be null" (github.com/serverless/serverless/issues/2036).
    expect(role.message).toBe(
      "1 validation error detected: Value null at 'role' failed to satisfy constraint: Member must not be null",
    );
    const code = await rejection(without("Code"));
    expect(code.name).toBe("ValidationException");
    expect(code.message).toBe(
      "1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null",
    );
    const badRole = await rejection(() => createFn(lambda, "partial-fn", good, { Role: "not-a-role" }));
    expect(badRole.name).toBe("ValidationException");
    expect(badRole.message).toContain("at 'role' failed to satisfy constraint");
    await expectUnchanged();
  });

  it("environment variables over 4 KB are an InvalidParameterValueException", async () => {
    const Variables = { BIG: "x".repeat(4096) };
    for (const send of [create({ Environment: { Variables } }), update({ Environment: { Variables } })]) {
      expectError(
        await rejection(send),
        InvalidParameterValueException,
        400,
        `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${JSON.stringify(Variables)}`,
      );
    }
    // Just under the limit is fine (measured as the JSON of the map).
    const fits = { BIG: "x".repeat(4096 - JSON.stringify({ BIG: "" }).length) };
    const ok = await lambda.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: "existing-fn",
        Environment: { Variables: fits },
      }),
    );
    expect(ok.Environment?.Variables?.BIG).toHaveLength(fits.BIG.length);
    await lambda.send(
      new UpdateFunctionConfigurationCommand({
        FunctionName: "existing-fn",
        Environment: { Variables: { KEEP: "me" } },
      }),
    );
  });

  it("reserved environment variable names are an InvalidParameterValueException", async () => {
    for (const send of [
      create({ Environment: { Variables: { AWS_REGION: "x", OK_NAME: "y", LAMBDA_TASK_ROOT: "z" } } }),
      update({ Environment: { Variables: { AWS_REGION: "x", OK_NAME: "y", LAMBDA_TASK_ROOT: "z" } } }),
    ]) {
      expectError(
        await rejection(send),
        InvalidParameterValueException,
        400,
        "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: AWS_REGION, LAMBDA_TASK_ROOT",
      );
    }
    await expectUnchanged();
  });

  it("an invalid environment variable name is a ValidationException that does not echo it", async () => {
    const err = await rejection(update({ Environment: { Variables: { "1BAD": "x" } } }));
    expect(err.name).toBe("ValidationException");
    expect(err.message).not.toContain("1BAD");
    expect(err.message).toContain("[a-zA-Z]([a-zA-Z0-9_])+");
    await expectUnchanged();
  });

  it("invalid layer ARNs and more than 5 layers are rejected", async () => {
    const layer = (n: number) => `arn:aws:lambda:us-east-1:${ACCOUNT}:layer:l${n}:1`;
    const six = await rejection(update({ Layers: [1, 2, 3, 4, 5, 6].map(layer) }));
    expectError(six, InvalidParameterValueException, 400, "Cannot reference more than 5 layers.");
    const bad = await rejection(update({ Layers: ["not-an-arn"] }));
    expect(bad.name).toBe("ValidationException");
    expect(bad.message).toContain("at 'layers' failed to satisfy constraint");
    await expectUnchanged();
  });

  it("the rejected update left the function as it was", async () => {
    const cfg = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "existing-fn" }));
    expect(cfg).toMatchObject({
      MemorySize: 128,
      Timeout: 3,
      Handler: "index.handler",
      Runtime: "nodejs20.x",
      Environment: { Variables: { KEEP: "me" } },
      EphemeralStorage: { Size: 512 },
      LastUpdateStatus: "Successful",
    });
  });
});

describe("deployment packages", () => {
  const AGAIN = " Please check your file, then try to upload again.";
  const createWith = (zip: Buffer) => () => createFn(lambda, "zip-fn", zip);
  const updateWith = (zip: Buffer) => () =>
    lambda.send(new UpdateFunctionCodeCommand({ FunctionName: "existing-fn", ZipFile: zip }));

  async function expectInvalid(zip: Buffer, message: string | RegExp): Promise<void> {
    for (const send of [createWith(zip), updateWith(zip)]) {
      expectError(await rejection(send), InvalidParameterValueException, 400, message);
    }
    await expectUnchanged();
  }

  it("a zip over the direct-upload limit is a RequestEntityTooLargeException (413)", async () => {
    const big = await zipEntries([{ name: "index.js", content: randomBytes(ZIP_LIMIT) }]);
    expect(big.length).toBeGreaterThan(ZIP_LIMIT);
    for (const [send, op] of [
      [createWith(big), "CreateFunction"],
      [updateWith(big), "UpdateFunctionCode"],
    ] as const) {
      const err = await rejection(send);
      expect(err.name).toBe("RequestEntityTooLargeException");
      expect(err.$metadata.httpStatusCode).toBe(413);
      expect(err.message).toBe(
        `Request must be smaller than ${Math.ceil((ZIP_LIMIT * 4) / 3)} bytes for the ${op} operation`,
      );
    }
    await expectUnchanged();
  });

  it("a request body over the server's body limit is a RequestEntityTooLargeException (413)", async () => {
    const huge = randomBytes(ZIP_LIMIT * 2 + 2 * 1024 * 1024);
    const err = await rejection(createWith(huge));
    expect(err.name).toBe("RequestEntityTooLargeException");
    expect(err.$metadata.httpStatusCode).toBe(413);
    expect(err.message).toMatch(/^Request must be smaller than \d+ bytes for the CreateFunction operation$/);
    await expectUnchanged();
  });

  it("a package that unzips over the limit is an InvalidParameterValueException", async () => {
    const zeros = await zipEntries([{ name: "index.js", content: Buffer.alloc(UNZIPPED_LIMIT + 1) }]);
    expect(zeros.length).toBeLessThan(ZIP_LIMIT);
    await expectInvalid(zeros, `Unzipped size must be smaller than ${UNZIPPED_LIMIT} bytes`);
  });

  it("a corrupt zip is rejected", async () => {
    await expectInvalid(
      randomBytes(1000),
      "Could not unzip uploaded file. Please check your file, then try to upload again.",
    );
    const truncated = good.subarray(0, good.length - 30);
    await expectInvalid(
      truncated,
      "Could not unzip uploaded file. Please check your file, then try to upload again.",
    );
    // Valid directory, damaged data: the entry's CRC does not match.
    const damaged = Buffer.from(await zipEntries([{ name: "index.js", content: "x".repeat(200) }]));
    damaged[40] = (damaged[40] as number) ^ 0xff;
    await expectInvalid(
      damaged,
      "Could not unzip uploaded file. Please check your file, then try to upload again.",
    );
  });

  it("an empty zip and an empty upload are rejected", async () => {
    await expectInvalid(await zipEntries([]), "Uploaded file must be a non-empty zip");
    await expectInvalid(Buffer.alloc(0), "Uploaded file must be a non-empty zip");
  });

  it("an entry with an absolute path is rejected", async () => {
    const zip = await zipEntries([{ name: "index.js", content: "x" }]);
    // yazl refuses absolute names, so rename the entry in place: "index.js" → "/ndex.js" in both headers.
    const patched = Buffer.from(zip.toString("latin1").replaceAll("index.js", "/ndex.js"), "latin1");
    await expectInvalid(
      patched,
      `Could not unzip uploaded file. Entry '/ndex.js' has an absolute path.${AGAIN}`,
    );
  });

  it("an entry with .. in its path is rejected", async () => {
    const zip = await zipEntries([{ name: "a/xx/evil.js", content: "x" }]);
    const patched = Buffer.from(zip.toString("latin1").replaceAll("a/xx/evil.js", "a/../../e.js"), "latin1");
    await expectInvalid(
      patched,
      `Could not unzip uploaded file. Entry 'a/../../e.js' points outside the package (its path has '..').${AGAIN}`,
    );
  });

  it("a symlink that escapes the package is rejected; one inside it is accepted", async () => {
    const escaping = await zipEntries([
      { name: "index.js", content: "x" },
      { name: "lib/passwd", content: "../../etc/passwd", mode: 0o120777 },
    ]);
    await expectInvalid(
      escaping,
      `Could not unzip uploaded file. Symlink 'lib/passwd' points outside the package.${AGAIN}`,
    );
    const absolute = await zipEntries([
      { name: "index.js", content: "x" },
      { name: "passwd", content: "/etc/passwd", mode: 0o120777 },
    ]);
    await expectInvalid(
      absolute,
      `Could not unzip uploaded file. Symlink 'passwd' points outside the package.${AGAIN}`,
    );
    const inside = await zipEntries([
      { name: "index.js", content: "exports.handler = async () => 1;\n" },
      { name: "lib/main.js", content: "../index.js", mode: 0o120777 },
    ]);
    await expectUnchanged();
    const created = await createFn(lambda, "symlink-ok-fn", inside);
    expect(created.FunctionName).toBe("symlink-ok-fn");
    await lambda.send(new DeleteFunctionCommand({ FunctionName: "symlink-ok-fn" }));
    // The store is as before (the extracted copy stays in the code cache, keyed by hash).
    const { codeDirs: _, ...rest } = await snapshot(server);
    const { codeDirs: __, ...expected } = before;
    expect(rest).toEqual(expected);
  });

  it("no code at all is rejected", async () => {
    const err = await rejection(() =>
      lambda.send(
        new CreateFunctionCommand({
          FunctionName: "nocode-fn",
          Runtime: "nodejs20.x",
          Handler: "i.h",
          Role: ROLE,
          Code: {},
        }),
      ),
    );
    expectError(err, InvalidParameterValueException, 400, "Please provide a source for function code.");
    await expectUnchanged();
  });
});

describe("unknown functions", () => {
  it("every operation on a missing function is a ResourceNotFoundException (404)", async () => {
    const missing = `Function not found: ${arn("ghost-fn")}`;
    for (const send of [
      () => lambda.send(new GetFunctionCommand({ FunctionName: "ghost-fn" })),
      () => lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "ghost-fn" })),
      () => lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: "ghost-fn", Timeout: 5 })),
      () => lambda.send(new UpdateFunctionCodeCommand({ FunctionName: "ghost-fn", ZipFile: good })),
      () => lambda.send(new DeleteFunctionCommand({ FunctionName: "ghost-fn" })),
      () => lambda.send(new PublishVersionCommand({ FunctionName: "ghost-fn" })),
      () => lambda.send(new ListVersionsByFunctionCommand({ FunctionName: "ghost-fn" })),
      () => lambda.send(new ListTagsCommand({ Resource: arn("ghost-fn") })),
      () => lambda.send(new TagResourceCommand({ Resource: arn("ghost-fn"), Tags: { a: "b" } })),
      () => lambda.send(new UntagResourceCommand({ Resource: arn("ghost-fn"), TagKeys: ["a"] })),
    ]) {
      expectError(await rejection(send), ResourceNotFoundException, 404, missing);
    }
    const version = await rejection(() =>
      lambda.send(new GetFunctionConfigurationCommand({ FunctionName: "existing-fn", Qualifier: "7" })),
    );
    expectError(version, ResourceNotFoundException, 404, `Function not found: ${arn("existing-fn")}:7`);
    await expectUnchanged();
  });
});

describe("requests that are not Lambda requests", () => {
  it("a malformed JSON body is an InvalidRequestContentException", async () => {
    // The SDK always sends valid JSON: corrupt the body after serialisation.
    const { lambdaClient } = await import("./helpers/server.js");
    const client = lambdaClient(server.url);
    client.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { body: unknown; headers: Record<string, string> };
        req.body = '{"FunctionName": "broken-fn", ';
        req.headers["content-length"] = String(Buffer.byteLength(req.body as string));
        return next(args);
      },
      { step: "build", priority: "low" },
    );
    try {
      const err = await rejection(() => createFn(client, "broken-fn", good));
      expectError(err, InvalidRequestContentException, 400, /^Could not parse request body into json/);
    } finally {
      client.destroy();
    }
    await expectUnchanged();
  });

  it("an unknown route answers like AWS: UnknownOperationException, 404, JSON, no stack trace", async () => {
    for (const [method, path] of [
      ["GET", "/2015-03-31/no-such-thing"],
      ["POST", "/2015-03-31/functions/existing-fn/teleport"],
      ["PATCH", "/2015-03-31/functions"],
      ["GET", "/"],
    ] as const) {
      const res = await signedFetch(`${server.url}${path}`, { method });
      expect(res.status).toBe(404);
      expect(res.headers.get("x-amzn-errortype")).toBe("UnknownOperationException");
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(res.headers.get("x-amzn-requestid")).toMatch(/^[0-9a-f-]{36}$/);
      const text = await res.text();
      const body = JSON.parse(text) as Record<string, unknown>;
      expect(body.Type).toBe("User");
      expect(body.message).toBe(`Unknown operation: ${method} ${path}`);
      expect(text).not.toMatch(/\bat \S+ \(|node_modules|\.ts:\d+/);
    }
    await expectUnchanged();
  });

  it("a server error does not leak a stack trace either", async () => {
    const res = await signedFetch(`${server.url}/2015-03-31/functions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "[1,2,3]",
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("x-amzn-errortype")).toBe("InvalidRequestContentException");
    const text = await res.text();
    expect(text).not.toMatch(/\bat \S+ \(/);
    await expectUnchanged();
  });

  it("tag operations reject non-function ARNs and reserved keys", async () => {
    const notArn = await rejection(() => lambda.send(new ListTagsCommand({ Resource: "existing-fn" })));
    expect(notArn.$metadata.httpStatusCode).toBe(400);
    const reserved = await rejection(() =>
      lambda.send(new TagResourceCommand({ Resource: arn("existing-fn"), Tags: { "aws:x": "y" } })),
    );
    expectError(reserved, InvalidParameterValueException, 400, /aws:/);
    expect((await lambda.send(new ListTagsCommand({ Resource: arn("existing-fn") }))).Tags).toEqual({});
    await expectUnchanged();
  });
});
