// Small statistics over samples.

export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** The p-th percentile (0..100), nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = sorted(values);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * Who goes first in step k of a side-by-side run: first, second, second, first, then again.
 * Mirrored, so neither side always runs first (on a cooler cache, or just after the other's
 * garbage) or under a load that rises or falls within the cycle.
 */
export function sidesInStep<S extends string>(k: number, first: S, second: S): readonly [S, S] {
  return k % 4 === 0 || k % 4 === 3 ? [first, second] : [second, first];
}
