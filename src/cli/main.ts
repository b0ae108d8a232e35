/** The `lambent` command. */
import { Command, InvalidArgumentError, Option } from "commander";
import { parsePublicUrl } from "../config.js";
import { parseAllowList } from "../control/egress.js";
import { DEFAULT_POOL_CIDR, parsePoolCidr } from "../sandbox/netns-pool.js";
import { intArg } from "./args.js";
import { registerClientCommands } from "./client.js";
import { registerDeployCommands } from "./deploy.js";
import { registerDevCommand } from "./dev.js";
import { registerKeysCommands } from "./keys.js";
import { registerQueueCommand } from "./queue.js";
import { registerRuntimesCommand } from "./runtimes.js";
import { registerSourcesCommand } from "./sources.js";
import { registerTopCommand } from "./top.js";

export type ServerRole = "all" | "frontend" | "worker" | "poller";

function roleArg(raw: string): ServerRole {
  if (raw === "all" || raw === "frontend" || raw === "worker" || raw === "poller") return raw;
  throw new InvalidArgumentError("must be one of all, frontend, worker, poller");
}

/** "5432,6379" → [5432, 6379]. */
export function portList(raw: string): number[] {
  const ports = raw.split(",").map((p) => Number(p.trim()));
  if (raw.trim() === "" || ports.some((n) => !Number.isInteger(n) || n < 1 || n > 65535))
    throw new InvalidArgumentError("takes TCP ports (1-65535), comma-separated, e.g. 5432,6379");
  return [...new Set(ports)];
}

