/**
 * BatchMatMul through our GEMM kernel against a float64 reference: transposes, batches and broadcasts on the tile the
 * device picks (through registerFastKernels, as the models call it), and every GEMM tile with split-K forced through
 * the kernel's tiling option.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { registerFastKernels, restoreStockKernels } from "../register.ts";
import { fixedGemmTiling, GEMM_TILES, type GemmTile, SOFTWARE_GEMM_TILES } from "../gemm_tiling.ts";
import { SplitKReduceProgram } from "../split_k_reduce_program.ts";
import { fastBatchMatMul } from "../batch_mat_mul_kernel.ts";
import { gemmPrograms, recordPrograms, stockGemmPrograms } from "./program_log.ts";
import { check, checkClose, checkNoDeviceErrors, checkSame, type KernelCase } from "./kernel_case.ts";
import { tileName } from "./conv_tile_cases.ts";

const TOLERANCE = 1e-4;

/** [a shape, b shape, transposeA, transposeB] */
export type MatMulCase = [number[], number[], boolean, boolean];

/** The problems run on the device's own tile choice. */
export const MATMUL_PROBLEMS: readonly MatMulCase[] = [
  [[7, 5], [5, 3], false, false],
  [[5, 7], [5, 3], true, false],
  [[7, 5], [3, 5], false, true],
  [[5, 7], [3, 5], true, true],
  [[33, 65], [65, 130], false, false], // crosses 32/64/128 tile edges
  [[3, 9, 6], [3, 6, 11], false, false], // batched
  [[1, 9, 6], [4, 11, 6], false, true], // a broadcast over the batch
  [[2, 3, 9, 6], [9, 5], true, false], // rank 4 against rank 2
  [[5, 3000], [3000, 7], false, false], // long K, tiny output: split-K
  [[128, 10], [128, 512], true, false], // fc weight gradient shape
  [[12, 20], [20, 8], false, false], // vec4 loads of both operands
  [[20, 12], [8, 20], true, true], // vec4 along m for A and along k for B
  [[6, 8], [8, 10], false, false], // vec4 for A only
];

/** Float64 reference for `a` · `b` where one side's batch is 1 or both are equal (all our cases). */
export function referenceMatMul(c: MatMulCase, a: Float32Array, b: Float32Array): Float64Array {
  const [as, bs, ta, tb] = c;
  const m = ta ? as[as.length - 1] : as[as.length - 2];
  const k = ta ? as[as.length - 2] : as[as.length - 1];
  const n = tb ? bs[bs.length - 2] : bs[bs.length - 1];
  const batchA = a.length / (m * k), batchB = b.length / (k * n), batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const za = batchA === 1 ? 0 : z, zb = batchB === 1 ? 0 : z;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let q = 0; q < k; q++) {
          const av = ta ? a[(za * k + q) * m + i] : a[(za * m + i) * k + q];
          const bv = tb ? b[(zb * n + j) * k + q] : b[(zb * k + q) * n + j];
          sum += av * bv;
        }
        out[(z * m + i) * n + j] = sum;
      }
    }
  }
  return out;
}

/** tf.matMul with our kernels registered, on the tile the device picks. */
export const MATMUL_CASES: readonly KernelCase[] = MATMUL_PROBLEMS.map((c) => {
  const where = `matMul ${JSON.stringify(c)} on the device's tile`;
  return {
    name: where,
    run: async () => {
      const [a, b] = [tf.randomNormal(c[0], 0, 1, "float32", 11), tf.randomNormal(c[1], 0, 1, "float32", 12)];
      registerFastKernels();
      let o: tf.Tensor, programs;
      try {
        ({ result: o, programs } = recordPrograms(() => tf.matMul(a, b, c[2], c[3])));
      } finally {
        restoreStockKernels();
      }
      try {
        // Stock would match the reference too: prove that ours ran.
        checkSame(gemmPrograms(programs).length, 1, `${where}: GEMM programs`);
        checkSame(stockGemmPrograms(programs), [], `${where}: stock programs`);
        const ref = referenceMatMul(c, await a.data() as Float32Array, await b.data() as Float32Array);
        const actual = await o.data();
        checkNoDeviceErrors(where);
        checkClose(actual, ref, TOLERANCE, where);
      } finally {
        tf.dispose([a, b, o]);
      }
    },
  };
});

