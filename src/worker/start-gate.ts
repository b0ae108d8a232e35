/**
 * How many environments of this worker start at once. A start is mostly CPU (a runtime process
 * boots: ~100 ms of CPU for Node.js), so 100 invokes from zero on 2 cores that all start at once
 * share the CPU 100 ways: every Init takes as long as all of them together and runs into its
 * timeout. Through the gate, a few start at a time, each in about its own time, and an invoke
 * still waiting for its turn takes an environment of its function that has meanwhile finished
 * its event instead (see FunctionPool).
 *
 * A turn is held for the runtime's start, not for a long Init of the function's own: after
 * HOLD_MS it is handed on even if Init goes on (such an Init is waiting, mostly, not computing).
 */
import { availableParallelism } from "node:os";

const HOLD_MS = 1000;

/** A turn to start an environment; release() is idempotent. */
export interface StartTurn {
  release(): void;
}

export class StartGate {
  private active = 0;
  private readonly queue: Array<(turn: StartTurn) => void> = [];

  constructor(readonly limit = Math.max(2, 2 * availableParallelism())) {}

  /** A turn now, if one is free. */
  tryAcquire(): StartTurn | undefined {
    if (this.active >= this.limit || this.queue.length > 0) return undefined;
    return this.grant();
  }

  /** Wait for a turn; the returned function withdraws from the queue (false if the turn was granted already). */
  enqueue(granted: (turn: StartTurn) => void): () => boolean {
    this.queue.push(granted);
    return () => {
      const i = this.queue.indexOf(granted);
      if (i === -1) return false;
      this.queue.splice(i, 1);
      return true;
    };
  }

  /** Starts waiting for a turn. */
  get waiting(): number {
    return this.queue.length;
  }

  private grant(): StartTurn {
    this.active++;
    let released = false;
    const timer = setTimeout(() => turn.release(), HOLD_MS);
    timer.unref();
    const turn: StartTurn = {
      release: () => {
        if (released) return;
        released = true;
        clearTimeout(timer);
        this.active--;
        const next = this.queue.shift();
        if (next) next(this.grant());
      },
    };
    return turn;
  }
}
