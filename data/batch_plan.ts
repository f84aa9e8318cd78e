/**
 * Which samples go into which batch: the deterministic train/validation split, the per-epoch shuffle and the
 * torchvision `drop_last` arithmetic. Pure functions of (seed, epoch), so a run resumed at (epoch, batch) sees exactly
 * the batches an uninterrupted run would have seen.
 * @module
 */
import { identityOrder, keyedRandom, permutation } from "./random.ts";
import { ConfigError } from "../io/config_error.ts";

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
 * @throws {ConfigError} on field `valSplit` if it is negative, fractional, or leaves no training samples (a command
 *   line says its flag).
 */
export function splitTrainVal(n: number, valSplit: number, seed: number): TrainValSplit {
  // An empty training set (e.g. ImageNet's validation archive alone, for evaluation) splits into nothing.
  if (!Number.isInteger(valSplit) || valSplit < 0 || (valSplit > 0 && valSplit >= n)) {
    const range = n === 0 ? "0" : `an integer in [0, ${n - 1}]`;
    throw new ConfigError(
      "valSplit",
      `{valSplit} must be ${range} (the training set has ${n} images), received ${valSplit}`,
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

/**
 * The key of copy `repeat` of a sample for its random draws (crop, flip, per-image augmentations): the sample index
 * itself for the first copy, so runs without repeats draw as before, and `index + repeat · 2^32` for the others
 * (`hashKeys` splits a key into its two 32-bit words: (index, repeat)).
 */
export function drawKey(index: number, repeat: number): number {
  return index + repeat * 0x100000000;
}

/**
 * The sample order of one epoch with repeated augmentation (torchvision's `RASampler`, one process): the epoch's
 * permutation (the one {@linkcode epochOrder} shuffles by), each sample repeated `repeats` times in a row, cut to the
 * epoch's length (`indices.length`), so an epoch sees about 1/`repeats` of the images, each `repeats` times with its
 * own draws (`keys`, {@linkcode drawKey}). torchvision cuts to a multiple of 256 instead (for its replicas), which would
 * leave a small dataset no batch.
 */
export function repeatedAugmentationOrder(
  indices: Uint32Array,
  seed: number,
  epoch: number,
  repeats: number,
): { order: Uint32Array; keys: Float64Array } {
  if (!Number.isInteger(repeats) || repeats < 1) {
    throw new RangeError(`repeats must be a positive integer, received ${repeats}`);
  }
  const shuffled = epochOrder(indices, seed, epoch, true);
  const n = indices.length;
  const order = new Uint32Array(n), keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    order[i] = shuffled[Math.floor(i / repeats)];
    keys[i] = drawKey(order[i], i % repeats);
  }
  return { order, keys };
}

/** The sample indices of batch `batch` of an epoch order (the last batch may be shorter). */
export function batchSlice(order: Uint32Array, batch: number, batchSize: number): Uint32Array {
  return order.subarray(batch * batchSize, Math.min(order.length, (batch + 1) * batchSize));
}

/** This process's part of a data-parallel job: rank `rank` of `size` processes. */
export interface Shard {
  rank: number;
  size: number;
}

/**
 * Rank `shard.rank`'s part of one global batch (`size` times the per-rank batch): every `size`-th sample from the
 * rank's offset, `globalBatch[rank::size]`. That is torch's `DistributedSampler` (which deals the epoch order out as
 * `indices[rank::size]`, each rank then batching its share in order), restricted to the full global batches a
 * drop-last epoch uses (so its padding never matters): the union over ranks of batch b is batch b of one process
 * whose batch is the global batch, sample for sample, whatever `size`.
 * @throws {RangeError} for a rank outside [0, size).
 */
export function shardSlice<T extends Uint32Array | Float64Array>(globalBatch: T, shard: Shard): T {
  const { rank, size } = shard;
  if (!Number.isInteger(size) || size < 1 || !Number.isInteger(rank) || rank < 0 || rank >= size) {
    throw new RangeError(
      `shard: expected an integer rank in [0, size) and size >= 1, received rank ${rank} of ${size}`,
    );
  }
  if (size === 1) return globalBatch;
  const out = new (globalBatch.constructor as new (n: number) => T)(Math.ceil((globalBatch.length - rank) / size));
  for (let i = rank, j = 0; i < globalBatch.length; i += size, j++) out[j] = globalBatch[i];
  return out;
}
