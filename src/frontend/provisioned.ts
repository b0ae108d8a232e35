/**
 * Placement of provisioned concurrency: each config (on a version or an
 * alias) becomes provisioned environments of the versions it routes to, kept
 * in place as configs, aliases and functions change; the worker's progress is
 * recorded as the config's status.
 */
import type { AliasService } from "../control/aliases.js";
import { isAliasQualifier } from "../control/aliases.js";
import type { ConcurrencyService, ProvisionedConfig } from "../control/concurrency.js";
import type { FunctionService, FunctionVersion } from "../control/functions.js";
import type { Assignment } from "../protocol/assignment.js";
import type { ProvisionedProgress } from "../protocol/invoke.js";
import type { WorkerClient } from "../protocol/worker.js";
import type { Assignments } from "./assignment.js";

interface Placed {
  fn: Assignment;
  count: number;
}

export class ProvisionedPlacement {
  /** Config key → where its environments are. */
  private readonly placed = new Map<string, Placed[]>();
  private started = false;
  private stopped = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly functions: FunctionService,
    private readonly aliases: AliasService,
    private readonly concurrency: ConcurrencyService,
    private readonly worker: WorkerClient,
    private readonly assignments: Assignments,
    private readonly region: string,
  ) {}

  async start(): Promise<void> {
    this.started = true;
    this.concurrency.events.on("provisioned", (c) => {
      if ("deleted" in c) this.serially(() => this.remove(key(c.functionName, c.qualifier)));
      else this.serially(() => this.apply(c));
    });
    this.aliases.events.on("change", (name) => this.serially(() => this.reapplyFunction(name)));
    this.functions.events.on("change", ({ name, version }) => {
      if (version === undefined || version !== "$LATEST") this.serially(() => this.reapplyFunction(name));
    });
    for (const c of await this.concurrency.allProvisioned()) await this.apply(c);
  }

  stop(): void {
    this.stopped = true;
  }

  /**
   * Configs, aliases or versions may have changed unseen (the change feed reconnected): every config
   * is placed again as the store has it now (unchanged ones stay as they are), and the gone released.
   */
  async resync(): Promise<void> {
    if (!this.started || this.stopped) return;
    const configs = await this.concurrency.allProvisioned();
    this.serially(async () => {
      const keep = new Set(configs.map((c) => key(c.functionName, c.qualifier)));
      for (const k of [...this.placed.keys()]) if (!keep.has(k)) await this.remove(k);
      for (const c of configs) await this.apply(c, true);
    });
  }

  private serially(job: () => Promise<void>): void {
    this.chain = this.chain.then(job).catch((err: unknown) => {
      console.error("lambent: provisioned concurrency placement failed:", err);
    });
  }

  private async reapplyFunction(name: string): Promise<void> {
    const configs = await this.concurrency
      .listProvisioned(name, this.region)
      .catch(() => [] as ProvisionedConfig[]);
    const keep = new Set(configs.map((c) => key(c.functionName, c.qualifier)));
    for (const k of [...this.placed.keys()])
      if (k.startsWith(`${name}\0`) && !keep.has(k)) await this.remove(k);
    // An alias or version change elsewhere: configs it does not move keep their environments.
    for (const c of configs) await this.apply(c, true);
  }

  /** The versions a config routes to, and how many environments each gets. */
  private async targets(c: ProvisionedConfig): Promise<Placed[]> {
    const placed: Placed[] = [];
    for (const t of await this.versions(c))
      placed.push({ fn: await this.assignments.of(t.fn), count: t.count });
    return placed;
  }

  private async versions(c: ProvisionedConfig): Promise<Array<{ fn: FunctionVersion; count: number }>> {
    if (!isAliasQualifier(c.qualifier)) {
      const fn = await this.functions.getVersion(
        { name: c.functionName, qualifier: c.qualifier },
        this.region,
      );
      return [{ fn, count: c.requested }];
    }
    const alias = await this.aliases.get(c.functionName, c.qualifier, this.region);
    const out: Array<{ fn: FunctionVersion; count: number }> = [];
    let rest = c.requested;
    for (const [version, weight] of Object.entries(alias.weights)) {
      const n = Math.round(c.requested * weight);
      if (n > 0)
        out.push({
          fn: await this.functions.getVersion({ name: c.functionName, qualifier: version }, this.region),
          count: n,
        });
      rest -= n;
    }
    if (rest > 0) {
      out.push({
        fn: await this.functions.getVersion(
          { name: c.functionName, qualifier: alias.functionVersion },
          this.region,
        ),
        count: rest,
      });
    }
    return out;
  }

  /** `keepUnchanged`: a config whose versions, revisions and counts are as placed is left alone. */
  private async apply(c: ProvisionedConfig, keepUnchanged = false): Promise<void> {
    if (this.stopped) return;
    const k = key(c.functionName, c.qualifier);
    const prev = this.placed.get(k) ?? [];
    let targets: Placed[];
    try {
      targets = await this.targets(c);
    } catch (err) {
      await this.remove(k);
      await this.concurrency.reportProvisioned(c.functionName, c.qualifier, {
        allocated: 0,
        available: 0,
        status: "FAILED",
        reason: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    if (keepUnchanged && samePlacement(prev, targets)) return;
    this.placed.set(k, targets);
    const progress = new Map<string, ProvisionedProgress>();
    for (const t of targets) {
      this.worker.provision(t.fn, k, t.count, (p) => {
        if (this.placed.get(k) !== targets) return;
        progress.set(t.fn.version, p);
        if (progress.size < targets.length) return;
        const all = [...progress.values()];
        const failed = all.find((x) => x.status === "FAILED");
        const status = failed ? "FAILED" : all.every((x) => x.status === "READY") ? "READY" : "IN_PROGRESS";
        void this.concurrency
          .reportProvisioned(c.functionName, c.qualifier, {
            allocated: all.reduce((a, x) => a + x.allocated, 0),
            available: all.reduce((a, x) => a + x.available, 0),
            status,
            ...(failed?.reason ? { reason: failed.reason } : {}),
          })
          .catch(() => {});
      });
    }
    for (const p of prev) {
      if (!targets.some((t) => t.fn.version === p.fn.version && t.fn.revisionId === p.fn.revisionId)) {
        this.worker.provision(p.fn, k, 0, () => {});
      }
    }
  }

  private async remove(k: string): Promise<void> {
    const prev = this.placed.get(k);
    if (!prev) return;
    this.placed.delete(k);
    for (const t of prev) this.worker.provision(t.fn, k, 0, () => {});
  }
}

function samePlacement(a: Placed[], b: Placed[]): boolean {
  return (
    a.length === b.length &&
    a.every((p, i) => {
      const q = b[i] as Placed;
      return p.fn.version === q.fn.version && p.fn.revisionId === q.fn.revisionId && p.count === q.count;
    })
  );
}

function key(fn: string, qualifier: string): string {
  return `${fn}\0${qualifier}`;
}
