import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import {
  chooseGemmTiling,
  fixedGemmTiling,
  GEMM_TILES,
  type GemmDeviceLimits,
  SOFTWARE_GEMM_TILES,
  tileStorageBytes,
  tileThreads,
  tileWaste,
} from "../../kernels/gemm_tiling.ts";
import {
  convBackpropFilterSpec,
  convBackpropInputParitySpecs,
  convBackpropInputSpec,
  convForwardSpec,
} from "../../kernels/conv_gemm_specs.ts";
import { convGeometry } from "../../kernels/conv_geometry.ts";
import { matMulSpec } from "../../kernels/batch_mat_mul_kernel.ts";
import { relativeError } from "../../kernels/selftest/relative_error.ts";

const H100: GemmDeviceLimits = {
  maxWorkgroupStorageBytes: 49152,
  maxInvocationsPerWorkgroup: 1024,
  targetWorkgroups: 528,
  minKPerSplit: 256,
};
const LLVMPIPE: GemmDeviceLimits = {
  maxWorkgroupStorageBytes: 32768,
  maxInvocationsPerWorkgroup: 1024,
  targetWorkgroups: 8,
  minKPerSplit: 64,
  tiles: SOFTWARE_GEMM_TILES,
};

Deno.test("every candidate tile loads evenly and fits the smallest device we support", () => {
  for (const t of [...GEMM_TILES, ...SOFTWARE_GEMM_TILES]) {
    const threads = tileThreads(t);
    assertEquals((t.tileM * t.tileK) % threads, 0);
    assertEquals((t.tileN * t.tileK) % threads, 0);
    assertEquals(t.threadM % 4, 0);
    assertEquals(t.threadN % 4, 0);
    assert(threads <= 256, "256 is WebGPU's guaranteed minimum of maxComputeInvocationsPerWorkgroup");
    assert(tileStorageBytes(t) <= 16384, "16 KiB is WebGPU's guaranteed workgroup memory");
  }
});

Deno.test("chooseGemmTiling: K slices cover K exactly, respect the limits and fill the device", () => {
  const sizes = [1, 3, 10, 17, 64, 100, 129, 576, 1000, 4608];
  const ks = [1, 5, 16, 33, 512, 2048, 131072];
  for (const limits of [H100, LLVMPIPE]) {
    for (const batch of [1, 3]) {
      for (const m of sizes) {
        for (const n of sizes) {
          for (const k of ks) {
            const t = chooseGemmTiling({ batch, m, n, k }, limits);
            const where = `batch ${batch} m ${m} n ${n} k ${k}: ${JSON.stringify(t)}`;
            assert(tileThreads(t) <= limits.maxInvocationsPerWorkgroup, where);
            assert(tileStorageBytes(t, t.buffers) <= limits.maxWorkgroupStorageBytes, where);
            assertEquals(t.kPerSplit % t.tileK, 0, where);
            assert(t.splitK >= 1, where);
            assert(t.splitK * t.kPerSplit >= k, `slices cover K: ${where}`);
            assert((t.splitK - 1) * t.kPerSplit < k, `no empty slice: ${where}`);
            const wg = batch * Math.ceil(m / t.tileM) * Math.ceil(n / t.tileN);
            if (wg >= limits.targetWorkgroups) assertEquals(t.splitK, 1, `no split when the device is full: ${where}`);
            if (t.splitK > 1) {
              assert(t.kPerSplit >= Math.min(limits.minKPerSplit, k), `slices not too short: ${where}`);
              assert(wg * t.splitK <= 2 * limits.targetWorkgroups + wg, `no over-splitting: ${where}`);
            }
          }
        }
      }
    }
  }
});

Deno.test("chooseGemmTiling: ResNet backprop-filter at 64 channels, 32x32, batch 128 is split along K", () => {
  const t = chooseGemmTiling({ batch: 1, m: 3 * 3 * 64, n: 64, k: 128 * 32 * 32 }, H100);
  assert(t.splitK >= 32, JSON.stringify(t));
  assert(tileWaste(t, 576, 64) <= 1.3, JSON.stringify(t));
  // A big output needs no split and gets the biggest tile.
  const big = chooseGemmTiling({ batch: 1, m: 128 * 32 * 32, n: 128, k: 576 }, H100);
  assertEquals([big.tileM, big.tileN, big.splitK], [128, 128, 1]);
});

