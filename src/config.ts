/** Server options and the platform's limits (Lambda's defaults, each configurable). */

export const ACCOUNT_ID = "000000000000";

export interface Limits {
  /** Synchronous invoke request and response payload (bytes). */
  syncPayloadBytes: number;
  /** Asynchronous invoke payload (bytes). */
  asyncPayloadBytes: number;
  /** Zipped deployment package uploaded directly (bytes). */
  zipBytes: number;
  /** Unzipped code plus layers (bytes), counted as inflated, not as the zip's headers claim. */
  unzippedBytes: number;
  /** Entries (files, directories, symlinks) in one deployment package or layer. */
  unzippedFiles: number;
  /** Total size of a function's environment variables (bytes). */
  envBytes: number;
  memoryMinMb: number;
  memoryMaxMb: number;
  timeoutMaxSeconds: number;
  /** How long a function's Init phase may take (ms). */
  initTimeoutMs: number;
  /** Longest log event (bytes; Lambda's 256 KB): a longer line of output is split. */
  logLineBytes: number;
  /** Output bytes stored per invoke (and for Init); beyond, lines are dropped with one marker line. */
  logInvokeBytes: number;
  /** Output one function (log group) may produce per second, read or stored; past it the reading pauses. */
  logBytesPerSecond: number;
  /** The burst allowed above that rate (bytes). */
  logBurstBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  syncPayloadBytes: 6 * 1024 * 1024,
  asyncPayloadBytes: 1024 * 1024,
  zipBytes: 50 * 1024 * 1024,
  unzippedBytes: 250 * 1024 * 1024,
  unzippedFiles: 50_000,
  envBytes: 4 * 1024,
  memoryMinMb: 128,
  memoryMaxMb: 10240,
  timeoutMaxSeconds: 900,
  initTimeoutMs: 10_000,
  logLineBytes: 256 * 1024,
  logInvokeBytes: 8 * 1024 * 1024,
  logBytesPerSecond: 4 * 1024 * 1024,
  logBurstBytes: 8 * 1024 * 1024,
};

/** The HTTP front door's defences against slow or greedy clients. */
export interface HttpOptions {
  /** Time a client has to send a request's headers (ms). */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, body included (ms). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long (ms). */
  keepAliveTimeoutMs: number;
  /** A connection with no traffic either way is closed after this long (ms); above the longest invoke. */
  connectionTimeoutMs: number;
  /** Open connections one client address may hold; more are answered 429 and closed. */
  maxConnectionsPerClient: number;
}

export const DEFAULT_HTTP: HttpOptions = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  keepAliveTimeoutMs: 65_000,
  connectionTimeoutMs: (DEFAULT_LIMITS.timeoutMaxSeconds + 60) * 1000,
  maxConnectionsPerClient: 1024,
};

export type SandboxMode = "auto" | "bwrap" | "process";
/**
 * `isolated`: a network namespace per environment (from the pool of ready-made ones when the machine
 * can, else slirp4netns); `isolated-slirp`: always slirp4netns; `host`: the host's network.
 */
export type SandboxNetwork = "isolated" | "isolated-slirp" | "host";

export interface ServerOptions {
  host: string;
  port: number;
  dataDir: string;
  region: string;
  /** PostgreSQL connection string; SQLite in the data dir when absent. */
  database?: string;
  accountConcurrency: number;
  /** Seconds an idle execution environment lives before shutdown. */
  idleTimeoutSeconds: number;
  /** New execution environments one function may add per 10 seconds. */
  scaleRate: number;
  /** Most pre-started runtimes ("stem cells") kept per runtime family; 0 disables them. */
  prewarm: number;
  /**
   * Stem cells kept per runtime in use (one that had a cold start) even without recent cold starts,
   * at most `prewarm` (default 1).
   */
  prewarmMin?: number;
  sandbox: SandboxMode;
  sandboxNetwork: SandboxNetwork;
  /**
   * Host loopback ports isolated sandboxes may reach (at their own 127.0.0.1:PORT); none by default.
   * Never the server's own port or its store's (see `hostPortsRefusal`).
   */
  sandboxAllowHostPorts: number[];
  /**
   * The range isolated sandboxes' network namespaces take their addresses from (`--sandbox-pool-cidr`;
   * undefined: the pool's default, 100.72.0.0/16).
   */
  sandboxPoolCidr?: string;
  /**
   * The folder dev mounts (`lambent dev`) may name, itself or below; dev mounts are off without it.
   */
  devRoot?: string;
  /** The runtime cache (Node.js builds, Python root filesystems); shared by every data dir by default. */
  runtimesDir?: string;
  /** Refuse Lambda-deprecated runtime identifiers at create/update (default: accept them with a warning). */
  blockDeprecatedRuntimes: boolean;
  /** Delays (ms) before async retry 1 and 2. */
  asyncRetryDelaysMs: number[];
  /** Days log events are kept in groups without their own retention; 0 = forever. */
  logRetentionDays: number;
  /** Days per-minute metrics are kept; 0 = forever. */
  metricsRetentionDays: number;
  /** Record metrics (off: `--no-metrics`, the bench's "metrics off" row). */
  metrics: boolean;
  /**
   * A bearer token `GET /metrics` accepts instead of a SigV4 signature (`--metrics-token-file`,
   * `LAMBENT_METRICS_TOKEN`): what a Prometheus scrape job sends. Unset: /metrics wants SigV4.
   */
  metricsToken?: string;
  limits: Limits;
  /**
   * The URL clients reach this server at, for links the API hands out (Code.Location); by default
   * the address it listens on. Never taken from a request's Host header.
   */
  publicUrl?: string;
  http: HttpOptions;
  /** Suppress the ready line and warnings (tests). */
  quiet: boolean;
  /**
   * Accept the development credentials `test`/`test` (as the account root).
   * Default: only when the server listens on loopback only.
   */
  devCredentials?: boolean;
  /** The key that seals access-key secrets and session tokens (default `<data dir>/server.key`). */
  serverKeyFile?: string;
  /**
   * `--allow-destination-hosts`: host names, `*.suffix`es, addresses and CIDR networks that
   * destinations, dead-letter targets and event source brokers may reach beyond the default rules
   * (see control/egress.ts).
   */
  allowDestinationHosts: string[];
  /**
   * Loopback and private addresses allowed as destinations and brokers without an entry.
   * Default: only when the server listens on loopback only.
   */
  internalDestinations?: boolean;
  /**
   * TESTS ONLY: run schedules on a clock `speed` times faster than real time from `anchorMs`
   * (`LAMBENT_TEST_SCHEDULE_CLOCK=<anchorMs>,<speed>` for `lambent server`). Never in production.
   */
  scheduleClock?: { anchorMs: number; speed: number };
  /**
   * What this process runs: `all` (the default: API, frontend, worker and pollers in one process),
   * `frontend` (the API; invokes go to worker nodes) or `poller` (the async queue, event source
   * mappings and provisioned-concurrency placement, invoking through worker nodes). Worker nodes
   * are started by `cluster/worker-node.ts`, not by a Platform.
   */
  role: "all" | "frontend" | "poller";
  /** The secret nodes of a cluster sign their requests to each other with (cluster roles only). */
  clusterSecret?: string;
}

