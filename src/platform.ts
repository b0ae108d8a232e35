/**
 * The composition root: one process running every role (API, frontend,
 * worker) over one store. `lambent server` starts it; tests start it on a free
 * port with a temp data dir.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "./api/app.js";
import { existsVia, SchedulePoller } from "./async/schedule-poller.js";
import { AsyncService } from "./async/service.js";
import { defaultServerKeyFile } from "./auth/keys.js";
import { Auth } from "./auth/service.js";
import { ConcurrencyLeases } from "./cluster/concurrency-leases.js";
import { WorkerRegistry } from "./cluster/registry.js";
import {
  checkMetricsToken,
  defaultOptions,
  hostPortsRefusal,
  isLoopbackHost,
  parsePublicUrl,
  ServerOptionError,
  type ServerOptions,
} from "./config.js";
import { AliasService } from "./control/aliases.js";
import { CapacityProviderService } from "./control/capacity-providers.js";
import { CodeCache } from "./control/code.js";
import { ConcurrencyService } from "./control/concurrency.js";
import { DevMounts } from "./control/dev-mounts.js";
import { EgressPolicy } from "./control/egress.js";
import { EventInvokeConfigService } from "./control/event-invoke-config.js";
import { EventSourceMappingService } from "./control/event-sources.js";
import { FunctionSettingsService } from "./control/function-settings.js";
import { FunctionUrlService } from "./control/function-urls.js";
import { FunctionService } from "./control/functions.js";
import { LayerCache, LayerService } from "./control/layers.js";
import { PermissionService } from "./control/permissions.js";
import { fastClock, REAL_CLOCK, ScheduleService } from "./control/schedules.js";
import { StackService } from "./control/stacks.js";
import { lockDataDir } from "./datadir-lock.js";
import { Assignments } from "./frontend/assignment.js";
import { ClusterWorkers } from "./frontend/cluster-workers.js";
import { ConcurrencyCounter, type Counter } from "./frontend/counter.js";
import { FleetCounter } from "./frontend/fleet-counter.js";
import { Frontend, type InvokeRequest } from "./frontend/invoke.js";
import { ProvisionedPlacement } from "./frontend/provisioned.js";
import { CloudWatchLogs } from "./logs/cloudwatch-logs.js";
import { LogPruner } from "./logs/log-pruner.js";
import { LogSink } from "./logs/log-sink.js";
import { CloudWatchMetrics } from "./metrics/cloudwatch.js";
import { EmfExtractor } from "./metrics/emf.js";
import { PrometheusView } from "./metrics/prometheus.js";
import { dimensionsKey, LAMBDA_NAMESPACE, MetricsRecorder } from "./metrics/recorder.js";
import { checkClusterSecret } from "./protocol/node-auth.js";
import { checkRuntime } from "./runtimes/policy.js";
import { RuntimeStore } from "./runtimes/store.js";
import type { DetectedSandboxDriver } from "./sandbox/index.js";
import { AdvisoryLockOwnership, soleOwner } from "./sources/ownership.js";
import { EventSourceSupervisor } from "./sources/supervisor.js";
import { ChangeFeed } from "./store/changes.js";
import { Store } from "./store/store.js";
import { PlatformApiChannel } from "./worker/platform-api.js";
import { Worker } from "./worker/worker.js";
import { detectWorkerSandbox, workerOptions } from "./worker-options.js";

export const VERSION = "0.1.0";

/** How long a stop lets in-flight invokes finish before it stops their environments. */
const STOP_GRACE_MS = 10_000;
/** A server bound beyond loopback with no access keys to check requests against. */
export class NoKeysError extends Error {}

