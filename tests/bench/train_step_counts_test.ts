/**
 * Pins the WebGPU work of one ResNet-18 training step with our kernels, so that a change which adds dispatches,
 * submits, buffers, uploads or bind groups (each costs CPU time, ~0.1-1 ms a dispatch on llvmpipe) fails here and
 * is seen in review. Counts only: timings never go in tests.
 *
 * The numbers are expected to go DOWN: batch-norm and SGD fusion is being done on another branch right now. Whoever
 * merges it (or any change that moves these counts on purpose) updates the one line of PINNED with the numbers the
 * failure message prints.
 * @module
 */
import { assertEquals } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { runBench } from "../../bench/run_bench.ts";
import { parseBenchArgs } from "../../tasks/bench.ts";

/**
 * One step of ResNet-18, CIFAR stem, width 4, 16x16, batch 2, our kernels, llvmpipe, after 2 warm-up steps in a fresh
 * process (buffers created depend on the history of tfjs's buffer pool; 103 of them are the 4-byte staging buffers
 * tfjs makes to upload each scalar, 100 for the constants of the BN running-statistics update).
 */
const PINNED = { dispatches: 633, submits: 43, buffersCreated: 109, bytesUploaded: 46952, bindGroups: 633 };

const adapter = await initWebGPU();

Deno.test({
  name: "one ResNet-18 training step issues exactly the pinned dispatches, submits, buffers, uploads and bind groups",
  // Split-K (hence the dispatch count) follows the device: the numbers are for a software adapter, what CI runs.
  ignore: !adapter.isFallbackAdapter,
  fn: async () => {
    const args = ["--arch", "resnet18", "--batch-size", "2", "--input", "16", "--width", "4"];
    const config = { ...parseBenchArgs([...args, "--warmup", "2", "--steps", "1", "--skip-ops"], adapter) };
    const { train } = await runBench(config, adapter, () => {});
    const actual = {
      dispatches: train!.dispatchesPerStep,
      submits: train!.submitsPerStep,
      buffersCreated: train!.buffersCreatedPerStep,
      bytesUploaded: train!.bytesUploadedPerStep,
      bindGroups: train!.bindGroupsPerStep,
    };
    const line = `{ ${Object.entries(actual).map(([k, v]) => `${k}: ${v}`).join(", ")} }`;
    assertEquals(actual, PINNED, `the step's WebGPU calls changed; if on purpose, set PINNED = ${line}`);
  },
});
