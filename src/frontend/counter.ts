/**
 * Counting: concurrent executions per function and in the account's
 * unreserved pool. A function with reserved concurrency R may run R at once,
 * and those R are carved out of the account's pool; all other functions share
 * what is left. Over a limit → 429 TooManyRequestsException with Lambda's Reason.
 */
import { TooManyRequests } from "../errors.js";

export class ConcurrencyCounter {
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
  acquire(name: string): () => void {
    const reserved = this.reserved.get(name);
    const mine = this.perFunction.get(name) ?? 0;
    if (reserved !== undefined) {
      if (mine >= reserved) {
        throw TooManyRequests(
          "Rate Exceeded.",
          { Reason: "ReservedFunctionConcurrentInvocationLimitExceeded" },
          { "Retry-After": "1" },
        );
      }
    } else if (this.unreservedInFlight >= this.unreservedLimit) {
      throw TooManyRequests(
        "Rate Exceeded.",
        { Reason: "ConcurrentInvocationLimitExceeded" },
        { "Retry-After": "1" },
      );
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