/** Everything a Platform is made of, built in order by `Platform.start` before the Platform itself. */
interface PlatformParts {
  options: ServerOptions;
  store: Store;
  functions: FunctionService;
  aliases: AliasService;
  concurrency: ConcurrencyService;
  capacityProviders: CapacityProviderService;
  logs: LogSink;
  metrics: MetricsRecorder;
  emf: EmfExtractor;
  worker: Worker;
  frontend: Frontend;
  sandbox: DetectedSandboxDriver;
  eventInvokeConfigs: EventInvokeConfigService;
  asyncInvoke: AsyncService;
  schedules: ScheduleService;
  schedulePoller: SchedulePoller;
  eventSourceMappings: EventSourceMappingService;
  eventSources: EventSourceSupervisor;
  changes: ChangeFeed | null;
  provisioned: ProvisionedPlacement;
  layers: LayerService;
  logPruner: LogPruner;
  settings: FunctionSettingsService;
  devMounts: DevMounts;
  platformApi: PlatformApiChannel;
  permissions: PermissionService;
  auth: Auth;
  egress: EgressPolicy;
  /** The worker nodes this frontend or poller routes to (cluster roles; null when it runs its own worker). */
  cluster: ClusterWorkers | null;
  unlock: () => void;
}

export class Platform {
  readonly options: ServerOptions;
  readonly store: Store;
  readonly functions: FunctionService;
  readonly aliases: AliasService;
  readonly concurrency: ConcurrencyService;
  /** Lambda Managed Instances capacity providers (what multi-concurrency functions name). */
  readonly capacityProviders: CapacityProviderService;
  readonly logs: LogSink;
  /** AWS/Lambda and EMF metrics: tallied in memory, written every few seconds. */
  readonly metrics: MetricsRecorder;
  /** EMF records in function logs → custom metrics (the recorder's). */
  readonly emf: EmfExtractor;
  /** CloudWatch's metric reads (GetMetricData, GetMetricStatistics, ListMetrics) over the store. */
  readonly cloudwatchMetrics: CloudWatchMetrics;
  /** `GET /metrics`: the Prometheus view of the same series and the platform's own. */
  readonly prometheus: PrometheusView;
  readonly worker: Worker;
  readonly frontend: Frontend;
  readonly sandbox: DetectedSandboxDriver;
  /** Event invoke configs (control) and the async invoke queue and pollers. */
  readonly eventInvokeConfigs: EventInvokeConfigService;
  readonly asyncInvoke: AsyncService;
  /** EventBridge Scheduler schedules (control) and the poller that fires them into the async queue. */
  readonly schedules: ScheduleService;
  readonly schedulePoller: SchedulePoller;
  /** Event source mappings (control) and their pollers. */
  readonly eventSourceMappings: EventSourceMappingService;
  readonly eventSources: EventSourceSupervisor;
  /** Cross-server cache invalidation (PostgreSQL only). */
  readonly changes: ChangeFeed | null;
  /** Keeps provisioned-concurrency environments in place. */
  readonly provisioned: ProvisionedPlacement;
  /** Layer versions (control) and the merged /opt directories they make. */
  readonly layers: LayerService;
  /** Deletes log events past their group's retention. */
  readonly logPruner: LogPruner;
  /** The CloudWatch Logs API's operations over the log store. */
  readonly cloudwatchLogs: CloudWatchLogs;
  /** Code signing configs and per-function settings (recursion, runtime management, scaling). */
  readonly settings: FunctionSettingsService;
  /** Functions running from a folder on this machine (`lambent dev`, `--dev-root`). */
  readonly devMounts: DevMounts;
  /** The way back from functions to this API (see worker/platform-api.ts). */
  readonly platformApi: PlatformApiChannel;
  /** Resource-based policies (AddPermission and friends). */
  readonly permissions: PermissionService;
  /** Function URL configs (their front door is api/function-url.ts). */
  readonly functionUrls: FunctionUrlService;
  /** Stacks `lambent deploy` made (their state; the deploy runs in the client). */
  readonly stacks: StackService;
  /** Keys, SigV4 verification, authorization, presigning, environment credentials. */
  readonly auth: Auth;
  /** Where destinations, dead-letter targets and brokers may point (--allow-destination-hosts). */
  readonly egress: EgressPolicy;
  /** The worker nodes this frontend or poller routes to (cluster roles; null when it runs its own worker). */
  readonly cluster: ClusterWorkers | null;
  /** The front door; its routes reach the parts above through this Platform. Built last, not yet listening. */
  readonly app: FastifyInstance;
  #url = "";
  private readonly unlock: () => void;
  private stopping: Promise<void> | null = null;

