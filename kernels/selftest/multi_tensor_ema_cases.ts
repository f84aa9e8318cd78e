/**
 * The multi-tensor weight average (kernels/multi_tensor_ema.ts) against a float64 reference of torch's
 * `AveragedModel` with torchvision's `ExponentialMovingAverage`: a copy, then three averaging updates, over more
 * tensors than one dispatch binds on a software adapter.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { multiTensorEma } from "../multi_tensor_ema.ts";
import { checkClose, checkNoDeviceErrors, type KernelCase } from "./kernel_case.ts";

/** 10 tensors (llvmpipe binds 8 pairs per dispatch), one of 300 elements. */
const SHAPES = [[3, 4], [5], [2, 3, 3, 2], [300], [1], [4, 4], [7, 2], [6], [2, 2], [9]];

/** One case per decay. */
export const MULTI_TENSOR_EMA_CASES: readonly KernelCase[] = [0.9, 0.99998].map((decay): KernelCase => {
  const where = `multiTensorEma decay ${decay}, ${SHAPES.length} tensors, a copy and 3 updates`;
  return {
    name: `${where}: against float64`,
    run: async () => {
      const averages = SHAPES.map((s) => tf.zeros(s));
      const want = SHAPES.map((s) => new Float64Array(s.reduce((a, b) => a * b, 1)));
      try {
        for (let update = 0; update < 4; update++) {
          const values = SHAPES.map((s, i) => tf.randomNormal(s, 0, 1, "float32", 90 + 10 * update + i));
          multiTensorEma(averages.map((average, i) => ({ average, value: values[i] })), decay, update === 0);
          for (const [i, v] of (await Promise.all(values.map((t) => t.data()))).entries()) {
            for (let j = 0; j < v.length; j++) {
              want[i][j] = update === 0 ? v[j] : decay * want[i][j] + (1 - decay) * v[j];
            }
          }
          tf.dispose(values);
        }
        for (let i = 0; i < SHAPES.length; i++) {
          const actual = await averages[i].data();
          checkNoDeviceErrors(where);
          checkClose(actual, want[i], 1e-6, `${where}: tensor ${i} [${SHAPES[i]}]`);
        }
      } finally {
        tf.dispose(averages);
      }
    },
  };
});
