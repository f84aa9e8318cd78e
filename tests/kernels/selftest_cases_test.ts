/**
 * The shared kernel cases that have no other Deno test file of their own (fused cross-entropy, multi-tensor SGD and
 * EMA, mixup/cutmix against float64 references; their PyTorch comparisons are in tests/train/ and tests/kernels/), and the list the browser runs: every
 * family once, no name twice (the page reports failures by name).
 * @module
 */
import { assertEquals } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { KERNEL_CASES } from "../../kernels/selftest/cases.ts";
import { FUSED_CROSS_ENTROPY_CASES } from "../../kernels/selftest/fused_cross_entropy_cases.ts";
import { MULTI_TENSOR_SGD_CASES } from "../../kernels/selftest/multi_tensor_sgd_cases.ts";
import { MULTI_TENSOR_EMA_CASES } from "../../kernels/selftest/multi_tensor_ema_cases.ts";
import { MIX_BATCH_CASES } from "../../kernels/selftest/mix_batch_cases.ts";
import { CONV_TILE_CASES } from "../../kernels/selftest/conv_tile_cases.ts";
import { MATMUL_CASES, MATMUL_TILE_CASES } from "../../kernels/selftest/matmul_cases.ts";
import { POOLED_LINEAR_CASES } from "../../kernels/selftest/pooled_linear_cases.ts";
import { BATCH_NORM_CASES } from "../../kernels/selftest/batch_norm_cases.ts";

await initWebGPU();

Deno.test("the browser's case list is every family's cases, each name once", () => {
  const families = [
    CONV_TILE_CASES,
    MATMUL_CASES,
    MATMUL_TILE_CASES,
    POOLED_LINEAR_CASES,
    BATCH_NORM_CASES,
    FUSED_CROSS_ENTROPY_CASES,
    MULTI_TENSOR_SGD_CASES,
    MULTI_TENSOR_EMA_CASES,
    MIX_BATCH_CASES,
  ];
  assertEquals(new Set(KERNEL_CASES), new Set(families.flat()));
  assertEquals(KERNEL_CASES.length, families.reduce((n, f) => n + f.length, 0));
  assertEquals(new Set(KERNEL_CASES.map((c) => c.name)).size, KERNEL_CASES.length);
});

for (
  const c of [...FUSED_CROSS_ENTROPY_CASES, ...MULTI_TENSOR_SGD_CASES, ...MULTI_TENSOR_EMA_CASES, ...MIX_BATCH_CASES]
) {
  Deno.test(c.name, c.run);
}
