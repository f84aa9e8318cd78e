/**
 * A convolution's weight gradient with split-K leaves its partial sums to the consumer (kernels/deferred_split_k.ts):
 * the multi-tensor SGD adds them as it reads them (no reduction dispatch), and every other reader gets the summed
 * values as if the reduction had run at once.
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { registerFastKernels, restoreStockKernels } from "../../kernels/register.ts";
import { pendingSplitK, pendingSplitKCount } from "../../kernels/deferred_split_k.ts";
import { multiTensorSgd } from "../../kernels/multi_tensor_sgd.ts";
import { SplitKReduceProgram } from "../../kernels/split_k_reduce_program.ts";
import { submitPendingWork } from "../../kernels/bind_group_cache.ts";
import { relativeError } from "../../bench/relative_error.ts";
import { type ConvCase, explicitPad, referenceConv } from "./conv_reference.ts";
import { gemmPrograms, recordPrograms } from "./program_log.ts";

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
        assert(pendingSplitK(dw.dataId), `${use}: the sum is not pending`);
        const read = use === "data" ? dw : tf.mul(dw, 2);
        const got = await read.data() as Float32Array;
        const want = use === "data" ? ref : ref.map((v) => 2 * v);
        assert(relativeError(got, want) <= 1e-4, `${use}: relative error ${relativeError(got, want)}`);
        assertEquals(pendingSplitK(dw.dataId), undefined, `${use}: still pending after a read`);
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
        assertEquals(!!pendingSplitK(dw.dataId), consumePending);
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
    assertEquals(pendingSplitKCount(), 0);
    tf.dispose([x, dy, init]);
    submitPendingWork(); // tfjs frees buffers that recorded work uses at the next submit
    assertEquals(backend.numDataIds(), ids - 3, "partial sums leaked");
    assertEquals(tf.memory().numTensors, tensors - 3);
  }),
);
