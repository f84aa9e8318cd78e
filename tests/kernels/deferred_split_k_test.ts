/**
 * A convolution's weight gradient with split-K leaves its partial sums to the consumer (kernels/deferred_split_k.ts):
 * the multi-tensor SGD adds them as it reads them (no reduction dispatch), and every other reader gets the summed
 * values as if the reduction had run at once.
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { registerFastKernels, restoreStockKernels } from "../../kernels/register.ts";
import { pendingSum, pendingSumCount, setSplitKDeferral } from "../../kernels/deferred_split_k.ts";
import { sumReads } from "../../kernels/direct_program.ts";
import { batchNormTrain } from "../../kernels/batch_norm_train.ts";
import { multiTensorSgd } from "../../kernels/multi_tensor_sgd.ts";
import { SplitKReduceProgram } from "../../kernels/split_k_reduce_program.ts";
import { submitPendingWork } from "../../kernels/bind_group_cache.ts";
import { relativeError } from "../../kernels/selftest/relative_error.ts";
import { type ConvCase, explicitPad, referenceConv } from "../../kernels/selftest/conv_reference.ts";
import { gemmPrograms, recordPrograms } from "../../kernels/selftest/program_log.ts";

await initWebGPU();
const backend = tf.backend() as WebGPUBackend;

/** Long K (batch · 16 · 16) against a 3×3×2×3 output: split-K on every adapter (see conv_test.ts's last case). */
const CASE: ConvCase = [4, 16, 16, 2, 3, 3, 1, 1];
const [B, H, W, CI, CO, K] = CASE;

function inputs(): { x: tf.Tensor4D; dy: tf.Tensor4D } {
  return {
    x: tf.randomNormal([B, H, W, CI], 0, 1, "float32", 1) as tf.Tensor4D,
    dy: tf.randomNormal([B, H, W, CO], 0, 1, "float32", 3) as tf.Tensor4D,
  };
}

/** The weight gradient through our kernel, and the programs that call ran. */
function weightGradient(x: tf.Tensor4D, dy: tf.Tensor4D) {
  return recordPrograms(() =>
    tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
      strides: [1, 1],
      pad: explicitPad(1),
      dataFormat: "NHWC",
      filterShape: [K, K, CI, CO],
    }) as tf.Tensor4D
  );
}

async function reference(x: tf.Tensor, dy: tf.Tensor): Promise<Float64Array> {
  const f = new Float32Array(K * K * CI * CO);
  return referenceConv(CASE, await x.data() as Float32Array, f, await dy.data() as Float32Array).dw;
}

function withFastKernels(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    registerFastKernels();
    try {
      await fn();
    } finally {
      restoreStockKernels();
    }
  };
}

Deno.test(
  "a split-K weight gradient is pending, and reading it (data, a tfjs op, CPU forwarding) sums it",
  withFastKernels(async () => {
    const { x, dy } = inputs();
    const ref = await reference(x, dy);
    const ids = backend.numDataIds();
    for (const use of ["data", "op", "op on the CPU path"] as const) {
      tf.env().set("WEBGPU_CPU_FORWARD", use === "op on the CPU path"); // 54 elements: tfjs would compute on the CPU
      try {
        const { result: dw, programs } = weightGradient(x, dy);
        assert(gemmPrograms(programs).some((p) => p.spec.tiling.splitK > 1), "the GEMM split K");
        assert(!programs.some((p) => p instanceof SplitKReduceProgram), `${use}: the reduction ran at once`);
        assert(pendingSum(dw.dataId), `${use}: the sum is not pending`);
        const read = use === "data" ? dw : tf.mul(dw, 2);
        const got = await read.data() as Float32Array;
        const want = use === "data" ? ref : ref.map((v) => 2 * v);
        assert(relativeError(got, want) <= 1e-4, `${use}: relative error ${relativeError(got, want)}`);
        assertEquals(pendingSum(dw.dataId), undefined, `${use}: still pending after a read`);
        tf.dispose([dw, read]);
      } finally {
        tf.env().set("WEBGPU_CPU_FORWARD", true);
      }
    }
    assertEquals(backend.numDataIds(), ids, "partial sums leaked");
    tf.dispose([x, dy]);
  }),
);

