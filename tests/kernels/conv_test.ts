import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { registerFastKernels, restoreStockKernels } from "../../kernels/register.ts";
import { relativeError } from "../../bench/relative_error.ts";
import { chooseGemmTiling } from "../../kernels/gemm_tiling.ts";
import { gemmDeviceLimits, runGemmsInto } from "../../kernels/run_gemm.ts";
import { convBackpropFilterSpec, convBackpropInputParitySpecs } from "../../kernels/conv_gemm_specs.ts";
import { convGeometry } from "../../kernels/conv_geometry.ts";

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
  [2, 6, 6, 8, 12, 3, 1, 1], // channels multiples of 4: vec4 loads of both operands in all three passes
  [2, 9, 9, 4, 6, 3, 2, 1], // vec4 along ci only
  [2, 7, 7, 5, 8, 1, 2, 0], // vec4 along co only
  [4, 16, 16, 2, 3, 3, 1, 1], // long K for backprop-filter: split-K on every adapter (keep last)
];

const explicitPad = (p: number): tf.backend_util.ExplicitPadding => [[0, 0], [p, p], [p, p], [0, 0]];

/** Float64 reference of the three convolution passes (NHWC, filter [k, k, ci, co], symmetric padding). */
function referenceConv(
  c: Case,
  x: Float32Array,
  f: Float32Array,
  dy: Float32Array,
): { y: Float64Array; dx: Float64Array; dw: Float64Array } {
  const [b, h, w, ci, co, k, s, p] = c;
  const oh = Math.floor((h + 2 * p - k) / s) + 1, ow = Math.floor((w + 2 * p - k) / s) + 1;
  const y = new Float64Array(b * oh * ow * co);
  const dx = new Float64Array(b * h * w * ci);
  const dw = new Float64Array(k * k * ci * co);
  for (let n = 0; n < b; n++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let r = 0; r < k; r++) {
          const ih = i * s - p + r;
          if (ih < 0 || ih >= h) continue;
          for (let q = 0; q < k; q++) {
            const iw = j * s - p + q;
            if (iw < 0 || iw >= w) continue;
            for (let a = 0; a < ci; a++) {
              const xi = ((n * h + ih) * w + iw) * ci + a;
              for (let o = 0; o < co; o++) {
                const yi = ((n * oh + i) * ow + j) * co + o;
                const wi = ((r * k + q) * ci + a) * co + o;
                y[yi] += x[xi] * f[wi];
                dx[xi] += dy[yi] * f[wi];
                dw[wi] += x[xi] * dy[yi];
              }
            }
          }
        }
      }
    }
  }
  return { y, dx, dw };
}

/** Runs the three convolution kernels on fixed random inputs; returns their outputs and the inputs. */
async function convOutputs(c: Case): Promise<{ outs: Float32Array[]; ins: Float32Array[] }> {
  const [b, h, w, ci, co, k, s, p] = c;
  const [ins, outs] = tf.tidy(() => {
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
    return [[x, f, dy], [y, dx, dw]];
  });
  const read = (ts: tf.Tensor[]) => Promise.all(ts.map((t) => t.data() as Promise<Float32Array>));
  const result = { outs: await read(outs), ins: await read(ins) };
  tf.dispose([...ins, ...outs]);
  return result;
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

Deno.test("Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter match a float64 reference to 1e-4", async () => {
  // A float64 reference rather than stock tfjs here: stock shaders take up to 20 s each to compile on a cold
  // llvmpipe shader cache, which would dominate CI. Stock is compared end to end in the gradient test below.
  const names = ["Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter"];
  registerFastKernels();
  try {
    for (const c of CASES) {
      const { outs, ins } = await convOutputs(c);
      const ref = referenceConv(c, ins[0], ins[1], ins[2]);
      const refs = [ref.y, ref.dx, ref.dw];
      for (let i = 0; i < names.length; i++) {
        const err = relativeError(outs[i], refs[i]);
        assert(err <= TOLERANCE, `${names[i]} case [${c}] relative error ${err}`);
      }
    }
  } finally {
    restoreStockKernels();
  }
});

Deno.test("strided backprop-input by pixel-parity classes matches the float64 reference", async () => {
  // The kernel only takes this path when every class fills the device; force it here on every strided case.
  const backend = tf.backend() as WebGPUBackend;
  const strided = CASES.filter((c) => c[6] > 1);
  assert(strided.length >= 4);
  for (const c of strided) {
    const [b, h, w, ci, co, k, s, p] = c;
    const g = convGeometry([b, h, w, ci], [k, k, ci, co], { strides: s, pad: explicitPad(p) });
    assert(g);
    const { ins } = await convOutputs(c);
    const [, f, dy] = ins;
    const fT = tf.tensor(f, [k, k, ci, co]);
    const dyT = tf.tensor(dy, [b, g.outHeight, g.outWidth, co]);
    const info = runGemmsInto(backend, convBackpropInputParitySpecs(g), [dyT, fT], [b, h, w, ci], { force: true });
    assert(info);
    const dx = tf.engine().makeTensorFromTensorInfo(info);
    const err = relativeError(await dx.data(), referenceConv(c, ins[0], f, dy).dx);
    tf.dispose([fT, dyT, dx]);
    assert(err <= TOLERANCE, `case [${c}] relative error ${err}`);
  }
});

Deno.test("gradients of a conv-matmul net through our kernels match stock tfjs's backprop kernels", async () => {
  // The reference run keeps our Conv2D forward (checked against float64 above) because stock's forward conv shader
  // takes 25 s to compile on a cold llvmpipe cache; the gradient kernels and BatchMatMul are stock in it.
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
  registerFastKernels({ kernels: ["Conv2D"] });
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
