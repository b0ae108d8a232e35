/**
 * `lambent keys …` and `lambent roles …`: access keys and their policies, and
 * execution roles' policies. Every command but `keys create --bootstrap`
 * talks to a running server (signed with an admin key); the bootstrap works
 * on the store directly, to make the first key of a server that will listen
 * beyond loopback.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { defaultServerKeyFile, KeyStore, loadServerKey } from "../auth/keys.js";
import { parsePolicy } from "../auth/policy.js";
import { Store } from "../store/store.js";
import { signedFetch } from "./signed-fetch.js";

const ADMIN_POLICY = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] };

async function call(endpoint: string, method: string, path: string, body?: string): Promise<unknown> {
  const res = await signedFetch(`${endpoint.replace(/\/+$/, "")}${path}`, {
    method,
    ...(body !== undefined ? { body, headers: { "content-type": "application/json" } } : {}),
  });
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      const j = JSON.parse(text) as { Message?: string; message?: string };
      message = j.Message ?? j.message ?? text;
    } catch {}
    throw new Error(`${res.headers.get("x-amzn-errortype") ?? `HTTP ${res.status}`}: ${message}`);
  }
  return text ? JSON.parse(text) : {};
}

function readPolicy(file: string): string {
  const text = readFileSync(file, "utf8");
  parsePolicy(text, "identity"); // fail here, with the same message the server would give
  return text;
}

function printKey(
  k: { AccessKeyId: string; SecretAccessKey: string; UserName: string; Arn: string },
  json?: boolean,
) {
  if (json) {
    process.stdout.write(`${JSON.stringify({ AccessKey: k }, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `AccessKeyId:     ${k.AccessKeyId}\nSecretAccessKey: ${k.SecretAccessKey}\nUser:            ${k.Arn}\n` +
      "The secret is shown only now. Use it as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.\n",
  );
}

export function registerKeysCommands(program: Command, defaultEndpoint: string): void {
  const keys = program.command("keys").description("access keys: create, list, delete, and their policies");

  keys
    .command("create [user-name]")
    .description("create an access key (prints its secret once)")
    .option("--policy <file>", "identity policy (IAM JSON) for the key")
    .option("--admin", "give the key every permission (Action * on Resource *)")
    .option("--bootstrap", "create an admin key directly in the store (no server needed)")
    .option("--data-dir <dir>", "with --bootstrap: the server's data dir", "./.lambent")
    .option("--database <url>", "with --bootstrap: the server's PostgreSQL connection string")
    .option("--server-key-file <file>", "with --bootstrap: the server key (default <data dir>/server.key)")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .option("--json", "print JSON")
    .action(
      async (
        userName: string | undefined,
        opts: {
          policy?: string;
          admin?: boolean;
          bootstrap?: boolean;
          dataDir: string;
          database?: string;
          serverKeyFile?: string;
          endpoint: string;
          json?: boolean;
        },
      ) => {
        const name = userName ?? (opts.bootstrap ? "admin" : undefined);
        if (!name) throw new Error("keys create needs a user name (or --bootstrap)");
        const policyText = opts.policy
          ? readPolicy(opts.policy)
          : opts.admin || opts.bootstrap
            ? JSON.stringify(ADMIN_POLICY)
            : undefined;
        if (opts.bootstrap) {
          const dataDir = resolve(opts.dataDir);
          const store = await Store.open({ dataDir, ...(opts.database ? { database: opts.database } : {}) });
          try {
            const ks = new KeyStore(
              store,
              loadServerKey(opts.serverKeyFile ?? defaultServerKeyFile(dataDir)),
            );
            const k = await ks.create(name, parsePolicy(policyText as string, "identity"));
            printKey(
              { AccessKeyId: k.accessKeyId, SecretAccessKey: k.secretAccessKey, UserName: name, Arn: k.arn },
              opts.json,
            );
          } finally {
            await store.close();
          }
          return;
        }
        const body: Record<string, unknown> = { UserName: name };
        if (policyText) body.Policy = policyText;
        const out = (await call(opts.endpoint, "POST", "/_lambent/keys", JSON.stringify(body))) as {
          AccessKey: { AccessKeyId: string; SecretAccessKey: string; UserName: string; Arn: string };
        };
        printKey(out.AccessKey, opts.json);
      },
    );

  keys
    .command("list")
    .description("list access keys (never their secrets)")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .option("--json", "print JSON")
    .action(async (opts: { endpoint: string; json?: boolean }) => {
      const out = (await call(opts.endpoint, "GET", "/_lambent/keys")) as {
        AccessKeys: Array<{ AccessKeyId: string; UserName: string; CreateDate: string; HasPolicy: boolean }>;
      };
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      if (out.AccessKeys.length === 0) {
        process.stdout.write("no access keys\n");
        return;
      }
      for (const k of out.AccessKeys) {
        process.stdout.write(
          `${k.AccessKeyId}  ${k.UserName}  ${k.CreateDate}  ${k.HasPolicy ? "policy" : "no policy"}\n`,
        );
      }
    });

  keys
    .command("delete <access-key-id>")
    .description("delete an access key")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(async (id: string, opts: { endpoint: string }) => {
      await call(opts.endpoint, "DELETE", `/_lambent/keys/${encodeURIComponent(id)}`);
    });

  keys
    .command("put-policy <access-key-id> <policy-file>")
    .description("replace a key's identity policy (IAM JSON)")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(async (id: string, file: string, opts: { endpoint: string }) => {
      await call(opts.endpoint, "PUT", `/_lambent/keys/${encodeURIComponent(id)}/policy`, readPolicy(file));
    });

  keys
    .command("get-policy <access-key-id>")
    .description("print a key's identity policy")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(async (id: string, opts: { endpoint: string }) => {
      const out = (await call(opts.endpoint, "GET", `/_lambent/keys/${encodeURIComponent(id)}/policy`)) as {
        Policy: string | null;
      };
      process.stdout.write(
        `${out.Policy === null ? "no policy" : JSON.stringify(JSON.parse(out.Policy), null, 2)}\n`,
      );
    });

  const roles = program
    .command("roles")
    .description("execution roles' policies (what functions' credentials may do)");

  roles
    .command("put <role-name> <policy-file>")
    .description("set the identity policy (IAM JSON) of the role arn:aws:iam::000000000000:role/<role-name>")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(async (name: string, file: string, opts: { endpoint: string }) => {
      await call(opts.endpoint, "PUT", `/_lambent/roles/${encodeURIComponent(name)}`, readPolicy(file));
    });

  roles
    .command("get <role-name>")
    .description("print a role's policy")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(async (name: string, opts: { endpoint: string }) => {
      const out = (await call(opts.endpoint, "GET", `/_lambent/roles/${encodeURIComponent(name)}`)) as {
        Policy: string;
      };
      process.stdout.write(`${JSON.stringify(JSON.parse(out.Policy), null, 2)}\n`);
    });

  roles
    .command("list")
    .description("list roles that have a policy")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(async (opts: { endpoint: string }) => {
      const out = (await call(opts.endpoint, "GET", "/_lambent/roles")) as { Roles: Array<{ Arn: string }> };
      process.stdout.write(
        out.Roles.length === 0 ? "no roles\n" : `${out.Roles.map((r) => r.Arn).join("\n")}\n`,
      );
    });

  roles
    .command("delete <role-name>")
    .description("remove a role's policy")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(async (name: string, opts: { endpoint: string }) => {
      await call(opts.endpoint, "DELETE", `/_lambent/roles/${encodeURIComponent(name)}`);
    });
}
