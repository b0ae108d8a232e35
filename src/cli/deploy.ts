/** `lambent deploy` and `lambent stacks list|describe|delete`. */
import { type Command, InvalidArgumentError } from "commander";
import { LambentClient } from "../deploy/api.js";
import { deleteStack, deployStack, describeInFlight, type PendingDeployment } from "../deploy/deploy.js";
import { cliCredentials, cliRegion } from "./signed-fetch.js";

/** "K=V" pairs (several per argument, space-separated, as `sam deploy` takes them). */
function parameterOverride(raw: string, prev: Record<string, string> = {}): Record<string, string> {
  const out = { ...prev };
  for (const pair of raw.split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new InvalidArgumentError(`${pair}: use Name=Value`);
    out[pair.slice(0, eq).replace(/^ParameterKey=/, "")] = pair.slice(eq + 1);
  }
  return out;
}

function client(endpoint: string): LambentClient {
  return new LambentClient(endpoint, cliRegion(), cliCredentials());
}

const progress = (line: string) => process.stderr.write(`${line}\n`);

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] as number))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** A deploy that did not finish, as `stacks describe` shows it. */
function pendingLines(p: PendingDeployment | undefined): string[] {
  if (!p || !Array.isArray(p.Plan) || !Array.isArray(p.Done)) return [];
  const done = new Set(p.Done);
  const steps = p.Plan.filter((s) => s.Action !== "none");
  return [
    `Pending deploy (started ${p.StartedAt}${p.RollingBack ? ", rolling back" : ""}; the next lambent deploy of this stack settles it and continues):`,
    ...steps.map(
      (s) =>
        `  ${done.has(s.LogicalId) ? "done   " : p.InFlight?.LogicalId === s.LogicalId ? "running" : "to do  "} ${s.Action} ${s.LogicalId} (${s.Type})`,
    ),
    ...(p.InFlight ? [`  in flight: ${describeInFlight(p.InFlight)}`] : []),
  ];
}

export function registerDeployCommands(program: Command, defaultEndpoint: string): void {
  program
    .command("deploy")
    .description(
      "deploy a SAM / CloudFormation template as a stack (shows the plan, changes only what changed)",
    )
    .option("--template <file>", "template file", "template.yaml")
    .option("--stack-name <name>", "stack name (default: the template folder's name)")
    .option(
      "--parameter-overrides <K=V...>",
      "template parameters, e.g. Stage=prod Memory=256",
      parameterOverride,
    )
    .option("--dry-run", "print the plan and change nothing")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .option("--json", "print the result as JSON on stdout")
    .action(
      async (opts: {
        template: string;
        stackName?: string;
        parameterOverrides?: Record<string, string>;
        dryRun?: boolean;
        endpoint: string;
        json?: boolean;
      }) => {
        const r = await deployStack(
          {
            client: client(opts.endpoint),
            templateFile: opts.template,
            ...(opts.stackName ? { stackName: opts.stackName } : {}),
            ...(opts.parameterOverrides ? { parameterOverrides: opts.parameterOverrides } : {}),
            ...(opts.dryRun ? { dryRun: true } : {}),
          },
          progress,
        );
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify({ StackName: r.stackName, Status: r.status, Plan: r.plan, Outputs: r.outputs }, null, 2)}\n`,
          );
          return;
        }
        if (opts.dryRun) {
          process.stdout.write("dry run: nothing changed\n");
          return;
        }
        process.stdout.write(`stack ${r.stackName}: ${r.changed ? r.status : `no changes (${r.status})`}\n`);
        const outs = Object.entries(r.outputs);
        if (outs.length > 0) {
          process.stdout.write("Outputs:\n");
          for (const [k, o] of outs) {
            process.stdout.write(
              `  ${k} = ${typeof o.Value === "string" ? o.Value : JSON.stringify(o.Value)}${o.Description ? `  (${o.Description})` : ""}\n`,
            );
          }
        }
      },
    );

  const stacks = program.command("stacks").description("stacks made by lambent deploy");
  stacks
    .command("list")
    .description("every stack with its status")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(async (opts: { endpoint: string }) => {
      const body = (await client(opts.endpoint).listStacks()) as {
        Stacks: Array<{ StackName: string; Status: string; ResourceCount: number; LastUpdatedTime: string }>;
      };
      if (body.Stacks.length === 0) {
        process.stdout.write("no stacks\n");
        return;
      }
      process.stdout.write(
        `${table([
          ["NAME", "STATUS", "RESOURCES", "UPDATED"],
          ...body.Stacks.map((s) => [s.StackName, s.Status, String(s.ResourceCount), s.LastUpdatedTime]),
        ])}\n`,
      );
    });
  stacks
    .command("describe <name>")
    .description("a stack's status, parameters, resources and outputs")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .option("--json", "print the raw JSON")
    .action(async (name: string, opts: { endpoint: string; json?: boolean }) => {
      const s = await client(opts.endpoint).getStack(name);
      if (!s) throw new Error(`stack ${name} does not exist`);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const resources = s.Resources as Record<string, { Type: string; PhysicalId: string }>;
      const lines = [
        `${String(s.StackName)}  ${String(s.Status)}${s.StatusReason ? `  (${String(s.StatusReason)})` : ""}`,
        `  id ${String(s.StackId)}, updated ${String(s.LastUpdatedTime)}`,
        "Parameters:",
        ...Object.entries(s.Parameters as Record<string, string>).map(([k, v]) => `  ${k} = ${v}`),
        "Resources:",
        table(Object.entries(resources).map(([id, r]) => [`  ${id}`, r.Type, r.PhysicalId])),
        "Outputs:",
        ...Object.entries(s.Outputs as Record<string, { Value: unknown }>).map(
          ([k, o]) => `  ${k} = ${typeof o.Value === "string" ? o.Value : JSON.stringify(o.Value)}`,
        ),
        ...pendingLines(s.Pending as PendingDeployment | undefined),
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    });
  stacks
    .command("delete <name>")
    .description("delete a stack's resources, then the stack")
    .option("--endpoint <url>", "server URL (or LAMBENT_ENDPOINT)", defaultEndpoint)
    .action(async (name: string, opts: { endpoint: string }) => {
      await deleteStack(client(opts.endpoint), name, progress);
      process.stdout.write(`stack ${name} deleted\n`);
    });
}
