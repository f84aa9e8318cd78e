/**
 * One BatchNorm2d layer of the model (+ a residual added before the ReLU) (+ ReLU), in training or evaluation mode,
 * through the fused WebGPU kernels or as composite tfjs ops; both keep a layer's buffers in the one [4, C] statistics
 * tensor of `BN_STATS_ROWS` (batch mean, batch variance, running_mean, running_var), so that committing a training
 * pass's running statistics is a reference swap.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BN_STATS_ROWS } from "../kernels/batch_norm_programs.ts";
import { batchNormEval } from "../kernels/batch_norm_eval.ts";
import { batchNormTrain } from "../kernels/batch_norm_train.ts";

/** PyTorch's BatchNorm2d defaults. */
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

/** A layer's tensors. */
export interface BatchNormTensors {
  /** [C] */
  gamma: tf.Tensor1D;
  /** [C] */
  beta: tf.Tensor1D;
  /** [4, C] statistics (rows of `BN_STATS_ROWS`); read, never written. */
  stats: tf.Tensor2D;
}

/** How to run a layer. */
export interface BatchNormLayerOptions {
  /** Batch statistics (and new running statistics) instead of the running statistics. */
  training: boolean;
  /** The WebGPU kernels of `kernels/batch_norm_*.ts` (webgpu backend only) instead of tfjs ops. */
  fused: boolean;
  relu: boolean;
  /** [N, H, W, C] added before the ReLU. */
  residual?: tf.Tensor4D;
}

/** Output of {@linkcode batchNormLayer}. */
export interface BatchNormLayerResult {
  /** [N, H, W, C] */
  y: tf.Tensor4D;
  /**
   * Training only: the layer's next [4, C] statistics (this batch's mean and biased variance, running_mean and
   * running_var moved toward them with PyTorch's momentum 0.1 and unbiased variance). Not differentiable.
   */
  stats?: tf.Tensor2D;
}

/** Rows `row` and `row + 1` of [4, C] statistics as two [C] tensors. */
export function statsRows(stats: tf.Tensor2D, row: number): [tf.Tensor1D, tf.Tensor1D] {
  const c = stats.shape[1];
  return [0, 1].map((i) => tf.reshape(tf.slice(stats, [row + i, 0], [1, c]), [c]) as tf.Tensor1D) as [
    tf.Tensor1D,
    tf.Tensor1D,
  ];
}

/**
 * Batch norm over the N, H, W axes of `x` ([N, H, W, C]) as PyTorch's BatchNorm2d (eps 1e-5, momentum 0.1), then
 * `+ residual` and ReLU when asked. Tensors it returns belong to the caller's scope.
 */
export function batchNormLayer(
  x: tf.Tensor4D,
  t: BatchNormTensors,
  options: BatchNormLayerOptions,
): BatchNormLayerResult {
  const { relu, residual } = options;
  if (options.fused) {
    if (!options.training) return { y: batchNormEval(x, t.gamma, t.beta, t.stats, { eps: BN_EPS, relu, residual }) };
    const running = { stats: t.stats, momentum: BN_MOMENTUM };
    return batchNormTrain(x, t.gamma, t.beta, { eps: BN_EPS, relu, residual, running });
  }
  const finish = (normalized: tf.Tensor4D) => {
    const sum = residual ? tf.add(normalized, residual) as tf.Tensor4D : normalized;
    return relu ? tf.relu(sum) : sum;
  };
  const [runningMean, runningVar] = statsRows(t.stats, BN_STATS_ROWS.runningMean);
  if (!options.training) return { y: finish(tf.batchNorm(x, runningMean, runningVar, t.beta, t.gamma, BN_EPS)) };
  const { mean, variance } = tf.moments(x, [0, 1, 2]); // [C], biased
  const y = finish(tf.batchNorm(x, mean as tf.Tensor1D, variance as tf.Tensor1D, t.beta, t.gamma, BN_EPS));
  const count = x.size / x.shape[3];
  const unbiased = tf.mul(variance, count / Math.max(count - 1, 1));
  const stats = tf.stack([
    mean,
    variance,
    tf.add(tf.mul(runningMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)),
    tf.add(tf.mul(runningVar, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)),
  ]) as tf.Tensor2D;
  return { y, stats };
}
