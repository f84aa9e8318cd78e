/**
 * Training-mode batch norm (+ residual) (+ ReLU) in few dispatches: one forward (per-channel statistics, which also
 * move the running statistics, then normalise + residual + ReLU) and one backward (the weight and bias gradients, then
 * the input gradient and the residual's) while one chunk of rows covers the tensor, else three each way (partials,
 * totals, element-wise). The composite `tf.moments` + `tf.batchNorm` + `tf.add` + `tf.relu` and PyTorch's
 * running-statistics update as tfjs ops take about 15 forward and 15 backward. The result matches the composite to 1e-4
 * relative.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { isSoftwareAdapter } from "./webgpu_backend.ts";
import { allocateTensor } from "./direct_program.ts";
import { bnChunking, type BnSpec, runBnBackward, runBnForward } from "./batch_norm_programs.ts";

/** Options of {@linkcode batchNormTrain}. */
export interface BatchNormTrainOptions {
  /** Added to the variance before the square root (PyTorch: 1e-5). */
  eps: number;
  /** Apply ReLU to the output (fused; its gradient mask is taken from the output). */
  relu: boolean;
  /**
   * [N, H, W, C] added to the normalised output before the ReLU (a residual block's shortcut, fused); it receives the
   * gradient that reaches the sum.
   */
  residual?: tf.Tensor4D;
  /**
   * Also move running statistics toward this batch's as PyTorch does: `stats` is the layer's current [4, C]
   * statistics tensor (running_mean and running_var in rows 2-3, see `BN_STATS_ROWS`); `momentum` PyTorch's
   * (0.1 by default there).
   */
  running?: { stats: tf.Tensor2D; momentum: number };
}

/** Output of {@linkcode batchNormTrain}. */
export interface BatchNormTrainResult {
  /** [N, H, W, C] normalised, scaled, shifted (+ residual) (and rectified) input. */
  y: tf.Tensor4D;
  /**
   * [2, C]: the batch mean and biased variance (divided by N·H·W, as used for normalisation); with `running`, [4, C]:
   * then rows 2-3 are the updated running_mean and running_var (unbiased variance). Statistics only: no gradient
   * flows back through them (as with PyTorch's running statistics).
   */
  stats: tf.Tensor2D;
}

/**
 * Batch norm in training mode over the N, H, W axes of `x` ([N, H, W, C]), optionally plus a residual and followed by
 * ReLU, with a fused backward (gradients for `x`, `gamma`, `beta` and the residual). Requires the `webgpu` backend and
 * float32.
 * @throws {Error} on another backend, a non-4-D or non-float32 `x`, parameters whose length is not C, a residual of
 *   another shape, or running statistics that are not [4, C] or a momentum outside [0, 1].
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  options: BatchNormTrainOptions,
): BatchNormTrainResult {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`batchNormTrain: needs the webgpu backend, the active backend is "${tf.getBackend()}"`);
  }
  if (x.rank !== 4 || x.dtype !== "float32") {
    throw new Error(`batchNormTrain: x must be a float32 [N, H, W, C] tensor, got ${x.dtype} [${x.shape}]`);
  }
  const c = x.shape[3];
  if (gamma.size !== c || beta.size !== c) {
    throw new Error(`batchNormTrain: gamma and beta must have C = ${c} elements, got ${gamma.size} and ${beta.size}`);
  }
  const { eps, relu, residual, running } = options;
  if (residual && !tf.util.arraysEqual(residual.shape, x.shape)) {
    throw new Error(`batchNormTrain: the residual must have x's shape [${x.shape}], got [${residual.shape}]`);
  }
  if (running) {
    if (!tf.util.arraysEqual(running.stats.shape, [4, c])) {
      throw new Error(`batchNormTrain: running statistics must be [4, ${c}], got [${running.stats.shape}]`);
    }
    if (!(running.momentum >= 0 && running.momentum <= 1)) {
      throw new RangeError(`batchNormTrain: momentum must be in [0, 1], got ${running.momentum}`);
    }
  }
  const rows = x.size / c;
  // A software adapter's dispatch costs as much as summing a thousand rows on one of its threads: split no finer.
  const chunking = isSoftwareAdapter() ? bnChunking(rows, 8, 1024) : bnChunking(rows, 512);
  const spec: BnSpec = {
    shape: x.shape,
    chunking,
    eps,
    relu,
    residual: !!residual,
    ...(running ? { momentum: running.momentum } : {}),
  };
  // [2, C] or [4, C], written by the forward program: constants for autodiff, whose effect on y is accounted for in
  // the fused backward below.
  const stats = allocateTensor([running ? 4 : 2, c]) as tf.Tensor2D;
  const forward = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, g, b] = args as tf.Tensor[];
    const res = residual ? args[3] as tf.Tensor : undefined; // else args[3] is the save function
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const y = allocateTensor(x.shape) as tf.Tensor4D;
    runBnForward(spec, { x: xIn, gamma: g, beta: b, residual: res, running: running?.stats, stats, y });
    save([xIn, y, g, stats]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ys, gs, st] = saved;
        const [dGamma, dBeta, dx] = [allocateTensor([c]), allocateTensor([c]), allocateTensor(x.shape)];
        // With a residual, its gradient dz = dy · [y > 0] comes out of the same pass as dx.
        const dResidual = residual ? allocateTensor(x.shape) : undefined;
        runBnBackward(spec, { dy, y: ys, x: xs, stats: st, gamma: gs, dGamma, dBeta, dx, dResidual });
        return dResidual ? [dx, dGamma, dBeta, dResidual] : [dx, dGamma, dBeta];
      },
    };
  });
  const y = (residual ? forward(x, gamma, beta, residual) : forward(x, gamma, beta)) as tf.Tensor4D;
  return { y, stats };
}