function poolCidrArg(raw: string): string {
  try {
    return parsePoolCidr(raw).text;
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function allowListArg(raw: string): string[] {
  try {
    return parseAllowList(raw);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function publicUrlArg(raw: string): string {
  try {
    return parsePublicUrl(raw);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

const program = new Command()
  .name("lambent")
  .description("A self-hosted serverless platform that speaks AWS Lambda's interfaces.")
  .version("0.1.0");

program
  .command("server")
  .description("run the platform (API, frontend, worker) in one process")
  .option("--host <host>", "address to listen on", "127.0.0.1")
  .option("--port <port>", "port to listen on", intArg(0, 65535), 9000)
  .option("--data-dir <dir>", "where the store, code and sandboxes live", "./.lambent")
  .option("--region <region>", "region used in ARNs when a request names none", "us-east-1")
  .option("--database <url>", "PostgreSQL connection string (default: SQLite in the data dir)")
  .option("--account-concurrency <n>", "account-wide concurrent executions", intArg(1), 1000)
  .option("--idle-timeout <seconds>", "seconds an idle execution environment lives", intArg(1), 300)
  .option(
    "--prewarm <n>",
    "most pre-started runtimes (stem cells) kept per runtime family; 0 disables",
    intArg(0, 64),
    2,
  )
  .option(
    "--prewarm-min <n>",
    "stem cells kept per runtime in use (one that had a cold start) even without recent cold starts, at most --prewarm",
    intArg(0, 64),
    1,
  )
  .option("--scale-rate <n>", "new execution environments a function may add per 10 seconds", intArg(1), 1000)
  .addOption(
    new Option("--sandbox <driver>", "sandbox driver").choices(["auto", "bwrap", "process"]).default("auto"),
  )
  .addOption(
    new Option("--sandbox-network <mode>", "sandbox networking")
      .choices(["isolated", "isolated-slirp", "host"])
      .default("isolated"),
  )
  .option(
    "--sandbox-allow-host-port <ports>",
    "host loopback ports isolated sandboxes may reach, comma-separated (never the API's or the store's)",
    portList,
    [] as number[],
  )
  .option(
    "--sandbox-pool-cidr <cidr>",
    `the IPv4 range (/8 to /24) isolated sandboxes' network namespaces take their addresses from (default ${DEFAULT_POOL_CIDR}); one that the host's routes or addresses overlap is refused, and sandboxes then go through slirp4netns`,
    poolCidrArg,
  )
  .addOption(
    new Option(
      "--allow-destination-hosts <list>",
      "hosts (names, *.suffix, addresses, CIDR networks) destinations, dead-letter targets and event source brokers may reach beyond the defaults (loopback and private addresses are allowed only on a loopback-only server), comma-separated",
    )
      .env("LAMBENT_ALLOW_DESTINATION_HOSTS")
      .argParser(allowListArg)
      .default([] as string[]),
  )
  .option("--async-retry-delays <ms,ms>", "delays before async retry 1 and 2, in ms", "60000,120000")
  .option(
    "--log-retention-days <days>",
    "days log events are kept (log groups without their own retention); 0 keeps them forever",
    intArg(0, 36500),
    30,
  )
  .option(
    "--metrics-retention-days <days>",
    "days per-minute metrics (AWS/Lambda and EMF) are kept; 0 keeps them forever",
    intArg(0, 36500),
    15,
  )
  .option("--no-metrics", "record no metrics (CloudWatch metrics, EMF and /metrics stay empty)")
  .addOption(
    new Option(
      "--metrics-token-file <file>",
      "file holding a bearer token GET /metrics accepts instead of a SigV4 signature (for Prometheus' authorization.credentials_file); LAMBENT_METRICS_TOKEN gives the token itself",
    ),
  )
  .option(
    "--runtimes-dir <dir>",
    "runtime cache (default: $LAMBENT_RUNTIMES_DIR or ~/.cache/lambent/runtimes)",
  )
  .option(
    "--dev-root <dir>",
    "folder `lambent dev` may mount functions' code from (itself or below; keys need lambent:DevMount); dev mounts are off without it",
  )
  .option("--block-deprecated-runtimes", "refuse runtimes AWS Lambda has deprecated at create/update")
  .option("--no-dev-credentials", "refuse the development credentials test/test even on loopback")
  .option(
    "--server-key-file <file>",
    "key sealing access-key secrets (default <data dir>/server.key; share it between servers on one PostgreSQL)",
  )
  .option(
    "--public-url <url>",
    "URL clients reach this server at, for links such as Code.Location (default: the listen address)",
    publicUrlArg,
  )
  .option("--headers-timeout <seconds>", "time a client has to send a request's headers", intArg(1), 10)
  .option("--request-timeout <seconds>", "time a client has to send a whole request", intArg(1), 120)
  .option("--keep-alive-timeout <seconds>", "idle keep-alive connections close after this", intArg(1), 65)
  .option(
    "--connection-timeout <seconds>",
    "connections with no traffic either way close after this (keep it above the longest invoke)",
    intArg(1),
    960,
  )
  .option(
    "--max-connections-per-client <n>",
    "open connections one client address may hold; more are answered 429",
    intArg(1),
    1024,
  )
  .option(
    "--role <role>",
    "all (default: everything in one process), frontend, worker or poller (cluster roles need --database postgres://… and a cluster secret)",
    roleArg,
    "all",
  )
  .option("--zone <name>", "availability zone of a worker node (--role worker)")
  .option(
    "--cluster-secret <secret>",
    "secret the nodes of a cluster sign their requests to each other with (default: $LAMBENT_CLUSTER_SECRET)",
  )
  .option(
    "--advertise <host:port>",
    "address frontends reach this worker node at (default: --host and the bound port)",
  )
  .option(
    "--worker-memory <mb>",
    "memory this worker node's environments may take, MB (default: the machine's)",
    intArg(128),
  )
  .option(
    "--worker-id <id>",
    "this worker node's id (default: random; a restart under the same id takes its place over)",
  )
  // The server (store, sandboxes, brokers: ~1 s of CPU to load) is loaded only by the command that runs it.
  .action(async (flags: Parameters<typeof import("./server.js").runServer>[0]) =>
    (await import("./server.js")).runServer(flags),
  );

registerClientCommands(program);
registerRuntimesCommand(program);
registerQueueCommand(program, process.env.LAMBENT_ENDPOINT ?? "http://127.0.0.1:9000");
registerSourcesCommand(program, process.env.LAMBENT_ENDPOINT ?? "http://127.0.0.1:9000");
registerTopCommand(program, process.env.LAMBENT_ENDPOINT ?? "http://127.0.0.1:9000");
registerKeysCommands(program, process.env.LAMBENT_ENDPOINT ?? "http://127.0.0.1:9000");
registerDeployCommands(program, process.env.LAMBENT_ENDPOINT ?? "http://127.0.0.1:9000");
registerDevCommand(program, process.env.LAMBENT_ENDPOINT ?? "http://127.0.0.1:9000");

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`lambent: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
