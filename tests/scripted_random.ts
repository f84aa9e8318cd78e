/**
 * A "random" stream that returns given values in order, for tests that fix an augmentation's draws.
 * @module
 */
import type { Random } from "../data/random.ts";

/** Returns `values` in order; fails past their end, so a test sees a draw it did not expect. */
export function scripted(...values: number[]): Random {
  let i = 0;
  return () => {
    if (i >= values.length) throw new Error(`scripted stream exhausted after ${values.length} draws`);
    return values[i++];
  };
}
