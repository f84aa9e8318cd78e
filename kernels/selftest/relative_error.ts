/**
 * The error measure our kernel checks use: the largest absolute difference scaled by the largest reference
 * magnitude. An element-wise relative error would be dominated by reference values that happen to be near zero,
 * which different (equally correct) summation orders do not reproduce.
 * @module
 */

/**
 * max |actual − expected| / max |expected| (or the bare max difference when `expected` is all zeros).
 * @throws {RangeError} when the lengths differ.
 */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new RangeError(`relativeError: lengths differ (actual ${actual.length}, expected ${expected.length})`);
  }
  let diff = 0, scale = 0;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    // NaN must fail the check, and Math.max propagates it.
    diff = Number.isNaN(d) ? NaN : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return scale > 0 ? diff / scale : diff;
}
