/** How long an event waits before its next try. */

/** Delay before the retry that follows attempt number `attemptsMade` (1-based). */
export function retryDelayMs(attemptsMade: number, delays: readonly number[]): number {
  if (delays.length === 0) return 0;
  return delays[Math.min(attemptsMade, delays.length) - 1] ?? 0;
}
