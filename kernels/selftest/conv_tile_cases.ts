/**
 * Every GEMM tile with every convolution loader, forced through the kernels' tiling option: a software adapter picks
 * one small tile (isSoftwareAdapter), so without forcing, CI would never run the tiles a GPU runs. Each case is
 * checked against a float64 reference and proves, by the programs it ran, that our kernel ran with the forced tile
 * and split-K (a fall-back to stock or to the device's choice fails).
 *
 * Cost: each (tile, case, split-K) is its own shader (every size is baked in). With an empty Mesa shader cache these
 * took 18 s on a shared 2-core machine in a quiet moment and 5 min in a loaded one (a 128x128 shader then took
 * up to 25 s to compile); with a warm cache, 3 s. See KERNEL_NOTES.md.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { fixedGemmTiling, GEMM_TILES, type GemmTile, SOFTWARE_GEMM_TILES } from "../gemm_tiling.ts";
import { fastConv2D, fastConv2DBackpropFilter, fastConv2DBackpropInput } from "../conv2d_kernels.ts";
import { convBackpropInputParitySpecs } from "../conv_gemm_specs.ts";
import { convGeometry } from "../conv_geometry.ts";
import { SplitKReduceProgram } from "../split_k_reduce_program.ts";
import { type ConvCase, explicitPad, referenceConv } from "./conv_reference.ts";
import { gemmPrograms, recordPrograms } from "./program_log.ts";
import { check, checkClose, checkNoDeviceErrors, checkSame, type KernelCase } from "./kernel_case.ts";

const TOLERANCE = 1e-4;

/** One convolution pass through its kernel with a forced tile. */
export interface TileCase {
  pass: "forward" | "backpropInput" | "backpropFilter";
  /** [batch, height, width, inChannels, outChannels, kernel, stride, pad] */
  conv: ConvCase;
  /** Backprop-input: by pixel-parity classes (one GEMM per class, rows scattered into dx) or one GEMM. */
  parity?: "always" | "never";
  /** What the case covers. */
  why: string;
}

/**
 * One case per loader; between them (and the matmul cases') every operand layout the tiles stage: A contiguous
 * along k or m, B along n or k, read as vec4 (channels a multiple of 4) or as scalars.
 */
export const TILE_LOADER_CASES: readonly TileCase[] = [
  { pass: "forward", conv: [2, 9, 9, 3, 8, 3, 1, 1], why: "3-channel stem: A scalar along k, B vec4 along n" },
  { pass: "backpropFilter", conv: [2, 9, 9, 3, 8, 3, 1, 1], why: "3-channel stem: A scalar along m, B vec4 along n" },
  {
    pass: "backpropInput",
    conv: [2, 8, 8, 4, 6, 3, 2, 1],
    parity: "never",
    why: "one GEMM with the stride-2 integrality test, both operands scalar along k",
  },
  {
    pass: "backpropInput",
    conv: [2, 9, 9, 6, 8, 3, 2, 1],
    parity: "always",
    why: "the four pixel-parity GEMMs writing rows of one dx, both operands vec4 along k",
  },
];

/** Every tile: those a GPU picks, then those a software adapter picks. */
export const ALL_TILES: readonly GemmTile[] = [...GEMM_TILES, ...SOFTWARE_GEMM_TILES];

/**
 * K slices of case `c` on the tile at `tileIndex`: split-K 1 and 2 alternate over tiles and loaders, so that every
 * tile and every loader runs both, at the cost of one shader per (tile, case) rather than two (cold compiles of the
 * big tiles dominate). The parity GEMMs cannot split.
 */
export function splitOf(c: TileCase, tileIndex: number): number {
  return c.parity === "always" ? 1 : 1 + (tileIndex + TILE_LOADER_CASES.indexOf(c)) % 2;
}

/**
 * Workgroup-memory buffers of case `c` on the tile at `tileIndex`: 1 and 2 in pairs of tiles, so that every tile and
 * every loader runs both, and both with split-K 1 and 2 (over the six tiles).
 */
export function buffersOf(c: TileCase, tileIndex: number): 1 | 2 {
  return Math.floor((tileIndex + TILE_LOADER_CASES.indexOf(c)) / 2) % 2 === 0 ? 1 : 2;
}

