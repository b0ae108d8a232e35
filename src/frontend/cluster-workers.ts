/**
 * The workers of a cluster as one `WorkerClient`: a frontend (or poller)
 * routes each invoke to a worker node over HTTP/2.
 *
 * - **View**: the live workers from the registry, loaded at start, reloaded
 *   when a `lambent_workers` notification arrives, after every reconnect of
 *   the LISTEN connection (notifications sent meanwhile were missed) and once
 *   per heartbeat period (which also deletes workers whose lease ran out).
 * - **Warm view**: every worker announces its environments per function
 *   version (how many, how many idle) on a long-lived HTTP/2 stream
 *   (`GET /environments`: all counts when it opens, then the changes, batched
 *   every 10 ms); the stream is opened again a second after it breaks, and the
 *   worker's counts are forgotten meanwhile. Between announcements the view
 *   follows this frontend's own invokes (one idle fewer when it sends one,
 *   one more when the answer comes back).
 * - **Warm routing**: an invoke goes to the worker announcing the most idle
 *   environments of its version, without a store query, marked `warmOnly`:
 *   when another frontend took that environment first, the worker answers
 *   `WORKER_BUSY` instead of starting one, and the invoke tries the next
 *   worker with an idle one, then placement. The caller never sees it.
 * - **Placement** otherwise (`placement.ts`): spread across zones, pack by
 *   free memory, never on a draining worker.
 * - **Faults**: a worker that cannot be reached is set aside until the
 *   registry drops it. An invoke that never left this node is placed again on
 *   another worker; one that was sent answers `ServiceException` (it may have
 *   run: a sync invoke is never run twice by the platform).
 * - **Provisioned concurrency**: each config's environments are spread across
 *   zones once for the cluster and placed again when their worker goes.
 */

import {
  HEARTBEAT_MS,
  WORKERS_CHANNEL,
  type WorkerRecord,
  type WorkerRegistry,
} from "../cluster/registry.js";
import { LambdaError, ServiceError } from "../errors.js";
import { type Assignment, assignmentKey } from "../protocol/assignment.js";
import type { InvokeInput, InvokeOutcome, ProvisionedProgress } from "../protocol/invoke.js";
import { WORKER_BUSY } from "../protocol/wire.js";
import type { EnvironmentCount, WorkerClient } from "../protocol/worker.js";
import { type Listener, listenPostgres } from "../store/notify.js";
import { type Candidate, place } from "./placement.js";
import { RemoteWorker, WorkerUnreachable } from "./remote-worker.js";

interface Node {
  record: WorkerRecord;
  client: RemoteWorker;
  /** Memory this frontend placed there since the worker's last heartbeat (MB). */
  placedMb: number;
  /** Stops following its environment announcements. */
  unwatch: () => void;
  /** Following again after a break, when set. */
  rewatch: NodeJS.Timeout | null;
}

/** How long after its announcement stream breaks a worker's is opened again. */
const REWATCH_MS = 1000;

interface Warm {
  /** Environments of the version there, as last announced (and adjusted by this frontend's invokes since). */
  environments: number;
  /** Of those, idle ones. */
  idle: number;
}

interface Provisioned {
  assignment: Assignment;
  source: string;
  count: number;
  report: (p: ProvisionedProgress) => void;
  /** worker id → environments asked of it, and its latest progress. */
  shares: Map<string, { count: number; progress?: ProvisionedProgress }>;
}

