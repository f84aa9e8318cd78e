import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { registerFastKernels, restoreStockKernels } from "../../kernels/register.ts";
import { relativeError } from "../../kernels/selftest/relative_error.ts";
import { chooseGemmTiling } from "../../kernels/gemm_tiling.ts";
import { gemmDeviceLimits } from "../../kernels/run_gemm.ts";
import { convBackpropFilterSpec, convBackpropInputParitySpecs } from "../../kernels/conv_gemm_specs.ts";
import { convGeometry } from "../../kernels/conv_geometry.ts";
import { fastConv2DBackpropInput } from "../../kernels/conv2d_kernels.ts";
import { GemmProgram } from "../../kernels/gemm_program.ts";
import { type ConvCase, explicitPad, referenceConv } from "../../kernels/selftest/conv_reference.ts";
import { gemmPrograms, recordPrograms, stockGemmPrograms } from "../../kernels/selftest/program_log.ts";

await initWebGPU();

const TOLERANCE = 1e-4;

const CASES: ConvCase[] = [
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

/** What {@linkcode convOutputs} read back, and the programs each of the three kernels ran. */
interface ConvRun {
  /** y, dx, dw. */
  outs: Float32Array[];
  /** x, filter, dy. */
  ins: Float32Array[];
  /** Programs run by the Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter calls, in that order. */
  programs: WebGPUProgram[][];
}

/** Runs the three convolution kernels on fixed random inputs; returns their outputs, the inputs and the programs. */
async function convOutputs(c: ConvCase): Promise<ConvRun> {
  const [b, h, w, ci, co, k, s, p] = c;
  const programs: WebGPUProgram[][] = [];
  const recorded = <T>(fn: () => T): T => {
    const r = recordPrograms(fn);
    programs.push(r.programs);
    return r.result;
  };
  const [ins, outs] = tf.tidy(() => {
    const x = tf.randomNormal([b, h, w, ci], 0, 1, "float32", 1) as tf.Tensor4D;
    const f = tf.randomNormal([k, k, ci, co], 0, 1, "float32", 2) as tf.Tensor4D;
    const y = recorded(() => tf.conv2d(x, f, s, explicitPad(p)));
    const dy = tf.randomNormal(y.shape, 0, 1, "float32", 3);
    const attrs = { strides: [s, s], pad: explicitPad(p), dataFormat: "NHWC" };
    const dx = recorded(() =>
      tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
        ...attrs,
        inputShape: x.shape,
      }) as tf.Tensor
    );
    const dw = recorded(() =>
      tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        ...attrs,
        filterShape: f.shape,
      }) as tf.Tensor
    );
    return [[x, f, dy], [y, dx, dw]];
  });
  const read = (ts: tf.Tensor[]) => Promise.all(ts.map((t) => t.data() as Promise<Float32Array>));
  const result = { outs: await read(outs), ins: await read(ins), programs };
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
      const { outs, ins, programs } = await convOutputs(c);
      const ref = referenceConv(c, ins[0], ins[1], ins[2]);
      const refs = [ref.y, ref.dx, ref.dw];
      for (let i = 0; i < names.length; i++) {
        // Stock would match the reference too: prove that ours ran.
        assert(gemmPrograms(programs[i]).length > 0, `${names[i]} case [${c}] ran no GemmProgram`);
        assertEquals(stockGemmPrograms(programs[i]), [], `${names[i]} case [${c}] fell back to stock`);
        const err = relativeError(outs[i], refs[i]);
        assert(err <= TOLERANCE, `${names[i]} case [${c}] relative error ${err}`);
      }
      if (c === CASES[CASES.length - 1]) {
        // The sum of the partials is deferred to the first read (kernels/deferred_split_k.ts): no reduction here.
        assert(gemmPrograms(programs[2]).some((p) => p.spec.tiling.splitK > 1), "the last case's dw ran split-K");
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
    const attrs = { strides: [s, s], pad: explicitPad(p), inputShape: [b, h, w, ci] };
    const { result: info, programs } = recordPrograms(() =>
      fastConv2DBackpropInput({ inputs: { dy: dyT, filter: fT }, backend, attrs }, { parity: "always" })
    );
    assert(info, `case [${c}]: the kernel declined`);
    const classes = convBackpropInputParitySpecs(g).length;
    assertEquals(programs.map((q) => q instanceof GemmProgram && !!q.spec.storeRow), Array(classes).fill(true));
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
  const { result: stock, programs: stockPrograms } = recordPrograms(grads);
  const stockData = await Promise.all(stock.map((t) => t.data()));
  registerFastKernels();
  const { result: ours, programs: ourPrograms } = recordPrograms(grads);
  const ourData = await Promise.all(ours.map((t) => t.data()));
  restoreStockKernels();
  // Both runs must be what they claim: stock backprop and matmul programs in the reference, none of them in ours.
  const stockNames = new Set(stockGemmPrograms(stockPrograms));
  const stockRan = (prefix: string) => [...stockNames].some((n) => n.startsWith(prefix));
  assert(stockRan("Conv2DDer") && stockRan("MatMul"), `the reference ran ${[...stockNames]}`);
  assertEquals(stockGemmPrograms(ourPrograms), [], "our run fell back to a stock kernel");
  assert(gemmPrograms(ourPrograms).length >= 8, "2 conv, 1 backprop-input, 2 backprop-filter and 3 matmul GEMMs");
  tf.dispose([...stock, ...ours]);
  for (let i = 0; i < stockData.length; i++) {
    const err = relativeError(ourData[i], stockData[i]);
    assert(err <= TOLERANCE, `gradient ${i} relative error ${err}`);
  }
});

Deno.test("unsupported configurations fall back to the stock kernel", async () => {
  registerFastKernels();
  const { result: y, programs } = recordPrograms(() =>
    tf.tidy(() => {
      const x = tf.randomNormal([1, 7, 7, 3], 0, 1, "float32", 8) as tf.Tensor4D;
      const f = tf.randomNormal([3, 3, 3, 4], 0, 1, "float32", 9) as tf.Tensor4D;
      return tf.conv2d(x, f, 1, "same", "NHWC", 2); // dilation 2: stock only
    })
  );
  assertEquals(gemmPrograms(programs), [], "a dilated conv is not ours");
  assert(stockGemmPrograms(programs).length > 0, "the stock kernel ran");
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