  private constructor(parts: PlatformParts) {
    this.options = parts.options;
    this.store = parts.store;
    this.functions = parts.functions;
    this.aliases = parts.aliases;
    this.concurrency = parts.concurrency;
    this.capacityProviders = parts.capacityProviders;
    this.logs = parts.logs;
    this.metrics = parts.metrics;
    this.emf = parts.emf;
    this.cloudwatchMetrics = new CloudWatchMetrics(parts.store);
    const { frontend, worker } = parts;
    const local = parts.cluster === null;
    this.prometheus = new PrometheusView(parts.metrics, {
      concurrency: () => frontend.peaks.current(),
      provisioned: () => frontend.provisioned.current(),
      queueDepth: () => parts.asyncInvoke.queue.depth(),
      emf: () => parts.emf.counts,
      ...(local
        ? {
            environments: () => worker.environmentStates(),
            stemCells: () => worker.stemCells.sizes(),
          }
        : {}),
    });
    this.worker = parts.worker;
    this.frontend = parts.frontend;
    this.sandbox = parts.sandbox;
    this.eventInvokeConfigs = parts.eventInvokeConfigs;
    this.asyncInvoke = parts.asyncInvoke;
    this.schedules = parts.schedules;
    this.schedulePoller = parts.schedulePoller;
    this.eventSourceMappings = parts.eventSourceMappings;
    this.eventSources = parts.eventSources;
    this.changes = parts.changes;
    this.provisioned = parts.provisioned;
    this.layers = parts.layers;
    this.logPruner = parts.logPruner;
    this.settings = parts.settings;
    this.devMounts = parts.devMounts;
    this.platformApi = parts.platformApi;
    this.permissions = parts.permissions;
    this.auth = parts.auth;
    this.egress = parts.egress;
    this.cluster = parts.cluster;
    this.unlock = parts.unlock;
    this.cloudwatchLogs = new CloudWatchLogs(parts.store, parts.logs, {
      defaultRetentionDays: parts.options.logRetentionDays,
      emf: (source, message) => parts.emf.line(source, message),
    });
    this.functionUrls = new FunctionUrlService(
      parts.store,
      parts.functions,
      parts.aliases,
      () => this.publicUrl,
    );
    this.stacks = new StackService(parts.store, parts.options.region);
    // Every part is in place: the routes may hold on to this Platform.
    this.app = buildApp(this);
  }

  /** Where the API listens (set once `start` has bound the port). */
  get url(): string {
    return this.#url;
  }

