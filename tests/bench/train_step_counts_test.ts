/**
 * Pins the WebGPU work of one ResNet-18 training step with our kernels, so that a change which adds dispatches,
 * submits, buffers, uploads or bind groups (each costs CPU time, ~0.1-1 ms a dispatch on llvmpipe) fails here and
 * is seen in review. Counts only: timings never go in tests.
 *
 * Whoever changes these counts on purpose updates the line of PINNED for the adapter at hand with the numbers the
 * failure message prints. 2026-12-01: 635 -> 149 dispatches with the BN, SGD, loss and head fusion; then 149 -> 0 bind
 * groups created and 10,512 -> 4 bytes uploaded per step with the bind-group and uniform cache, one submit more: the
 * one that ends each step, see kernels/bind_group_cache.ts. Then, with sums left to their consumer
 * (kernels/deferred_split_k.ts), lavapipe (GL llvmpipe): 149 -> 139 (155 -> 145) with the split-K sums of the
 * convolution weight gradients added up by the multi-tensor SGD instead of a reduction pass each; 139 -> 128
 * (145 -> 134) with batch norm reading the split-K partials of the convolution outputs and input gradients it consumes
 * the same way; 128 -> 120 (134 -> 126) with the gradient tape's adds of a pending input gradient left pending too, for
 * the batch norm backward to add up; 120 -> 116 (126 -> 122) with convolution outputs without split-K pending as one
 * term, so that those adds stay pending too. Then 1 -> 0 buffers created and 4 -> 0 bytes uploaded with the loss's
 * gradient seed made once (train/train_step.ts) instead of tfjs's `ones([])` each step.
 * @module
 */
import { assertEquals } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { runBench } from "../../bench/run_bench.ts";
import { parseBenchArgs } from "../../tasks/bench.ts";
import * as tf from "@tensorflow/tfjs";
import { resnet18 } from "../../models/zoo.ts";
import { SGD, weightDecayFilter } from "../../train/sgd.ts";
import { makeTrainStep } from "../../train/train_step.ts";
import { installGpuCallCounter } from "../../bench/gpu_call_counter.ts";
import type { MixParams } from "../../kernels/mix_batch.ts";

/**
 * One step of ResNet-18, CIFAR stem, width 4, 16x16, batch 2, our kernels, after 5 warm-up steps in a fresh process
 * (buffers created depend on the history of tfjs's buffer pool; the bind-group cache fills over the first 4 or 5
 * steps, so the step measured is a steady-state one, which creates no bind group), by the software adapter's storage buffers per shader
 * stage: multi-tensor SGD binds as many parameters per dispatch as that limit allows.
 */
const PINNED: Record<number, Record<string, number>> = {
  // Mesa lavapipe (Vulkan): what a fresh CI machine gets.
  32: { dispatches: 116, submits: 9, buffersCreated: 0, bytesUploaded: 0, bindGroups: 0 },
  // Mesa llvmpipe through EGL/GL: where no Vulkan driver is installed.
  16: { dispatches: 122, submits: 10, buffersCreated: 0, bytesUploaded: 0, bindGroups: 0 },
};

const adapter = await initWebGPU();

Deno.test({
  name: "one ResNet-18 training step issues exactly the pinned dispatches, submits, buffers, uploads and bind groups",
  // Split-K and SGD grouping (hence the counts) follow the device: the numbers are for the software adapters.
  ignore: !adapter.isFallbackAdapter || !(adapter.limits.maxStorageBuffersPerShaderStage in PINNED),
  fn: async () => {
    const args = ["--arch", "resnet18", "--batch-size", "2", "--input", "16", "--width", "4"];
    const config = { ...parseBenchArgs([...args, "--warmup", "5", "--steps", "1", "--skip-ops"], adapter) };
    const { train } = await runBench(config, adapter, () => {});
    const actual = {
      dispatches: train!.dispatchesPerStep,
      submits: train!.submitsPerStep,
      buffersCreated: train!.buffersCreatedPerStep,
      bytesUploaded: train!.bytesUploadedPerStep,
      bindGroups: train!.bindGroupsPerStep,
    };
    const line = `{ ${Object.entries(actual).map(([k, v]) => `${k}: ${v}`).join(", ")} }`;
    const limit = adapter.limits.maxStorageBuffersPerShaderStage;
    assertEquals(
      actual,
      PINNED[limit],
      `the step's WebGPU calls changed; if on purpose, set PINNED[${limit}] = ${line}`,
    );
  },
});

