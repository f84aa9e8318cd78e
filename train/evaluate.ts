/**
 * Evaluation of a model over a whole loader: loss, top-1, top-5, per-class accuracy and the confusion matrix, and
 * optionally every logit in dataset order (for `--save-logits`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { BatchLoader } from "../data/loaders.ts";
import { throwOnWebGPUErrors } from "../kernels/webgpu_backend.ts";
import type { ResNet } from "../models/resnet.ts";
import { EvalAccumulator, type EvalResult } from "./metrics.ts";

export type { EvalResult };

/** Output of {@linkcode evaluate}. */
export interface Evaluation {
  result: EvalResult;
  /** With `keepLogits`: [numImages, numClasses] row-major, in the loader's (dataset) order. */
  logits?: Float32Array;
}

/**
 * Runs `model` in evaluation mode (running BN statistics) over every batch of `loader` (epoch 0: evaluation
 * loaders keep dataset order and the last partial batch). One readback per batch.
 */
export async function evaluate(
  model: ResNet,
  loader: BatchLoader,
  numClasses: number,
  options: {
    classNames?: string[];
    keepLogits?: boolean;
    /** After each batch: images evaluated so far, of `total` (the loader's). */
    onImages?: (done: number, total: number) => void;
  } = {},
): Promise<Evaluation> {
  const acc = new EvalAccumulator(numClasses, options.classNames);
  const kept = options.keepLogits ? new Float32Array(loader.numImages * numClasses) : undefined;
  let at = 0, done = 0;
  for await (const b of loader.batches(0)) {
    const logits = tf.tidy(() => {
      const x = tf.tensor4d(b.images, [b.size, b.height, b.width, 3]);
      return model.forward(x, { training: false }).logits; // [N, numClasses]
    });
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    throwOnWebGPUErrors("during evaluation");
    acc.addLogits(data, b.labels);
    kept?.set(data, at);
    at += data.length;
    done += b.size;
    options.onImages?.(done, loader.numImages);
  }
  return { result: acc.result(), logits: kept };
}
