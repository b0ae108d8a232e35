/**
 * How many environments of this worker start at once. A start is mostly CPU (a runtime process
 * boots: ~100 ms of CPU for Node.js), so 100 invokes from zero on 2 cores that all start at once
 * share the CPU 100 ways: every Init takes as long as all of them together and runs into its
 * timeout. Through the gate, a few start at a time, each in about its own time, and an invoke
 * still waiting for its turn takes an environment of its function that has meanwhile finished
 * its event instead (see FunctionPool).
 *
 * Turns go round the functions waiting, one each in turn, so one function's burst of cold starts
 * does not hold another's single start behind all of it; stem-cell refills (no function) get a
 * turn only when no function is waiting.
 *
 * A turn is held for the runtime's start, not for a long Init of the function's own: after
 * HOLD_MS it is handed on even if Init goes on (such an Init is waiting, mostly, not computing).
 * 1 s was too short: under load 15-20 bwrap starts took longer than that, the gate handed on a turn
 * a second, and 100 from zero ran into Init timeouts again (12-36 of 100; none at 3 s).
 *
 * Adopting a booted stem cell is not a runtime's start (the function's own Init, ~10-30 ms of CPU):
 * it never waits for a turn and holds none, but while adoptions are in progress no turn is granted,
 * so that a burst's full starts (and refills) begin once the cheap starts are done instead of
 * sharing the CPU with them. An adoption counts for at most HOLD_MS, like a turn.
 */
import { availableParallelism } from "node:os";

const HOLD_MS = 3000;

/** A turn to start an environment; release() is idempotent. */
export interface StartTurn {
  release(): void;
}

type Waiter = (turn: StartTurn) => void;

export class StartGate {
  private active = 0;
  /** Stem-cell adoptions in progress (see beginAdoption()). */
  private adoptions = 0;
  /** Waiters per function, in the order their functions take turns (a Map keeps insertion order). */
  private readonly byFunction = new Map<string, Waiter[]>();
  /** Starts for no function (stem cells), served when no function waits. */
  private readonly background: Waiter[] = [];

  constructor(readonly limit = Math.max(2, 2 * availableParallelism())) {}

  /** A turn now, if one is free and nobody is waiting for one. */
  tryAcquire(): StartTurn | undefined {
    if (this.active >= this.limit || this.adoptions > 0 || this.waiting > 0) return undefined;
    return this.grant();
  }

  /**
   * An adoption of a stem cell starts now (never waits): turns wait until it is released (or has
   * lasted HOLD_MS).
   */
  beginAdoption(): StartTurn {
    this.adoptions++;
    return this.held(() => this.adoptions--);
  }

  /** Adoptions in progress. */
  get adopting(): number {
    return this.adoptions;
  }

  /**
   * Wait for a turn, as a start of function `fn` (undefined: a start for no function). The returned
   * function withdraws from the queue (false if the turn was granted already).
   */
  enqueue(granted: Waiter, fn?: string): () => boolean {
    const queue = fn === undefined ? this.background : (this.byFunction.get(fn) ?? []);
    if (fn !== undefined && queue.length === 0) this.byFunction.set(fn, queue);
    queue.push(granted);
    return () => {
      const i = queue.indexOf(granted);
      if (i === -1) return false;
      queue.splice(i, 1);
      if (fn !== undefined && queue.length === 0 && this.byFunction.get(fn) === queue)
        this.byFunction.delete(fn);
      return true;
    };
  }

  /** Starts waiting for a turn. */
  get waiting(): number {
    let n = this.background.length;
    for (const queue of this.byFunction.values()) n += queue.length;
    return n;
  }

  /** The next waiter: the first function in turn (which then goes to the back), else a background start. */
  private next(): Waiter | undefined {
    for (const [fn, queue] of this.byFunction) {
      this.byFunction.delete(fn);
      const waiter = queue.shift();
      if (queue.length > 0) this.byFunction.set(fn, queue);
      if (waiter) return waiter;
    }
    return this.background.shift();
  }

  private grant(): StartTurn {
    this.active++;
    return this.held(() => this.active--);
  }

  /** A turn or an adoption held until released or HOLD_MS is over: `done` once, then waiters get their turns. */
  private held(done: () => void): StartTurn {
    let released = false;
    const timer = setTimeout(() => turn.release(), HOLD_MS);
    timer.unref();
    const turn: StartTurn = {
      release: () => {
        if (released) return;
        released = true;
        clearTimeout(timer);
        done();
        this.drain();
      },
    };
    return turn;
  }

  /** Grant turns to waiters while there are free ones and no adoption is in progress. */
  private drain(): void {
    while (this.active < this.limit && this.adoptions === 0) {
      const next = this.next();
      if (!next) return;
      next(this.grant());
    }
  }
}