Deno.test(
  "the multi-tensor SGD adds a pending gradient's partials itself, bit for bit as the reduction would",
  withFastKernels(async () => {
    const { x, dy } = inputs();
    const init = tf.randomNormal([K, K, CI, CO], 0, 1, "float32", 5);
    const ids = backend.numDataIds(), tensors = tf.memory().numTensors;
    const h = { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 };
    const run = async (consumePending: boolean) => {
      const param = init.add(0); // a buffer of its own: the update is in place
      let buffer: tf.Tensor | undefined;
      let reductions = 0;
      for (let step = 0; step < 2; step++) {
        const { result: dw } = weightGradient(x, dy);
        if (!consumePending) await dw.data(); // the reduction pass, then the summed gradient
        assertEquals(!!pendingSum(dw.dataId), consumePending);
        const { result: created, programs } = recordPrograms(() =>
          multiTensorSgd([{ param, grad: dw, buffer, decay: true }], h)
        );
        reductions += programs.filter((p) => p instanceof SplitKReduceProgram).length;
        buffer ??= created[0];
        dw.dispose();
      }
      const out = [await param.data(), await buffer!.data()];
      tf.dispose([param, buffer!]);
      return { out, reductions };
    };
    const summed = await run(false), fused = await run(true);
    assertEquals(fused.reductions, 0, "SGD ran the reduction instead of reading the partials");
    assertEquals(fused.out, summed.out, "parameters or momentum differ from SGD on the reduced gradient");
    assertEquals(pendingSumCount(), 0);
    tf.dispose([x, dy, init]);
    submitPendingWork(); // tfjs frees buffers that recorded work uses at the next submit
    assertEquals(backend.numDataIds(), ids - 3, "partial sums leaked");
    assertEquals(tf.memory().numTensors, tensors - 3);
  }),
);

Deno.test("sumReads rewrites reads of one binding only, nested indices included", () => {
  assertEquals(
    sumReads("let v = x[row * 4 + c] - dx[i] + xs[0] + a.x[1] + x [ x[j] ];", "x"),
    "let v = x_summed(u32(row * 4 + c)) - dx[i] + xs[0] + a.x[1] + x_summed(u32( x_summed(u32(j)) ));",
  );
  throws(() => sumReads("x[i", "x"), /unbalanced/);
});

Deno.test(
  "batch norm reads split-K conv outputs and input gradients as partials: the same bits, no reduction passes",
  withFastKernels(async () => {
    // Long K against a 2x2 output: forward and backprop-input split K on every adapter.
    const x = tf.randomNormal([1, 2, 2, 64], 0, 1, "float32", 7) as tf.Tensor4D;
    const w1 = tf.randomNormal([3, 3, 64, 8], 0, 0.1, "float32", 8) as tf.Tensor4D;
    const w2 = tf.randomNormal([3, 3, 8, 64], 0, 0.1, "float32", 9) as tf.Tensor4D;
    const gamma = tf.randomUniform([8], 0.5, 1.5, "float32", 10) as tf.Tensor1D;
    const beta = tf.randomNormal([8], 0, 0.1, "float32", 11) as tf.Tensor1D;
    const r = tf.randomNormal([1, 2, 2, 64], 0, 1, "float32", 12);
    // conv -> BN + ReLU -> conv: BN's x is a split-K forward output, its dy a split-K backprop-input output.
    const loss = (...[xIn, a, g, b, c]: tf.Tensor[]) => {
      const h = batchNormTrain(
        tf.conv2d(xIn as tf.Tensor4D, a as tf.Tensor4D, 1, "same"),
        g as tf.Tensor1D,
        b as tf.Tensor1D,
        { eps: 1e-5, relu: true },
      );
      h.stats.dispose();
      return tf.conv2d(h.y, c as tf.Tensor4D, 1, "same").mul(r).sum();
    };
    const gradients = tf.grads(loss);
    const run = async (defer: boolean) => {
      const was = setSplitKDeferral(defer);
      try {
        const { result, programs } = recordPrograms(() => gradients([x, w1, gamma, beta, w2]));
        const reductions = programs.filter((p) => p instanceof SplitKReduceProgram).length;
        const splits = gemmPrograms(programs).filter((p) => p.spec.tiling.splitK > 1).length;
        // Gradients of x (backprop-input), gamma, beta (BN's backward) and the weights (read back: summed then).
        const values = await Promise.all(result.map((t) => t.data()));
        tf.dispose(result);
        return { values, reductions, splits };
      } finally {
        setSplitKDeferral(was);
      }
    };
    const now = await run(false), deferred = await run(true);
    // conv1's forward (K = 576) and conv2's backprop-input (K = 576, BN's dy) split K; the others have K <= 72.
    assert(now.splits >= 2 && now.reductions === now.splits, `${now.splits} split, ${now.reductions} reductions`);
    assertEquals(deferred.splits, now.splits);
    assertEquals(deferred.reductions, 0, "a consumer of ours ran the reduction");
    assertEquals(deferred.values, now.values, "the gradients differ from those with the reductions run at once");
    tf.dispose([x, w1, w2, gamma, beta, r]);
    assertEquals(pendingSumCount(), 0);
  }),
);

