/**
 * One optimisation step: forward in training mode, loss, backward, optional gradient clipping, SGD update and the
 * BN running-statistics update, without a single GPU readback.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BatchStat, ResNet } from "../models/resnet.ts";
import { clipGradNorm, lossAndTop1 } from "./losses.ts";
import type { SGD } from "./sgd.ts";
import { submitPendingWork } from "../kernels/bind_group_cache.ts";
import { mixBatch, type MixParams } from "../kernels/mix_batch.ts";

/** Loss options of a step. */
export interface StepOptions {
  labelSmoothing: number;
  /** Clip the global gradient 2-norm to this value; 0 = no clipping. */
  clipGradNorm: number;
  /** Test hook: multiply the loss by NaN (simulates a diverging run). */
  injectNaN?: boolean;
}

/** What a step leaves on the GPU; the caller owns (and disposes) both scalars. */
export interface StepOutput {
  /** Mean loss of the batch. */
  loss: tf.Scalar;
  /** Number of top-1 correct predictions in the batch (float32). */
  correct: tf.Scalar;
}

/**
 * Builds the step function of `model` and `optimizer`. The returned function takes `x` ([N, H, W, 3]) and `labels`
 * ([N] int32), updates the model in place and returns the batch's loss and correct count, still on the GPU. With
 * `mix` (mixup or cutmix, `data/batch_mix.ts`), the batch is first mixed with its roll by one (one more dispatch,
 * `kernels/mix_batch.ts`), the loss takes the soft targets and `correct` counts each sample's dominant label.
 */
export function makeTrainStep(
  model: ResNet,
  optimizer: SGD,
  options: StepOptions,
): (x: tf.Tensor4D, labels: tf.Tensor1D, lr: number, mix?: MixParams | null) => StepOutput {
  const params = model.parameters();
  const variables = [...params.values()];
  // tfjs keys gradients by variable name, which is unique per model instance; map back to torchvision names.
  const nameOf = new Map([...params].map(([name, v]) => [v.name, name]));
  return (x, labels, lr, mix) => {
    let stats: BatchStat[] = [];
    let correct: tf.Scalar | undefined;
    const input = mix ? mixBatch(x, mix) : x; // [N, H, W, 3]
    const { value: loss, grads } = tf.variableGrads(() => {
      const r = model.forward(input, { training: true });
      stats = r.batchStats;
      const smoothing = options.labelSmoothing;
      const { loss: l, correct: c } = lossAndTop1(r.logits, labels, smoothing, model.fusedKernels, mix ?? undefined);
      correct = tf.keep(c);
      return options.injectNaN ? l.mul(NaN) : l;
    }, variables);
    let named = new Map(Object.entries(grads).map(([k, g]) => [nameOf.get(k) ?? k, g]));
    if (options.clipGradNorm > 0) {
      const clipped = clipGradNorm(named, options.clipGradNorm); // new tensors: the unclipped ones go
      tf.dispose([...named.values()]);
      clipped.totalNorm.dispose();
      named = clipped.grads;
    }
    optimizer.step(named, lr);
    tf.dispose([...named.values()]);
    model.updateRunningStats(stats);
    if (input !== x) input.dispose();
    // Every step from the same buffer-pool state: the same buffers, so the cached bind groups are hit.
    submitPendingWork();
    return { loss, correct: correct! };
  };
}