/**
 * Backprop-filter of every distinct convolution of torchvision's ResNet-18 and ResNet-50 (ImageNet, 224²) at batch
 * 128 and 512 on an H100's limits: [name, kernel, in channels, out channels, output size, stride, then for batch 128
 * and 512 the expected [tileM, tileN, splitK, workgroups of the GEMM]]. Before 2026-12-01 layer 3's and layer 4's
 * 3×3 convolutions took 32×32 (or 64×64) tiles without split-K, the first tile that filled the device by itself.
 */
const RESNET_BACKPROP_FILTER: [string, number, number, number, number, number, number[], number[]][] = [
  ["resnet18 stem", 7, 3, 64, 112, 2, [32, 32, 53, 530], [32, 32, 53, 530]],
  ["resnet18 layer1 3x3", 3, 64, 64, 56, 1, [128, 64, 106, 530], [128, 64, 106, 530]],
  ["resnet18 layer2 3x3/2", 3, 64, 128, 28, 2, [128, 128, 105, 525], [128, 128, 106, 530]],
  ["resnet18 layer2 3x3", 3, 128, 128, 28, 1, [128, 128, 59, 531], [128, 128, 59, 531]],
  ["resnet18 layer2 downsample", 1, 64, 128, 28, 2, [64, 64, 262, 524], [64, 128, 523, 523]],
  ["resnet18 layer3 3x3/2", 3, 128, 256, 14, 2, [128, 128, 30, 540], [128, 128, 30, 540]],
  ["resnet18 layer3 3x3", 3, 256, 256, 14, 1, [128, 128, 15, 540], [128, 128, 15, 540]],
  ["resnet18 layer3 downsample", 1, 128, 256, 14, 2, [64, 64, 66, 528], [128, 128, 262, 524]],
  ["resnet18 layer4 3x3/2", 3, 256, 512, 7, 2, [128, 128, 8, 576], [128, 128, 8, 576]],
  ["resnet18 layer4 3x3", 3, 512, 512, 7, 1, [128, 128, 4, 576], [128, 128, 4, 576]],
  ["resnet18 layer4 downsample", 1, 256, 512, 7, 2, [64, 64, 17, 544], [128, 128, 66, 528]],
  ["resnet50 layer1 1x1 64>64", 1, 64, 64, 56, 1, [64, 64, 523, 523], [64, 64, 526, 526]],
  ["resnet50 layer1 1x1 256>64", 1, 256, 64, 56, 1, [128, 64, 262, 524], [128, 64, 264, 528]],
  ["resnet50 layer1 3x3", 3, 64, 64, 56, 1, [128, 64, 106, 530], [128, 64, 106, 530]],
  ["resnet50 layer1 1x1 64>256", 1, 64, 256, 56, 1, [64, 128, 262, 524], [64, 128, 264, 528]],
  ["resnet50 layer2 1x1 256>128", 1, 256, 128, 56, 1, [128, 128, 262, 524], [128, 128, 264, 528]],
  ["resnet50 layer2 1x1 512>128", 1, 512, 128, 28, 1, [128, 128, 131, 524], [128, 128, 132, 528]],
  ["resnet50 layer2 3x3/2", 3, 128, 128, 28, 2, [128, 128, 59, 531], [128, 128, 59, 531]],
  ["resnet50 layer2 3x3", 3, 128, 128, 28, 1, [128, 128, 59, 531], [128, 128, 59, 531]],
  ["resnet50 layer2 1x1 128>512", 1, 128, 512, 28, 1, [128, 128, 131, 524], [128, 128, 132, 528]],
  ["resnet50 layer2 downsample", 1, 256, 512, 28, 2, [128, 128, 66, 528], [128, 128, 66, 528]],
  ["resnet50 layer3 1x1 512>256", 1, 512, 256, 28, 1, [128, 128, 66, 528], [128, 128, 66, 528]],
  ["resnet50 layer3 1x1 1024>256", 1, 1024, 256, 14, 1, [128, 128, 33, 528], [128, 128, 33, 528]],
  ["resnet50 layer3 3x3/2", 3, 256, 256, 14, 2, [128, 128, 15, 540], [128, 128, 15, 540]],
  ["resnet50 layer3 3x3", 3, 256, 256, 14, 1, [128, 128, 15, 540], [128, 128, 15, 540]],
  ["resnet50 layer3 1x1 256>1024", 1, 256, 1024, 14, 1, [128, 128, 33, 528], [128, 128, 33, 528]],
  ["resnet50 layer3 downsample", 1, 512, 1024, 14, 2, [128, 128, 17, 544], [128, 128, 17, 544]],
  ["resnet50 layer4 1x1 1024>512", 1, 1024, 512, 14, 1, [128, 128, 17, 544], [128, 128, 17, 544]],
  ["resnet50 layer4 1x1 2048>512", 1, 2048, 512, 7, 1, [128, 128, 9, 576], [128, 128, 9, 576]],
  ["resnet50 layer4 3x3/2", 3, 512, 512, 7, 2, [128, 128, 4, 576], [128, 128, 4, 576]],
  ["resnet50 layer4 3x3", 3, 512, 512, 7, 1, [128, 128, 4, 576], [128, 128, 4, 576]],
  ["resnet50 layer4 1x1 512>2048", 1, 512, 2048, 7, 1, [128, 128, 9, 576], [128, 128, 9, 576]],
  ["resnet50 layer4 downsample", 1, 1024, 2048, 7, 2, [128, 128, 5, 640], [128, 128, 5, 640]],
];

