import * as tf from "@tensorflow/tfjs";
import { throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { pooledLinear } from "../../kernels/pooled_linear.ts";
import { POOLED_LINEAR_CASES } from "../../kernels/selftest/pooled_linear_cases.ts";

await initWebGPU();

// The cases the browser self-test runs too (kernels/selftest/pooled_linear_cases.ts).
for (const c of POOLED_LINEAR_CASES) Deno.test(c.name, c.run);

Deno.test("pooledLinear rejects shapes that do not fit, naming them", () => {
  const x = tf.zeros([2, 2, 2, 3]) as tf.Tensor4D;
  throws(
    () => pooledLinear(x, tf.zeros([4, 5]) as tf.Tensor2D, tf.zeros([5]) as tf.Tensor1D),
    /weight \[C, K\], bias \[K\]; got \[2,2,2,3\], \[4,5\], \[5\]/,
  );
  throws(() => pooledLinear(x, tf.zeros([3, 5]) as tf.Tensor2D, tf.zeros([4]) as tf.Tensor1D), /\[3,5\], \[4\]/);
  x.dispose();
});
