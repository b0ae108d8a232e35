/**
 * The poller: claims due events up to its concurrency and hands each to a
 * handler. It never polls in a tight loop: it claims when woken (an enqueue
 * on this server, a NOTIFY from another, a finished event), else sleeps until
 * the next event falls due, and at most `sweepMs` (to pick up events whose
 * lease expired on a server that died). Leases it holds are extended by a
 * heartbeat while their events run.
 */
import type { AsyncQueue, QueuedEvent } from "./event-queue.js";

export interface PollerOptions {
  concurrency: number;
  /** Longest sleep between claims (the expired-lease sweep). */
  sweepMs: number;
  /** How often held leases are extended. */
  heartbeatMs: number;
  onError: (err: unknown) => void;
}

export class AsyncPoller {
  private readonly running = new Map<string, Promise<void>>();
  private claiming = false;
  private current: Promise<void> = Promise.resolve();
  private again = false;
  private stopped = true;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(
    private readonly queue: AsyncQueue,
    private readonly handle: (ev: QueuedEvent) => Promise<void>,
    private readonly opts: PollerOptions,
  ) {}

  get inFlight(): number {
    return this.running.size;
  }

  start(): void {
    this.stopped = false;
    this.heartbeat = setInterval(() => {
      if (this.running.size > 0) this.queue.heartbeat().catch(this.opts.onError);
    }, this.opts.heartbeatMs);
    this.heartbeat.unref();
    this.wake();
  }

  /** Claim now (coalesced: one claim round at a time). */
  wake(): void {
    if (this.stopped) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    this.claiming = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.current = this.cycle();
  }

  private async cycle(): Promise<void> {
    let sleepMs: number | null = null;
    try {
      // Claim in batches: while plenty of events run, a finishing one need not cost a claim query of
      // its own; the next finishes (or the last slots freeing up) wake us.
      const batch = Math.max(1, Math.ceil(this.opts.concurrency / 4));
      let drained = false;
      do {
        this.again = false;
        const free = this.opts.concurrency - this.running.size;
        if (free <= 0 || (free < batch && this.running.size > 0)) break;
        const events = await this.queue.claim(free);
        if (this.stopped) {
          await this.queue.release({ ids: events.map((e) => e.id) });
          return;
        }
        for (const ev of events) this.run(ev);
        if (events.length === free) this.again = true;
        else drained = true;
      } while (this.again && !this.stopped);
      if (!this.stopped && drained && this.running.size < this.opts.concurrency) {
        const due = await this.queue.nextDue();
        const wait = due === undefined ? this.opts.sweepMs : due - Date.now();
        // Due now but not claimed (another server holds the rows' locks): look again shortly.
        sleepMs = Math.min(this.opts.sweepMs, Math.max(wait, due !== undefined && wait <= 0 ? 50 : 0));
      }
    } catch (err) {
      this.opts.onError(err);
      sleepMs = 1000;
    } finally {
      this.claiming = false;
    }
    if (this.stopped) return;
    if (this.again) this.wake();
    else if (sleepMs !== null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.wake();
      }, sleepMs);
      this.timer.unref();
    }
  }

  private run(ev: QueuedEvent): void {
    const p = this.handle(ev)
      .catch(this.opts.onError)
      .finally(() => {
        this.running.delete(ev.id);
        this.wake();
      });
    this.running.set(ev.id, p);
  }

  /**
   * Stop claiming; wait up to `graceMs` for running events, then hand the
   * rest back to the queue (their late outcomes are ignored: the lease is gone).
   */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.current;
    if (this.running.size > 0) {
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.running.values()]),
        new Promise((r) => {
          timeout = setTimeout(r, graceMs);
        }),
      ]);
      clearTimeout(timeout);
    }
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    if (this.running.size > 0) await this.queue.release({ ids: [...this.running.keys()] });
  }
}
