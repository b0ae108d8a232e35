/**
 * The poller: claims due events up to its concurrency and hands each to a
 * handler. It never polls in a tight loop: it claims when woken (events queued
 * on this server, a NOTIFY from another, a due time or the sweep), else sleeps
 * until the next event falls due, and at most `sweepMs` (to pick up events
 * whose lease expired on a server that died). Leases it holds are extended by
 * a heartbeat while their events run.
 *
 * The hot path skips the claim: while no claim is owed (the last one found
 * fewer due events than it asked for, and nothing woke the poller since), an
 * event accepted on this server reserves a free slot, is stored already
 * leased to this server in its enqueue's transaction, and is handed over
 * (`adopt`) once that commits — one insert and one delete per event, both
 * group-committed, and no claim query or poll between the 202 and the run.
 * Once the slots are full or events wait in the store, new events are queued
 * and claimed in order.
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
  /** Slots promised to events being enqueued on this server, to be adopted once committed. */
  private reserved = 0;
  /**
   * The store may hold due events this poller has not claimed: set by wake(), cleared by a
   * claim that found fewer than it asked for (with no wake meanwhile).
   */
  private backlog = true;
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

  private get free(): number {
    return this.opts.concurrency - this.running.size - this.reserved;
  }

  /**
   * Promise a slot to an event about to be enqueued on this server: true when it may be stored
   * leased to this server and adopted (no backlog to keep order with, a slot free). Every true
   * must be followed by adopt() or unreserve().
   */
  reserve(): boolean {
    if (this.stopped || this.backlog || this.free <= 0) return false;
    this.reserved++;
    return true;
  }

  /** The reserved event's enqueue failed: give the slot back. */
  unreserve(): void {
    this.reserved--;
  }

  /** Run a reserved event, now committed and leased to this server. */
  adopt(ev: QueuedEvent): void {
    this.reserved--;
    if (this.stopped) {
      this.queue.release({ ids: [ev.id] }).catch(this.opts.onError);
      return;
    }
    this.run(ev);
  }

  start(): void {
    this.stopped = false;
    this.heartbeat = setInterval(() => {
      if (this.running.size > 0) this.queue.heartbeat().catch(this.opts.onError);
    }, this.opts.heartbeatMs);
    this.heartbeat.unref();
    this.wake();
  }

  /** Due events may be waiting in the store: claim now (coalesced: one claim round at a time). */
  wake(): void {
    this.backlog = true;
    this.kick();
  }

  private kick(): void {
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
        const free = this.free;
        if (free <= 0 || (free < batch && this.running.size > 0)) break;
        const events = await this.queue.claim(free);
        if (this.stopped) {
          await this.queue.release({ ids: events.map((e) => e.id) });
          return;
        }
        for (const ev of events) this.run(ev);
        if (events.length === free) this.again = true;
        else if (!this.again) {
          // Nothing due is left unclaimed (a wake during the claim loops once more instead).
          drained = true;
          this.backlog = false;
        }
      } while (this.again && !this.stopped);
      if (!this.stopped && drained) {
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
    if (this.again) this.kick();
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
        // A freed slot costs a claim only while events wait in the store.
        if (this.backlog) this.kick();
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
