/**
 * Provisioned concurrency as Lambda reports it, per version or alias with a provisioned config
 * (the `Resource` dimension, `fn:qualifier`): ProvisionedConcurrentExecutions (the most executions
 * at once running on provisioned concurrency, sampled per interval), ProvisionedConcurrencyUtilization
 * (that divided by the allocated provisioned concurrency), and per invoke whether it ran on
 * provisioned concurrency or spilled over to on-demand. Executions through the resource beyond its
 * allocated count are spillover: the pool hands idle provisioned environments out first, so the
 * first `allocated` executions at once are the provisioned ones.
 *
 * The invoke path pays one map lookup when the function has no provisioned config.
 */

interface Resource {
  allocated: number;
  running: number;
  /** The most running at once since the last take(). */
  peak: number;
}

export interface ProvisionedSample {
  functionName: string;
  /** `fn:qualifier`, CloudWatch's Resource dimension. */
  resource: string;
  allocated: number;
  /** The most executions at once on provisioned concurrency in the interval. */
  executions: number;
}

/** What enter() decided for one invoke: leave() takes it back. */
export interface ProvisionedSlot {
  resource: Resource;
  /** Ran on provisioned concurrency (else: spillover). */
  provisioned: boolean;
}

export class ProvisionedPeaks {
  /** Function name → qualifier → its provisioned resource. */
  private readonly byFunction = new Map<string, Map<string, Resource>>();

  /** Replace the allocated counts (every config: function, qualifier, allocated); keeps what runs. */
  setAllocations(
    configs: ReadonlyArray<{ functionName: string; qualifier: string; allocated: number }>,
  ): void {
    const next = new Map<string, Map<string, Resource>>();
    for (const c of configs) {
      const old = this.byFunction.get(c.functionName)?.get(c.qualifier);
      const r = old ?? { allocated: 0, running: 0, peak: 0 };
      r.allocated = c.allocated;
      let q = next.get(c.functionName);
      if (!q) {
        q = new Map();
        next.set(c.functionName, q);
      }
      q.set(c.qualifier, r);
    }
    this.byFunction.clear();
    for (const [k, v] of next) this.byFunction.set(k, v);
  }

  /** An execution through `fn:qualifier` starts; undefined when that resource has no config. */
  enter(fn: string, qualifier: string | undefined): ProvisionedSlot | undefined {
    if (qualifier === undefined) return undefined;
    const r = this.byFunction.get(fn)?.get(qualifier);
    if (!r) return undefined;
    r.running++;
    if (r.running > r.peak) r.peak = r.running;
    return { resource: r, provisioned: r.running <= r.allocated };
  }

  leave(slot: ProvisionedSlot): void {
    slot.resource.running--;
  }

  /** Each configured resource's peak since the last call (capped at its allocation); counting restarts. */
  take(): ProvisionedSample[] {
    return this.samples((r) => {
      const peak = r.peak;
      r.peak = r.running;
      return peak;
    });
  }

  /** Executions on provisioned concurrency now, per resource (the Prometheus gauges). */
  current(): ProvisionedSample[] {
    return this.samples((r) => r.running);
  }

  /** One sample per configured resource, `pick` saying how many executions (capped at its allocation). */
  private samples(pick: (r: Resource) => number): ProvisionedSample[] {
    const out: ProvisionedSample[] = [];
    for (const [functionName, qualifiers] of this.byFunction) {
      for (const [qualifier, r] of qualifiers) {
        out.push({
          functionName,
          resource: `${functionName}:${qualifier}`,
          allocated: r.allocated,
          executions: Math.min(pick(r), r.allocated),
        });
      }
    }
    return out;
  }
}
