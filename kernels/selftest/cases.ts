/**
 * The kernel correctness cases, one list: the Deno tests run them (tests/kernels/*_test.ts) and so does the browser
 * self-test (`deno task demo`, then `/?selftest`), against the same references.
 * @module
 */
import type { KernelCase } from "./kernel_case.ts";
import { CONV_TILE_CASES } from "./conv_tile_cases.ts";
import { MATMUL_CASES, MATMUL_TILE_CASES } from "./matmul_cases.ts";
import { POOLED_LINEAR_CASES } from "./pooled_linear_cases.ts";
import { BATCH_NORM_CASES } from "./batch_norm_cases.ts";
import { FUSED_CROSS_ENTROPY_CASES } from "./fused_cross_entropy_cases.ts";
import { MULTI_TENSOR_SGD_CASES } from "./multi_tensor_sgd_cases.ts";
import { MIX_BATCH_CASES } from "./mix_batch_cases.ts";
import { MULTI_TENSOR_EMA_CASES } from "./multi_tensor_ema_cases.ts";

/** Every shared kernel case, cheapest families first so that a broken shader shows early. */
export const KERNEL_CASES: readonly KernelCase[] = [
  ...MATMUL_CASES,
  ...POOLED_LINEAR_CASES,
  ...BATCH_NORM_CASES,
  ...FUSED_CROSS_ENTROPY_CASES,
  ...MULTI_TENSOR_SGD_CASES,
  ...MULTI_TENSOR_EMA_CASES,
  ...MIX_BATCH_CASES,
  ...CONV_TILE_CASES,
  ...MATMUL_TILE_CASES,
];
