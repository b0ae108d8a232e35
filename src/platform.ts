/**
 * The composition root: one process running every role (API, frontend,
 * worker) over one store. `lambent server` starts it; tests start it on a free
 * port with a temp data dir.
 */
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { FastifyInstance } from "fastify";
import { buildApp } from "./api/app.js";
import { AsyncService } from "./async/service.js";
import { defaultServerKeyFile } from "./auth/keys.js";
import { Auth } from "./auth/service.js";
import {
  defaultOptions,
  hostPortsRefusal,
  isLoopbackHost,
  parsePublicUrl,
  ServerOptionError,
  type ServerOptions,
} from "./config.js";
import { AliasService } from "./control/aliases.js";
import { CodeCache } from "./control/code.js";
import { ConcurrencyService } from "./control/concurrency.js";
import { EventInvokeConfigService } from "./control/event-invoke-config.js";
import { EventSourceMappingService } from "./control/event-sources.js";
import { FunctionSettingsService } from "./control/function-settings.js";
import { FunctionService } from "./control/functions.js";
import { LayerCache, LayerService } from "./control/layers.js";
import { PermissionService } from "./control/permissions.js";
import { lockDataDir } from "./datadir-lock.js";
import { Frontend, type InvokeRequest } from "./frontend/invoke.js";
import { ProvisionedPlacement } from "./frontend/provisioned.js";
import { LogPruner } from "./logs/log-pruner.js";
import { LogSink } from "./logs/log-sink.js";
import { checkRuntime } from "./runtimes/policy.js";
import { RuntimeStore } from "./runtimes/store.js";
import { type DetectedSandboxDriver, detectSandboxDriver } from "./sandbox/index.js";
import { AdvisoryLockOwnership, soleOwner } from "./sources/ownership.js";
import { EventSourceSupervisor } from "./sources/supervisor.js";
import { ChangeFeed } from "./store/changes.js";
import { Store } from "./store/store.js";
import { PlatformApiChannel } from "./worker/platform-api.js";
import { RUNTIMES_DIR } from "./worker/runtimes.js";
import { Worker } from "./worker/worker.js";

export const VERSION = "0.1.0";

/** How long a stop lets in-flight invokes finish before it stops their environments. */
const STOP_GRACE_MS = 10_000;
/** A server bound beyond loopback with no access keys to check requests against. */
export class NoKeysError extends Error {}

