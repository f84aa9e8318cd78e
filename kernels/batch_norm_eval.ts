/**
 * Evaluation-mode batch norm (+ residual) (+ ReLU) in one dispatch, normalising with the running statistics held in
 * rows 2-3 of a layer's [4, C] statistics tensor (`BN_STATS_ROWS`, as {@linkcode batchNormTrain} writes them).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { allocateTensor } from "./direct_program.ts";
import { BN_STATS_ROWS, runBnNormalize } from "./batch_norm_programs.ts";

/** Options of {@linkcode batchNormEval}. */
export interface BatchNormEvalOptions {
  /** Added to the running variance before the square root (PyTorch: 1e-5). */
  eps: number;
  /** Apply ReLU to the output. */
  relu: boolean;
  /** [N, H, W, C] added before the ReLU (a residual block's shortcut). */
  residual?: tf.Tensor4D;
}

/**
 * y = (x − running_mean) / sqrt(running_var + eps) · γ + β (+ residual), then ReLU if asked, for `x` [N, H, W, C] and
 * `stats` [4, C]. Not differentiable (evaluation only). Requires the `webgpu` backend and float32.
 * @throws {Error} on another backend, a non-4-D or non-float32 `x`, or parameters, statistics or a residual whose
 *   shapes do not fit x.
 */
export function batchNormEval(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  stats: tf.Tensor2D,
  options: BatchNormEvalOptions,
): tf.Tensor4D {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`batchNormEval: needs the webgpu backend, the active backend is "${tf.getBackend()}"`);
  }
  if (x.rank !== 4 || x.dtype !== "float32") {
    throw new Error(`batchNormEval: x must be a float32 [N, H, W, C] tensor, got ${x.dtype} [${x.shape}]`);
  }
  const c = x.shape[3];
  if (gamma.size !== c || beta.size !== c || !tf.util.arraysEqual(stats.shape, [4, c])) {
    throw new Error(
      `batchNormEval: expected gamma and beta of ${c} elements and stats [4, ${c}], got ${gamma.size}, ${beta.size} ` +
        `and [${stats.shape}]`,
    );
  }
  const { eps, relu, residual } = options;
  if (residual && !tf.util.arraysEqual(residual.shape, x.shape)) {
    throw new Error(`batchNormEval: the residual must have x's shape [${x.shape}], got [${residual.shape}]`);
  }
  const y = allocateTensor(x.shape) as tf.Tensor4D;
  runBnNormalize(
    { shape: x.shape, eps, relu, residual: !!residual },
    { x, stats, gamma, beta, residual, y },
    BN_STATS_ROWS.runningMean,
  );
  return y;
}
