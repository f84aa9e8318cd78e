import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertStrictEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { accumulateInPlace } from "../../kernels/accumulate_in_place.ts";

await initWebGPU();
tf.env().set("WEBGPU_CPU_FORWARD", false);

Deno.test("accumulateInPlace adds float and int32 scalars times their factors, in place, one pipeline", async () => {
  const original = GPUDevice.prototype.createComputePipeline;
  let pipelines = 0;
  GPUDevice.prototype.createComputePipeline = function (d) {
    pipelines++;
    return original.call(this, d);
  };
  try {
    let sums = tf.tensor1d([1.5, 10]);
    const held = sums;
    for (const [loss, correct, n] of [[0.25, 3, 4], [2, 1, 8], [-1, 0, 2]]) {
      const [l, c] = [tf.scalar(loss), tf.scalar(correct, "int32")];
      sums = accumulateInPlace(sums, [l, c], [n, 1]);
      await sums.data(); // tfjs caches what it read: the next update must replace it
      tf.dispose([l, c]);
    }
    assertStrictEquals(sums, held, "the same tensor, updated in place");
    // 1.5 + 0.25·4 + 2·8 − 1·2 and 10 + 3 + 1 + 0.
    assertEquals(Array.from(await sums.data()), [16.5, 14]);
    assertEquals(pipelines, 1, "one pipeline for three different factors");
    sums.dispose();
  } finally {
    GPUDevice.prototype.createComputePipeline = original;
  }
});

Deno.test("accumulateInPlace rejects sums and terms that do not match", () => {
  const sums = tf.tensor1d([0, 0]);
  const [a, b] = [tf.scalar(1), tf.tensor1d([1, 2])];
  throws(() => accumulateInPlace(sums, [a], [1]), /one element per scalar term and factor/);
  throws(() => accumulateInPlace(sums, [a, b], [1, 1]), /terms of sizes \[1,2\]/);
  throws(() => accumulateInPlace(sums, [a, a], [1]), /and 1 factors/);
  tf.dispose([sums, a, b]);
});
