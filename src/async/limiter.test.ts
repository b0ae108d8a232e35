/** The adaptive in-flight limit's rules, on a synthetic clock (no timers). */
import { describe, expect, it } from "vitest";
import { InFlightLimiter, type LimiterOptions } from "./limiter.js";

/** A limiter and a clock: `window(ms, perSec)` feeds one whole window of events of that latency at that rate. */
function setup(opts: Partial<LimiterOptions> = {}) {
  const l = new InFlightLimiter({ initial: 4, max: 16, minWindowMs: 0, ...opts });
  let now = 0;
  const window = (latencyMs: number, perSec: number, { reached = true } = {}) => {
    const n = Math.max(8, 2 * l.limit);
    for (let i = 0; i < n; i++) {
      l.started(reached ? l.limit : 1, now);
      now += 1000 / perSec;
      l.finished(latencyMs, now);
    }
    return l.limit;
  };
  // The first window is not judged (cold starts).
  window(50, 100);
  return { l, window, advance: (ms: number) => (now += ms), now: () => now };
}

describe("InFlightLimiter", () => {
  it("grows while latency stays flat, up to the slots and never above", () => {
    const { l, window } = setup();
    const seen = [l.limit];
    for (let i = 0; i < 30; i++) seen.push(window(50, (l.limit / 50) * 1000));
    expect(seen[1]).toBeGreaterThan(4);
    expect(Math.max(...seen)).toBe(16);
    expect(l.limit).toBe(16);
    // Monotonic: a flat latency never shrinks it.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1] as number);
  });

  it("grows while throughput grows with the limit, though latency rose", () => {
    const { l, window } = setup();
    expect(window(2, 1000)).toBe(5); // baseline 2 ms, flat: grow
    // Latency at 2.5 × the baseline, but throughput grew by half with the last growth: grow again.
    expect(window(5, 1500)).toBe(6);
    expect(l.limit).toBe(6);
  });

  it("shrinks when latency rises at flat throughput, and goes back after a growth that did not pay", () => {
    const { l, window } = setup({ initial: 8 });
    window(1, 4000); // baseline 1 ms
    const afterFlat = l.limit;
    expect(afterFlat).toBe(10);
    // The growth did not pay: throughput flat, latency ×3 → back to 8.
    window(3, 4000);
    expect(l.limit).toBe(8);
    // Still ×3 at flat throughput: shrink by a fifth each window, never below 1.
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) seen.push(window(3, 4000));
    expect(seen[0]).toBeLessThan(8);
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(1);
  });

  it("never goes below 1, and at 1 learns the function's new latency and grows again", () => {
    const { l, window } = setup();
    window(1, 1000);
    // The function became 100× slower, no faster overall: shrinks to 1, never below.
    for (let i = 0; i < 20 && l.limit > 1; i++) window(100, 10);
    expect(l.limit).toBe(1);
    // At 1 the baseline is reset to the new latency: flat from there, so it grows again.
    window(100, 10);
    expect(l.limit).toBe(2);
  });

  it("does not grow without demand (the limit not reached in the window)", () => {
    const { l, window } = setup();
    for (let i = 0; i < 10; i++) window(50, 20, { reached: false });
    expect(l.limit).toBe(4);
  });

  it("holds between the thresholds, then probes one more (kept only if it pays)", () => {
    const { l, window } = setup({ initial: 4, probeEvery: 3 });
    window(10, 400); // baseline 10 ms (flat: grows to 5)
    expect(l.limit).toBe(5);
    window(16, 400); // 1.6 ×, the growth did not pay: back to 4
    expect(l.limit).toBe(4);
    window(16, 400); // held 1
    window(16, 400); // held 2
    expect(l.limit).toBe(4);
    window(16, 400); // held 3: probe
    expect(l.limit).toBe(5);
    window(16, 400); // the probe did not pay: back
    expect(l.limit).toBe(4);
  });

  it("waits for a whole window: at least twice the limit's events and minWindowMs", () => {
    const l = new InFlightLimiter({ initial: 4, max: 16, minWindowMs: 100 });
    let now = 0;
    for (let w = 0; w < 2; w++)
      for (let i = 0; i < 100; i++) {
        l.started(l.limit, now);
        now += 1;
        l.finished(1, now);
      }
    // 200 events over 200 ms: the first window (not judged) and one judged (flat: grow).
    expect(l.limit).toBe(5);
  });

  it("grows by half when events wait and none started or finished for the patience", () => {
    const { l, advance, now } = setup();
    expect(l.stalled(now(), 500)).toBe(false);
    advance(500);
    expect(l.stalled(now(), 500)).toBe(true);
    expect(l.limit).toBe(6);
    expect(l.stalled(now(), 500)).toBe(false);
    for (let i = 0; i < 10; i++) {
      advance(500);
      l.stalled(now(), 500);
    }
    expect(l.limit).toBe(16);
  });

  it("keeps hostile inputs in range", () => {
    const l = new InFlightLimiter({ initial: 1000, max: 0, minWindowMs: 0 });
    expect(l.limit).toBe(1);
    const m = new InFlightLimiter({ initial: -5, max: 16, minWindowMs: 0 });
    expect(m.limit).toBe(1);
    for (let i = 0; i < 100; i++) {
      m.started(1, i);
      m.finished(Number.NaN, i + 1);
      m.finished(-1, i + 1);
      m.finished(Number.POSITIVE_INFINITY, i + 1);
    }
    expect(m.limit).toBeGreaterThanOrEqual(1);
    expect(m.limit).toBeLessThanOrEqual(16);
    expect(Number.isInteger(m.limit)).toBe(true);
  });
});
