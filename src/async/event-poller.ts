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
 *
 * A backlog drains without waiting on the store: claims take up to `prefetch` events more than
 * the free slots (leased to this server like the running ones, heartbeat included) into a ready
 * list that a freed slot starts from at once, and a slot is freed as soon as its event's invoke
 * (or delivery) is over — the outcome's commit follows in the next group commit without holding
 * it. Events left waiting in the ready list for a whole heartbeat (slow runs hold every slot) are
 * handed back to the queue for other servers.
 */
import type { AsyncQueue, QueuedEvent } from "./event-queue.js";

export interface PollerOptions {
  concurrency: number;
  /** Events claimed ahead of free slots (0: claim only for free slots). */
  prefetch: number;
  /** Longest sleep between claims (the expired-lease sweep). */
  sweepMs: number;
  /** How often held leases are extended. */
  heartbeatMs: number;
  onError: (err: unknown) => void;
}

/**
 * Runs one event; calls `slotFree` once the part that needs a slot (the invoke or the delivery) is
 * over, before committing the outcome (a handler that never calls it frees its slot when it
 * resolves).
 */
export type EventHandler = (ev: QueuedEvent, slotFree: () => void) => Promise<void>;

export class AsyncPoller {
  /** Every event handed to the handler and not finished yet (its lease is this server's). */
  private readonly running = new Map<string, Promise<void>>();
  /** Slots taken: running events that have not freed theirs. */
  private busy = 0;
  /** Claimed ahead (leased to this server), in order, waiting for a slot. */
  private ready: QueuedEvent[] = [];
  /** Ready events already waiting at the last heartbeat: handed back at the next if still waiting. */
  private stale = new Set<string>();
  /** Claims take events ahead of free slots; off after a hand-back, until a slot frees. */
  private prefetching = true;
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
    private readonly handle: EventHandler,
    private readonly opts: PollerOptions,
  ) {}

  get inFlight(): number {
    return this.running.size;
  }

  private get free(): number {
    return this.opts.concurrency - this.busy - this.reserved;
  }

  /**
   * Promise a slot to an event about to be enqueued on this server: true when it may be stored
   * leased to this server and adopted (no backlog to keep order with, a slot free). Every true
   * must be followed by adopt() or unreserve().
   */
  reserve(): boolean {
    if (this.stopped || this.backlog || this.ready.length > 0 || this.free <= 0) return false;
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
    this.heartbeat = setInterval(() => this.beat(), this.opts.heartbeatMs);
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
      // Claim in batches: while plenty of events run or wait ready, a finishing one need not cost a
      // claim query of its own; the next finishes (or the last slots freeing up) wake us.
      const batch = Math.max(1, Math.ceil(this.opts.concurrency / 4));
      let drained = false;
      do {
        this.again = false;
        this.startReady();
        const want = this.free + (this.prefetching ? this.opts.prefetch : 0) - this.ready.length;
        if (want <= 0 || (want < batch && this.busy > 0)) break;
        const events = await this.queue.claim(want);
        if (this.stopped) {
          await this.queue.release({ ids: events.map((e) => e.id) });
          return;
        }
        this.ready.push(...events);
        this.startReady();
        if (events.length === want) this.again = true;
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

  /** Start ready events while slots are free. */
  private startReady(): void {
    while (!this.stopped && this.free > 0 && this.ready.length > 0) {
      const ev = this.ready.shift() as QueuedEvent;
      this.stale.delete(ev.id);
      this.run(ev);
    }
  }

  /**
   * Extend the leases held (running and ready events); hand back the ready events that already
   * waited through the last beat (every slot is held by longer runs: another server may run them).
   */
  private beat(): void {
    const back = this.ready.filter((e) => this.stale.has(e.id));
    if (back.length > 0) {
      this.ready = this.ready.filter((e) => !this.stale.has(e.id));
      // Not claimed again ahead by this server until one of its slots frees; then claimed again
      // (they are due events in the store: a freed slot must look for them, not the 30 s sweep).
      this.prefetching = false;
      this.backlog = true;
      this.queue.release({ ids: back.map((e) => e.id), notify: true }).catch(this.opts.onError);
    }
    this.stale = new Set(this.ready.map((e) => e.id));
    if (this.running.size > 0 || this.ready.length > 0) this.queue.heartbeat().catch(this.opts.onError);
  }

  private run(ev: QueuedEvent): void {
    this.busy++;
    let holds = true;
    const slotFree = () => {
      if (!holds) return;
      holds = false;
      this.busy--;
      this.prefetching = true;
      this.startReady();
      // A freed slot costs a claim only while events wait in the store.
      if (this.backlog) this.kick();
    };
    const p = this.handle(ev, slotFree)
      .catch(this.opts.onError)
      .finally(() => {
        this.running.delete(ev.id);
        slotFree();
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
    const waiting = this.ready.splice(0);
    if (waiting.length > 0) await this.queue.release({ ids: waiting.map((e) => e.id) });
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
