/**
 * Shape arithmetic every layer needs; it lives at the bottom (kernels) so that kernels import nothing else of ours.
 * @module
 */

/** Number of elements of a shape (1 for a scalar). */
export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
