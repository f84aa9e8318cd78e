/**
 * Classification metrics: top-k counts on the GPU (for training, accumulated without a readback per batch) and a
 * host-side accumulator for evaluation (loss, top-1, top-5, per-class accuracy, confusion matrix).
 *
 * Ties follow `tf.topk`: among equal scores the lower class index ranks first, both on the GPU and on the host, so
 * the two paths agree exactly.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * How many samples have their label among the `k` highest logits, for each `k` in `ks`, from one `tf.topk`.
 * @param logits [N, K] scores.
 * @param labels [N] int32.
 * @returns int32 [ks.length] counts (a GPU tensor; no readback). `k > K` counts every sample.
 */
export function topKCorrectCounts(logits: tf.Tensor2D, labels: tf.Tensor1D, ks: readonly number[]): tf.Tensor1D {
  if (logits.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new Error(`topKCorrect: expected logits [N, K] and labels [N], got [${logits.shape}] and [${labels.shape}]`);
  }
  if (labels.dtype !== "int32") throw new Error(`topKCorrect: labels must be int32, got ${labels.dtype}`);
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`topKCorrect: k must be an integer >= 1, got ${k}`);
  }
  const numClasses = logits.shape[1];
  const maxK = Math.min(Math.max(...ks), numClasses);
  return tf.tidy(() => {
    const { indices } = tf.topk(logits, maxK, true); // [N, maxK], best first
    const hits = tf.cast(tf.equal(indices, tf.expandDims(labels, 1)), "int32"); // [N, maxK], at most one 1 per row
    const perRank = tf.sum(hits, 0); // [maxK]: samples whose label ranks exactly r
    const cumulative = tf.cumsum(perRank); // [maxK]: samples whose label ranks <= r
    return tf.gather(cumulative, ks.map((k) => Math.min(k, maxK) - 1)) as tf.Tensor1D;
  });
}

/**
 * How many samples have their label among the `k` highest logits.
 * @param logits [N, K] scores.
 * @param labels [N] int32.
 * @returns an int32 scalar count on the GPU (sum these over an epoch and read back once).
 */
export function topKCorrect(logits: tf.Tensor2D, labels: tf.Tensor1D, k: number): tf.Scalar {
  return tf.tidy(() => tf.reshape(topKCorrectCounts(logits, labels, [k]), []) as tf.Scalar);
}

/** What {@linkcode EvalAccumulator.result} returns: JSON-serialisable. */
export interface EvalResult {
  /** Samples seen. */
  count: number;
  /** Mean loss per sample (cross-entropy unless the caller fed its own loss sums). */
  loss: number;
  /** Fraction of samples whose top-scoring class is the label. */
  top1: number;
  /** Fraction of samples whose label is among the five top-scoring classes. */
  top5: number;
  /** Per true class: fraction classified correctly (top-1), or null for a class with no samples. */
  perClassAccuracy: (number | null)[];
  /** Per true class: number of samples. */
  perClassCount: number[];
  /** `confusion[t][p]`: samples of true class `t` predicted as class `p` (top-1). */
  confusion: number[][];
  /** Class names, when the accumulator was given them. */
  classNames?: string[];
}

/** Evaluation metrics accumulated on the host over batches, in float64. */
export class EvalAccumulator {
  readonly numClasses: number;
  readonly classNames?: string[];
  #count = 0;
  #lossSum = 0;
  #top1 = 0;
  #top5 = 0;
  readonly #confusion: Float64Array; // [K, K], row = true class, column = predicted class

  /** @param classNames optional, one per class, carried into the result. */
  constructor(numClasses: number, classNames?: string[]) {
    if (!Number.isInteger(numClasses) || numClasses < 1) {
      throw new RangeError(`EvalAccumulator: numClasses must be an integer >= 1, got ${numClasses}`);
    }
    if (classNames && classNames.length !== numClasses) {
      throw new RangeError(`EvalAccumulator: ${classNames.length} class names for ${numClasses} classes`);
    }
    this.numClasses = numClasses;
    this.classNames = classNames;
    this.#confusion = new Float64Array(numClasses * numClasses);
  }

