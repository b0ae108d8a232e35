/**
 * The scaling rate: how many new execution environments one function may add
 * per window (Lambda: 1000 per 10 seconds per function).
 */
export class ScaleLimiter {
  /** Start times of the environments added in the current window, oldest first. */
  private readonly starts: number[] = [];

  constructor(
    private readonly perWindow: number,
    private readonly windowMs = 10_000,
  ) {}

  /** Take one new-environment token if the window has room. */
  tryTake(now = Date.now()): boolean {
    const cutoff = now - this.windowMs;
    while (this.starts.length > 0 && (this.starts[0] as number) <= cutoff) this.starts.shift();
    if (this.starts.length >= this.perWindow) return false;
    this.starts.push(now);
    return true;
  }
}
