/**
 * Which samples go into which batch: the deterministic train/validation split, the per-epoch shuffle and the
 * torchvision `drop_last` arithmetic. Pure functions of (seed, epoch), so a run resumed at (epoch, batch) sees exactly
 * the batches an uninterrupted run would have seen.
 * @module
 */
import { identityOrder, keyedRandom, permutation } from "./random.ts";

/**
 * Stream tags that keep the independent uses of one seed apart: `augment` draws the crop and flip, `autoAugment` and
 * `randomErase` the per-image augmentations after them, `batchMix` each batch's mixup or cutmix (keyed by batch).
 */
export const RandomStream = { split: 1, shuffle: 2, augment: 3, autoAugment: 4, randomErase: 5, batchMix: 6 } as const;

/** The train and held-out validation indices produced by {@linkcode splitTrainVal}. */
export interface TrainValSplit {
  /** Indices into the full training set that stay in training, ascending. */
  train: Uint32Array;
  /** Indices into the full training set held out for validation, ascending. */
  val: Uint32Array;
}

/**
 * Holds `valSplit` of `n` training samples out for validation, chosen by a permutation keyed by `seed` alone (not by
 * epoch), so every run with the same seed holds out the same images.
 * @throws {RangeError} if `valSplit` is negative, fractional, or leaves no training samples.
 */
export function splitTrainVal(n: number, valSplit: number, seed: number): TrainValSplit {
  if (!Number.isInteger(valSplit) || valSplit < 0 || valSplit >= n) {
    throw new RangeError(
      `valSplit must be an integer in [0, ${n - 1}] (the training set has ${n} images), received ${valSplit}`,
    );
  }
  if (valSplit === 0) return { train: identityOrder(n), val: new Uint32Array(0) };
  const order = permutation(n, keyedRandom(seed, RandomStream.split));
  return { val: order.slice(0, valSplit).sort(), train: order.slice(valSplit).sort() };
}

/**
 * Number of batches in one epoch of `n` samples: `floor(n / batchSize)` with `dropLast` (torchvision's training
 * convention), `ceil(n / batchSize)` without.
 */
export function batchCount(n: number, batchSize: number, dropLast: boolean): number {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, received ${batchSize}`);
  }
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/**
 * The sample order of one epoch: `indices` shuffled by a permutation keyed by (seed, epoch) when `shuffle` is set,
 * otherwise `indices` in their given order.
 */
export function epochOrder(indices: Uint32Array, seed: number, epoch: number, shuffle: boolean): Uint32Array {
  if (!shuffle) return indices;
  const perm = permutation(indices.length, keyedRandom(seed, RandomStream.shuffle, epoch));
  const out = new Uint32Array(indices.length);
  for (let i = 0; i < perm.length; i++) out[i] = indices[perm[i]];
  return out;
}

/** The sample indices of batch `batch` of an epoch order (the last batch may be shorter). */
export function batchSlice(order: Uint32Array, batch: number, batchSize: number): Uint32Array {
  return order.subarray(batch * batchSize, Math.min(order.length, (batch + 1) * batchSize));
}
