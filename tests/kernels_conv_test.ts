import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert } from "./assert.ts";
import { initWebGPU } from "../kernels/webgpu_backend.ts";
import { registerFastKernels, restoreStockKernels } from "../kernels/register.ts";
import { relativeError } from "../kernels/relative_error.ts";
import { chooseGemmTiling } from "../kernels/gemm_tiling.ts";
import { gemmDeviceLimits } from "../kernels/run_gemm.ts";
import { convBackpropFilterSpec } from "../kernels/conv_gemm_specs.ts";
import { convGeometry } from "../kernels/conv_geometry.ts";

await initWebGPU();

const TOLERANCE = 1e-4;

/** [batch, height, width, inChannels, outChannels, kernel, stride, pad] */
type Case = [number, number, number, number, number, number, number, number];
const CASES: Case[] = [
  [2, 9, 7, 5, 6, 3, 2, 1], // odd everything, stride 2
  [1, 8, 8, 3, 8, 3, 1, 1], // RGB stem
  [2, 11, 10, 3, 5, 7, 2, 3], // ImageNet-style 7x7/2 pad 3
  [3, 6, 5, 7, 9, 1, 1, 0], // 1x1
  [2, 9, 9, 6, 10, 1, 2, 0], // 1x1 stride-2 projection, odd size
  [1, 5, 7, 4, 4, 3, 1, 0], // valid padding
  [2, 7, 7, 13, 3, 3, 2, 1], // few output channels
  [1, 4, 4, 33, 35, 3, 1, 1], // channels just above a tile/vec4 boundary
  [4, 16, 16, 2, 3, 3, 1, 1], // long K for backprop-filter: split-K on every adapter
];

const explicitPad = (p: number): tf.backend_util.ExplicitPadding => [[0, 0], [p, p], [p, p], [0, 0]];

/** Runs the three convolution kernels on fixed random inputs and returns their outputs as arrays. */
async function convOutputs(c: Case): Promise<Float32Array[]> {
  const [b, h, w, ci, co, k, s, p] = c;
  const outs = tf.tidy(() => {
    const x = tf.randomNormal([b, h, w, ci], 0, 1, "float32", 1) as tf.Tensor4D;
    const f = tf.randomNormal([k, k, ci, co], 0, 1, "float32", 2) as tf.Tensor4D;
    const y = tf.conv2d(x, f, s, explicitPad(p));
    const dy = tf.randomNormal(y.shape, 0, 1, "float32", 3);
    const attrs = { strides: [s, s], pad: explicitPad(p), dataFormat: "NHWC" };
    const dx = tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
      ...attrs,
      inputShape: x.shape,
    }) as tf.Tensor;
    const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
      ...attrs,
      filterShape: f.shape,
    }) as tf.Tensor;
    return [y, dx, dw];
  });
  const data = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return data;
}

Deno.test("the last case exercises split-K backprop-filter on this adapter", () => {
  const [b, h, w, ci, co, k, s, p] = CASES[CASES.length - 1];
  const g = convGeometry([b, h, w, ci], [k, k, ci, co], { strides: s, pad: explicitPad(p) });
  assert(g);
  const spec = convBackpropFilterSpec(g);
  const t = chooseGemmTiling(
    { batch: 1, m: spec.m, n: spec.n, k: spec.k },
    gemmDeviceLimits(tf.backend() as WebGPUBackend),
  );
  assert(t.splitK > 1, JSON.stringify(t));
});

Deno.test("Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter match stock tfjs to 1e-4", async () => {
  const names = ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"];
  for (const c of CASES) {
    restoreStockKernels();
    const stock = await convOutputs(c);
    registerFastKernels();
    const ours = await convOutputs(c);
    restoreStockKernels();
    for (let i = 0; i < names.length; i++) {
      const err = relativeError(ours[i], stock[i]);
      assert(err <= TOLERANCE, `${names[i]} case [${c}] relative error ${err}`);
    }
  }
});

Deno.test("gradients of a conv-matmul net through our kernels match stock tfjs", async () => {
  const grads = () =>
    tf.tidy(() => {
      const x = tf.randomNormal([3, 9, 9, 3], 0, 1, "float32", 4) as tf.Tensor4D;
      const w1 = tf.randomNormal([3, 3, 3, 6], 0, 0.5, "float32", 5) as tf.Tensor4D;
      const w2 = tf.randomNormal([1, 1, 6, 10], 0, 0.5, "float32", 6) as tf.Tensor4D;
      const fc = tf.randomNormal([10, 7], 0, 0.5, "float32", 7) as tf.Tensor2D;
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
        const h = tf.relu(tf.conv2d(x, a as tf.Tensor4D, 1, explicitPad(1)));
        const g = tf.conv2d(h, b as tf.Tensor4D, 2, "valid");
        return tf.matMul(tf.mean(g, [1, 2]), c as tf.Tensor2D).square().sum();
      };
      return tf.grads(f)([w1, w2, fc]);
    });
  restoreStockKernels();
  const stock = grads();
  const stockData = await Promise.all(stock.map((t) => t.data()));
  registerFastKernels();
  const ours = grads();
  const ourData = await Promise.all(ours.map((t) => t.data()));
  restoreStockKernels();
  tf.dispose([...stock, ...ours]);
  for (let i = 0; i < stockData.length; i++) {
    const err = relativeError(ourData[i], stockData[i]);
    assert(err <= TOLERANCE, `gradient ${i} relative error ${err}`);
  }
});

Deno.test("unsupported configurations fall back to the stock kernel", async () => {
  registerFastKernels();
  const y = tf.tidy(() => {
    const x = tf.randomNormal([1, 7, 7, 3], 0, 1, "float32", 8) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, 3, 4], 0, 1, "float32", 9) as tf.Tensor4D;
    return tf.conv2d(x, f, 1, "same", "NHWC", 2); // dilation 2: stock only
  });
  const ours = await y.data();
  restoreStockKernels();
  const ref = tf.tidy(() => {
    const x = tf.randomNormal([1, 7, 7, 3], 0, 1, "float32", 8) as tf.Tensor4D;
    const f = tf.randomNormal([3, 3, 3, 4], 0, 1, "float32", 9) as tf.Tensor4D;
    return tf.conv2d(x, f, 1, "same", "NHWC", 2);
  });
  const err = relativeError(ours, await ref.data());
  tf.dispose([y, ref]);
  assert(err === 0, `dilated conv must be the stock result, error ${err}`);
});
