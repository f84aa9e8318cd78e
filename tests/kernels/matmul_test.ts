import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import {
  activeFastKernels,
  FAST_KERNEL_NAMES,
  registerFastKernels,
  restoreStockKernels,
} from "../../kernels/register.ts";
import { chooseGemmTiling } from "../../kernels/gemm_tiling.ts";
import { gemmDeviceLimits } from "../../kernels/run_gemm.ts";
import { MATMUL_CASES, MATMUL_PROBLEMS, MATMUL_TILE_CASES } from "../../kernels/selftest/matmul_cases.ts";

await initWebGPU();

Deno.test("the long-K case exercises split-K on this adapter", () => {
  const t = chooseGemmTiling({ batch: 1, m: 5, n: 7, k: 3000 }, gemmDeviceLimits(tf.backend() as WebGPUBackend));
  assert(t.splitK > 1, JSON.stringify(t));
  assert(MATMUL_PROBLEMS.some(([a, b]) => a.at(-1) === 3000 && b.at(-2) === 3000), "the long-K case is in the list");
});

// The cases the browser self-test runs too (kernels/selftest/matmul_cases.ts).
for (const c of [...MATMUL_CASES, ...MATMUL_TILE_CASES]) Deno.test(c.name, c.run);

Deno.test("registerFastKernels and restoreStockKernels are idempotent, take subsets and refuse f16 for now", () => {
  const all = [...FAST_KERNEL_NAMES].sort();
  registerFastKernels();
  registerFastKernels();
  assertEquals(activeFastKernels(), all);
  registerFastKernels({ kernels: ["Conv2D"] });
  assertEquals(activeFastKernels(), ["Conv2D"]);
  registerFastKernels();
  assertEquals(activeFastKernels(), all);
  restoreStockKernels();
  restoreStockKernels();
  assertEquals(activeFastKernels(), []);
  throws(() => registerFastKernels({ kernels: ["Conv3D"] }), /unknown kernel "Conv3D"/);
  let threw = false;
  try {
    registerFastKernels({ f16: true });
  } catch (e) {
    threw = (e as Error).message.includes("f16");
  }
  assert(threw, "f16 must be refused with a message naming it");
});
