/**
 * `deno task bench --replay`: the CPU cost of a training step issued by tfjs next to the same step replayed with raw
 * WebGPU (`step_replay.ts`), in one run on one model. Both sides take a new batch, new labels and a new learning rate
 * every step, as the trainer does: tfjs uploads new tensors, the replay writes into its own buffers.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import type { ResNet } from "../models/resnet.ts";
import { defaultWeightDecayFilter, SGD } from "../train/sgd.ts";
import { makeTrainStep } from "../train/train_step.ts";
import { type GpuCallCounts, installGpuCallCounter } from "./gpu_call_counter.ts";
import { gpuBufferOf, installStepRecorder } from "./step_recorder.ts";
import { recordReplay } from "./step_replay.ts";
import type { TrainBenchOptions } from "./train_step_bench.ts";

/** What {@linkcode benchStepReplay} measures; CPU ms as in `TrainBenchResult.cpuMsPerStep` (wall minus submits). */
export interface StepReplayBenchResult {
  /** Steps in the replayed cycle (2 for a ResNet: the BN statistics' buffers alternate). */
  period: number;
  /** Timed steps of each side: `--steps` rounded up to whole cycles in each of 4 blocks per side. */
  steps: number;
  /** tfjs: milliseconds of JavaScript and encoding per step (tensor creation and the step call, minus submits). */
  tfjsCpuMsPerStep: number;
  /** tfjs: milliseconds inside `queue.submit` per step (on lavapipe, the GPU work). */
  tfjsSubmitMsPerStep: number;
  /** tfjs: wall milliseconds per step, one readback after the last. */
  tfjsMsPerStep: number;
  /** tfjs: dispatches and submits per step (uploads' copies not counted). */
  tfjsDispatchesPerStep: number;
  tfjsSubmitsPerStep: number;
  /** Replay: milliseconds of writes and encoding per step (the `run` call minus its submit). */
  replayCpuMsPerStep: number;
  /** Replay: milliseconds inside its one `queue.submit` per step. */
  replaySubmitMsPerStep: number;
  /** Replay: wall milliseconds per step, one readback after the last. */
  replayMsPerStep: number;
  replayDispatchesPerStep: number;
  replaySubmitsPerStep: number;
}

/** Timed blocks per side, alternating: tfjs, replay, tfjs, ... */
const BLOCKS = 4;

/** Host data of a random batch: [N, H, W, 3] float32 and [N] int32 labels. */
function hostBatch(n: number, size: number, classes: number, seed: number) {
  let s = seed * 7919 + 1;
  const random = () => (s = (s * 16807) % 2147483647) / 2147483647;
  return {
    x: Float32Array.from({ length: n * size * size * 3 }, () => random() * 2 - 1),
    labels: Int32Array.from({ length: n }, () => Math.floor(random() * classes)),
  };
}

/**
 * Runs `options.warmup` tfjs steps, records four, then about `options.steps` timed steps of each side (rounded up to
 * whole cycles) in alternating blocks, tfjs then replay, on `model` (updated by all of them). Our kernels and the bind-group cache must be active.
 */
