/**
 * Keys, identity policies (the allow/deny matrix with action and resource
 * wildcards, NotAction, explicit Deny), resource-based policies
 * (AddPermission/RemovePermission/GetPolicy on functions, versions and aliases;
 * the layer-version equivalents) and their enforcement — with the real SDK.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  AddLayerVersionPermissionCommand,
  AddPermissionCommand,
  CreateAliasCommand,
  DeleteFunctionCommand,
  GetFunctionCommand,
  GetLayerVersionCommand,
  GetLayerVersionPolicyCommand,
  GetPolicyCommand,
  InvokeCommand,
  LambdaClient,
  ListFunctionsCommand,
  PreconditionFailedException,
  PublishLayerVersionCommand,
  PublishVersionCommand,
  RemoveLayerVersionPermissionCommand,
  RemovePermissionCommand,
  ResourceConflictException,
  ResourceNotFoundException,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rejection } from "./helpers/control-plane.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { createAccessKey, type AccessKey as Key, signedFetch } from "./helpers/signed.js";
import { zipEntries } from "./helpers/zip.js";

const run = promisify(execFile);
let server: TestServer;
const ARN = (fn: string, q?: string) =>
  `arn:aws:lambda:us-east-1:000000000000:function:${fn}${q ? `:${q}` : ""}`;

function keyWith(name: string, statements: unknown[] | null): Promise<Key> {
  return createAccessKey(server.url, name, statements);
}

function as(k: Key): LambdaClient {
  return new LambdaClient({
    endpoint: server.url,
    region: "us-east-1",
    credentials: { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey },
    maxAttempts: 1,
  });
}

async function denied(fn: () => Promise<unknown>): Promise<string> {
  const err = await rejection(fn);
  expect(err.name).toBe("AccessDeniedException");
  expect(err.$metadata.httpStatusCode).toBe(403);
  return err.message;
}

beforeAll(async () => {
  server = await startServer();
  await server.deploy("alpha", "node-cjs");
  await server.deploy("beta", "node-cjs");
  await server.deploy("gamma", "node-cjs");
});
afterAll(async () => {
  await server?.stop();
});

describe("identity policies", () => {
  it("a key with no policy may do nothing; AWS's message names the user, the action and the resource", async () => {
    const k = await keyWith("nobody", null);
    const c = as(k);
    expect(await denied(() => c.send(new InvokeCommand({ FunctionName: "alpha" })))).toBe(
      `User: ${k.arn} is not authorized to perform: lambda:InvokeFunction on resource: ${ARN("alpha")} because no identity-based policy allows the lambda:InvokeFunction action`,
    );
    expect(await denied(() => c.send(new ListFunctionsCommand({})))).toBe(
      `User: ${k.arn} is not authorized to perform: lambda:ListFunctions on resource: * because no identity-based policy allows the lambda:ListFunctions action`,
    );
    c.destroy();
  });

  it("the allow/deny matrix: action wildcards, resource wildcards, qualifiers, NotAction, explicit Deny", async () => {
    const k = await keyWith("matrix", [
      { Effect: "Allow", Action: "lambda:Get*", Resource: "*" },
      { Effect: "Allow", Action: ["lambda:InvokeFunction"], Resource: [ARN("al*"), ARN("beta", "*")] },
      { Effect: "Allow", Action: "lambda:ListFunctions", Resource: "*" },
      { Effect: "Deny", Action: "lambda:GetFunction", Resource: ARN("gamma") },
      {
        Effect: "Allow",
        NotAction: ["lambda:Delete*", "lambda:Get*", "lambda:Invoke*", "lambda:List*"],
        Resource: ARN("gamma"),
      },
    ]);
    const c = as(k);
    await c.send(new InvokeCommand({ FunctionName: "alpha" })); // wildcard resource
    await c.send(new GetFunctionCommand({ FunctionName: "beta" })); // action wildcard
    await c.send(new ListFunctionsCommand({}));
    // beta:* matches qualified ARNs only, as on AWS.
    await denied(() => c.send(new InvokeCommand({ FunctionName: "beta" })));
    await c.send(new InvokeCommand({ FunctionName: "beta", Qualifier: "$LATEST" }));
    // An explicit Deny beats the Get* allow.
    expect(await denied(() => c.send(new GetFunctionCommand({ FunctionName: "gamma" })))).toMatch(
      /with an explicit deny in an identity-based policy$/,
    );
    // NotAction: everything but the listed actions on gamma, e.g. PublishVersion — but never DeleteFunction.
    await c.send(new PublishVersionCommand({ FunctionName: "gamma" }));
    await denied(() => c.send(new DeleteFunctionCommand({ FunctionName: "gamma" })));
    // Actions are matched case-insensitively, resources case-sensitively.
    c.destroy();
  });

  it("keys create|list|delete and put-policy through the CLI with an admin key", async () => {
    const adminKey = await keyWith("ops", [{ Effect: "Allow", Action: "*", Resource: "*" }]);
    const env = {
      PATH: process.env.PATH ?? "",
      AWS_ACCESS_KEY_ID: adminKey.accessKeyId,
      AWS_SECRET_ACCESS_KEY: adminKey.secretAccessKey,
    };
    const cli = (...args: string[]) =>
      run(process.execPath, ["bin/lambent.js", ...args, "--endpoint", server.url], { env });
    const created = JSON.parse((await cli("keys", "create", "carol", "--json")).stdout) as {
      AccessKey: { AccessKeyId: string; SecretAccessKey: string };
    };
    const listed = (await cli("keys", "list")).stdout;
    expect(listed).toContain(created.AccessKey.AccessKeyId);
    expect(listed).not.toContain(created.AccessKey.SecretAccessKey);
    const file = `${server.dataDir}/carol.json`;
    const { writeFileSync } = await import("node:fs");
    writeFileSync(
      file,
      JSON.stringify({
        Version: "2012-10-17",
        Statement: { Effect: "Allow", Action: "lambda:ListFunctions", Resource: "*" },
      }),
    );
    await cli("keys", "put-policy", created.AccessKey.AccessKeyId, file);
    const carol = as({
      ...created.AccessKey,
      accessKeyId: created.AccessKey.AccessKeyId,
      secretAccessKey: created.AccessKey.SecretAccessKey,
      arn: "",
    });
    await carol.send(new ListFunctionsCommand({}));
    await cli("keys", "delete", created.AccessKey.AccessKeyId);
    // The deleted key stops working (after the short lookup cache).
    server.platform.auth.keys.forget();
    const err = await rejection(() => carol.send(new ListFunctionsCommand({})));
    expect(err.name).toBe("UnrecognizedClientException");
    carol.destroy();
    // A key without iam permissions cannot make keys.
    const plain = await keyWith("plain", [{ Effect: "Allow", Action: "lambda:*", Resource: "*" }]);
    const res = await signedFetch(
      `${server.url}/_lambent/keys`,
      { method: "POST", body: JSON.stringify({ UserName: "x" }) },
      plain,
    );
    expect(res.status).toBe(403);
    expect(res.headers.get("x-amzn-errortype")).toBe("AccessDeniedException");
    // The secret is never returned again: not by list, not by get-policy.
    const all = await (await signedFetch(`${server.url}/_lambent/keys`)).text();
    expect(all).not.toContain(adminKey.secretAccessKey);
    // Stored sealed: the database does not hold the secret in the clear.
    const rows = await server.platform.store.db.selectFrom("access_keys").select("secret").execute();
    for (const r of rows) expect(r.secret).not.toContain(adminKey.secretAccessKey);
  });

  it("malformed policies are MalformedPolicyDocumentException and change nothing", async () => {
    const k = await keyWith("victim", [{ Effect: "Allow", Action: "lambda:ListFunctions", Resource: "*" }]);
    const before = await server.platform.auth.keys.getPolicy(k.accessKeyId);
    for (const bad of [
      "{not json",
      "[]",
      JSON.stringify({ Statement: [] }),
      JSON.stringify({ Version: "2099-01-01", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] }),
      JSON.stringify({ Statement: [{ Effect: "Maybe", Action: "*", Resource: "*" }] }),
      JSON.stringify({ Statement: [{ Effect: "Allow", Resource: "*" }] }),
      JSON.stringify({ Statement: [{ Effect: "Allow", Action: "InvokeFunction", Resource: "*" }] }),
      JSON.stringify({ Statement: [{ Effect: "Allow", Action: "*", Resource: "function:x" }] }),
      JSON.stringify({ Statement: [{ Effect: "Allow", Action: "*", Resource: "*", Principal: "*" }] }),
      JSON.stringify({
        Statement: [
          { Effect: "Allow", Action: "*", Resource: "*", Condition: { NumericLessThan: { x: "1" } } },
        ],
      }),
      JSON.stringify({ Statement: [{ Effect: "Allow", Action: "*", Resource: "*", Extra: 1 }] }),
    ]) {
      const res = await signedFetch(`${server.url}/_lambent/keys/${k.accessKeyId}/policy`, {
        method: "PUT",
        body: bad,
      });
      expect(res.status, bad).toBe(400);
      expect(res.headers.get("x-amzn-errortype"), bad).toBe("MalformedPolicyDocumentException");
    }
    expect(await server.platform.auth.keys.getPolicy(k.accessKeyId)).toBe(before);
    const roleRes = await signedFetch(`${server.url}/_lambent/roles/some-role`, { method: "PUT", body: "{" });
    expect(roleRes.headers.get("x-amzn-errortype")).toBe("MalformedPolicyDocumentException");
    expect(await server.platform.auth.keys.getRolePolicy("some-role")).toBeUndefined();
  });
});

describe("resource-based policies", () => {
  it("AddPermission / GetPolicy / RemovePermission in AWS's shapes, with their errors", async () => {
    const lambda = server.lambda;
    const added = await lambda.send(
      new AddPermissionCommand({
        FunctionName: "alpha",
        StatementId: "s3-invoke",
        Action: "lambda:InvokeFunction",
        Principal: "s3.amazonaws.com",
        SourceArn: "arn:aws:s3:::my-bucket",
        SourceAccount: "000000000000",
      }),
    );
    expect(JSON.parse(added.Statement as string)).toEqual({
      Sid: "s3-invoke",
      Effect: "Allow",
      Principal: { Service: "s3.amazonaws.com" },
      Action: "lambda:InvokeFunction",
      Resource: ARN("alpha"),
      Condition: {
        StringEquals: { "AWS:SourceAccount": "000000000000" },
        ArnLike: { "AWS:SourceArn": "arn:aws:s3:::my-bucket" },
      },
    });
    const got = await lambda.send(new GetPolicyCommand({ FunctionName: "alpha" }));
    const doc = JSON.parse(got.Policy as string);
    expect(doc).toMatchObject({ Version: "2012-10-17", Id: "default" });
    expect(doc.Statement).toHaveLength(1);
    expect(got.RevisionId).toMatch(/^[0-9a-f-]{36}$/);
    // Duplicate statement id.
    const dup = await rejection(() =>
      lambda.send(
        new AddPermissionCommand({
          FunctionName: "alpha",
          StatementId: "s3-invoke",
          Action: "lambda:*",
          Principal: "*",
        }),
      ),
    );
    expect(dup).toBeInstanceOf(ResourceConflictException);
    // A stale RevisionId.
    const stale = await rejection(() =>
      lambda.send(
        new AddPermissionCommand({
          FunctionName: "alpha",
          StatementId: "other",
          Action: "lambda:*",
          Principal: "*",
          RevisionId: "nope",
        }),
      ),
    );
    expect(stale).toBeInstanceOf(PreconditionFailedException);
    const stale2 = await rejection(() =>
      lambda.send(
        new RemovePermissionCommand({ FunctionName: "alpha", StatementId: "s3-invoke", RevisionId: "nope" }),
      ),
    );
    expect(stale2).toBeInstanceOf(PreconditionFailedException);
    // Missing function, qualifier, statement.
    expect(
      await rejection(() =>
        lambda.send(
          new AddPermissionCommand({
            FunctionName: "nope",
            StatementId: "a",
            Action: "lambda:*",
            Principal: "*",
          }),
        ),
      ),
    ).toBeInstanceOf(ResourceNotFoundException);
    expect(
      await rejection(() =>
        lambda.send(
          new AddPermissionCommand({
            FunctionName: "alpha",
            Qualifier: "nope",
            StatementId: "a",
            Action: "lambda:*",
            Principal: "*",
          }),
        ),
      ),
    ).toBeInstanceOf(ResourceNotFoundException);
    expect(
      await rejection(() =>
        lambda.send(new RemovePermissionCommand({ FunctionName: "alpha", StatementId: "missing" })),
      ),
    ).toBeInstanceOf(ResourceNotFoundException);
    await lambda.send(
      new RemovePermissionCommand({
        FunctionName: "alpha",
        StatementId: "s3-invoke",
        RevisionId: got.RevisionId as string,
      }),
    );
    const gone = await rejection(() => lambda.send(new GetPolicyCommand({ FunctionName: "alpha" })));
    expect(gone).toBeInstanceOf(ResourceNotFoundException);
    expect(gone.message).toBe("The resource you requested does not exist.");
  });

  it("a key allowed by the function's resource policy may invoke it though its own policy says nothing", async () => {
    const k = await keyWith("guest", null);
    const c = as(k);
    await denied(() => c.send(new InvokeCommand({ FunctionName: "beta" })));
    await server.lambda.send(
      new AddPermissionCommand({
        FunctionName: "beta",
        StatementId: "guest",
        Action: "lambda:InvokeFunction",
        Principal: k.arn,
      }),
    );
    const out = await c.send(
      new InvokeCommand({ FunctionName: "beta", Payload: Buffer.from('{"via":"resource"}') }),
    );
    expect(JSON.parse(Buffer.from(out.Payload as Uint8Array).toString())).toMatchObject({
      event: { via: "resource" },
    });
    // The grant is for InvokeFunction on beta only.
    await denied(() => c.send(new GetFunctionCommand({ FunctionName: "beta" })));
    await denied(() => c.send(new InvokeCommand({ FunctionName: "alpha" })));
    // A statement with a SourceArn condition does not match a direct call (no source).
    await server.lambda.send(
      new AddPermissionCommand({
        FunctionName: "gamma",
        StatementId: "cond",
        Action: "lambda:InvokeFunction",
        Principal: k.arn,
        SourceArn: "arn:aws:s3:::bucket",
      }),
    );
    await denied(() => c.send(new InvokeCommand({ FunctionName: "gamma" })));
    // An alias has its own policy: granting the alias does not grant the function, and vice versa.
    await server.lambda.send(new PublishVersionCommand({ FunctionName: "alpha" }));
    await server.lambda.send(
      new CreateAliasCommand({ FunctionName: "alpha", Name: "live", FunctionVersion: "1" }),
    );
    await server.lambda.send(
      new AddPermissionCommand({
        FunctionName: "alpha",
        Qualifier: "live",
        StatementId: "alias",
        Action: "lambda:InvokeFunction",
        Principal: k.arn,
      }),
    );
    await c.send(new InvokeCommand({ FunctionName: "alpha", Qualifier: "live" }));
    await c.send(new InvokeCommand({ FunctionName: "alpha:live" }));
    await denied(() => c.send(new InvokeCommand({ FunctionName: "alpha" })));
    const aliasPolicy = await server.lambda.send(
      new GetPolicyCommand({ FunctionName: "alpha", Qualifier: "live" }),
    );
    expect(JSON.parse(aliasPolicy.Policy as string).Statement[0].Resource).toBe(ARN("alpha", "live"));
    // An explicit Deny in the identity policy still wins over the resource grant.
    const denyKey = await keyWith("denied", [
      { Effect: "Deny", Action: "lambda:InvokeFunction", Resource: "*" },
    ]);
    await server.lambda.send(
      new AddPermissionCommand({
        FunctionName: "beta",
        StatementId: "denied",
        Action: "lambda:InvokeFunction",
        Principal: denyKey.arn,
      }),
    );
    const dc = as(denyKey);
    expect(await denied(() => dc.send(new InvokeCommand({ FunctionName: "beta" })))).toMatch(/explicit deny/);
    dc.destroy();
    c.destroy();
  });

  it("a policy does not outlive its function: a new function of the same name starts with none", async () => {
    await server.deploy("phoenix", "node-cjs");
    await server.lambda.send(
      new AddPermissionCommand({
        FunctionName: "phoenix",
        StatementId: "p",
        Action: "lambda:InvokeFunction",
        Principal: "*",
      }),
    );
    await server.lambda.send(new DeleteFunctionCommand({ FunctionName: "phoenix" }));
    await server.deploy("phoenix", "node-cjs");
    expect(
      await rejection(() => server.lambda.send(new GetPolicyCommand({ FunctionName: "phoenix" }))),
    ).toBeInstanceOf(ResourceNotFoundException);
  });

  it("layer version permissions: add, get, remove, enforced for GetLayerVersion", async () => {
    const lambda = server.lambda;
    const pub = await lambda.send(
      new PublishLayerVersionCommand({
        LayerName: "shared",
        Content: { ZipFile: await zipEntries([{ name: "nodejs/x.js", content: "1" }]) },
      }),
    );
    const v = pub.Version as number;
    const added = await lambda.send(
      new AddLayerVersionPermissionCommand({
        LayerName: "shared",
        VersionNumber: v,
        StatementId: "everyone",
        Action: "lambda:GetLayerVersion",
        Principal: "*",
      }),
    );
    expect(JSON.parse(added.Statement as string)).toEqual({
      Sid: "everyone",
      Effect: "Allow",
      Principal: "*",
      Action: "lambda:GetLayerVersion",
      Resource: `arn:aws:lambda:us-east-1:000000000000:layer:shared:${v}`,
    });
    expect(added.RevisionId).toMatch(/^[0-9a-f-]{36}$/);
    const got = await lambda.send(
      new GetLayerVersionPolicyCommand({ LayerName: "shared", VersionNumber: v }),
    );
    expect(got.RevisionId).toBe(added.RevisionId);
    // Enforced: a key with no policy may read the layer version.
    const k = await keyWith("layer-reader", null);
    const c = as(k);
    await c.send(new GetLayerVersionCommand({ LayerName: "shared", VersionNumber: v }));
    const bad = await rejection(() =>
      lambda.send(
        new AddLayerVersionPermissionCommand({
          LayerName: "shared",
          VersionNumber: v,
          StatementId: "x",
          Action: "lambda:InvokeFunction",
          Principal: "*",
        }),
      ),
    );
    expect(bad.$metadata.httpStatusCode).toBe(400);
    expect(
      await rejection(() =>
        lambda.send(
          new AddLayerVersionPermissionCommand({
            LayerName: "shared",
            VersionNumber: v,
            StatementId: "everyone",
            Action: "lambda:GetLayerVersion",
            Principal: "*",
          }),
        ),
      ),
    ).toBeInstanceOf(ResourceConflictException);
    expect(
      await rejection(() =>
        lambda.send(
          new AddLayerVersionPermissionCommand({
            LayerName: "shared",
            VersionNumber: 99,
            StatementId: "a",
            Action: "lambda:GetLayerVersion",
            Principal: "*",
          }),
        ),
      ),
    ).toBeInstanceOf(ResourceNotFoundException);
    await lambda.send(
      new RemoveLayerVersionPermissionCommand({
        LayerName: "shared",
        VersionNumber: v,
        StatementId: "everyone",
        RevisionId: got.RevisionId,
      }),
    );
    expect(
      await rejection(() =>
        lambda.send(new GetLayerVersionPolicyCommand({ LayerName: "shared", VersionNumber: v })),
      ),
    ).toBeInstanceOf(ResourceNotFoundException);
    await denied(() => c.send(new GetLayerVersionCommand({ LayerName: "shared", VersionNumber: v })));
    c.destroy();
  });
});