  static async start(overrides: Partial<ServerOptions> = {}): Promise<Platform> {
    const options = defaultOptions(overrides);
    const refusal = hostPortsRefusal(options.sandboxAllowHostPorts, {
      apiPort: options.port,
      ...(options.database ? { database: options.database } : {}),
    });
    if (refusal) throw new ServerOptionError(refusal);
    if (options.metricsToken !== undefined) checkMetricsToken(options.metricsToken);
    let egress: EgressPolicy;
    try {
      egress = new EgressPolicy({
        allow: options.allowDestinationHosts,
        internalAllowed: options.internalDestinations ?? isLoopbackHost(options.host),
      });
    } catch (err) {
      throw new ServerOptionError((err as Error).message);
    }
    egress.setApiPort(options.port);
    if (options.database) await egress.setStore(options.database);
    if (options.publicUrl !== undefined) {
      try {
        options.publicUrl = parsePublicUrl(options.publicUrl);
      } catch (err) {
        throw new ServerOptionError((err as Error).message);
      }
    }
    options.dataDir = resolve(options.dataDir);
    mkdirSync(options.dataDir, { recursive: true });
    const unlock = lockDataDir(options.dataDir);
    let store: Store | undefined;
    // What a failed start must release, in the order acquired (released newest first).
    const acquired: Array<() => unknown> = [];
    try {
      store = await Store.open({
        dataDir: options.dataDir,
        ...(options.database ? { database: options.database } : {}),
      });
      const devCredentials = options.devCredentials ?? isLoopbackHost(options.host);
      if (
        !isLoopbackHost(options.host) &&
        !(await store.db.selectFrom("access_keys").select("access_key_id").limit(1).executeTakeFirst())
      ) {
        throw new NoKeysError(
          `refusing to listen on ${options.host}: no access keys exist, and the development credentials work on loopback only. ` +
            `Create an admin key first with \`lambent keys create --bootstrap --data-dir ${options.dataDir}${options.database ? " --database <url>" : ""}\` ` +
            "(it prints the key once), then start the server again.",
        );
      }
      const platform = await Platform.assemble(options, store, { devCredentials, unlock }, egress, acquired);
      acquired.push(() => platform.app.close());
      const address = await platform.app.listen({ host: options.host, port: options.port });
      platform.#url = address.replace("[::1]", "localhost");
      // --port 0: the port picked is never a destination either.
      egress.setApiPort(Number(new URL(platform.url).port));
      // Connections from an environment's own channel are served by the API like any other.
      platform.platformApi.attach((socket) => platform.app.server.emit("connection", socket), platform.url);
      // A free port picked at start (--port 0) must not be one the operator opened to sandboxes.
      const late = hostPortsRefusal(options.sandboxAllowHostPorts, {
        apiPort: Number(new URL(platform.url).port),
      });
      if (late) {
        await platform.stop().catch(() => {});
        store = undefined;
        throw new ServerOptionError(late);
      }
      // A frontend of a cluster leaves the queue, schedules, the pollers and provisioned placement to the
      // poller role: provisioned concurrency is placed once for the cluster, not once per frontend.
      if (options.role !== "frontend") {
        await platform.asyncInvoke.start();
        acquired.push(() => platform.asyncInvoke.stop());
        platform.schedulePoller.start();
        acquired.push(() => platform.schedulePoller.stop());
        acquired.push(() => platform.eventSources.stop());
        await platform.eventSources.start();
        acquired.push(() => platform.provisioned.stop());
        await platform.provisioned.start();
      }
      return platform;
    } catch (err) {
      // Release everything this start acquired (sandboxes, mounts, cgroups, listeners), newest first.
      for (const release of acquired.reverse()) {
        try {
          await release();
        } catch (cleanupError) {
          if (!options.quiet) console.error("lambent: cleanup after a failed start:", cleanupError);
        }
      }
      await store?.close();
      unlock();
      throw err;
    }
  }

