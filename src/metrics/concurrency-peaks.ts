/**
 * ConcurrentExecutions as Lambda reports it: the most executions running at once, sampled per
 * interval — in the account, in its unreserved pool and per function. The invoke path calls
 * enter/leave around each run (a few map operations); the recorder's sampler calls take().
 */
export interface Peaks {
  total: number;
  unreserved: number;
  perFunction: Map<string, number>;
}

export class ConcurrencyPeaks {
  private running = 0;
  private unreservedRunning = 0;
  private readonly perFunction = new Map<string, number>();
  private peaks: Peaks = { total: 0, unreserved: 0, perFunction: new Map() };

  /** One execution starts; `unreserved` when it counts against the account's unreserved pool. */
  enter(name: string, unreserved: boolean): void {
    const mine = (this.perFunction.get(name) ?? 0) + 1;
    this.perFunction.set(name, mine);
    if (++this.running > this.peaks.total) this.peaks.total = this.running;
    if (unreserved && ++this.unreservedRunning > this.peaks.unreserved) {
      this.peaks.unreserved = this.unreservedRunning;
    }
    if (mine > (this.peaks.perFunction.get(name) ?? 0)) this.peaks.perFunction.set(name, mine);
  }

  leave(name: string, unreserved: boolean): void {
    const mine = (this.perFunction.get(name) ?? 1) - 1;
    if (mine === 0) this.perFunction.delete(name);
    else this.perFunction.set(name, mine);
    this.running--;
    if (unreserved) this.unreservedRunning--;
  }

  /** What runs now (the Prometheus gauges). */
  current(): Peaks {
    return {
      total: this.running,
      unreserved: this.unreservedRunning,
      perFunction: new Map(this.perFunction),
    };
  }

  /** The peaks since the last call; counting starts again from what runs now. */
  take(): Peaks {
    const out = this.peaks;
    this.peaks = {
      total: this.running,
      unreserved: this.unreservedRunning,
      perFunction: new Map(this.perFunction),
    };
    return out;
  }
}
