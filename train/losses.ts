/**
 * The training loss and gradient clipping, as tfjs ops that stay on the GPU (no readback).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fusedCrossEntropy, type LabelMix } from "../kernels/fused_cross_entropy.ts";

export type { LabelMix };
import { topKCorrect } from "./metrics.ts";
import { sumScalars } from "./sum_scalars.ts";

/**
 * Mean cross-entropy with label smoothing, equal to
 * `torch.nn.functional.cross_entropy(logits, labels, label_smoothing=eps)` (reduction "mean"): the target of sample
 * `i` is `(1 - eps) * onehot(labels[i]) + eps / K`, and the loss is `-sum_k target[i, k] * log_softmax(logits)[i, k]`
 * averaged over the batch. The log-softmax is tfjs's max-shifted one, so large logits do not overflow.
 *
 * Labels must lie in [0, K): like PyTorch on the GPU this is not checked per element (that would need a readback);
 * an out-of-range label contributes only its smoothing term.
 *
 * With `mix` (a batch mixed with its roll by one: mixup, cutmix), the target is torchvision's soft target with the
 * smoothing applied on top, as PyTorch's cross-entropy does for probability targets:
 * `(1 - eps) * (lambda * onehot(labels[i]) + (1 - lambda) * onehot(labels[i - 1])) + eps / K`.
 * @param logits [N, K] float32 scores.
 * @param labels [N] int32 class indices.
 * @param labelSmoothing eps in [0, 1].
 * @returns a scalar; differentiable with respect to `logits`.
 */
export function softmaxCrossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  labelSmoothing = 0,
  mix?: LabelMix,
): tf.Scalar {
  if (logits.rank !== 2) throw new Error(`softmaxCrossEntropy: logits must be [N, K], got shape [${logits.shape}]`);
  if (labels.rank !== 1 || labels.dtype !== "int32") {
    throw new Error(`softmaxCrossEntropy: labels must be an int32 [N] tensor, got ${labels.dtype} [${labels.shape}]`);
  }
  const [n, k] = logits.shape;
  if (labels.shape[0] !== n) {
    throw new Error(`softmaxCrossEntropy: ${n} rows of logits but ${labels.shape[0]} labels`);
  }
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new RangeError(`softmaxCrossEntropy: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  }
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits); // [N, K]
    // Smoothed target [N, K]: (1 - eps) * onehot + eps / K; mixed, (1 - eps) * (λ onehot + (1 - λ) rolled) + eps / K.
    const target = mix
      ? tf.add(
        tf.mul(
          tf.add(
            tf.mul(tf.oneHot(labels, k), mix.lambda),
            tf.mul(tf.oneHot(rollByOne(labels), k), 1 - mix.lambda),
          ),
          1 - labelSmoothing,
        ),
        labelSmoothing / k,
      )
      : tf.oneHot(labels, k, 1 - labelSmoothing + labelSmoothing / k, labelSmoothing / k, "float32");
    return tf.div(tf.neg(tf.sum(tf.mul(target, logp))), n) as tf.Scalar;
  });
}

/** `labels` rolled by one along the batch, as `torch.roll(labels, 1, 0)`: [y[N-1], y[0], ..., y[N-2]]. */
export function rollByOne<T extends tf.Tensor>(x: T): T {
  const n = x.shape[0];
  if (n < 2) return tf.clone(x);
  return tf.concat([tf.slice(x, [n - 1], [1]), tf.slice(x, [0], [n - 1])], 0) as T;
}

/**
 * What a training step needs of its logits: {@linkcode softmaxCrossEntropy} (differentiable) and the number of
 * samples whose label is the top-1 class (float32, ties to the lower class index); with `mix`, the soft-target loss
 * and top-1 against each sample's dominant label (its own when λ ≥ 0.5, else the previous sample's). With `fused`
 * (default: on webgpu) one dispatch computes both and one more the gradient (`kernels/fused_cross_entropy.ts`); else
 * they are tfjs ops.
 */
export function lossAndTop1(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  labelSmoothing = 0,
  fused = tf.getBackend() === "webgpu",
  mix?: LabelMix,
): { loss: tf.Scalar; correct: tf.Scalar } {
  if (fused) {
    return fusedCrossEntropy(logits, labels, labelSmoothing, mix);
  }
  const loss = softmaxCrossEntropy(logits, labels, labelSmoothing, mix);
  const correct = tf.tidy(() => {
    const dominant = mix && mix.lambda < 0.5 ? rollByOne(labels) : labels;
    return tf.cast(topKCorrect(logits, dominant, 1), "float32") as tf.Scalar;
  });
  return { loss, correct };
}

/** Result of {@linkcode clipGradNorm}. */
export interface ClippedGrads {
  /** The gradients scaled by `min(1, maxNorm / (totalNorm + 1e-6))`, same names and order as the input. */
  grads: Map<string, tf.Tensor>;
  /** The 2-norm of all gradients together, before clipping (a GPU scalar; read it back only when logging). */
  totalNorm: tf.Scalar;
}

/**
 * Gradient-norm clipping like `torch.nn.utils.clip_grad_norm_(params, maxNorm, norm_type=2)`: the total norm is the
 * 2-norm of the concatenation of all gradients, and every gradient is multiplied by
 * `clamp(maxNorm / (total + 1e-6), max=1)` — also when no clipping is needed, as PyTorch does, so there is no
 * data-dependent branch and no GPU readback. A non-finite total norm makes the gradients non-finite (PyTorch's
 * `error_if_nonfinite=False`); the trainer's non-finite-loss check catches that.
 *
 * The input gradients are not disposed; the caller owns both the inputs and the returned tensors.
 */
export function clipGradNorm(grads: Map<string, tf.Tensor>, maxNorm: number): ClippedGrads {
  if (!(maxNorm > 0) || !Number.isFinite(maxNorm)) {
    throw new RangeError(`clipGradNorm: maxNorm must be a finite number > 0, got ${maxNorm}`);
  }
  const names = [...grads.keys()];
  if (names.length === 0) return { grads: new Map(), totalNorm: tf.scalar(0) };
  const [totalNorm, ...scaled] = tf.tidy(() => {
    // Sum of squares of every gradient, then one sqrt: [] each.
    const squares = names.map((n) => tf.sum(tf.square(grads.get(n)!)));
    const total = tf.sqrt(sumScalars(squares)) as tf.Scalar;
    const coef = tf.minimum(tf.div(maxNorm, tf.add(total, 1e-6)), 1);
    return [total, ...names.map((n) => tf.mul(grads.get(n)!, coef))];
  });
  return { grads: new Map(names.map((n, i) => [n, scaled[i]])), totalNorm: totalNorm as tf.Scalar };
}