Deno.test("chooseGemmTiling: ResNet-18/50 backprop-filter at batch 128 and 512 takes big tiles cut along K", () => {
  for (const [name, kernel, ci, co, size, stride, ...expected] of RESNET_BACKPROP_FILTER) {
    [128, 512].forEach((batch, i) => {
      const pad = (kernel - 1) / 2;
      const g = convGeometry([batch, size * stride, size * stride, ci], [kernel, kernel, ci, co], {
        strides: stride,
        pad: [[0, 0], [pad, pad], [pad, pad], [0, 0]],
      })!;
      const spec = convBackpropFilterSpec(g);
      assertEquals([spec.m, spec.n, spec.k], [kernel * kernel * ci, co, batch * size * size], name);
      const t = chooseGemmTiling({ batch: 1, m: spec.m, n: spec.n, k: spec.k }, H100);
      const workgroups = Math.ceil(spec.m / t.tileM) * Math.ceil(spec.n / t.tileN) * t.splitK;
      const where = `${name} batch ${batch}: ${JSON.stringify(t)}`;
      assertEquals([t.tileM, t.tileN, t.splitK, workgroups], expected[i], where);
      assertEquals(t.buffers, 2, `${where}: two slab buffers fit 48 KiB`);
      // What the table encodes: the device is filled, by the biggest acceptable tile that can fill it with split-K.
      // (within 2 %: slices are whole 16-deep slabs, so K may not cut into exactly the wanted count).
      assert(workgroups >= 0.98 * H100.targetWorkgroups, `${where}: fills the device`);
      const better = GEMM_TILES.slice(0, GEMM_TILES.findIndex((c) => c.tileM === t.tileM && c.tileN === t.tileN))
        .filter((c) => tileWaste(c, spec.m, spec.n) <= 1.3)
        .filter((c) => Math.ceil(spec.m / c.tileM) * Math.ceil(spec.n / c.tileN) * Math.floor(spec.k / 256) >= 528);
      assertEquals(better, [], `${where}: a bigger tile could fill the device with split-K`);
    });
  }
});

Deno.test("chooseGemmTiling: two slab buffers only where they fit the device's workgroup memory", () => {
  const dims = { batch: 1, m: 2304, n: 256, k: 25088 };
  const at = (bytes: number) => chooseGemmTiling(dims, { ...H100, maxWorkgroupStorageBytes: bytes });
  // 128x128x16: 16 KiB per buffer.
  assertEquals([at(49152).tileM, at(49152).buffers], [128, 2]);
  assertEquals([at(32768).tileM, at(32768).buffers], [128, 2]);
  assertEquals([at(16384).tileM, at(16384).tileN, at(16384).buffers], [128, 128, 1]);
  for (const bytes of [16384, 32768, 49152]) {
    assert(tileStorageBytes(at(bytes), at(bytes).buffers) <= bytes, `${bytes}`);
  }
  // Without splitting (rows stored into a shared output) the small tile that fills the device still wins.
  const noSplit = chooseGemmTiling(dims, H100, { noSplit: true });
  assertEquals([noSplit.tileM, noSplit.tileN, noSplit.splitK], [32, 32, 1]);
});

