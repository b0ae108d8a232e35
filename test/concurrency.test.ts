import {
  CreateFunctionCommand,
  DeleteFunctionConcurrencyCommand,
  DeleteProvisionedConcurrencyConfigCommand,
  GetAccountSettingsCommand,
  GetFunctionConcurrencyCommand,
  GetProvisionedConcurrencyConfigCommand,
  InvalidParameterValueException,
  ListProvisionedConcurrencyConfigsCommand,
  ProvisionedConcurrencyConfigNotFoundException,
  PublishVersionCommand,
  PutFunctionConcurrencyCommand,
  PutProvisionedConcurrencyConfigCommand,
  ResourceNotFoundException,
  TooManyRequestsException,
  waitUntilFunctionActiveV2,
} from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isIdle } from "../src/worker/environment-state.js";
import { GATED_HANDLER, type Gate, startGate } from "./helpers/gate.js";
import { invoke } from "./helpers/invoke.js";
import { ROLE, startServer, type TestServer } from "./helpers/server.js";
import { zipEntries } from "./helpers/zip.js";

type Facts = { stream: string; version: string; init: string; tag: string | null };

let server: TestServer;
let gate: Gate;

async function createGated(s: TestServer, name: string, publish = false) {
  await s.lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: "nodejs20.x",
      Handler: "index.handler",
      Role: ROLE,
      Code: { ZipFile: await zipEntries([{ name: "index.js", content: GATED_HANDLER }]) },
      Publish: publish,
    }),
  );
  await waitUntilFunctionActiveV2(
    { client: s.lambda, minDelay: 0.1, maxDelay: 0.5, maxWaitTime: 30 },
    { FunctionName: name },
  );
}