export class Platform {
  app!: FastifyInstance;
  url = "";
  /** Event invoke configs (control) and the async invoke queue and pollers. */
  eventInvokeConfigs!: EventInvokeConfigService;
  asyncInvoke!: AsyncService;
  /** Event source mappings (control) and their pollers. */
  eventSourceMappings!: EventSourceMappingService;
  eventSources!: EventSourceSupervisor;
  /** Cross-server cache invalidation (PostgreSQL only). */
  changes: ChangeFeed | null = null;
  /** Keeps provisioned-concurrency environments in place. */
  provisioned!: ProvisionedPlacement;
  /** Layer versions (control) and the merged /opt directories they make. */
  layers!: LayerService;
  /** Deletes log events past their group's retention. */
  logPruner!: LogPruner;
  /** Code signing configs and per-function settings (recursion, runtime management, scaling). */
  settings!: FunctionSettingsService;
  /** The way back from functions to this API (see worker/platform-api.ts). */
  platformApi!: PlatformApiChannel;
  /** Resource-based policies (AddPermission and friends). */
  permissions!: PermissionService;
  /** Keys, SigV4 verification, authorization, presigning, environment credentials. */
  auth!: Auth;
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly options: ServerOptions,
    readonly store: Store,
    readonly functions: FunctionService,
    readonly aliases: AliasService,
    readonly concurrency: ConcurrencyService,
    readonly logs: LogSink,
    readonly worker: Worker,
    readonly frontend: Frontend,
    readonly sandbox: DetectedSandboxDriver,
    private readonly unlock: () => void,
  ) {}

  static async start(overrides: Partial<ServerOptions> = {}): Promise<Platform> {
    const options = defaultOptions(overrides);
    const refusal = hostPortsRefusal(options.sandboxAllowHostPorts, {
      apiPort: options.port,
      ...(options.database ? { database: options.database } : {}),
    });
    if (refusal) throw new ServerOptionError(refusal);
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
      const openedStore = store;
      const devCredentials = options.devCredentials ?? isLoopbackHost(options.host);
      if (
        !isLoopbackHost(options.host) &&
        !(await openedStore.db.selectFrom("access_keys").select("access_key_id").limit(1).executeTakeFirst())
      ) {
        throw new NoKeysError(
          `refusing to listen on ${options.host}: no access keys exist, and the development credentials work on loopback only. ` +
            `Create an admin key first with \`lambent keys create --bootstrap --data-dir ${options.dataDir}${options.database ? " --database <url>" : ""}\` ` +
            "(it prints the key once), then start the server again.",
        );
      }
      const codeCache: CodeCache = new CodeCache(
        join(options.dataDir, "code"),
        (sha) => functions.loadZip(sha),
        options.limits,
      );
      const functions = new FunctionService(store, codeCache, options.limits);
      const layers = new LayerService(store, options.limits);
      const layerCache = new LayerCache(
        join(options.dataDir, "layers"),
        (sha) => layers.loadZip(sha),
        options.limits,
      );
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
      functions.layerCheck = async (arns, previous, codeBytes) =>
        layers.checkTotalSize(await layers.resolve(arns, previous), codeBytes);
      const { limits } = options;
      const logs = new LogSink(openedStore, {
        bytesPerSecond: limits.logBytesPerSecond,
        burstBytes: limits.logBurstBytes,
      });
      acquired.push(() => logs.flush());
      const sandbox = await detectSandboxDriver(options.sandbox, {
        runDir: join(options.dataDir, "run", "sandbox"),
        network: options.sandboxNetwork,
        allowHostPorts: options.sandboxAllowHostPorts,
        adoptableRoots: [join(options.dataDir, "code"), join(options.dataDir, "layers")],
      });
      if (!sandbox.driver.isolates && !sandbox.warning) {
        sandbox.warning =
          "functions run UNISOLATED (process sandbox, chosen with --sandbox process): no limits are enforced";
      }
      const platformApi = new PlatformApiChannel();
      // Execution roles' credentials come from the key store, built below with the other control parts.
      let auth: Auth | undefined;
      const worker = new Worker({
        driver: sandbox.driver,
        platformApi,
        credentials: (fn) => auth?.environmentCredentials(fn.config.Role, fn.name) ?? {},
        logs,
        runDir: join(options.dataDir, "run", "rapi"),
        runtimesDir: RUNTIMES_DIR,
        runtimes,
        region: options.region,
        maxResponseBytes: options.limits.syncPayloadBytes,
        initTimeoutMs: options.limits.initTimeoutMs,
        freezeIdle: sandbox.driver.isolates,
        pidsLimit: 1024,
        outputLimits: { lineBytes: limits.logLineBytes, windowBytes: limits.logInvokeBytes },
        idleTimeoutSeconds: options.idleTimeoutSeconds,
        scaleRate: options.scaleRate,
        prewarm: options.prewarm,
        codeDir: (sha) => codeCache.ensure(sha),
        // Versions a function already references stay usable after DeleteLayerVersion, as on Lambda.
        layersDir: async (arns) => layerCache.merged((await layers.resolve(arns, arns)).map((l) => l.sha256)),
      });
      // The sandbox driver's probe already made its cgroup root; the worker's close releases it,
      // the stem cells, mounts and sandboxes its start made, even if that start failed halfway.
      acquired.push(() => worker.close());
      await worker.start();
      const aliases = new AliasService(openedStore);
      const concurrency = new ConcurrencyService(openedStore, options.accountConcurrency);
      const frontend = new Frontend(functions, aliases, concurrency, worker, options.accountConcurrency);
      await frontend.loadReservations();
      const platform = new Platform(
        options,
        openedStore,
        functions,
        aliases,
        concurrency,
        logs,
        worker,
        frontend,
        sandbox,
        unlock,
      );
      platform.layers = layers;
      platform.logPruner = new LogPruner(openedStore, { defaultDays: options.logRetentionDays });
      platform.logPruner.start();
      platform.settings = new FunctionSettingsService(openedStore, functions);
      platform.permissions = new PermissionService(openedStore, functions, aliases, layers);
      platform.auth = new Auth(openedStore, platform.permissions, {
        serverKeyFile: options.serverKeyFile ?? defaultServerKeyFile(options.dataDir),
        devCredentials,
        region: options.region,
      });
      auth = platform.auth;
      platform.provisioned = new ProvisionedPlacement(
        functions,
        aliases,
        concurrency,
        worker,
        options.region,
      );
      platform.eventInvokeConfigs = new EventInvokeConfigService(openedStore, functions);
      platform.asyncInvoke = new AsyncService(openedStore, frontend, platform.eventInvokeConfigs, options);
      platform.eventSourceMappings = new EventSourceMappingService(openedStore, functions);
      const ownership =
        openedStore.engine === "postgres" && options.database
          ? new AdvisoryLockOwnership(options.database, () => void platform.eventSources.ownershipLost())
          : soleOwner;
      platform.eventSources = new EventSourceSupervisor(
        platform.eventSourceMappings,
        {
          frontend,
          maxPayloadBytes: options.limits.syncPayloadBytes,
          report: (uuid, result) => platform.eventSourceMappings.setLastProcessingResult(uuid, result),
          deliverFailure: (m, requestId, body) =>
            platform.asyncInvoke.enqueueDelivery({
              requestId,
              functionName: m.functionName,
              region: m.region,
              target: m.settings.onFailure as string,
              body: Buffer.from(JSON.stringify(body)),
            }),
          log: (message) => {
            if (!options.quiet) console.error(`lambent: ${message}`);
          },
        },
        ownership,
      );
      if (openedStore.engine === "postgres" && options.database) {
        platform.changes = new ChangeFeed(
          openedStore,
          options.database,
          [
            { name: "functions", emitter: functions.events, events: ["change"] },
            { name: "aliases", emitter: aliases.events, events: ["change"] },
            { name: "concurrency", emitter: concurrency.events, events: ["reserved"] },
            { name: "event-sources", emitter: platform.eventSourceMappings.events, events: ["change"] },
          ],
          (m) => options.quiet || console.error(`lambent: ${m}`),
        );
        const changes = platform.changes;
        acquired.push(() => changes.close());
        await changes.start();
      }
      platform.app = buildApp(platform);
      acquired.push(() => platform.app.close());
      const address = await platform.app.listen({ host: options.host, port: options.port });
      platform.url = address.replace("[::1]", "localhost");
      // Connections from an environment's own channel are served by the API like any other.
      platform.platformApi = platformApi;
      platformApi.attach((socket) => platform.app.server.emit("connection", socket), platform.url);
      // A free port picked at start (--port 0) must not be one the operator opened to sandboxes.
      const late = hostPortsRefusal(options.sandboxAllowHostPorts, {
        apiPort: Number(new URL(platform.url).port),
      });
      if (late) {
        await platform.stop().catch(() => {});
        store = undefined;
        throw new ServerOptionError(late);
      }
      await platform.asyncInvoke.start();
      acquired.push(() => platform.asyncInvoke.stop());
      acquired.push(() => platform.eventSources.stop());
      await platform.eventSources.start();
      acquired.push(() => platform.provisioned.stop());
      await platform.provisioned.start();
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
      environments: this.worker.stats(),
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
      await this.asyncInvoke.stop();
      this.platformApi?.detach();
      // In-flight invokes get a grace period; then their environments are stopped (the callers get
      // Runtime.ExitError), so a runaway function cannot hold the shutdown up to its own timeout.
      const grace = setTimeout(() => void this.worker.close(), STOP_GRACE_MS);
      await this.app.close();
      clearTimeout(grace);
      await this.changes?.close();
      this.provisioned.stop();
      await this.worker.close();
      await this.logPruner.stop();
      await this.logs.flush();
      await this.store.close();
      this.unlock();
    })();
    return this.stopping;
  }
}
