/** How long an event waits before its next try. */

/** Delay before the retry that follows attempt number `attemptsMade` (1-based). */
export function retryDelayMs(attemptsMade: number, delays: readonly number[]): number {
  if (delays.length === 0) return 0;
  return delays[Math.min(attemptsMade, delays.length) - 1] ?? 0;
}

const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 5 * 60_000;

/**
 * Exponential backoff with jitter for throttles, platform errors and failed
 * destination deliveries: ~1 s, 2 s, 4 s … up to 5 min (Lambda backs off the
 * same way for throttled async events).
 */
export function backoffMs(previousBackoffs: number): number {
  const exp = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(previousBackoffs, 20));
  return Math.round(exp * (0.8 + Math.random() * 0.4));
}
