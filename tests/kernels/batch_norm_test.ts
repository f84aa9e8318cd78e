import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { batchNormTrain } from "../../kernels/batch_norm_train.ts";
import { batchNormEval } from "../../kernels/batch_norm_eval.ts";
import { bnChunking } from "../../kernels/batch_norm_programs.ts";
import { BATCH_NORM_CASES } from "../../kernels/selftest/batch_norm_cases.ts";

await initWebGPU();

const EPS = 1e-5;

Deno.test("bnChunking covers every row with chunks of at least 64 rows", () => {
  for (const rows of [1, 63, 64, 65, 324, 2312, 131072, 1605632]) {
    for (const target of [1, 8, 512]) {
      const { chunks, rowsPerChunk } = bnChunking(rows, target);
      assert(rowsPerChunk >= 64);
      assert(bnChunking(rows, target, 1024).rowsPerChunk >= 1024);
      assert(chunks * rowsPerChunk >= rows && (chunks - 1) * rowsPerChunk < rows, `${rows} rows, target ${target}`);
      assert(chunks <= Math.max(1, target), `${rows} rows, target ${target}: ${chunks} chunks`);
    }
  }
  throws(() => bnChunking(0, 8), /rows must be a positive integer, got 0/);
});

Deno.test("batchNormTrain leaves no tensors behind under tf.tidy and rejects bad input by name", () => {
  const x = tf.randomNormal([2, 3, 3, 4]) as tf.Tensor4D;
  const g = tf.ones([4]) as tf.Tensor1D, b = tf.zeros([4]) as tf.Tensor1D;
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    batchNormTrain(x, g, b, { eps: EPS, relu: true });
  });
  assertEquals(tf.memory().numTensors, before);
  throws(() => batchNormTrain(x, tf.ones([3]) as tf.Tensor1D, b, { eps: EPS, relu: false }), /C = 4 elements, got 3/);
  throws(
    () => batchNormTrain(x.toInt() as unknown as tf.Tensor4D, g, b, { eps: EPS, relu: false }),
    /float32 \[N, H, W, C\] tensor, got int32/,
  );
  tf.dispose([x, g, b]);
});

Deno.test("batchNormEval rejects statistics that are not [4, C], naming the shape", () => {
  const x = tf.randomNormal([3, 4, 5, 6]) as tf.Tensor4D;
  const gamma = tf.ones([6]) as tf.Tensor1D, beta = tf.zeros([6]) as tf.Tensor1D;
  const stats = tf.zeros([6]) as unknown as tf.Tensor2D;
  throws(() => batchNormEval(x, gamma, beta, stats, { eps: EPS, relu: false }), /stats \[4, 6\]/);
  tf.dispose([x, gamma, beta, stats]);
});

// The cases the browser self-test runs too (kernels/selftest/batch_norm_cases.ts).
for (const c of BATCH_NORM_CASES) Deno.test(c.name, c.run);

Deno.test("batchNormTrain dispatches: 1 forward and 1 backward in one chunk, 3 and 3 in several, a residual included", () => {
  const original = GPUComputePassEncoder.prototype.dispatchWorkgroups;
  let dispatches = 0;
  GPUComputePassEncoder.prototype.dispatchWorkgroups = function (...args) {
    dispatches++;
    return original.apply(this, args);
  };
  try {
    for (const [shape, onePass] of [[[2, 5, 3, 7], true], [[8, 17, 17, 6], false]] as const) {
      const c = shape[3];
      const x = tf.randomNormal([...shape]) as tf.Tensor4D, dy = tf.randomNormal([...shape]);
      const g = tf.ones([c]) as tf.Tensor1D, b = tf.zeros([c]) as tf.Tensor1D;
      const running = { stats: tf.zeros([4, c]) as tf.Tensor2D, momentum: 0.1 };
      for (const residual of [undefined, tf.randomNormal([...shape]) as tf.Tensor4D]) {
        dispatches = 0;
        const fwd = batchNormTrain(x, g, b, { eps: EPS, relu: true, residual, running });
        const forward = dispatches;
        dispatches = 0;
        const inputs = residual ? [x, g, b, residual] : [x, g, b];
        const f = (...a: tf.Tensor[]) =>
          batchNormTrain(a[0] as tf.Tensor4D, a[1] as tf.Tensor1D, a[2] as tf.Tensor1D, {
            eps: EPS,
            relu: true,
            residual: a[3] as tf.Tensor4D | undefined,
            running,
          }).y;
        const grads = tf.grads(f)(inputs, dy);
        const backward = dispatches - forward; // tf.grads runs the forward again first
        const passes = onePass ? 1 : 3;
        assertEquals([forward, backward], [passes, passes], `[${shape}] residual ${!!residual}`);
        tf.dispose([fwd.y, fwd.stats, ...grads, ...(residual ? [residual] : [])]);
      }
      tf.dispose([x, dy, g, b, running.stats]);
    }
  } finally {
    GPUComputePassEncoder.prototype.dispatchWorkgroups = original;
  }
});
