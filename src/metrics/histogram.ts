/**
 * Fixed log-scale buckets: what percentiles are answered from. A value v > 0 falls in bucket
 * `floor(ln v / ln 1.04) + BIAS`, a value v < 0 in the negative of its magnitude's bucket, 0 in
 * bucket 0. A bucket answers with its geometric middle, so a percentile is within ±2% of a value
 * that was recorded (clamped to the period's minimum and maximum, which are exact).
 */

const BASE = 1.04;
const LN_BASE = Math.log(BASE);
/** Makes the bucket of the smallest magnitude kept (1e-300) positive. */
const BIAS = 20_000;
const SMALLEST = 1e-300;
const LARGEST = 1e300;

export function bucketOf(value: number): number {
  if (value === 0) return 0;
  const magnitude = Math.min(LARGEST, Math.max(SMALLEST, Math.abs(value)));
  const k = Math.floor(Math.log(magnitude) / LN_BASE) + BIAS;
  return value > 0 ? k : -k;
}

/** The value a bucket stands for: the geometric middle of its range. */
export function bucketValue(bucket: number): number {
  if (bucket === 0) return 0;
  const magnitude = BASE ** (Math.abs(bucket) - BIAS + 0.5);
  return bucket > 0 ? magnitude : -magnitude;
}

/** Counts per bucket. */
export type Buckets = Map<number, number>;

/**
 * The `p`th percentile (0 < p ≤ 100) of the values counted in `buckets`: the value of rank
 * ceil(p% of n) in ascending order, clamped to [min, max]. Undefined when nothing was counted.
 */
export function percentile(buckets: Buckets, p: number, min: number, max: number): number | undefined {
  let total = 0;
  for (const n of buckets.values()) total += n;
  if (total <= 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  const ordered = [...buckets.entries()].sort((a, b) => bucketValue(a[0]) - bucketValue(b[0]));
  let seen = 0;
  for (const [bucket, n] of ordered) {
    seen += n;
    if (seen >= rank) return Math.min(max, Math.max(min, bucketValue(bucket)));
  }
  return max;
}
