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
import { type GpuCallCounter, type GpuCallCounts, installGpuCallCounter } from "./gpu_call_counter.ts";

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
   * Mean milliseconds of JavaScript and command encoding per step: the wall time of the step function call (tfjs's
   * op dispatch and autodiff, our kernels' setup, uniform writes, bind-group creation and encoding) minus the time
   * spent inside the `GPUQueue.submit` calls tfjs makes on the way (every 15 dispatches; see `submitMsPerStep`).
   * Excludes the readback after the last step. Nothing else in a step waits for the GPU, so this is the CPU cost
   * of issuing a step, the part that grows with the number of dispatches.
   */
  cpuMsPerStep: number;
  /**
   * Mean milliseconds per step spent inside `GPUQueue.submit` during the step calls. On a GPU, driver work (small);
   * on Mesa's llvmpipe/lavapipe also the GPU work, which runs synchronously inside submit there.
   */
  submitMsPerStep: number;
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
  /** `n` steps and one readback after the last; with `counter`, also the time of the step calls and their submits. */
  const run = async (n: number, counter?: GpuCallCounter) => {
    const submitMs = () => counter?.counts().submitMs ?? 0;
    const t0 = performance.now();
    let loss = NaN, stepMs = 0, stepSubmitMs = 0;
    for (let i = 0; i < n; i++) {
      const s0 = performance.now(), submitted0 = submitMs();
      const out = step(x, labels, 0.01);
      stepMs += performance.now() - s0;
      stepSubmitMs += submitMs() - submitted0;
      if (i === n - 1) loss = (await out.loss.data())[0];
      tf.dispose([out.loss, out.correct]);
    }
    return { seconds: (performance.now() - t0) / 1000, loss, stepMs, stepSubmitMs };
  };
  try {
    if (warmup > 0) await run(warmup);
    const counter = installGpuCallCounter();
    let timed: Awaited<ReturnType<typeof run>>, counts: GpuCallCounts;
    try {
      timed = await run(steps, counter);
      counts = counter.counts();
    } finally {
      counter.remove();
    }
    const { seconds, loss, stepMs, stepSubmitMs } = timed;
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
      cpuMsPerStep: (stepMs - stepSubmitMs) / steps,
      submitMsPerStep: stepSubmitMs / steps,
    };
  } finally {
    tf.dispose([x, labels]);
    step.dispose();
    sgd.dispose();
  }
}