/**
 * The big tiles are what a GPU runs (a software adapter picks one small tile); they cost 0.5-25 s each to compile on
 * a cold Mesa shader cache, so few problems with ragged edges in every dimension cover them (split-K 1 on every
 * tile: the convolution tile cases).
 */
const TILE_PROBLEMS: { c: MatMulCase; tiles: readonly GemmTile[]; splitK: number }[] = [
  // K = 44: A is read as vec4 along k, B (N = 70) as scalars, and the split-K slices (32 + 12 on 16-deep slabs,
  // 24 + 20 on 8-deep ones) keep groups of four whole.
  { c: [[37, 44], [44, 70], false, false], tiles: [...SOFTWARE_GEMM_TILES, ...GEMM_TILES], splitK: 2 },
  // A transposed (vec4 along m) and B vec4 along n: the operand layout of backprop-filter, run on the tile an
  // H100 picks for it (128x64).
  {
    c: [[44, 36], [44, 72], true, false],
    tiles: GEMM_TILES.filter((t) => t.tileM === 128 && t.tileN === 64),
    splitK: 2,
  },
  // B transposed (vec4 along k, the layout of backprop-input's w): its slab rows are XOR-swizzled. N = 136 fills
  // every column of the first 128-wide tile, so a read that misses the swizzle gets a wrong nonzero column, which the
  // convolution cases (N ≤ 6: most columns zero) could miss.
  {
    c: [[20, 36], [136, 36], false, true],
    tiles: GEMM_TILES.filter((t) => t.tileM === 128 && t.tileN === 128),
    splitK: 2,
  },
];

/** BatchMatMul on every GEMM tile with split-K, forced through the kernel's tiling option. */
export const MATMUL_TILE_CASES: readonly KernelCase[] = TILE_PROBLEMS.flatMap(({ c, tiles, splitK }) =>
  tiles.map((tile): KernelCase => {
    const where = `matMul ${JSON.stringify(c)} on the ${tileName(tile)} tile, split-K ${splitK}`;
    return {
      name: where,
      run: async () => {
        const backend = tf.backend() as WebGPUBackend;
        const a = tf.randomNormal(c[0], 0, 1, "float32", 13);
        const b = tf.randomNormal(c[1], 0, 1, "float32", 14);
        try {
          const ref = referenceMatMul(c, await a.data() as Float32Array, await b.data() as Float32Array);
          const { result, programs } = recordPrograms(() =>
            fastBatchMatMul(
              { inputs: { a, b }, backend, attrs: { transposeA: c[2], transposeB: c[3] } },
              { tiling: fixedGemmTiling(tile, splitK) },
            )
          );
          check(result, `${where}: the kernel declined`);
          const out = tf.engine().makeTensorFromTensorInfo(result);
          // Split-K sums may be deferred to the first read (kernels/deferred_split_k.ts): record it too.
          const read = recordPrograms(() => out.data());
          programs.push(...read.programs);
          const actual = await read.result;
          out.dispose();
          checkNoDeviceErrors(where);
          const t = gemmPrograms(programs)[0]?.spec.tiling;
          checkSame([t?.tileM, t?.tileN, t?.tileK, t?.splitK], [tile.tileM, tile.tileN, tile.tileK, splitK], where);
          checkSame(programs.some((p) => p instanceof SplitKReduceProgram), splitK > 1, `${where}: reduction pass`);
          checkClose(actual, ref, TOLERANCE, where);
        } finally {
          tf.dispose([a, b]);
        }
      },
    };
  })
);
