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
import type { Collective } from "../dist/collective.ts";
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

/** Forward and backward of one batch: what the update needs, nothing applied yet. */
interface Gradients {
  loss: tf.Scalar;
  correct: tf.Scalar;
  /** By torchvision name, in the model's parameter order. */
  grads: Map<string, tf.Tensor>;
  stats: BatchStat[];
  /** The mixed batch, disposed once the step is applied; undefined without mixing. */
  mixed?: tf.Tensor4D;
}

/** {@linkcode makeTrainStep}'s step function; `dispose()` frees the one tensor it keeps (the loss's gradient seed). */
export interface TrainStep {
  (x: tf.Tensor4D, labels: tf.Tensor1D, lr: number, mix?: MixParams | null): StepOutput;
  dispose(): void;
}

/** {@linkcode makeDataParallelStep}'s step function; `dispose()` as {@linkcode TrainStep}'s. */
export interface DataParallelStep {
  (x: tf.Tensor4D, labels: tf.Tensor1D, lr: number, step: number, mix?: MixParams | null): Promise<StepOutput>;
  dispose(): void;
}

/**
 * The two halves of a step: gradients of a batch, and their application (clip, SGD, BN running statistics), and
 * `dispose` for the seed they keep.
 */
function stepParts(model: ResNet, optimizer: SGD, options: StepOptions) {
  const params = model.parameters();
  // As tf.variableGrads: a variable made non-trainable (frozen) gets no gradient and is not updated.
  const order = [...params.keys()].filter((n) => params.get(n)!.trainable);
  const variables = order.map((n) => params.get(n)!);
  // d loss / d loss: tfjs's variableGrads makes `ones([])` each step, an upload through a new staging buffer (the one
  // buffer a steady-state step created); this one is uploaded once and kept. The engine never disposes a given seed.
  const seed = tf.keep(tf.scalar(1));
  const gradients = (x: tf.Tensor4D, labels: tf.Tensor1D, mix?: MixParams | null): Gradients => {
    let stats: BatchStat[] = [];
    let correct: tf.Scalar | undefined;
    const input = mix ? mixBatch(x, mix) : x; // [N, H, W, 3]
    const { value, grads } = tf.engine().gradients(
      () => {
        const r = model.forward(input, { training: true });
        stats = r.batchStats;
        const smoothing = options.labelSmoothing;
        const { loss: l, correct: c } = lossAndTop1(r.logits, labels, smoothing, model.fusedKernels, mix ?? undefined);
        correct = tf.keep(c);
        return options.injectNaN ? l.mul(NaN) : l;
      },
      variables,
      seed,
      true,
    );
    // In the parameter order: every rank of a data-parallel job flattens them alike. A parameter the loss does not
    // reach (none in a ResNet) gets no gradient, as with tf.variableGrads; reaching none is an error, as there.
    const named = new Map(order.flatMap((n, i) => grads[i] ? [[n, grads[i]] as const] : []));
    if (named.size === 0) {
      tf.dispose([value, correct!, ...stats.map((s) => s.stats), ...(input !== x ? [input] : [])]);
      throw new Error(`the loss reaches none of the model's ${order.length} trainable parameters`);
    }
    return { loss: value as tf.Scalar, correct: correct!, grads: named, stats, mixed: input !== x ? input : undefined };
  };
  const apply = (g: Gradients, lr: number): StepOutput => {
    let named = g.grads;
    if (options.clipGradNorm > 0) {
      const clipped = clipGradNorm(named, options.clipGradNorm); // new tensors: the unclipped ones go
      tf.dispose([...named.values()]);
      clipped.totalNorm.dispose();
      named = clipped.grads;
    }
    optimizer.step(named, lr);
    tf.dispose([...named.values()]);
    model.updateRunningStats(g.stats);
    g.mixed?.dispose();
    // Every step from the same buffer-pool state: the same buffers, so the cached bind groups are hit.
    submitPendingWork();
    return { loss: g.loss, correct: g.correct };
  };
  return { gradients, apply, dispose: () => seed.dispose() };
}

/**
 * Builds the step function of `model` and `optimizer`. The returned function takes `x` ([N, H, W, 3]) and `labels`
 * ([N] int32), updates the model in place and returns the batch's loss and correct count, still on the GPU; its
 * `dispose()` frees the scalar it keeps. With
 * `mix` (mixup or cutmix, `data/batch_mix.ts`), the batch is first mixed with its roll by one (one more dispatch,
 * `kernels/mix_batch.ts`), the loss takes the soft targets and `correct` counts each sample's dominant label.
 */
export function makeTrainStep(
  model: ResNet,
  optimizer: SGD,
  options: StepOptions,
): TrainStep {
  const { gradients, apply, dispose } = stepParts(model, optimizer, options);
  return Object.assign(
    (x: tf.Tensor4D, labels: tf.Tensor1D, lr: number, mix?: MixParams | null) => apply(gradients(x, labels, mix), lr),
    { dispose },
  );
}

/**
 * The step of one rank of a data-parallel job (DDP's): gradients of this rank's share of the global batch, read back
 * into one flat host buffer ([sum of parameter sizes] float32, parameter order), summed over the ranks by
 * `collective`, divided by the number of ranks, uploaded, then clipped and applied as {@linkcode makeTrainStep}
 * does, identically on every rank. Batch-norm statistics stay per rank (no SyncBN). With one rank it is
 * {@linkcode makeTrainStep} plus a readback.
 * @throws {CollectiveTimeoutError} (rejects) when another rank does not join the all-reduce in time.
 */
export function makeDataParallelStep(
  model: ResNet,
  optimizer: SGD,
  options: StepOptions,
  collective: Collective,
): DataParallelStep {
  const { gradients, apply, dispose } = stepParts(model, optimizer, options);
  const run = async (x: tf.Tensor4D, labels: tf.Tensor1D, lr: number, step: number, mix?: MixParams | null) => {
    const g = gradients(x, labels, mix);
    let flat: tf.Tensor1D | undefined;
    try {
      const names = [...g.grads.keys()];
      const shapes = names.map((n) => g.grads.get(n)!.shape);
      flat = tf.tidy(() => tf.concat(names.map((n) => g.grads.get(n)!.reshape([-1])))) as tf.Tensor1D; // [P]
      const host = (await flat.data()) as Float32Array;
      flat.dispose();
      tf.dispose([...g.grads.values()]);
      await collective.allReduceSum(host, `the gradient all-reduce of step ${step}`);
      const scale = 1 / collective.size;
      for (let i = 0; i < host.length; i++) host[i] *= scale;
      const parts = tf.tidy(() => {
        const split = tf.split(tf.tensor1d(host), shapes.map((s) => tf.util.sizeFromShape(s)));
        return split.map((t, i) => t.reshape(shapes[i]));
      });
      g.grads = new Map(names.map((n, i) => [n, parts[i]]));
    } catch (e) {
      // A failed readback or all-reduce (a timeout a library caller may catch) frees what the step holds.
      tf.dispose([g.loss, g.correct, ...g.grads.values(), ...g.stats.map((s) => s.stats)]);
      flat?.dispose();
      g.mixed?.dispose();
      throw e;
    }
    return apply(g, lr);
  };
  return Object.assign(run, { dispose });
}