/** Runs `c` on `tile` through its kernel; returns the output, the reference and the programs that ran. */
async function runTileCase(c: TileCase, tile: GemmTile, splitK: number, buffers: 1 | 2) {
  const [b, h, w, ci, co, k, s, p] = c.conv;
  const g = convGeometry([b, h, w, ci], [k, k, ci, co], { strides: s, pad: explicitPad(p) });
  check(g, `[${c.conv}]: convGeometry declined`);
  const x = tf.randomNormal([b, h, w, ci], 0, 1, "float32", 31);
  const filter = tf.randomNormal([k, k, ci, co], 0, 1, "float32", 32);
  const dy = tf.randomNormal([b, g.outHeight, g.outWidth, co], 0, 1, "float32", 33);
  const backend = tf.backend() as WebGPUBackend;
  const attrs = { strides: [s, s], pad: explicitPad(p), dataFormat: "NHWC" };
  const tiling = fixedGemmTiling(tile, splitK, buffers);
  const { result, programs } = recordPrograms(() => {
    if (c.pass === "forward") return fastConv2D({ inputs: { x, filter }, backend, attrs }, { tiling });
    if (c.pass === "backpropFilter") {
      const filterShape = [k, k, ci, co];
      return fastConv2DBackpropFilter({ inputs: { x, dy }, backend, attrs: { ...attrs, filterShape } }, { tiling });
    }
    const inputShape = [b, h, w, ci];
    return fastConv2DBackpropInput(
      { inputs: { dy, filter }, backend, attrs: { ...attrs, inputShape } },
      { tiling, parity: c.parity },
    );
  });
  const ref = referenceConv(
    c.conv,
    await x.data() as Float32Array,
    await filter.data() as Float32Array,
    await dy.data() as Float32Array,
  );
  const expected = { forward: ref.y, backpropInput: ref.dx, backpropFilter: ref.dw }[c.pass];
  let actual: Float32Array | undefined;
  if (result) {
    const out = tf.engine().makeTensorFromTensorInfo(result);
    // Split-K sums are deferred to the first read (kernels/deferred_split_k.ts): its reduction pass is recorded too.
    const read = recordPrograms(() => out.data());
    programs.push(...read.programs);
    actual = await read.result as Float32Array;
    out.dispose();
  }
  tf.dispose([x, filter, dy]);
  return { actual, expected, programs, gemms: c.parity === "always" ? convBackpropInputParitySpecs(g).length : 1 };
}

/** The name of a tile, e.g. "64x64x16". */
export const tileName = (t: GemmTile): string => `${t.tileM}x${t.tileN}x${t.tileK}`;

/** Every convolution loader on every tile, one case per (tile, loader). */
export const CONV_TILE_CASES: readonly KernelCase[] = ALL_TILES.flatMap((tile, tileIndex) =>
  TILE_LOADER_CASES.map((c): KernelCase => {
    const splitK = splitOf(c, tileIndex);
    const buffers = buffersOf(c, tileIndex);
    const where = `conv ${c.pass} [${c.conv}] on the ${tileName(tile)} tile, split-K ${splitK}, ${buffers} ` +
      `buffer(s) (${c.why})`;
    return {
      name: where,
      run: async () => {
        const { actual, expected, programs, gemms } = await runTileCase(c, tile, splitK, buffers);
        checkNoDeviceErrors(where);
        check(actual, `${where}: the kernel declined (register.ts would have run stock)`);
        const ran = gemmPrograms(programs).map((q) => {
          const t = q.spec.tiling;
          return [t.tileM, t.tileN, t.tileK, t.splitK, t.buffers, !!q.spec.storeRow];
        });
        const want = [tile.tileM, tile.tileN, tile.tileK, splitK, buffers, c.parity === "always"];
        checkSame(ran, Array(gemms).fill(want), `${where}: the programs that ran`);
        checkSame(programs.some((q) => q instanceof SplitKReduceProgram), splitK > 1, `${where}: reduction pass`);
        checkClose(actual, expected, TOLERANCE, where);
      },
    };
  })
);
