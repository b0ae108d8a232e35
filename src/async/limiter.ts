/**
 * An adaptive in-flight limit (one per function in the async poller): keep only as many events in
 * flight as raise throughput. A window of completed events (at least twice the limit and
 * `minSamples`, over at least `minWindowMs`) yields their median slot time (robust to a few cold
 * starts) and the completions per second. Against the best median seen (the baseline) and the
 * previous window, when the limit was reached in the window (else there is no evidence: hold):
 *
 * - latency flat (median ≤ `flat` × baseline): grow by a quarter (at least 1);
 * - the last change was a growth and throughput grew with it (≥ `growth` ×): grow again;
 * - the last change was a growth that did not pay (throughput flat, latency up): go back;
 * - latency risen (median > `risen` × baseline) at flat throughput: shrink by a fifth (at least 1);
 * - else hold, and every `probeEvery` windows held try one more (kept only if it pays).
 *
 * A CPU-bound handler settles near what the cores serve (beyond it an event only waits longer);
 * one that waits on I/O keeps a flat latency and grows to `max`. Never below 1 (a function is
 * never starved), never above `max` (the poller's slots). The first window is not judged (the
 * first environments' cold starts). A window run at limit 1 resets the baseline (the function's
 * latency without company): a function that became slower shrinks, learns its new latency there
 * and grows again.
 *
 * Slow events (seconds) would take long to fill a window: while events wait for the limit and none
 * of the function's started or finished for `patienceMs`, it grows by half (`stalled`).
 */
export interface LimiterOptions {
  initial: number;
  max: number;
  /** Fewest completions per window (and at least twice the limit). */
  minSamples?: number;
  /** Shortest window. */
  minWindowMs?: number;
  /** Median/baseline at or below which latency is flat. */
  flat?: number;
  /** Median/baseline above which latency has risen. */
  risen?: number;
  /** Throughput ratio to the previous window that counts as growth. */
  growth?: number;
  /** Windows held before trying one more. */
  probeEvery?: number;
}

export interface LimiterWindow {
  limit: number;
  median: number;
  baseline: number;
  throughput: number;
  reached: boolean;
}

export class InFlightLimiter {
  limit: number;
  private readonly max: number;
  private readonly minSamples: number;
  private readonly minWindowMs: number;
  private readonly flat: number;
  private readonly risen: number;
  private readonly growth: number;
  private readonly probeEvery: number;
  private samples: number[] = [];
  private windowStart = -1;
  private reached = false;
  private warmed = false;
  private held = 0;
  private baseline = Number.POSITIVE_INFINITY;
  private previous: { limit: number; throughput: number } | null = null;
  /** When an event of the function last started or finished. */
  private lastActivity = Number.NEGATIVE_INFINITY;
  /** Called with each judged window (tests, debugging). */
  onWindow: ((w: LimiterWindow) => void) | undefined;

  constructor(opts: LimiterOptions) {
    this.max = Math.max(1, Math.floor(opts.max));
    this.limit = Math.min(this.max, Math.max(1, Math.floor(opts.initial)));
    this.minSamples = opts.minSamples ?? 8;
    this.minWindowMs = opts.minWindowMs ?? 100;
    this.flat = opts.flat ?? 1.3;
    this.risen = opts.risen ?? 2;
    this.growth = opts.growth ?? 1.1;
    this.probeEvery = opts.probeEvery ?? 5;
  }

  /** An event started with `inFlight` events of its function in flight (itself included). */
  started(inFlight: number, now: number): void {
    if (this.windowStart < 0) this.windowStart = now;
    if (inFlight >= this.limit) this.reached = true;
    this.lastActivity = now;
  }

  /**
   * Events wait for this limit, and none started or finished for `patienceMs`: the function's events
   * are slow (too slow to fill a window soon), so slots cost little CPU — grow by half (at least 1).
   */
  stalled(now: number, patienceMs: number): boolean {
    if (now - this.lastActivity < patienceMs || this.limit >= this.max) return false;
    this.limit = Math.min(this.max, this.limit + Math.max(1, Math.floor(this.limit / 2)));
    this.lastActivity = now;
    return true;
  }

  /** An event's slot was held `ms` (its invoke); `now` ends it. */
  finished(ms: number, now: number): void {
    if (this.windowStart < 0) this.windowStart = now;
    this.lastActivity = now;
    if (!Number.isFinite(ms)) return;
    this.samples.push(Math.max(0, ms));
    if (this.samples.length < Math.max(this.minSamples, 2 * this.limit)) return;
    const elapsed = now - this.windowStart;
    if (elapsed < this.minWindowMs) return;
    const throughput = (this.samples.length * 1000) / Math.max(1, elapsed);
    const sorted = this.samples.sort((a, b) => a - b);
    const median = Math.max(0.001, sorted[sorted.length >> 1] as number);
    const reached = this.reached;
    this.samples = [];
    this.windowStart = now;
    this.reached = false;
    if (!this.warmed) {
      this.warmed = true;
      return;
    }
    if (median < this.baseline || this.limit === 1) this.baseline = median;
    this.onWindow?.({ limit: this.limit, median, baseline: this.baseline, throughput, reached });
    const ratio = median / this.baseline;
    const prev = this.previous;
    const grewLast = prev !== null && this.limit > prev.limit;
    const paid = prev !== null && throughput >= prev.throughput * this.growth;
    const before = this.limit;
    let next = this.limit;
    if (!reached) {
      // No demand for the limit: no evidence either way.
    } else if (ratio <= this.flat || (grewLast && paid)) {
      next = this.limit + Math.max(1, Math.floor(this.limit / 4));
    } else if (grewLast && prev) {
      next = prev.limit;
    } else if (ratio > this.risen && !paid) {
      next = this.limit - Math.max(1, Math.floor(this.limit / 5));
    } else if (++this.held >= this.probeEvery) {
      next = this.limit + 1;
    }
    this.limit = Math.min(this.max, Math.max(1, next));
    if (this.limit !== before) this.held = 0;
    this.previous = { limit: before, throughput };
  }
}