  /**
   * Builds every part in dependency order (each one before the first part that uses it) and the
   * Platform over them; pushes onto `acquired` what a failed start must release. Nothing listens yet.
   */
  private static async assemble(
    options: ServerOptions,
    store: Store,
    access: { devCredentials: boolean; unlock: () => void },
    egress: EgressPolicy,
    acquired: Array<() => unknown>,
  ): Promise<Platform> {
    const { limits } = options;
    const codeCache: CodeCache = new CodeCache(
      join(options.dataDir, "code"),
      (sha) => functions.loadZip(sha),
      limits,
    );
    const functions = new FunctionService(store, codeCache, limits);
    const layers = new LayerService(store, limits);
    const layerCache = new LayerCache(join(options.dataDir, "layers"), (sha) => layers.loadZip(sha), limits);
    // Extractions a crash interrupted leave .tmp-* directories: nothing else uses them (the data dir is ours).
    await codeCache.sweep();
    await layerCache.sweep();
    // Finish creates and updates a crash left Pending or InProgress (a package that cannot be extracted
    // marks its function Failed; it never stops the server).
    await functions.recover();
    const runtimes = new RuntimeStore(options.runtimesDir);
    functions.runtimeCheck = (runtime) =>
      checkRuntime(
        {
          store: runtimes,
          blockDeprecated: options.blockDeprecatedRuntimes,
          warn: (m) => options.quiet || console.warn(`lambent: ${m}`),
        },
        runtime,
      );
    functions.deadLetterCheck = (target) => egress.checkConfigured(target, "The dead-letter target");
    const capacityProviders = new CapacityProviderService(store);
    functions.capacityProviderCheck = (arn) => capacityProviders.check(arn);
    functions.layerCheck = async (arns, previous, codeBytes) =>
      layers.checkTotalSize(await layers.resolve(arns, previous), codeBytes);
    const aliases = new AliasService(store);
    const concurrency = new ConcurrencyService(store, options.accountConcurrency);
    const permissions = new PermissionService(store, functions, aliases, layers);
    const auth = new Auth(store, permissions, {
      serverKeyFile: options.serverKeyFile ?? defaultServerKeyFile(options.dataDir),
      devCredentials: access.devCredentials,
      region: options.region,
    });
    const logs = new LogSink(store, {
      bytesPerSecond: limits.logBytesPerSecond,
      burstBytes: limits.logBurstBytes,
    });
    acquired.push(() => logs.flush());
    const metrics = new MetricsRecorder(store, {
      retentionDays: options.metricsRetentionDays,
      enabled: options.metrics,
      log: (m) => options.quiet || console.error(`lambent: ${m}`),
    });
    const emf = new EmfExtractor(metrics, { log: (m) => options.quiet || console.error(`lambent: ${m}`) });
    let cluster: ClusterWorkers | null = null;
    let counter: Counter = new ConcurrencyCounter(options.accountConcurrency);
    if (options.role !== "all") {
      if (store.engine !== "postgres" || !options.database) {
        throw new ServerOptionError(
          `--role ${options.role} needs --database postgres://… (the cluster's PostgreSQL)`,
        );
      }
      let secret: string;
      try {
        secret = checkClusterSecret(options.clusterSecret);
      } catch (err) {
        throw new ServerOptionError((err as Error).message);
      }
      const workers = new ClusterWorkers(
        new WorkerRegistry(store),
        options.database,
        secret,
        limits.initTimeoutMs,
        (m) => (options.quiet ? undefined : console.error(`lambent: ${m}`)),
      );
      acquired.push(() => workers.close());
      await workers.start();
      cluster = workers;
      // Reserved and account concurrency hold for the cluster: each node counts within leased shares.
      const holder = `${options.role}-${randomBytes(6).toString("hex")}`;
      const fleet = new FleetCounter(
        new ConcurrencyLeases(store, holder, options.accountConcurrency),
        options.database,
        (m) => (options.quiet ? undefined : console.error(`lambent: ${m}`)),
      );
      acquired.push(() => fleet.close());
      await fleet.start();
      counter = fleet;
    }
    // Cluster frontends and pollers run no function: their (never started) worker gets the plain driver.
    // Stem cells also adopt dev-mounted folders (bound read-only as they are).
    const sandbox = await detectWorkerSandbox(
      options,
      cluster ? "process" : options.sandbox,
      options.devRoot !== undefined && !cluster ? [realpathSync(options.devRoot)] : [],
    );
    if (!cluster && !sandbox.driver.isolates && !sandbox.warning) {
      sandbox.warning =
        "functions run UNISOLATED (process sandbox, chosen with --sandbox process): no limits are enforced";
    }
    const platformApi = new PlatformApiChannel();
    const worker = new Worker(
      workerOptions(options, {
        sandbox,
        platformApi,
        credentials: (a) => auth.environmentCredentials(a.config.Role, a.name),
        logs,
        emf: (fn, line) => emf.line(`function ${fn}`, line),
        runtimes,
        codeCache,
        layerCache,
      }),
    );
    // The sandbox driver's probe already made its cgroup root; the worker's close releases it,
    // the stem cells, mounts and sandboxes its start made, even if that start failed halfway.
    acquired.push(() => worker.close());
    if (!cluster) await worker.start();
    const workers = cluster ?? worker;
    // Versions a function already references stay usable after DeleteLayerVersion, as on Lambda.
    const devMounts = new DevMounts(options.devRoot, functions);
    const assignments = new Assignments(
      options.region,
      async (arns) => (await layers.resolve(arns, arns)).map(({ arn, sha256 }) => ({ arn, sha256 })),
      (name, version) => devMounts.folderOf(name, version),
    );
    const frontend = new Frontend(functions, aliases, concurrency, workers, counter, assignments, metrics);
    devMounts.changed = (name, region) => frontend.prewarm(name, region);
    await frontend.loadReservations();
    await frontend.loadProvisioned();
    // ConcurrentExecutions: the most running at once in each flush interval (account, pool, function).
    metrics.addSampler(() => {
      const peaks = frontend.peaks.take();
      metrics.record(LAMBDA_NAMESPACE, "ConcurrentExecutions", "[]", peaks.total, "Count");
      metrics.record(LAMBDA_NAMESPACE, "UnreservedConcurrentExecutions", "[]", peaks.unreserved, "Count");
      for (const [name, n] of peaks.perFunction) {
        if (n > 0) {
          metrics.record(
            LAMBDA_NAMESPACE,
            "ConcurrentExecutions",
            dimensionsKey({ FunctionName: name }),
            n,
            "Count",
          );
        }
      }
      // Provisioned concurrency, per version or alias with a config (and summed per function).
      const perFunction = new Map<string, number>();
      for (const p of frontend.provisioned.take()) {
        if (p.allocated <= 0) continue;
        const resource = dimensionsKey({ FunctionName: p.functionName, Resource: p.resource });
        metrics.record(LAMBDA_NAMESPACE, "ProvisionedConcurrentExecutions", resource, p.executions, "Count");
        metrics.record(
          LAMBDA_NAMESPACE,
          "ProvisionedConcurrencyUtilization",
          resource,
          p.executions / p.allocated,
          "None",
        );
        perFunction.set(p.functionName, (perFunction.get(p.functionName) ?? 0) + p.executions);
      }
      for (const [name, n] of perFunction) {
        metrics.record(
          LAMBDA_NAMESPACE,
          "ProvisionedConcurrentExecutions",
          dimensionsKey({ FunctionName: name }),
          n,
          "Count",
        );
      }
      void frontend.loadProvisioned();
    });
    metrics.start();
    acquired.push(() => metrics.stop());
    const logPruner = new LogPruner(store, { defaultDays: options.logRetentionDays });
    logPruner.start();
    acquired.push(() => logPruner.stop());
    const provisioned = new ProvisionedPlacement(
      functions,
      aliases,
      concurrency,
      workers,
      assignments,
      options.region,
    );
    const eventInvokeConfigs = new EventInvokeConfigService(store, functions, egress);
    const settings = new FunctionSettingsService(store, functions);
    const asyncInvoke = new AsyncService(
      store,
      frontend,
      eventInvokeConfigs,
      options,
      egress,
      (name) => settings.terminatesLoops(name),
      metrics,
    );
    const schedules = new ScheduleService(
      store,
      options.scheduleClock
        ? fastClock(options.scheduleClock.anchorMs, options.scheduleClock.speed)
        : REAL_CLOCK,
    );
    const schedulePoller = new SchedulePoller({
      store,
      queue: asyncInvoke.queue,
      schedules,
      clock: schedules.clock,
      functionExists: (ref, region) => existsVia(() => frontend.resolve(ref, region)),
      wakeQueue: () => asyncInvoke.wake(),
      log: (message) => {
        if (!options.quiet) console.error(`lambent: ${message}`);
      },
    });
    const eventSourceMappings = new EventSourceMappingService(store, functions, egress);
    const ownership =
      store.engine === "postgres" && options.database
        ? new AdvisoryLockOwnership(options.database, () => void eventSources.ownershipLost())
        : soleOwner;
    const eventSources: EventSourceSupervisor = new EventSourceSupervisor(
      eventSourceMappings,
      {
        frontend,
        maxPayloadBytes: limits.syncPayloadBytes,
        report: (uuid, result) => eventSourceMappings.setLastProcessingResult(uuid, result),
        deliverFailure: (m, requestId, body) =>
          asyncInvoke.enqueueDelivery({
            requestId,
            functionName: m.functionName,
            region: m.region,
            target: m.settings.onFailure as string,
            body: Buffer.from(JSON.stringify(body)),
          }),
        log: (message) => {
          if (!options.quiet) console.error(`lambent: ${message}`);
        },
        terminatesLoops: (name) => settings.terminatesLoops(name),
        egress,
        metrics,
      },
      ownership,
    );
    let changes: ChangeFeed | null = null;
    if (store.engine === "postgres" && options.database) {
      const feed = new ChangeFeed(
        store,
        options.database,
        [
          { name: "functions", emitter: functions.events, events: ["change"] },
          { name: "aliases", emitter: aliases.events, events: ["change"] },
          {
            name: "concurrency",
            emitter: concurrency.events,
            // In a cluster the poller places provisioned concurrency for configs made through any frontend.
            events: options.role === "all" ? ["reserved"] : ["reserved", "provisioned"],
          },
          { name: "event-sources", emitter: eventSourceMappings.events, events: ["change"] },
          { name: "event-invoke-configs", emitter: eventInvokeConfigs.events, events: ["change"] },
        ],
        (m) => options.quiet || console.error(`lambent: ${m}`),
        async () => {
          await frontend.resync();
          await provisioned.resync();
          eventInvokeConfigs.forget();
        },
      );
      acquired.push(() => feed.close());
      await feed.start();
      changes = feed;
    }
    return new Platform({
      options,
      store,
      functions,
      aliases,
      concurrency,
      capacityProviders,
      logs,
      metrics,
      emf,
      worker,
      frontend,
      sandbox,
      eventInvokeConfigs,
      asyncInvoke,
      schedules,
      schedulePoller,
      eventSourceMappings,
      eventSources,
      changes,
      provisioned,
      layers,
      logPruner,
      settings,
      devMounts,
      platformApi,
      permissions,
      auth,
      egress,
      cluster,
      unlock: access.unlock,
    });
  }

