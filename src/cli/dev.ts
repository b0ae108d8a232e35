/** `lambent dev`: deploy, then keep the stack's functions running from their folders (deploy/dev.ts). */
import { type Command, InvalidArgumentError } from "commander";
import { LambentClient } from "../deploy/api.js";
import { cliCredentials, cliRegion } from "./signed-fetch.js";

function parameterOverride(raw: string, prev: Record<string, string> = {}): Record<string, string> {
  const out = { ...prev };
  for (const pair of raw.split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new InvalidArgumentError(`${pair}: use Name=Value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function registerDevCommand(program: Command, defaultEndpoint: string): void {
  program
    .command("dev")
    .description(
      "deploy a template, then run its functions from their folders: edits are live on the next invoke; logs stream here",
    )
    .option("--template <file>", "template file", "template.yaml")
    .option("--stack-name <name>", "stack name (default: the template folder's name)")
    .option("--parameter-overrides <K=V...>", "template parameters, e.g. Stage=dev", parameterOverride)
    .option(
      "--endpoint <url>",
      "server URL (or LAMBENT_ENDPOINT); it must run with --dev-root",
      defaultEndpoint,
    )
    .action(
      async (opts: {
        template: string;
        stackName?: string;
        parameterOverrides?: Record<string, string>;
        endpoint: string;
      }) => {
        const { DevSession } = await import("../deploy/dev.js");
        const session = await DevSession.start({
          client: new LambentClient(opts.endpoint, cliRegion(), cliCredentials()),
          templateFile: opts.template,
          ...(opts.stackName ? { stackName: opts.stackName } : {}),
          ...(opts.parameterOverrides ? { parameterOverrides: opts.parameterOverrides } : {}),
          colour: process.stdout.isTTY === true && !process.env.NO_COLOR,
        });
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.stderr.write("dev: stopping (functions go back to their uploaded code)\n");
            session.stop().then(resolve, resolve);
          };
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        });
      },
    );
}
