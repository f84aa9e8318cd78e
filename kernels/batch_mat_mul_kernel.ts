/**
 * BatchMatMul on the `webgpu` backend through our tiled GEMM ({@linkcode runGemm}), with split-K for small outputs.
 * Falls back to the stock kernel for non-f32 inputs and batch broadcasts that are not "all or one".
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { read, type UntiledGemmSpec } from "./gemm_program.ts";
import { type GemmRunOptions, runGemm } from "./run_gemm.ts";
import { numElements } from "./num_elements.ts";

type KernelArgs = Parameters<tf.KernelFunc>[0];

/**
 * The GEMM for `a` · `b` (each optionally transposed in its last two axes), or undefined when the batch axes
 * broadcast other than wholesale (one side batch 1, or both the same shape).
 */
export function matMulSpec(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): UntiledGemmSpec | undefined {
  const ra = aShape.length, rb = bShape.length;
  if (ra < 2 || rb < 2) return undefined;
  const m = transposeA ? aShape[ra - 1] : aShape[ra - 2];
  const k = transposeA ? aShape[ra - 2] : aShape[ra - 1];
  const kb = transposeB ? bShape[rb - 1] : bShape[rb - 2];
  const n = transposeB ? bShape[rb - 2] : bShape[rb - 1];
  if (k !== kb) return undefined; // let the stock kernel raise tfjs's own message
  const outerA = aShape.slice(0, -2), outerB = bShape.slice(0, -2);
  const batchA = numElements(outerA), batchB = numElements(outerB);
  let outer: number[];
  if (batchA === 1 && outerA.length <= outerB.length) outer = [...outerB];
  else if (batchB === 1 && outerB.length <= outerA.length) outer = [...outerA];
  else if (outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i])) outer = [...outerA];
  else return undefined;
  const batch = numElements(outer);
  const bA = batchA === 1 ? "0" : "bi";
  const bB = batchB === 1 ? "0" : "bi";
  // Read four at a time along each operand's contiguous axis when that axis is a multiple of 4.
  const aVec4 = (transposeA ? m : k) % 4 === 0, bVec4 = (transposeB ? k : n) % 4 === 0;
  return {
    key: `matmul_${batchA}_${batchB}_${transposeA}_${transposeB}_${aVec4}_${bVec4}`,
    variableNames: ["a", "b"],
    batch,
    m,
    n,
    k,
    loadA: `return ${
      read("a", transposeA ? `(${bA} * ${k} + k) * ${m} + m` : `(${bA} * ${m} + m) * ${k} + k`, aVec4)
    };`,
    loadB: `return ${
      read("b", transposeB ? `(${bB} * ${n} + n) * ${k} + k` : `(${bB} * ${k} + k) * ${n} + n`, bVec4)
    };`,
    aContiguous: transposeA ? "m" : "k",
    bContiguous: transposeB ? "k" : "n",
    aVec4,
    bVec4,
    outputShape: [...outer, m, n],
  };
}

/** BatchMatMul (inputs `a`, `b`; attrs `transposeA`, `transposeB`) through our GEMM, or undefined. */
export function fastBatchMatMul(args: KernelArgs, options: GemmRunOptions = {}): tf.TensorInfo | undefined {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
  const spec = a.dtype === "float32" && b.dtype === "float32"
    ? matMulSpec(a.shape, b.shape, transposeA, transposeB)
    : undefined;
  if (!spec) return undefined;
  return runGemm(args.backend as WebGPUBackend, spec, [a, b], options);
}
