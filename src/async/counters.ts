/**
 * In-memory counters of this server's async work, per function: what the
 * telemetry work exports as metrics. (The store's `async_stats` table holds
 * the same outcomes summed over every server and restart.)
 */
import { EventEmitter } from "node:events";

export interface AsyncCounts {
  enqueued: number;
  succeeded: number;
  failed: number;
  expired: number;
  dropped: number;
  /** Runs stopped as recursive loops (Lambda's RecursiveInvocationsDropped). */
  recursiveLoopsStopped: number;
  retries: number;
  throttles: number;
  delivered: number;
  deliveryFailures: number;
}

export type AsyncCounter = keyof AsyncCounts;

const zero = (): AsyncCounts => ({
  enqueued: 0,
  succeeded: 0,
  failed: 0,
  expired: 0,
  dropped: 0,
  recursiveLoopsStopped: 0,
  retries: 0,
  throttles: 0,
  delivered: 0,
  deliveryFailures: 0,
});

export class AsyncCounters {
  private readonly byFunction = new Map<string, AsyncCounts>();
  /** "add" after every change: function name, counter, amount. */
  readonly events = new EventEmitter<{ add: [string, AsyncCounter, number] }>();

  add(functionName: string, counter: AsyncCounter, n = 1): void {
    let c = this.byFunction.get(functionName);
    if (!c) {
      c = zero();
      this.byFunction.set(functionName, c);
    }
    c[counter] += n;
    this.events.emit("add", functionName, counter, n);
  }

  /** A copy: function name → counts. */
  snapshot(): Record<string, AsyncCounts> {
    const out: Record<string, AsyncCounts> = {};
    for (const [name, c] of this.byFunction) out[name] = { ...c };
    return out;
  }
}
