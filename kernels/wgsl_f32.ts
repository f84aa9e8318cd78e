/**
 * Numbers baked into generated WGSL.
 * @module
 */

/**
 * `v` as a WGSL f32 literal: JavaScript's shortest round-trip decimal, which WGSL rounds to the nearest f32 (as
 * `Math.fround` does), with `.0` added to integers so that they never type as i32.
 * @throws {RangeError} for NaN and infinities, which WGSL has no literal for.
 */
export function wgslF32(v: number): string {
  if (!Number.isFinite(v)) throw new RangeError(`wgslF32: ${v} has no WGSL literal`);
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
}