export class ClusterWorkers implements WorkerClient {
  private readonly nodes = new Map<string, Node>();
  /** Workers that failed a request: left out of routing until the registry no longer lists them. */
  private readonly suspect = new Set<string>();
  /** Assignment key → worker id → what this frontend knows of its environments there. */
  private readonly warm = new Map<string, Map<string, Warm>>();
  private readonly provisioned = new Map<string, Provisioned>();
  private listener: Listener | null = null;
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly databaseUrl: string,
    private readonly secret: string,
    /** How long an environment's Init may take (ms): part of an invoke's deadline. */
    private readonly initTimeoutMs: number,
    private readonly log: (message: string) => void = () => {},
  ) {}

  async start(): Promise<void> {
    this.listener = await listenPostgres(this.databaseUrl, {
      channel: WORKERS_CHANNEL,
      onMessage: () => void this.refresh(),
      onConnect: () => void this.refresh(),
      onError: (err) => this.log(`worker registry notifications: ${String(err)}`),
    });
    await this.refresh();
    this.timer = setInterval(() => {
      this.registry
        .expire()
        .catch(() => [])
        .then(() => this.refresh());
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  /** The workers this frontend routes to now. */
  workers(): WorkerRecord[] {
    return [...this.nodes.values()].map((n) => n.record);
  }

  /** The warm view: each version's environments per worker, as this frontend sees them now. */
  warmView(): Array<{
    function: string;
    version: string;
    worker: string;
    environments: number;
    idle: number;
  }> {
    const out = [];
    for (const [key, perWorker] of this.warm) {
      const [name = "", version = ""] = key.split("\0");
      for (const [worker, w] of perWorker) {
        out.push({ function: name, version, worker, environments: w.environments, idle: w.idle });
      }
    }
    return out;
  }

  /** Reload the view from the registry (coalesced: one reload at a time, one more queued). */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing.then(() => this.refresh());
    this.refreshing = this.load().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async load(): Promise<void> {
    if (this.stopped) return;
    let live: WorkerRecord[];
    try {
      live = await this.registry.live();
    } catch (err) {
      this.log(`worker registry: ${String(err)}`);
      return;
    }
    const seen = new Set<string>();
    for (const r of live) {
      seen.add(r.id);
      const n = this.nodes.get(r.id);
      if (n && n.record.address === r.address) {
        n.record = r;
        n.placedMb = 0;
      } else {
        if (n) this.drop(n);
        const added: Node = {
          record: r,
          client: new RemoteWorker(r.address, this.secret, this.initTimeoutMs),
          placedMb: 0,
          unwatch: () => {},
          rewatch: null,
        };
        this.nodes.set(r.id, added);
        this.watch(added);
      }
    }
    for (const [id, n] of this.nodes) {
      if (seen.has(id)) continue;
      this.nodes.delete(id);
      this.drop(n);
    }
    for (const id of [...this.suspect]) if (!seen.has(id)) this.suspect.delete(id);
    this.replaceProvisioned();
  }

  /** A worker is gone: its environments with it. */
  private forgetWorker(id: string): void {
    for (const perWorker of this.warm.values()) perWorker.delete(id);
  }

  private drop(n: Node): void {
    n.unwatch();
    if (n.rewatch) clearTimeout(n.rewatch);
    n.client.close();
    this.forgetWorker(n.record.id);
  }

  /** Follow a worker's announcements; after a break, forget its counts and follow again shortly. */
  private watch(n: Node): void {
    const id = n.record.id;
    n.unwatch = n.client.watch(
      (counts) => this.announced(id, counts),
      () => {
        if (this.stopped || this.nodes.get(id) !== n) return;
        this.forgetWorker(id);
        n.rewatch = setTimeout(() => {
          n.rewatch = null;
          if (!this.stopped && this.nodes.get(id) === n) this.watch(n);
        }, REWATCH_MS);
        n.rewatch.unref();
      },
    );
  }

  private announced(id: string, counts: EnvironmentCount[]): void {
    for (const c of counts) {
      if (c.environments <= 0) {
        const perWorker = this.warm.get(c.key);
        perWorker?.delete(id);
        if (perWorker?.size === 0) this.warm.delete(c.key);
        continue;
      }
      const w = this.entry(c.key, id);
      w.environments = c.environments;
      w.idle = c.idle;
    }
  }

  /** The view's entry for a version on a worker (made empty when there is none). */
  private entry(key: string, id: string): Warm {
    let perWorker = this.warm.get(key);
    if (!perWorker) {
      perWorker = new Map();
      this.warm.set(key, perWorker);
    }
    let w = perWorker.get(id);
    if (!w) {
      w = { environments: 0, idle: 0 };
      perWorker.set(id, w);
    }
    return w;
  }

  private usable(): Node[] {
    return [...this.nodes.values()].filter((n) => !n.record.draining && !this.suspect.has(n.record.id));
  }

  private candidates(key: string, exclude: ReadonlySet<string>): Candidate[] {
    const perWorker = this.warm.get(key);
    return this.usable()
      .filter((n) => !exclude.has(n.record.id))
      .map((n) => ({
        id: n.record.id,
        zone: n.record.zone,
        freeMemoryMb: n.record.memoryMb - n.record.usedMemoryMb - n.placedMb,
        environments: perWorker?.get(n.record.id)?.environments ?? 0,
      }));
  }

  /** The worker announcing the most idle environments of this version (none of `exclude` or `busy`). */
  private warmWorker(key: string, exclude: ReadonlySet<string>, busy: ReadonlySet<string>): Node | undefined {
    const perWorker = this.warm.get(key);
    if (!perWorker) return undefined;
    let best: Node | undefined;
    let bestIdle = 0;
    for (const [id, w] of perWorker) {
      const n = this.nodes.get(id);
      if (!n || n.record.draining || exclude.has(id) || busy.has(id) || this.suspect.has(id)) continue;
      if (w.idle > bestIdle) {
        best = n;
        bestIdle = w.idle;
      }
    }
    return best;
  }

  /** The worker for a new environment of this version. */
  private placement(a: Assignment, exclude: ReadonlySet<string>): Node | undefined {
    const key = assignmentKey(a);
    const candidates = this.candidates(key, exclude);
    const chosen =
      place(candidates, a.config.MemorySize) ??
      // Nobody has the memory by our view (it may be stale): the worker with the most free memory decides.
      [...candidates].sort((x, y) => y.freeMemoryMb - x.freeMemoryMb)[0];
    if (!chosen) return undefined;
    const n = this.nodes.get(chosen.id) as Node;
    n.placedMb += a.config.MemorySize;
    return n;
  }

  async invoke(a: Assignment, input: InvokeInput): Promise<InvokeOutcome> {
    const key = assignmentKey(a);
    const tried = new Set<string>();
    /** Workers that had no idle environment after all. */
    const busy = new Set<string>();
    for (;;) {
      const warm = this.warmWorker(key, tried, busy);
      const node = warm ?? this.placement(a, tried);
      if (!node) {
        throw ServiceError(
          tried.size > 0
            ? "No worker could take the invoke: every worker tried was unreachable."
            : "No worker is available in the cluster.",
        );
      }
      const id = node.record.id;
      const w = this.entry(key, id);
      if (warm) w.idle = Math.max(0, w.idle - 1);
      else w.environments++;
      try {
        const outcome = await node.client.invoke(a, warm ? { ...input, warmOnly: true } : input);
        // Until the worker says otherwise: the environment is idle again, or gone.
        const now = this.entry(key, id);
        if (outcome.fatal) now.environments = Math.max(0, now.environments - 1);
        else {
          now.environments = Math.max(now.environments, 1);
          now.idle = Math.min(now.idle + 1, now.environments);
        }
        return outcome;
      } catch (err) {
        if (err instanceof LambdaError && err.type === WORKER_BUSY) {
          // Another frontend took the idle environment first: try elsewhere (this worker only by placement).
          this.entry(key, id).idle = 0;
          busy.add(id);
          continue;
        }
        tried.add(id);
        if (err instanceof LambdaError) {
          // The worker refused (its scaling rate): no environment was started for this invoke.
          if (!warm) this.entry(key, id).environments = Math.max(0, this.entry(key, id).environments - 1);
          throw err;
        }
        if (!(err instanceof WorkerUnreachable)) throw err;
        this.suspect.add(id);
        this.forgetWorker(id);
        this.log(`${err.message}; set aside until the registry drops it`);
        void this.refresh();
        if (err.sent) {
          throw ServiceError(
            `The worker running this invoke stopped answering (${node.record.address}); the event may have run.`,
          );
        }
      }
    }
  }

  provision(a: Assignment, source: string, count: number, report: (p: ProvisionedProgress) => void): void {
    const key = `${assignmentKey(a)}\0${source}`;
    const prev = this.provisioned.get(key);
    if (prev) {
      for (const id of prev.shares.keys()) this.nodes.get(id)?.client.provision(a, source, 0, () => {});
      this.provisioned.delete(key);
    }
    if (count <= 0) return;
    const p: Provisioned = { assignment: a, source, count, report, shares: new Map() };
    this.provisioned.set(key, p);
    this.placeProvisioned(p);
  }

  /** Give each of a config's missing environments a worker (spread across zones), and ask those workers. */
  private placeProvisioned(p: Provisioned): void {
    let placed = 0;
    for (const s of p.shares.values()) placed += s.count;
    const added = new Set<string>();
    const counts = new Map<string, number>();
    for (const [id, s] of p.shares) counts.set(id, s.count);
    for (; placed < p.count; placed++) {
      const candidates = this.usable().map((n) => ({
        id: n.record.id,
        zone: n.record.zone,
        freeMemoryMb: n.record.memoryMb - n.record.usedMemoryMb - n.placedMb,
        environments: counts.get(n.record.id) ?? 0,
      }));
      const c = place(candidates, p.assignment.config.MemorySize);
      if (!c) break;
      (this.nodes.get(c.id) as Node).placedMb += p.assignment.config.MemorySize;
      counts.set(c.id, (counts.get(c.id) ?? 0) + 1);
      added.add(c.id);
    }
    for (const id of added) {
      const share = { count: counts.get(id) ?? 0 };
      p.shares.set(id, share);
      this.nodes.get(id)?.client.provision(p.assignment, p.source, share.count, (progress) => {
        if (p.shares.get(id) !== share) return;
        (share as { progress?: ProvisionedProgress }).progress = progress;
        this.reportProvisioned(p);
      });
    }
    this.reportProvisioned(p);
  }

  private reportProvisioned(p: Provisioned): void {
    let allocated = 0;
    let available = 0;
    let failed: ProvisionedProgress | undefined;
    for (const s of p.shares.values()) {
      allocated += s.progress?.allocated ?? 0;
      available += s.progress?.available ?? 0;
      if (s.progress?.status === "FAILED") failed = s.progress;
    }
    p.report({
      allocated,
      available,
      status: available >= p.count ? "READY" : failed ? "FAILED" : "IN_PROGRESS",
      ...(failed?.reason !== undefined ? { reason: failed.reason } : {}),
    });
  }

  /** Provisioned environments on workers that left the cluster are placed again on the others. */
  private replaceProvisioned(): void {
    for (const p of this.provisioned.values()) {
      let lost = false;
      for (const id of [...p.shares.keys()]) {
        if (this.nodes.has(id) && !this.suspect.has(id)) continue;
        p.shares.delete(id);
        lost = true;
      }
      const placed = [...p.shares.values()].reduce((n, s) => n + s.count, 0);
      if (lost || placed < p.count) this.placeProvisioned(p);
    }
  }

  /** Retire messages from every frontend reach the workers in any order: the current revision is named. */
  readonly retiresLate = true;

  retire(name: string, version?: string, keepRevision?: string): void {
    for (const n of this.nodes.values()) n.client.retire(name, version, keepRevision);
    for (const [key, perWorker] of this.warm) {
      const [n, v, r] = key.split("\0");
      if (n === name && (version === undefined || v === version) && r !== keepRevision) {
        perWorker.clear();
        this.warm.delete(key);
      }
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.listener?.close();
    for (const n of this.nodes.values()) this.drop(n);
    this.nodes.clear();
  }
}
