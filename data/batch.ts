/**
 * What a data loader hands the trainer: one CPU batch at a time, from one split.
 * @module
 */

/** One batch on the CPU, uploaded by the trainer in a single tf.tensor4d call. */
export interface Batch {
  /** [N, H, W, 3] normalised (x/255 - mean) / std, NHWC. */
  images: Float32Array;
  /** [N] class indices. */
  labels: Int32Array;
  size: number;
  height: number;
  width: number;
  /** Its slot in the epoch: batch `index` of `batchesPerEpoch`. A batch whose every image failed to decode is not
   *  yielded, so the next one's index, not a count of batches received, says where the epoch stands. */
  index: number;
}

/** Batches of one split. */
export interface BatchLoader {
  readonly numImages: number;
  readonly batchesPerEpoch: number;
  /** Batches of `epoch` from batch index `startBatch` (default 0). The order AND the augmentation randomness are a
   *  pure function of (seed, epoch, sample index), so resuming at (epoch, startBatch) reproduces exactly what an
   *  uninterrupted run would have seen. Train loaders shuffle and drop the last partial batch; eval loaders
   *  keep order and keep the partial batch (torchvision conventions). */
  batches(epoch: number, startBatch?: number): AsyncIterable<Batch>;
  /** Releases the loader's resources (the last one closed terminates the shared decode workers). */
  close(): Promise<void>;
}
