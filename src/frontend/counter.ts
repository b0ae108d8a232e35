/**
 * Counting: concurrent executions per function and in the account's
 * unreserved pool. A function with reserved concurrency R may run R at once,
 * and those R are carved out of the account's pool; all other functions share
 * what is left. Over a limit → 429 TooManyRequestsException with Lambda's Reason.
 */
import { TooManyRequests } from "../errors.js";

/** Gives a slot back (calling it again does nothing). */
export type Release = () => void;

/**
 * What the invoke path counts with: this in-memory counter on one server, a
 * `FleetCounter` (`fleet-counter.ts`) sharing each limit among a cluster's
 * frontends. A slot is taken synchronously whenever it can be, so the
 * single-process path never awaits.
 */
export interface Counter {
  setReservations(reserved: Map<string, number>): void;
  /** Take a slot or throw Lambda's throttle (a promise when the slot must be asked of others first). */
  acquire(name: string): Release | Promise<Release>;
  /** Executions running through this node now. */
  readonly total: number;
  /** Give back what this node holds of shared limits (a cluster node stopping). */
  close?(): Promise<void>;
}

/** Over a function's reserved concurrency. */
export const reservedThrottle = () =>
  TooManyRequests(
    "Rate Exceeded.",
    { Reason: "ReservedFunctionConcurrentInvocationLimitExceeded" },
    { "Retry-After": "1" },
  );

/** Over the account's unreserved concurrency. */
export const accountThrottle = () =>
  TooManyRequests("Rate Exceeded.", { Reason: "ConcurrentInvocationLimitExceeded" }, { "Retry-After": "1" });

export class ConcurrencyCounter implements Counter {
  private readonly perFunction = new Map<string, number>();
  private reserved = new Map<string, number>();
  private reservedTotal = 0;
  private unreservedInFlight = 0;
  total = 0;

  constructor(private readonly accountConcurrency: number) {}

  setReservations(reserved: Map<string, number>): void {
    // Executions already running keep counting where they started.
    this.reserved = reserved;
    this.reservedTotal = 0;
    for (const n of reserved.values()) this.reservedTotal += n;
  }

  get unreservedLimit(): number {
    return this.accountConcurrency - this.reservedTotal;
  }

  running(name: string): number {
    return this.perFunction.get(name) ?? 0;
  }

  /** Take a slot or throw Lambda's throttle. Returns the release function. */
  acquire(name: string): Release {
    const reserved = this.reserved.get(name);
    const mine = this.perFunction.get(name) ?? 0;
    if (reserved !== undefined) {
      if (mine >= reserved) throw reservedThrottle();
    } else if (this.unreservedInFlight >= this.unreservedLimit) {
      throw accountThrottle();
    }
    const fromUnreserved = reserved === undefined;
    this.perFunction.set(name, mine + 1);
    if (fromUnreserved) this.unreservedInFlight++;
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.perFunction.get(name) ?? 1) - 1;
      if (n === 0) this.perFunction.delete(name);
      else this.perFunction.set(name, n);
      if (fromUnreserved) this.unreservedInFlight--;
      this.total--;
    };
  }
}
