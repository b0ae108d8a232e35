/**
 * Exponential backoff with jitter, the one used for every retry that is not a
 * configured schedule: throttled or failed async events, destination
 * deliveries, broker reconnects and requeued batches of event source mappings.
 *
 * The delay before retry `n` (0 = the first) doubles from `minMs` up to
 * `maxMs`, and is drawn from the upper half of that bound so that many callers
 * failing together spread out without any retrying at once.
 */
export function backoffMs(n: number, minMs: number, maxMs: number): number {
  const bound = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(n, 0), 30));
  return Math.round(bound / 2 + (Math.random() * bound) / 2);
}