  /** The URL links handed to clients start with (Code.Location): `--public-url`, else where we listen. */
  get publicUrl(): string {
    return this.options.publicUrl ?? this.url;
  }

  health() {
    return {
      status: "ok",
      version: VERSION,
      store: this.store.engine,
      sandbox: {
        driver: this.sandbox.driver.name,
        isolates: this.sandbox.driver.isolates,
        ...(this.sandbox.warning ? { warning: this.sandbox.warning } : {}),
      },
      role: this.options.role,
      ...(this.cluster
        ? { workers: this.cluster.workers(), warm: this.cluster.warmView() }
        : { environments: this.worker.stats() }),
      concurrentExecutions: this.frontend.concurrentExecutions,
    };
  }

  async unreservedConcurrency(): Promise<number> {
    return this.concurrency.unreserved();
  }

  /** Event invocations: stored durably, run by the async pollers. */
  async invokeAsync(req: InvokeRequest): Promise<{ requestId: string }> {
    return this.asyncInvoke.enqueue(req);
  }

  /** Stop taking requests, let in-flight ones finish, stop every environment, close the store. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // Stop polling event sources; in-flight batches finish.
      await this.eventSources.stop();
      // Stop claiming async events; running ones finish or go back to the queue.
      await this.schedulePoller.stop();
      await this.asyncInvoke.stop();
      this.platformApi.detach();
      // In-flight invokes get a grace period; then their environments are stopped (the callers get
      // Runtime.ExitError), so a runaway function cannot hold the shutdown up to its own timeout.
      const grace = setTimeout(() => void this.worker.close(), STOP_GRACE_MS);
      await this.app.close();
      clearTimeout(grace);
      await this.changes?.close();
      this.provisioned.stop();
      await this.cluster?.close();
      await this.frontend.counter.close?.();
      await this.worker.close();
      await this.logPruner.stop();
      await this.logs.flush();
      await this.metrics.stop();
      await this.store.close();
      this.unlock();
    })();
    return this.stopping;
  }
}
