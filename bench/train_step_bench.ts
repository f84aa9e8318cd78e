/**
 * Times the real training step (`train/train_step.ts`: forward, softmax cross-entropy, backward, SGD with Nesterov
 * momentum and weight decay, BN running statistics) of a ResNet on random data, synchronising once after all timed
 * steps so that the GPU queue stays full.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ResNet } from "../models/resnet.ts";
import { defaultWeightDecayFilter, SGD } from "../train/sgd.ts";
import { makeTrainStep } from "../train/train_step.ts";

/** What {@linkcode benchTrainStep} measures. */
export interface TrainBenchOptions {
  /** Images per step. */
  batchSize: number;
  /** Input height and width. */
  input: number;
  /** Untimed steps first (pipeline compilation, buffer pool warm-up). */
  warmup: number;
  /** Timed steps. */
  steps: number;
  /** SGD as our fused kernels (default) or as plain tfjs ops (the stock baseline). */
  sgd?: "fused" | "ops";
}

/** Result of {@linkcode benchTrainStep}. */
export interface TrainBenchResult {
  /** Throughput over the timed steps. */
  imagesPerSecond: number;
  /** Mean wall time of one step, in milliseconds. */
  msPerStep: number;
  /** Timed steps. */
  steps: number;
  /** Loss of the last step (a sanity check that the step computed something finite). */
  lastLoss: number;
}

/** Runs `options.warmup` then `options.steps` training steps of `model` with whatever kernels are registered. */
export async function benchTrainStep(model: ResNet, options: TrainBenchOptions): Promise<TrainBenchResult> {
  const { batchSize, input, warmup, steps } = options;
  if (!(steps >= 1)) throw new RangeError(`benchTrainStep: steps must be >= 1, got ${steps}`);
  const sgd = new SGD(model.parameters(), {
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
    decay: defaultWeightDecayFilter,
    implementation: options.sgd ?? "auto",
  });
  const step = makeTrainStep(model, sgd, { labelSmoothing: 0.1, clipGradNorm: 0 });
  const x = tf.randomNormal([batchSize, input, input, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const labels = tf.tidy(() =>
    tf.randomUniform([batchSize], 0, model.spec.numClasses, "float32", 2).floor().toInt()
  ) as tf.Tensor1D;
  const run = async (n: number) => {
    const t0 = performance.now();
    let loss = NaN;
    for (let i = 0; i < n; i++) {
      const out = step(x, labels, 0.01);
      if (i === n - 1) loss = (await out.loss.data())[0];
      tf.dispose([out.loss, out.correct]);
    }
    return { seconds: (performance.now() - t0) / 1000, loss };
  };
  try {
    if (warmup > 0) await run(warmup);
    const { seconds, loss } = await run(steps);
    return {
      imagesPerSecond: (batchSize * steps) / seconds,
      msPerStep: (seconds / steps) * 1000,
      steps,
      lastLoss: loss,
    };
  } finally {
    tf.dispose([x, labels]);
    sgd.dispose();
  }
}