Deno.test(
  "an add of a pending sum stays pending: batch norm reads both terms, the same bits, no add or reduction pass",
  withFastKernels(async () => {
    // Two convolutions with long K into one 2x2 output, added (a residual block's two branches), then BN.
    const x = tf.randomNormal([1, 2, 2, 64], 0, 1, "float32", 13) as tf.Tensor4D;
    const w1 = tf.randomNormal([3, 3, 64, 8], 0, 0.1, "float32", 14) as tf.Tensor4D;
    const w2 = tf.randomNormal([1, 1, 64, 8], 0, 0.1, "float32", 15) as tf.Tensor4D;
    const gamma = tf.randomUniform([8], 0.5, 1.5, "float32", 16) as tf.Tensor1D;
    const beta = tf.randomNormal([8], 0, 0.1, "float32", 17) as tf.Tensor1D;
    const run = async (defer: boolean) => {
      const was = setSplitKDeferral(defer);
      try {
        let pendingAdd = false;
        const { result, programs } = recordPrograms(() =>
          tf.tidy(() => {
            const z = tf.add(tf.conv2d(x, w1, 1, "same"), tf.conv2d(x, w2, 1, "same")) as tf.Tensor4D;
            pendingAdd = !!pendingSum(z.dataId);
            const h = batchNormTrain(z, gamma, beta, { eps: 1e-5, relu: true });
            return { y: h.y, stats: h.stats };
          })
        );
        const values = [await result.y.data(), await result.stats.data()];
        tf.dispose([result.y, result.stats]);
        const names = programs.map((p) => p.constructor.name);
        return { values, names, pendingAdd };
      } finally {
        setSplitKDeferral(was);
      }
    };
    const ids = backend.numDataIds();
    const now = await run(false), deferred = await run(true);
    assert(now.names.includes("BinaryOpProgram") && now.names.includes("SplitKReduceProgram"), `${now.names}`);
    assert(deferred.pendingAdd, "the add of a pending conv output is not pending");
    assertEquals(deferred.names, ["GemmProgram", "GemmProgram"], "only the two GEMMs are tfjs-recorded programs");
    assertEquals(deferred.values, now.values, "BN of the deferred sum differs from BN of tfjs's add");
    tf.dispose([x, w1, w2, gamma, beta]);
    submitPendingWork();
    assertEquals(pendingSumCount(), 0);
    assertEquals(backend.numDataIds(), ids - 5, "terms leaked");
  }),
);

Deno.test(
  "a pending sum that reads a tensor is summed before a direct program writes that tensor in place",
  withFastKernels(async () => {
    const { x, dy } = inputs();
    const param = tf.randomNormal([K, K, CI, CO], 0, 1, "float32", 18).add(0);
    const before = await param.data();
    const { result: dw } = weightGradient(x, dy);
    const dwValues = await tf.clone(dw).data(); // a read of a clone: sums dw (same data) now
    const { result: dw2 } = weightGradient(x, dy);
    const sum = tf.add(dw2, param); // pending: reads param's buffer
    assert(pendingSum(sum.dataId), "the add is not pending");
    const created = multiTensorSgd([{ param, grad: dw, decay: false }], {
      lr: 0.5,
      momentum: 0.9,
      nesterov: false,
      weightDecay: 0,
    });
    const got = await sum.data();
    const want = before.map((v, i) => Math.fround(dwValues[i] + v));
    assertEquals(Array.from(got), Array.from(want), "the sum saw the parameter after the in-place update");
    assert((await param.data()).some((v, i) => v !== before[i]), "SGD changed nothing");
    tf.dispose([x, dy, param, dw, dw2, sum, ...created.filter((b) => b !== undefined)]);
  }),
);

Deno.test(
  "a convolution without split-K is pending as one term: read alone it takes over the GEMM's buffer, shared it is copied",
  withFastKernels(async () => {
    const x = tf.randomNormal([1, 4, 4, 4], 0, 1, "float32", 19) as tf.Tensor4D;
    const w = tf.randomNormal([1, 1, 4, 4], 0, 1, "float32", 20) as tf.Tensor4D;
    const other = tf.randomNormal([1, 4, 4, 4], 0, 1, "float32", 21);
    const ids = backend.numDataIds();
    setSplitKDeferral(false);
    const want = tf.conv2d(x, w, 1, "valid");
    const wantSum = tf.add(want, other);
    const [wantY, wantSumValues] = [await want.data(), await wantSum.data()];
    setSplitKDeferral(true);
    tf.dispose([want, wantSum]);
    // Alone: no program runs for the read.
    const y = tf.conv2d(x, w, 1, "valid");
    assertEquals(pendingSum(y.dataId)?.terms.map((t) => t.splits), [1]);
    const read = recordPrograms(() => y.data());
    assertEquals(read.programs.length, 0, "reading a one-term sum ran a program");
    assertEquals(await read.result, wantY);
    // Shared with a pending add: both read right (the add keeps its own reference to the GEMM output).
    const y2 = tf.conv2d(x, w, 1, "valid");
    const sum = tf.add(y2, other);
    assert(pendingSum(sum.dataId), "the add is not pending");
    assertEquals(await y2.data(), wantY);
    y2.dispose();
    assertEquals(await sum.data(), wantSumValues);
    tf.dispose([y, sum]);
    submitPendingWork();
    assertEquals(pendingSumCount(), 0);
    assertEquals(backend.numDataIds(), ids, "terms leaked");
    tf.dispose([x, w, other]);
  }),
);
