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
import { relativeError } from "../../bench/relative_error.ts";
import {
  chooseGemmTiling,
  fixedGemmTiling,
  GEMM_TILES,
  type GemmTile,
  SOFTWARE_GEMM_TILES,
} from "../../kernels/gemm_tiling.ts";
import { SplitKReduceProgram } from "../../kernels/split_k_reduce_program.ts";
import { fastBatchMatMul } from "../../kernels/batch_mat_mul_kernel.ts";
import { gemmDeviceLimits } from "../../kernels/run_gemm.ts";
import { gemmPrograms, recordPrograms, stockGemmPrograms } from "./program_log.ts";

await initWebGPU();

const TOLERANCE = 1e-4;

/** [a shape, b shape, transposeA, transposeB] */
type Case = [number[], number[], boolean, boolean];
const CASES: Case[] = [
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

Deno.test("the long-K case exercises split-K on this adapter", () => {
  const t = chooseGemmTiling({ batch: 1, m: 5, n: 7, k: 3000 }, gemmDeviceLimits(tf.backend() as WebGPUBackend));
  assert(t.splitK > 1, JSON.stringify(t));
});

/** Float64 reference for `a` · `b` where one side's batch is 1 or both are equal (all our cases). */
function referenceMatMul(c: Case, a: Float32Array, b: Float32Array): Float64Array {
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

Deno.test("BatchMatMul matches a float64 reference to 1e-4 across transposes, batches and broadcasts", async () => {
  registerFastKernels();
  try {
    for (const c of CASES) {
      const [a, b] = [tf.randomNormal(c[0], 0, 1, "float32", 11), tf.randomNormal(c[1], 0, 1, "float32", 12)];
      const { result: o, programs } = recordPrograms(() => tf.matMul(a, b, c[2], c[3]));
      // Stock would match the reference too: prove that ours ran.
      assert(gemmPrograms(programs).length === 1, `case ${JSON.stringify(c)}: ${programs.length} programs`);
      assertEquals(stockGemmPrograms(programs), [], `case ${JSON.stringify(c)} fell back to stock`);
      const ref = referenceMatMul(c, await a.data() as Float32Array, await b.data() as Float32Array);
      assert(o.size === ref.length, `case ${JSON.stringify(c)}: ${o.size} elements, expected ${ref.length}`);
      const err = relativeError(await o.data(), ref);
      tf.dispose([a, b, o]);
      assert(err <= TOLERANCE, `case ${JSON.stringify(c)}: relative error ${err}`);
    }
  } finally {
    restoreStockKernels();
  }
});

Deno.test("BatchMatMul on every GEMM tile with split-K, forced through the kernel's tiling option", async () => {
  // The big tiles are what a GPU runs (a software adapter picks one small tile); they cost 0.5-25 s each to compile
  // here on a cold shader cache, so few problems with ragged edges in every dimension cover them (split-K 1 on
  // every tile: conv_tiles_test.ts).
  const backend = tf.backend() as WebGPUBackend;
  const allTiles = [...SOFTWARE_GEMM_TILES, ...GEMM_TILES];
  const problems: { c: Case; tiles: readonly GemmTile[]; splits: number[] }[] = [
    // K = 44: A is read as vec4 along k, B (N = 70) as scalars, and the split-K slices (32 + 12 on 16-deep slabs,
    // 24 + 20 on 8-deep ones) keep groups of four whole.
    { c: [[37, 44], [44, 70], false, false], tiles: allTiles, splits: [2] },
    // A transposed (vec4 along m) and B vec4 along n: the operand layout of backprop-filter, run on the tile an
    // H100 picks for it (128x64).
    {
      c: [[44, 36], [44, 72], true, false],
      tiles: GEMM_TILES.filter((t) => t.tileM === 128 && t.tileN === 64),
      splits: [2],
    },
  ];
  for (const { c, tiles, splits } of problems) {
    const a = tf.randomNormal(c[0], 0, 1, "float32", 13);
    const b = tf.randomNormal(c[1], 0, 1, "float32", 14);
    const ref = referenceMatMul(c, await a.data() as Float32Array, await b.data() as Float32Array);
    for (const tile of tiles) {
      for (const splitK of splits) {
        const where = `case ${JSON.stringify(c)} tile ${JSON.stringify(tile)} split-K ${splitK}`;
        const { result, programs } = recordPrograms(() =>
          fastBatchMatMul(
            { inputs: { a, b }, backend, attrs: { transposeA: c[2], transposeB: c[3] } },
            { tiling: fixedGemmTiling(tile, splitK) },
          )
        );
        assert(result, `${where}: the kernel declined`);
        const [gemm] = gemmPrograms(programs);
        const t = gemm?.spec.tiling;
        assertEquals([t?.tileM, t?.tileN, t?.tileK, t?.splitK], [tile.tileM, tile.tileN, tile.tileK, splitK], where);
        assertEquals(programs.some((p) => p instanceof SplitKReduceProgram), splitK > 1, where);
        const out = tf.engine().makeTensorFromTensorInfo(result);
        const err = relativeError(await out.data(), ref);
        out.dispose();
        assert(err <= TOLERANCE, `${where}: relative error ${err}`);
      }
    }
    tf.dispose([a, b]);
  }
});

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