Deno.test("fixedGemmTiling forces a tile and split-K whatever the device, one slice where splitting is barred", () => {
  const tile = GEMM_TILES[2]; // 64x128
  const dims = { batch: 1, m: 37, n: 70, k: 44 };
  assertEquals(fixedGemmTiling(tile, 2)(dims, {}), { ...tile, splitK: 2, kPerSplit: 32, buffers: 2 });
  assertEquals(fixedGemmTiling(tile, 2)(dims, { noSplit: true }), { ...tile, splitK: 1, kPerSplit: 48, buffers: 2 });
  assertEquals(fixedGemmTiling(tile)(dims, {}), { ...tile, splitK: 1, kPerSplit: 48, buffers: 2 });
  assertEquals(fixedGemmTiling(tile, 1, 1)(dims, {}), { ...tile, splitK: 1, kPerSplit: 48, buffers: 1 });
  // K = 20 cannot hold 3 non-empty slices of whole 16-deep slabs: 2 slices.
  assertEquals(fixedGemmTiling(tile, 3)({ ...dims, k: 20 }, {}), { ...tile, splitK: 2, kPerSplit: 16, buffers: 2 });
});

Deno.test("chooseGemmTiling rejects non-positive dimensions and impossible devices, naming the problem", () => {
  throws(() => chooseGemmTiling({ batch: 1, m: 0, n: 4, k: 4 }, H100), /dimension m must be a positive integer, got 0/);
  throws(() => chooseGemmTiling({ batch: 1, m: 4, n: 2.5, k: 4 }, H100), /dimension n/);
  throws(
    () => chooseGemmTiling({ batch: 1, m: 4, n: 4, k: 4 }, { ...H100, maxInvocationsPerWorkgroup: 32 }),
    /no GEMM tile fits the device \(max 32 invocations/,
  );
});

Deno.test("conv implicit-GEMM dimensions match tfjs's convolution geometry", () => {
  const cases: [number[], number[], number, number][] = [
    [[2, 9, 7, 5], [3, 3, 5, 6], 2, 1],
    [[1, 32, 32, 3], [3, 3, 3, 64], 1, 1],
    [[4, 224, 224, 3], [7, 7, 3, 64], 2, 3],
    [[3, 8, 8, 16], [1, 1, 16, 32], 2, 0],
  ];
  for (const [xs, ws, s, p] of cases) {
    const g = convGeometry(xs, ws, { strides: s, pad: [[0, 0], [p, p], [p, p], [0, 0]] });
    assert(g);
    const info = tf.backend_util.computeConv2DInfo(
      xs as [number, number, number, number],
      ws as [number, number, number, number],
      s,
      1,
      [[0, 0], [p, p], [p, p], [0, 0]],
    );
    const pixelsOut = info.batchSize * info.outHeight * info.outWidth;
    const fwd = convForwardSpec(g);
    assertEquals([fwd.m, fwd.n, fwd.k], [pixelsOut, ws[3], ws[0] * ws[1] * ws[2]]);
    assertEquals(fwd.outputShape, info.outShape);
    const dw = convBackpropFilterSpec(g);
    assertEquals([dw.m, dw.n, dw.k], [ws[0] * ws[1] * ws[2], ws[3], pixelsOut]);
    assertEquals(dw.outputShape, ws);
    const dx = convBackpropInputSpec(g);
    assertEquals([dx.m, dx.n, dx.k], [xs[0] * xs[1] * xs[2], xs[3], ws[0] * ws[1] * ws[3]]);
    assertEquals(dx.outputShape, xs);
  }
});

Deno.test("vec4 operand loads are chosen exactly when the contiguous channel count is a multiple of 4", () => {
  const geometry = (ci: number, co: number) =>
    convGeometry([2, 8, 8, ci], [3, 3, ci, co], { strides: 1, pad: "same" })!;
  for (const [ci, co] of [[4, 8], [3, 8], [8, 6], [5, 7]]) {
    const g = geometry(ci, co);
    const fwd = convForwardSpec(g), dw = convBackpropFilterSpec(g), dx = convBackpropInputSpec(g);
    assertEquals([fwd.aVec4, fwd.bVec4], [ci % 4 === 0, co % 4 === 0], `forward ci ${ci} co ${co}`);
    assertEquals([dw.aVec4, dw.bVec4], [ci % 4 === 0, co % 4 === 0], `backprop-filter ci ${ci} co ${co}`);
    assertEquals([dx.aVec4, dx.bVec4], [co % 4 === 0, co % 4 === 0], `backprop-input ci ${ci} co ${co}`);
  }
  const mm = matMulSpec([12, 20], [10, 20], false, true);
  assertEquals([mm?.aVec4, mm?.bVec4], [true, true]);
  const mt = matMulSpec([20, 6], [20, 9], true, false);
  assertEquals([mt?.aVec4, mt?.bVec4], [false, false]);
});

Deno.test("parity classes of a strided backprop-input partition the pixels and the taps", () => {
  const cases: [number[], number[], number, number][] = [
    [[2, 9, 7, 5], [3, 3, 5, 6], 2, 1],
    [[4, 224, 224, 3], [7, 7, 3, 64], 2, 3],
    [[3, 9, 9, 16], [1, 1, 16, 32], 2, 0],
    [[1, 10, 11, 4], [2, 2, 4, 4], 3, 0],
  ];
  for (const [xs, ws, s, p] of cases) {
    const g = convGeometry(xs, ws, { strides: s, pad: [[0, 0], [p, p], [p, p], [0, 0]] })!;
    const specs = convBackpropInputParitySpecs(g);
    const where = `x [${xs}] w [${ws}] stride ${s} pad ${p}`;
    assertEquals(specs.reduce((a, sp) => a + sp.m, 0), xs[0] * xs[1] * xs[2], `rows partition dx: ${where}`);
    const taps = specs.map((sp) => sp.k / ws[3]);
    const realTaps = specs.filter((sp) => !sp.loadA.startsWith("_ = dy[0];")).reduce((a, sp) => a + sp.k / ws[3], 0);
    assertEquals(realTaps, ws[0] * ws[1], `taps partition the filter: ${where}`);
    assert(taps.every((t) => t >= 1), where);
    assert(specs.every((sp) => sp.n === xs[3] && sp.storeRow), where);
  }
});

Deno.test("convGeometry leaves NCHW and dilated convolutions to the stock kernels", () => {
  const pad = "valid" as const;
  assertEquals(convGeometry([1, 3, 8, 8], [3, 3, 3, 4], { strides: 1, pad, dataFormat: "NCHW" }), undefined);
  assertEquals(convGeometry([1, 8, 8, 3], [3, 3, 3, 4], { strides: 1, pad, dilations: 2 }), undefined);
  assert(convGeometry([1, 8, 8, 3], [3, 3, 3, 4], { strides: 1, pad, dilations: [1, 1] }));
});

Deno.test("matMulSpec: transposes, batch broadcast and the cases left to stock", () => {
  const s = matMulSpec([7, 5], [5, 3], false, false);
  assertEquals([s?.batch, s?.m, s?.n, s?.k, s?.outputShape], [1, 7, 3, 5, [7, 3]]);
  const t = matMulSpec([5, 7], [3, 5], true, true);
  assertEquals([t?.m, t?.n, t?.k, t?.aContiguous, t?.bContiguous], [7, 3, 5, "m", "k"]);
  const b = matMulSpec([1, 7, 5], [4, 5, 3], false, false);
  assertEquals([b?.batch, b?.outputShape], [4, [4, 7, 3]]);
  assertEquals(matMulSpec([2, 7, 5], [3, 5, 3], false, false), undefined, "2 vs 3 batches do not broadcast");
  assertEquals(matMulSpec([2, 1, 7, 5], [1, 3, 5, 3], false, false), undefined, "cross broadcast is left to stock");
  assertEquals(matMulSpec([7, 5], [4, 3], false, false), undefined, "mismatched inner sizes are left to stock");
});

Deno.test("relativeError scales by the reference and fails on NaN", () => {
  assertEquals(relativeError([1, 2, 4.5], [1, 2, 4]), 0.125);
  assertEquals(relativeError([0, 1e-9], [0, 0]), 1e-9);
  assert(Number.isNaN(relativeError([NaN, 1], [1, 1])));
  throws(() => relativeError([1], [1, 2]), /lengths differ \(actual 1, expected 2\)/);
});
