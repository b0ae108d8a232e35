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
 *
 * With `adaptive`, each function (deliveries apart) has its own in-flight limit under the slots,
 * learned from its events' slot times and completions (limiter.ts): a CPU-bound handler keeps a few
 * events in flight — more would only queue for the same cores and spread its events over cold
 * environments — and one that waits on I/O grows to every slot. A ready event whose function is at
 * its limit waits; later ready events of other functions start past it.
 */
import type { AsyncQueue, QueuedEvent } from "./event-queue.js";
import { InFlightLimiter } from "./limiter.js";

export interface PollerOptions {
  concurrency: number;
  /** Events claimed ahead of free slots (0: claim only for free slots). */
  prefetch: number;
  /** Longest sleep between claims (the expired-lease sweep). */
  sweepMs: number;
  /** How often held leases are extended. */
  heartbeatMs: number;
  /** Learn an in-flight limit per function (limiter.ts), starting at `initial`; else every slot. */
  adaptive?: {
    initial: number;
    /** Events waiting for a limit that nothing moved for this long grow it (by half). */
    patienceMs: number;
  };
  onError: (err: unknown) => void;
}

/** A function's events in flight (running or reserved) and its learned limit. */
interface Flight {
  limiter: InFlightLimiter;
  inFlight: number;
  /** No event in flight at the last heartbeat: dropped at the next if still none. */
  idle: boolean;
}

function flightKey(kind: string, functionName: string): string {
  return `${kind}\0${functionName}`;
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
  private readonly flights = new Map<string, Flight>();
  /** Armed while ready events wait for their function's limit with slots free. */
  private patience: NodeJS.Timeout | null = null;

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

  /** The function's flight (adaptive only). */
  private flight(key: string): Flight | undefined {
    const a = this.opts.adaptive;
    if (!a) return undefined;
    let f = this.flights.get(key);
    if (!f) {
      f = {
        limiter: new InFlightLimiter({ initial: a.initial, max: this.opts.concurrency }),
        inFlight: 0,
        idle: false,
      };
      this.flights.set(key, f);
    }
    return f;
  }

  /** The function may start one more event (always, unless adaptive). */
  private mayStart(key: string): boolean {
    const f = this.opts.adaptive ? this.flights.get(key) : undefined;
    return !f || f.inFlight < f.limiter.limit;
  }

  /** In-flight limits per function in force (adaptive; for status and tests). */
  limits(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, f] of this.flights) out.set(key.slice(key.indexOf("\0") + 1), f.limiter.limit);
    return out;
  }

  /**
   * Promise a slot to an event about to be enqueued on this server: true when it may be stored
   * leased to this server and adopted (no backlog to keep order with, a slot free). Every true
   * must be followed by adopt() or unreserve().
   */
  reserve(functionName: string): boolean {
    if (this.stopped || this.backlog || this.ready.length > 0 || this.free <= 0) return false;
    const key = flightKey("invoke", functionName);
    if (!this.mayStart(key)) return false;
    this.reserved++;
    const f = this.flight(key);
    if (f) f.inFlight++;
    return true;
  }

  /** The reserved event's enqueue failed: give the slot back. */
  unreserve(functionName: string): void {
    this.reserved--;
    const f = this.flights.get(flightKey("invoke", functionName));
    if (f) f.inFlight--;
  }

  /** Run a reserved event, now committed and leased to this server. */
  adopt(ev: QueuedEvent): void {
    this.reserved--;
    const f = this.flights.get(flightKey(ev.kind, ev.function_name));
    if (f) f.inFlight--;
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
      const batch = Math.max(1, Math.ceil((this.opts.concurrency + this.opts.prefetch) / 4));
      const readyCap = this.opts.concurrency + this.opts.prefetch;
      let drained = false;
      do {
        this.again = false;
        this.startReady();
        let want = this.free + (this.prefetching ? this.opts.prefetch : 0) - this.ready.length;
        // Slots free but every ready event's function at its limit: claim a batch more anyway (up to
        // a bound), so another function's new events are not held back behind them (fair claims
        // give it its share).
        if (this.free > 0 && this.ready.length > 0 && this.prefetching && this.ready.length < readyCap)
          want = Math.max(want, Math.min(this.free, batch, readyCap - this.ready.length));
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

  /**
   * Start ready events while slots are free: in order; adaptive, past those whose function is at
   * its limit, the least busy function first.
   */
  private startReady(): void {
    if (!this.opts.adaptive) {
      while (!this.stopped && this.free > 0 && this.ready.length > 0) {
        const ev = this.ready.shift() as QueuedEvent;
        this.stale.delete(ev.id);
        this.run(ev);
      }
      return;
    }
    let limited = false;
    while (!this.stopped && this.free > 0 && this.ready.length > 0) {
      // The ready event of the function with the fewest events in flight (the oldest of its own),
      // among those under their limit: a function just claimed does not wait behind another's.
      let best = -1;
      let fewest = Number.POSITIVE_INFINITY;
      for (let i = 0; i < this.ready.length; i++) {
        const ev = this.ready[i] as QueuedEvent;
        const f = this.flights.get(flightKey(ev.kind, ev.function_name));
        const inFlight = f?.inFlight ?? 0;
        if (f && inFlight >= f.limiter.limit) limited = true;
        else if (inFlight < fewest) {
          fewest = inFlight;
          best = i;
          if (inFlight === 0) break;
        }
      }
      if (best < 0) break;
      const ev = this.ready.splice(best, 1)[0] as QueuedEvent;
      this.stale.delete(ev.id);
      this.run(ev);
    }
    if (limited && !this.patience && this.opts.adaptive) {
      const { patienceMs } = this.opts.adaptive;
      this.patience = setTimeout(() => {
        this.patience = null;
        const now = performance.now();
        for (const ev of this.ready)
          this.flights.get(flightKey(ev.kind, ev.function_name))?.limiter.stalled(now, patienceMs);
        this.startReady();
      }, patienceMs);
      this.patience.unref();
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
      // (they are due events in the store: a freed slot must look for them).
      this.prefetching = false;
      this.backlog = true;
      this.queue.release({ ids: back.map((e) => e.id), notify: true }).catch(this.opts.onError);
    }
    this.stale = new Set(this.ready.map((e) => e.id));
    for (const [key, f] of this.flights) {
      if (f.inFlight > 0) f.idle = false;
      else if (f.idle) this.flights.delete(key);
      else f.idle = true;
    }
    if (this.running.size > 0 || this.ready.length > 0) this.queue.heartbeat().catch(this.opts.onError);
  }

  private run(ev: QueuedEvent): void {
    this.busy++;
    const f = this.flight(flightKey(ev.kind, ev.function_name));
    const t0 = f ? performance.now() : 0;
    if (f) {
      f.inFlight++;
      f.limiter.started(f.inFlight, t0);
    }
    let holds = true;
    const slotFree = () => {
      if (!holds) return;
      holds = false;
      this.busy--;
      if (f) {
        f.inFlight--;
        const now = performance.now();
        f.limiter.finished(now - t0, now);
      }
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
    if (this.patience) clearTimeout(this.patience);
    this.patience = null;
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