/** Resolve once the predicate holds for the provisioned config (the worker reports asynchronously). */
async function provisionedStatus(s: TestServer, name: string, qualifier: string, want: string) {
  for (;;) {
    const c = await s.lambda.send(
      new GetProvisionedConcurrencyConfigCommand({ FunctionName: name, Qualifier: qualifier }),
    );
    if (c.Status === want) return c;
    if (c.Status === "FAILED" && want !== "FAILED") throw new Error(`provisioning failed: ${c.StatusReason}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  server = await startServer({ accountConcurrency: 200 });
  gate = await startGate();
});
afterAll(async () => {
  await gate?.close();
  await server?.stop();
});

describe("reserved concurrency", () => {
  it("throttles everything at 0, with Lambda's 429 shape", async () => {
    await createGated(server, "zero");
    const put = await server.lambda.send(
      new PutFunctionConcurrencyCommand({ FunctionName: "zero", ReservedConcurrentExecutions: 0 }),
    );
    expect(put.ReservedConcurrentExecutions).toBe(0);
    const err = await invoke(server.lambda, "zero").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TooManyRequestsException);
    expect(err).toMatchObject({
      Reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
      retryAfterSeconds: "1",
      $metadata: { httpStatusCode: 429 },
    });
    expect(
      await server.lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: "zero" })),
    ).toMatchObject({
      ReservedConcurrentExecutions: 0,
    });
    await server.lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: "zero" }));
    expect(
      (await server.lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: "zero" })))
        .ReservedConcurrentExecutions,
    ).toBeUndefined();
    expect((await invoke(server.lambda, "zero", { tag: "ok" })).json).toMatchObject({ tag: "ok" });
  });

  it("lets exactly one run at 1 while others are throttled", async () => {
    await createGated(server, "one");
    await server.lambda.send(
      new PutFunctionConcurrencyCommand({ FunctionName: "one", ReservedConcurrentExecutions: 1 }),
    );
    const held = invoke(server.lambda, "one", { gate: gate.url, tag: "held" });
    await gate.waiting(1);
    const others = await Promise.allSettled(
      [1, 2, 3, 4].map(() => invoke(server.lambda, "one", { tag: "x" })),
    );
    for (const o of others) {
      expect(o.status).toBe("rejected");
      expect((o as PromiseRejectedResult).reason).toMatchObject({
        Reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
      });
    }
    gate.open();
    expect((await held).json).toMatchObject({ tag: "held" });
  });

  it("reports unreserved concurrency and refuses to leave too little", async () => {
    const before = await server.lambda.send(new GetAccountSettingsCommand({}));
    await createGated(server, "big");
    await server.lambda.send(
      new PutFunctionConcurrencyCommand({ FunctionName: "big", ReservedConcurrentExecutions: 50 }),
    );
    const after = await server.lambda.send(new GetAccountSettingsCommand({}));
    expect(after.AccountLimit?.UnreservedConcurrentExecutions).toBe(
      (before.AccountLimit?.UnreservedConcurrentExecutions ?? 0) - 50,
    );
    // 200 in the account, at least 20 (a tenth, at most 100) must stay unreserved.
    await expect(
      server.lambda.send(
        new PutFunctionConcurrencyCommand({ FunctionName: "big", ReservedConcurrentExecutions: 190 }),
      ),
    ).rejects.toBeInstanceOf(InvalidParameterValueException);
    await expect(
      server.lambda.send(
        new PutFunctionConcurrencyCommand({ FunctionName: "nobody", ReservedConcurrentExecutions: 1 }),
      ),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
    await server.lambda.send(new DeleteFunctionConcurrencyCommand({ FunctionName: "big" }));
  });
});

describe("account concurrency and scaling rate", () => {
  it("throttles past the account pool with ConcurrentInvocationLimitExceeded", async () => {
    const small = await startServer({ accountConcurrency: 2 });
    const g = await startGate();
    try {
      await createGated(small, "a");
      const held = [1, 2].map(() => invoke(small.lambda, "a", { gate: g.url }));
      await g.waiting(2);
      await expect(invoke(small.lambda, "a")).rejects.toMatchObject({
        Reason: "ConcurrentInvocationLimitExceeded",
      });
      g.open();
      await Promise.all(held);
    } finally {
      await g.close();
      await small.stop();
    }
  });

  it("adds at most --scale-rate environments per 10 s, then waits briefly and throttles", async () => {
    const slow = await startServer({ scaleRate: 1 });
    const g = await startGate();
    try {
      await createGated(slow, "s");
      const first = invoke(slow.lambda, "s", { gate: g.url });
      await g.waiting(1);
      await expect(invoke(slow.lambda, "s")).rejects.toMatchObject({
        Reason: "FunctionInvocationRateLimitExceeded",
      });
      // An invoke over the rate that finds an environment freeing up in time uses it.
      const second = invoke(slow.lambda, "s", { tag: "reused" });
      g.open();
      await first;
      expect((await second).json).toMatchObject({ tag: "reused" });
      expect(slow.platform.worker.environmentsOf("s")).toHaveLength(1);
    } finally {
      await g.close();
      await slow.stop();
    }
  });
});

describe("provisioned concurrency", () => {
  it("initialises environments ahead of invokes, uses them first, and spills over to on-demand", async () => {
    await createGated(server, "prov", true);
    await expect(
      server.lambda.send(
        new PutProvisionedConcurrencyConfigCommand({
          FunctionName: "prov",
          Qualifier: "$LATEST",
          ProvisionedConcurrentExecutions: 1,
        }),
      ),
    ).rejects.toBeInstanceOf(InvalidParameterValueException);
    const put = await server.lambda.send(
      new PutProvisionedConcurrencyConfigCommand({
        FunctionName: "prov",
        Qualifier: "1",
        ProvisionedConcurrentExecutions: 2,
      }),
    );
    expect(put.RequestedProvisionedConcurrentExecutions).toBe(2);
    expect(["IN_PROGRESS", "READY"]).toContain(put.Status);
    const ready = await provisionedStatus(server, "prov", "1", "READY");
    expect(ready).toMatchObject({
      AvailableProvisionedConcurrentExecutions: 2,
      AllocatedProvisionedConcurrentExecutions: 2,
    });
    const envs = server.platform.worker.environmentsOf("prov");
    expect(envs.map((e) => e.initializationType)).toEqual([
      "provisioned-concurrency",
      "provisioned-concurrency",
    ]);

    const held = [1, 2, 3].map(() => invoke(server.lambda, "prov:1", { gate: gate.url }));
    await gate.waiting(3);
    gate.open();
    const facts = (await Promise.all(held)).map((r) => r.json as Facts);
    expect(facts.filter((f) => f.init === "provisioned-concurrency")).toHaveLength(2);
    expect(facts.filter((f) => f.init === "on-demand")).toHaveLength(1);
    const list = await server.lambda.send(
      new ListProvisionedConcurrencyConfigsCommand({ FunctionName: "prov" }),
    );
    expect(list.ProvisionedConcurrencyConfigs?.[0]?.FunctionArn).toBe(
      "arn:aws:lambda:us-east-1:000000000000:function:prov:1",
    );
  });

  it("replaces a provisioned environment that dies and releases them when the config is deleted", async () => {
    const [victim] = server.platform.worker
      .environmentsOf("prov")
      .filter((e) => e.initializationType === "provisioned-concurrency");
    const replaced = new Promise<void>((resolve) => {
      const check = () => {
        const live = server.platform.worker
          .environmentsOf("prov")
          .filter((e) => e.initializationType === "provisioned-concurrency");
        if (!live.includes(victim!) && live.length === 2 && live.every((e) => isIdle(e.state))) resolve();
        else setTimeout(check, 20);
      };
      victim?.onDead(check);
    });
    await victim?.destroy();
    await replaced;
    await server.lambda.send(
      new DeleteProvisionedConcurrencyConfigCommand({ FunctionName: "prov", Qualifier: "1" }),
    );
    await expect(
      server.lambda.send(
        new GetProvisionedConcurrencyConfigCommand({ FunctionName: "prov", Qualifier: "1" }),
      ),
    ).rejects.toBeInstanceOf(ProvisionedConcurrencyConfigNotFoundException);
    const left = server.platform.worker
      .environmentsOf("prov")
      .filter((e) => e.initializationType === "provisioned-concurrency" && e.state !== "dead");
    expect(left.length).toBeLessThanOrEqual(2);
    // Without provisioned concurrency, the idle reaper may now stop them like any on-demand environment.
    expect((await invoke(server.lambda, "prov:1", { tag: "after" })).json).toMatchObject({ tag: "after" });
    await server.lambda.send(new PublishVersionCommand({ FunctionName: "prov" }));
  });
});
