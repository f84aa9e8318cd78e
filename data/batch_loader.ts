/**
 * The {@linkcode BatchLoader} over one batch source: per-epoch order from `batch_plan.ts`, batches built by a
 * worker pool with a bounded number in flight (the prefetch queue), or inline when there are no workers.
 * @module
 */
import { batchCount, batchSlice, epochOrder, repeatedAugmentationOrder, type Shard, shardSlice } from "./batch_plan.ts";
import {
  type BatchJob,
  type BatchResult,
  createBatchMaker,
  type DecodeFailure,
  type SourceSpec,
} from "./batch_source.ts";
import type { Batch, BatchLoader } from "./batch.ts";

/** What builds batches in the background: a {@linkcode WorkerPool} (or a stand-in with the same two members). */
export interface BatchRunner {
  /** Number of parallel builders; the default prefetch depth is twice this. */
  readonly size: number;
  run(job: Omit<BatchJob, "id">): Promise<BatchResult>;
}

/** Options of {@linkcode PipelineLoader}. */
export interface PipelineLoaderOptions {
  /** The source's spec (used inline) and its number in the pool (used with workers). */
  spec: SourceSpec;
  source: number;
  /** Indices into the source that this loader serves (e.g. the training part of a train/val split). */
  indices: Uint32Array;
  /** Images per batch of this process (with `shard`, per rank: the global batch is `batchSize * shard.size`). */
  batchSize: number;
  /**
   * Data-parallel training: serve rank `rank`'s share of each global batch (see `shardSlice`); the epoch has
   * `floor(n / (batchSize * size))` batches on every rank. Only with `train`.
   */
  shard?: Shard;
  /** Training conventions: shuffle every epoch and drop the last partial batch. */
  train: boolean;
  /** Random augmentation (only meaningful with `train`). */
  augment: boolean;
  /**
   * With `train`: repeated augmentation, each sample of the epoch's order this many times in a row, each copy with
   * its own draws (`repeatedAugmentationOrder`); default 1 (off).
   */
  repeats?: number;
  seed: number;
  /** Shared workers, or undefined to build batches inline. */
  pool?: BatchRunner;
  /** Batches in flight ahead of the consumer (default 2 per worker). */
  prefetch?: number;
  /** Called with the images a batch had to leave out; may throw to stop the run. */
  onFailures?: (failures: DecodeFailure[]) => void;
  /** Called once by {@linkcode PipelineLoader.close}. */
  onClose?: () => Promise<void> | void;
}

/** A {@linkcode BatchLoader} over one source. */
export class PipelineLoader implements BatchLoader {
  readonly numImages: number;
  readonly batchesPerEpoch: number;
  #options: PipelineLoaderOptions;
  #inline?: (job: BatchJob) => Promise<BatchResult>;
  #closed = false;

  /** Creates the loader; nothing is decoded until {@linkcode PipelineLoader.batches} is iterated. */
  constructor(options: PipelineLoaderOptions) {
    this.#options = options;
    this.numImages = options.indices.length;
    if (options.shard && !options.train) throw new Error("PipelineLoader: shard is for training loaders only");
    if (options.shard) shardSlice(new Uint32Array(0), options.shard); // throws for a rank outside [0, size)
    this.batchesPerEpoch = batchCount(this.numImages, options.batchSize * (options.shard?.size ?? 1), options.train);
  }

  /**
   * Batches of `epoch` from batch `startBatch` on; order and augmentation depend only on (seed, epoch, sample index),
   * so resuming reproduces an uninterrupted run. Breaking out early discards the prefetched batches.
   */
  async *batches(epoch: number, startBatch = 0): AsyncIterable<Batch> {
    const o = this.#options;
    if (this.#closed) throw new Error("batches() on a closed loader");
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`epoch must be an integer >= 0, received ${epoch}`);
    if (!Number.isInteger(startBatch) || startBatch < 0 || startBatch > this.batchesPerEpoch) {
      throw new RangeError(`startBatch must be an integer in [0, ${this.batchesPerEpoch}], received ${startBatch}`);
    }
    const repeated = o.train && (o.repeats ?? 1) > 1
      ? repeatedAugmentationOrder(o.indices, o.seed, epoch, o.repeats!)
      : undefined;
    const order = repeated?.order ?? epochOrder(o.indices, o.seed, epoch, o.train);
    // Batch b is positions [b·global, (b+1)·global) of the order; a rank of a data-parallel job takes its share.
    const global = o.batchSize * (o.shard?.size ?? 1);
    const mine = <T extends Uint32Array | Float64Array>(rows: T): T => o.shard ? shardSlice(rows, o.shard) : rows;
    const job = (b: number): Omit<BatchJob, "id"> & { id: number } => ({
      id: b,
      source: o.source,
      epoch,
      indices: mine(batchSlice(order, b, global)).slice(),
      ...(repeated ? { keys: mine(repeated.keys.subarray(b * global, (b + 1) * global)).slice() } : {}),
      augment: o.train && o.augment,
    });
    const build = (b: number): Promise<BatchResult> => {
      if (o.pool) return o.pool.run(job(b));
      this.#inline ??= createBatchMaker(o.spec);
      return this.#inline(job(b));
    };
    // Bounded prefetch queue: at most `depth` batches built ahead of the consumer.
    const depth = o.pool ? Math.max(1, o.prefetch ?? 2 * o.pool.size) : 1;
    const queue: { index: number; result: Promise<BatchResult> }[] = [];
    let next = startBatch;
    const fill = () => {
      while (queue.length < depth && next < this.batchesPerEpoch) {
        const result = build(next);
        result.catch(() => {}); // observed when awaited; avoids an unhandled rejection if the consumer stops first
        queue.push({ index: next++, result });
      }
    };
    fill();
    while (queue.length > 0) {
      const { index, result: pending } = queue.shift()!;
      const result = await pending;
      fill();
      if (result.failures.length > 0) o.onFailures?.(result.failures);
      if (result.size === 0) {
        // One process skips a batch none of whose images decode. A rank of a data-parallel job cannot: the others
        // would pair their next collective with this rank's later one and mix steps without a word.
        if (o.shard) {
          const names = result.failures.map((f) => f.name).join(", ") || "none reported";
          throw new Error(
            `batch ${index} of epoch ${epoch + 1}: none of the ${o.batchSize} images of rank ${o.shard.rank}'s share ` +
              `decodes (${names}); a rank of a data-parallel job cannot skip a step alone, so the job stops: fix ` +
              "or remove these files",
          );
        }
        continue;
      }
      yield {
        images: result.images,
        labels: result.labels,
        size: result.size,
        height: result.height,
        width: result.width,
        index,
      };
    }
  }

  /** Releases this loader (and, through `onClose`, the shared workers once every loader is closed). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#options.onClose?.();
  }
}
