/**
 * Runs one poller per enabled event source mapping: at start for every
 * mapping in the store, and on every create / update / delete. Settles the
 * mapping's state (`Creating`/`Enabling`/`Updating` → `Enabled`,
 * `Disabling` → `Disabled`, `Deleting` → removed) once its poller has started
 * or stopped. stop() stops every poller, letting in-flight batches finish.
 */
import { redact } from "../control/broker-uri.js";
import type { EventSourceMapping, EventSourceMappingService } from "../control/event-sources.js";
import { emptyStats, MappingPoller, type PollerDeps } from "./mapping-poller.js";
import { type MappingOwnership, soleOwner } from "./ownership.js";
import type { MappingStats, MappingStatus } from "./status.js";

/** How long a stopping poller may finish its in-flight batch. */
const STOP_GRACE_MS = 30_000;
/** With several servers: how often this one looks for mappings nobody polls (new, or whose owner died). */
const OWNERSHIP_SCAN_MS = 5_000;

export class EventSourceSupervisor {
  private readonly pollers = new Map<string, MappingPoller>();
  private readonly chains = new Map<string, Promise<void>>();
  private stopped = false;
  private readonly onChange = (uuid: string) => void this.reconcile(uuid);
  private scan: NodeJS.Timeout | null = null;

  constructor(
    private readonly mappings: EventSourceMappingService,
    private readonly deps: PollerDeps,
    /** Who polls what when servers share the store (default: this server polls everything). */
    private readonly ownership: MappingOwnership = soleOwner,
  ) {}

  async start(): Promise<void> {
    this.mappings.events.on("change", this.onChange);
    await this.reconcileAll();
    if (this.ownership !== soleOwner) {
      this.scan = setInterval(() => void this.reconcileAll(), OWNERSHIP_SCAN_MS);
      this.scan.unref();
    }
  }

  private async reconcileAll(): Promise<void> {
    try {
      for (const m of await this.mappings.all()) void this.reconcile(m.uuid);
    } catch (err) {
      this.deps.log(`event source mappings: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The ownership locks went with their connection: stop everything; the next scan takes back what is free. */
  async ownershipLost(): Promise<void> {
    const all = [...this.pollers.values()];
    this.pollers.clear();
    await Promise.allSettled(all.map((p) => p.stop(STOP_GRACE_MS)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.scan) clearInterval(this.scan);
    this.mappings.events.off("change", this.onChange);
    await Promise.allSettled([...this.chains.values()]);
    const all = [...this.pollers.values()];
    this.pollers.clear();
    await Promise.allSettled(all.map((p) => p.stop(STOP_GRACE_MS)));
    await this.ownership.close();
  }

  private async stopPoller(uuid: string, poller: MappingPoller): Promise<void> {
    this.pollers.delete(uuid);
    await poller.stop(STOP_GRACE_MS);
    await this.ownership.release(uuid);
  }

  /** Bring one mapping's poller in line with its row (serialised per mapping). */
  reconcile(uuid: string): Promise<void> {
    const prev = this.chains.get(uuid) ?? Promise.resolve();
    const next = prev
      .then(() => this.apply(uuid))
      .catch((err: unknown) =>
        this.deps.log(`event source mapping ${uuid}: ${err instanceof Error ? err.message : String(err)}`),
      );
    this.chains.set(uuid, next);
    void next.then(() => {
      if (this.chains.get(uuid) === next) this.chains.delete(uuid);
    });
    return next;
  }

  private async apply(uuid: string): Promise<void> {
    if (this.stopped) return;
    let m: EventSourceMapping | null;
    try {
      m = await this.mappings.mapping(uuid);
    } catch {
      m = null;
    }
    const current = this.pollers.get(uuid);
    if (!m || m.state === "Deleting") {
      if (current) await this.stopPoller(uuid, current);
      if (m) await this.mappings.remove(uuid);
      return;
    }
    if (!m.settings.enabled) {
      if (current) await this.stopPoller(uuid, current);
      if (m.state !== "Disabled") await this.mappings.settle(uuid, "Disabled");
      return;
    }
    // Enabled: (re)start the poller when it is missing or its settings changed.
    if (!current || current.mapping.lastModified !== m.lastModified) {
      if (current) {
        this.pollers.delete(uuid);
        await current.stop(STOP_GRACE_MS);
      }
      if (this.stopped) return;
      // Another server may poll it; then this one leaves it alone (and looks again on its next scan).
      if (!(await this.ownership.acquire(uuid))) {
        if (m.state !== "Enabled") await this.mappings.settle(uuid, "Enabled");
        return;
      }
      const poller = new MappingPoller(m, this.deps);
      this.pollers.set(uuid, poller);
      poller.start();
    }
    if (m.state !== "Enabled") await this.mappings.settle(uuid, "Enabled");
  }

  /** Per mapping: state, lag, throughput and this server's counters. */
  async status(): Promise<MappingStatus[]> {
    const all = await this.mappings.all();
    return Promise.all(
      all.map(async (m) => {
        const poller = this.pollers.get(m.uuid);
        const stats: MappingStats = poller?.stats ?? emptyStats();
        const lag = poller ? await poller.lag().catch(() => null) : null;
        return {
          UUID: m.uuid,
          FunctionName: m.qualifier ? `${m.functionName}:${m.qualifier}` : m.functionName,
          EventSource: redact(m.eventSource),
          Source: m.kind,
          Target: (m.settings.queues ?? m.settings.topics ?? [])[0] ?? "",
          State: m.state,
          LastProcessingResult: m.lastProcessingResult,
          ...stats,
          lag,
          recordsPerSecond: poller?.throughput() ?? 0,
        };
      }),
    );
  }
}
