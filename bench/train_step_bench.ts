/**
 * Times the real training step (`train/train_step.ts`: forward, softmax cross-entropy, backward, SGD with Nesterov
 * momentum and weight decay, BN running statistics) of a ResNet on random data, synchronising once after all timed
 * steps so that the GPU queue stays full, and counts the WebGPU calls of the timed steps ({@linkcode GpuCallCounts}).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ResNet } from "../models/resnet.ts";
import { defaultWeightDecayFilter, SGD } from "../train/sgd.ts";
import { makeTrainStep } from "../train/train_step.ts";
import { type GpuCallCounts, installGpuCallCounter } from "./gpu_call_counter.ts";

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
  /**
   * Compute dispatches per timed step. This and the other `…PerStep` counts are totals over the timed steps, from
   * the first step call to the end of the one readback after the last (whose submit flushes the last step's work),
   * divided by the number of steps; exact integers with one timed step.
   */
  dispatchesPerStep: number;
  /** `GPUQueue.submit` calls per timed step (see `dispatchesPerStep`). */
  submitsPerStep: number;
  /** GPU buffers created per timed step, after warm-up filled tfjs's buffer pool (see `dispatchesPerStep`). */
  buffersCreatedPerStep: number;
  /** Bytes the host wrote for the GPU per timed step: uniforms and tensor uploads (see `dispatchesPerStep`). */
  bytesUploadedPerStep: number;
  /** Bind groups created per timed step (see `dispatchesPerStep`). */
  bindGroupsPerStep: number;
  /**
   * Mean wall-clock milliseconds of the step function call itself: tfjs's op dispatch and autodiff, our kernels'
   * setup, bind-group creation and command encoding, and the submits tfjs makes on the way (every 15 dispatches).
   * It excludes the readback after the last step (the wait for the GPU and the final submit). Nothing in a step
   * waits for the GPU, so this is the CPU cost of issuing a step; on a software adapter the GPU work runs on the
   * same CPU cores meanwhile and competes with it.
   */
  cpuMsPerStep: number;
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
    let loss = NaN, stepMs = 0;
    for (let i = 0; i < n; i++) {
      const s0 = performance.now();
      const out = step(x, labels, 0.01);
      stepMs += performance.now() - s0;
      if (i === n - 1) loss = (await out.loss.data())[0];
      tf.dispose([out.loss, out.correct]);
    }
    return { seconds: (performance.now() - t0) / 1000, loss, stepMs };
  };
  try {
    if (warmup > 0) await run(warmup);
    const counter = installGpuCallCounter();
    let timed: Awaited<ReturnType<typeof run>>, counts: GpuCallCounts;
    try {
      timed = await run(steps);
      counts = counter.counts();
    } finally {
      counter.remove();
    }
    const { seconds, loss, stepMs } = timed;
    return {
      imagesPerSecond: (batchSize * steps) / seconds,
      msPerStep: (seconds / steps) * 1000,
      steps,
      lastLoss: loss,
      dispatchesPerStep: counts.dispatches / steps,
      submitsPerStep: counts.submits / steps,
      buffersCreatedPerStep: counts.buffersCreated / steps,
      bytesUploadedPerStep: counts.bytesUploaded / steps,
      bindGroupsPerStep: counts.bindGroupsCreated / steps,
      cpuMsPerStep: stepMs / steps,
    };
  } finally {
    tf.dispose([x, labels]);
    sgd.dispose();
  }
}