Deno.test("a step with mixup or cutmix issues exactly one dispatch more (the mixing); the loss stays one program", async () => {
  const model = resnet18({ width: 2, numClasses: 10, stem: "cifar" });
  const optimizer = new SGD(model.parameters(), {
    momentum: 0.9,
    nesterov: false,
    weightDecay: 1e-4,
    decay: weightDecayFilter(false),
  });
  const step = makeTrainStep(model, optimizer, { labelSmoothing: 0.1, clipGradNorm: 0 });
  const x = tf.randomNormal([4, 16, 16, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const y = tf.tensor1d([1, 2, 3, 4], "int32");
  const mixes: (MixParams | null)[] = [
    null,
    { lambda: 0.3, box: null },
    { lambda: 0.75, box: { x1: 2, y1: 3, x2: 10, y2: 7 } },
  ];
  const dispatches = async (mix: MixParams | null) => {
    for (let i = 0; i < 3; i++) { // warm: pipelines, first steps
      const out = step(x, y, 0.1, mix);
      tf.dispose([out.loss, out.correct]);
    }
    const counter = installGpuCallCounter();
    try {
      const out = step(x, y, 0.1, mix);
      await out.loss.data();
      tf.dispose([out.loss, out.correct]);
      return counter.counts().dispatches;
    } finally {
      counter.remove();
    }
  };
  const [plain, mixup, cutmix] = [await dispatches(mixes[0]), await dispatches(mixes[1]), await dispatches(mixes[2])];
  assertEquals([mixup - plain, cutmix - plain], [1, 1], `dispatches: ${plain} plain, ${mixup} mixup, ${cutmix} cutmix`);
  tf.dispose([x, y]);
  step.dispose();
  optimizer.dispose();
  model.dispose();
});

Deno.test("a new learning rate every step creates no buffer and no bind group: the SGD's uniforms are rewritten in place", async () => {
  const model = resnet18({ width: 2, numClasses: 10, stem: "cifar" });
  const optimizer = new SGD(model.parameters(), {
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
    decay: weightDecayFilter(false),
  });
  const step = makeTrainStep(model, optimizer, { labelSmoothing: 0.1, clipGradNorm: 0 });
  const x = tf.randomNormal([2, 16, 16, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const y = tf.tensor1d([1, 2], "int32");
  const run = async (lr: number, counted: boolean) => {
    const counter = counted ? installGpuCallCounter() : undefined;
    try {
      const out = step(x, y, lr);
      await out.loss.data();
      tf.dispose([out.loss, out.correct]);
      return counter?.counts();
    } finally {
      counter?.remove();
    }
  };
  for (let i = 0; i < 6; i++) await run(0.1, false); // warm: pipelines, bind groups, the pool's order
  const same = (await run(0.1, true))!;
  const changed = (await run(0.05, true))!;
  // A cosine schedule's next value: the same work, plus the uniform bytes of each SGD program.
  assertEquals(
    { buffers: changed.buffersCreated, bindGroups: changed.bindGroupsCreated, dispatches: changed.dispatches },
    { buffers: 0, bindGroups: 0, dispatches: same.dispatches },
  );
  assertEquals(changed.submits, same.submits, "the lr's rewrite must not add a submit (the last step's was submitted)");
  assertEquals(same.bytesUploaded, 0);
  tf.dispose([x, y]);
  step.dispose();
  optimizer.dispose();
  model.dispose();
});