export async function benchStepReplay(model: ResNet, options: TrainBenchOptions): Promise<StepReplayBenchResult> {
  const { batchSize, input, warmup, steps } = options;
  if (!(steps >= 1)) throw new RangeError(`benchStepReplay: steps must be >= 1, got ${steps}`);
  // Before the first step of this learning-rate schedule: the replay rebuilds the SGD's bind groups those steps make.
  const recorder = installStepRecorder();
  const sgd = new SGD(model.parameters(), {
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
    decay: defaultWeightDecayFilter,
  });
  const step = makeTrainStep(model, sgd, { labelSmoothing: 0.1, clipGradNorm: 0 });
  try {
    const batches = [0, 1].map((seed) => hostBatch(batchSize, input, model.spec.numClasses, seed));
    const lrOf = (i: number) => 0.01 * (1 - i / (warmup + 2 * steps + 8)); // a schedule: new every step
    let i = 0;
    const tfjsStep = () => {
      const b = batches[i % 2];
      const lr = lrOf(i++);
      const x = tf.tensor4d(b.x, [batchSize, input, input, 3]);
      const labels = tf.tensor1d(b.labels, "int32");
      const out = step(x, labels, lr);
      const buffers = {
        lr,
        inputs: new Map([["x", gpuBufferOf(x)], ["labels", gpuBufferOf(labels)]]),
        outputs: new Map([["loss", gpuBufferOf(out.loss)], ["correct", gpuBufferOf(out.correct)]]),
      };
      tf.dispose([x, labels]);
      return { out, buffers };
    };
    while (i < warmup) {
      const { out } = tfjsStep();
      tf.dispose([out.loss, out.correct]);
    }
    /** Totals of timed blocks of steps of one side. */
    const totals = () => ({ steps: 0, cpu: 0, submit: 0, wall: 0, dispatches: 0, submits: 0 });
    /** Runs `n` steps through `one` (which returns a readback of its loss for the last), timed with a counter. */
    const timed = async (
      n: number,
      one: (last: boolean) => Promise<unknown> | undefined,
      sum: ReturnType<typeof totals>,
    ) => {
      const counter = installGpuCallCounter();
      let counts: GpuCallCounts;
      let cpu = 0, submit = 0;
      const t0 = performance.now();
      try {
        let readback: Promise<unknown> | undefined;
        for (let k = 0; k < n; k++) {
          const s0 = performance.now(), submitted = counter.counts().submitMs;
          readback = one(k === n - 1);
          cpu += performance.now() - s0;
          submit += counter.counts().submitMs - submitted;
        }
        await readback;
        counts = counter.counts();
      } finally {
        counter.remove();
      }
      sum.wall += performance.now() - t0;
      sum.steps += n;
      sum.cpu += cpu - submit;
      sum.submit += submit;
      sum.dispatches += counts.dispatches;
      sum.submits += counts.submits;
    };
    const tfjsBlock = (last: boolean) => {
      const { out } = tfjsStep();
      if (!last) {
        tf.dispose([out.loss, out.correct]);
        return undefined;
      }
      return out.loss.data().finally(() => tf.dispose([out.loss, out.correct]));
    };
    const device = (tf.backend() as WebGPUBackend).device;
    const replay = recordReplay(device, recorder, () => {
      const { out, buffers } = tfjsStep();
      tf.dispose([out.loss, out.correct]);
      return buffers;
    });
    try {
      const inputs = batches.map((b) =>
        new Map<string, ArrayBufferView<ArrayBuffer>>([["x", b.x], ["labels", b.labels]])
      );
      const replayBlock = (last: boolean) => {
        const outputs = replay.run(inputs[i % 2], lrOf(i++));
        return last ? replay.read(outputs.get("loss")!) : undefined;
      };
      // Alternating blocks, so that both sides see the same load on a shared machine. A block is a whole number of
      // cycles: after it tfjs's view of the buffers is right again, and its next step is the recorded cycle's first.
      const p = replay.period;
      const block = Math.max(p, Math.ceil(steps / BLOCKS / p) * p);
      const t = totals(), r = totals();
      for (let done = 0; done < steps; done += block) {
        await timed(block, tfjsBlock, t);
        await timed(block, replayBlock, r);
      }
      return {
        period: p,
        steps: t.steps,
        tfjsCpuMsPerStep: t.cpu / t.steps,
        tfjsSubmitMsPerStep: t.submit / t.steps,
        tfjsMsPerStep: t.wall / t.steps,
        tfjsDispatchesPerStep: t.dispatches / t.steps,
        tfjsSubmitsPerStep: t.submits / t.steps,
        replayCpuMsPerStep: r.cpu / r.steps,
        replaySubmitMsPerStep: r.submit / r.steps,
        replayMsPerStep: r.wall / r.steps,
        replayDispatchesPerStep: r.dispatches / r.steps,
        replaySubmitsPerStep: r.submits / r.steps,
      };
    } finally {
      replay.destroy();
    }
  } finally {
    step.dispose();
    sgd.dispose();
    recorder.remove();
  }
}