/** Is this listen address reachable only from this machine? */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export function defaultOptions(overrides: Partial<ServerOptions> = {}): ServerOptions {
  return {
    host: "127.0.0.1",
    port: 9000,
    dataDir: ".lambent",
    region: "us-east-1",
    accountConcurrency: 1000,
    idleTimeoutSeconds: 300,
    scaleRate: 1000,
    prewarm: 2,
    sandbox: "auto",
    sandboxNetwork: "isolated",
    sandboxAllowHostPorts: [],
    allowDestinationHosts: [],
    blockDeprecatedRuntimes: false,
    asyncRetryDelaysMs: [60_000, 120_000],
    logRetentionDays: 30,
    metricsRetentionDays: 15,
    metrics: true,
    limits: { ...DEFAULT_LIMITS },
    http: { ...DEFAULT_HTTP },
    quiet: false,
    role: "all",
    ...overrides,
  };
}

/** A server option that cannot be honoured: the server refuses to start and says why. */
export class ServerOptionError extends Error {}

/** Ports a sandbox uses on its own loopback (Runtime API, platform API): never a host port. */
const SANDBOX_OWN_PORTS = [9000, 9001];

/**
 * Why `--sandbox-allow-host-port` cannot be accepted as given, if it cannot: a port out of range, the
 * platform's own API port, its store's port (PostgreSQL), or a port the sandbox's loopback uses itself.
 */
export function hostPortsRefusal(
  ports: readonly number[],
  platform: { apiPort: number; database?: string },
): string | undefined {
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      return `--sandbox-allow-host-port: ${port} is not a port (1-65535)`;
    if (port === platform.apiPort)
      return `--sandbox-allow-host-port: ${port} is this server's own API port; functions reach the API through their own endpoint, never the host's loopback`;
    if (platform.database !== undefined && port === databasePort(platform.database))
      return `--sandbox-allow-host-port: ${port} is the port of this server's store (--database); a function must never reach it`;
    if (SANDBOX_OWN_PORTS.includes(port))
      return `--sandbox-allow-host-port: ${port} is used inside every sandbox (9001 Runtime API, 9000 platform API)`;
  }
  return undefined;
}

function databasePort(url: string): number {
  try {
    const parsed = new URL(url);
    return parsed.port ? Number(parsed.port) : 5432;
  } catch {
    return 5432;
  }
}

/**
 * A `--public-url`: an absolute http(s) URL with no query or fragment, returned without a
 * trailing slash. Throws with a message for anything else.
 */
export function parsePublicUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`public URL ${JSON.stringify(raw)} is not a URL (e.g. https://lambda.example.com)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new Error(`public URL ${JSON.stringify(raw)} must start with http:// or https://`);
  if (url.search || url.hash || url.username || url.password)
    throw new Error(`public URL ${JSON.stringify(raw)} must have no query, fragment or credentials`);
  return url.toString().replace(/\/+$/, "");
}

/**
 * The `/metrics` bearer token as given, or why it cannot be: at least 32 characters of a bearer
 * token's alphabet (RFC 6750's b64token: letters, digits and `-._~+/=`), so it fits an
 * `Authorization` header unchanged and cannot be guessed.
 */
export function checkMetricsToken(token: string): string {
  if (token.length < 32 || token.length > 4096 || !/^[A-Za-z0-9\-._~+/]+=*$/.test(token)) {
    throw new ServerOptionError(
      "the metrics token (--metrics-token-file, LAMBENT_METRICS_TOKEN) must be 32 to 4096 characters of A-Z a-z 0-9 - . _ ~ + / (then = padding); e.g. `openssl rand -hex 32`",
    );
  }
  return token;
}