  /**
   * Adds a batch of logits. The loss is cross-entropy (with optional label smoothing, as in training) computed in
   * float64 from the logits.
   * @param logits [N, K] row-major.
   * @param labels [N] class indices.
   */
  addLogits(logits: Float32Array | Float64Array, labels: ArrayLike<number>, labelSmoothing = 0): void {
    const k = this.numClasses;
    const n = labels.length;
    if (logits.length !== n * k) {
      throw new RangeError(`EvalAccumulator.addLogits: ${logits.length} logits for ${n} labels x ${k} classes`);
    }
    this.#checkLabels(labels, "addLogits");
    for (let i = 0; i < n; i++) {
      const row = logits.subarray(i * k, (i + 1) * k);
      const y = labels[i];
      // Rank of the label under tf.topk's order (higher score first, lower index first among equals).
      const ly = row[y];
      let rank = Number.isNaN(ly) ? k : 0;
      let best = 0;
      let max = -Infinity;
      let sumExp = 0;
      for (let j = 0; j < k; j++) {
        const v = row[j];
        if (v > ly || (v === ly && j < y)) rank++;
        if (v > max) [max, best] = [v, j];
      }
      for (let j = 0; j < k; j++) sumExp += Math.exp(row[j] - max);
      const lse = max + Math.log(sumExp);
      let smooth = 0;
      if (labelSmoothing > 0) {
        for (let j = 0; j < k; j++) smooth += lse - row[j];
        smooth /= k;
      }
      this.#lossSum += (1 - labelSmoothing) * (lse - ly) + labelSmoothing * smooth;
      this.#record(y, best, rank);
    }
  }

  /**
   * Adds a batch whose top predictions and loss were computed on the GPU (less to read back than logits).
   * @param labels [N] class indices.
   * @param topIndices [N, k] row-major, best first, k >= 1 (k >= 5 for an exact top-5; with fewer columns a label
   *   outside them counts as a top-5 miss, unless k equals the number of classes).
   * @param lossSum the summed (not mean) loss of the batch.
   */
  addPredictions(labels: ArrayLike<number>, topIndices: ArrayLike<number>, lossSum: number): void {
    const n = labels.length;
    if (n === 0) return;
    const k = topIndices.length / n;
    if (!Number.isInteger(k) || k < 1) {
      throw new RangeError(`EvalAccumulator.addPredictions: ${topIndices.length} indices for ${n} labels`);
    }
    this.#checkLabels(labels, "addPredictions");
    for (let i = 0; i < n; i++) {
      const y = labels[i];
      let rank = this.numClasses;
      for (let r = 0; r < k; r++) {
        if (topIndices[i * k + r] === y) {
          rank = r;
          break;
        }
      }
      const predicted = topIndices[i * k];
      if (!(Number.isInteger(predicted) && predicted >= 0 && predicted < this.numClasses)) {
        throw new RangeError(`EvalAccumulator.addPredictions: sample ${i} predicts class ${predicted}`);
      }
      this.#record(y, predicted, rank);
    }
    this.#lossSum += lossSum;
  }

  #checkLabels(labels: ArrayLike<number>, method: string) {
    for (let i = 0; i < labels.length; i++) {
      const y = labels[i];
      if (!Number.isInteger(y) || y < 0 || y >= this.numClasses) {
        throw new RangeError(
          `EvalAccumulator.${method}: label of sample ${i} is ${y}, expected an integer in [0, ${this.numClasses})`,
        );
      }
    }
  }

  #record(label: number, predicted: number, rank: number) {
    this.#count++;
    if (rank < 1) this.#top1++;
    if (rank < 5) this.#top5++;
    this.#confusion[label * this.numClasses + predicted]++;
  }

  /** Samples added so far. */
  get count(): number {
    return this.#count;
  }

  /** The metrics so far (NaN loss/accuracies when nothing was added; JSON turns those into null). */
  result(): EvalResult {
    const k = this.numClasses;
    const confusion = Array.from({ length: k }, (_, t) => Array.from(this.#confusion.subarray(t * k, (t + 1) * k)));
    const perClassCount = confusion.map((row) => row.reduce((a, b) => a + b, 0));
    const out: EvalResult = {
      count: this.#count,
      loss: this.#lossSum / this.#count,
      top1: this.#top1 / this.#count,
      top5: this.#top5 / this.#count,
      perClassAccuracy: confusion.map((row, t) => (perClassCount[t] > 0 ? row[t] / perClassCount[t] : null)),
      perClassCount,
      confusion,
    };
    if (this.classNames) out.classNames = [...this.classNames];
    return out;
  }
}
