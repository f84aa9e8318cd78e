/**
 * What the GEMM generator emits, checked on the WGSL text without a GPU: properties that decide speed on a GPU
 * (bank conflicts, barriers, unrolling) and that the float64 comparisons of conv_tiles_test.ts cannot see. Bank
 * conflicts and the slab layouts are computed from the WGSL by slab_bank_model.ts (32 banks of 4 bytes; 32-bit
 * accesses served 32 threads at a time, 128-bit ones a quarter warp at a time).
 */
import { assert, assertEquals } from "../assert.ts";
import { bSwizzle, GemmProgram, type UntiledGemmSpec } from "../../kernels/gemm_program.ts";
import {
  GEMM_TILES,
  type GemmTile,
  SOFTWARE_GEMM_TILES,
  splitTiling,
  tileStorageBytes,
} from "../../kernels/gemm_tiling.ts";
import { type BankWays, compileIndex, slabLoop, slabModel } from "./slab_bank_model.ts";
import { convBackpropFilterSpec, convBackpropInputSpec } from "../../kernels/conv_gemm_specs.ts";
import { convGeometry } from "../../kernels/conv_geometry.ts";

const TILES = [...GEMM_TILES, ...SOFTWARE_GEMM_TILES];
const name = (t: GemmTile) => `${t.tileM}x${t.tileN}x${t.tileK}`;
const geometry = convGeometry([2, 16, 16, 64], [3, 3, 64, 64], { strides: 1, pad: "same" })!;
/** Backprop-filter: A contiguous along m, B along n (both vec4). */
const dw = convBackpropFilterSpec(geometry);
/** Backprop-input: A and B contiguous along k (vec4). */
const dx = convBackpropInputSpec(geometry);

function program(spec: UntiledGemmSpec, tile: GemmTile, buffers: 1 | 2): GemmProgram {
  return new GemmProgram({ ...spec, tiling: splitTiling(tile, spec.k, 1, buffers) });
}

function wgsl(spec: UntiledGemmSpec, tile: GemmTile, buffers: 1 | 2): string {
  return program(spec, tile, buffers).getUserCode();
}

/** Every operand layout a slab stages: A along m or k, B along n or k, read from global memory as vec4 or scalars. */
const LAYOUTS = (["m", "k"] as const).flatMap((a) =>
  (["n", "k"] as const).flatMap((b) =>
    [true, false].map((vec4): UntiledGemmSpec => ({
      ...dx,
      key: `layout_${a}${b}${vec4 ? 4 : 1}`,
      aContiguous: a,
      bContiguous: b,
      aVec4: vec4,
      bVec4: vec4,
    }))
  )
);
const layoutName = (s: UntiledGemmSpec) =>
  `A along ${s.aContiguous}, B along ${s.bContiguous}, ${s.aVec4 ? "vec4" : "scalar"}`;

Deno.test("the k steps of a slab are straight-line code: no loop inside the slab loop", () => {
  for (const tile of TILES) {
    for (const spec of [dw, dx]) {
      const loop = slabLoop(wgsl(spec, tile, 2));
      assertEquals(loop.match(/\bfor\s*\(/g)?.length, 1, `${name(tile)} ${spec.key}: only the slab loop`);
      // Every k step of the slab is there once.
      for (let kk = 0; kk < tile.tileK; kk++) assert(loop.includes(`// k + ${kk}\n`), `${name(tile)}: k + ${kk}`);
      assert(!loop.includes(`// k + ${tile.tileK}\n`), name(tile));
    }
  }
});

Deno.test("two slab buffers: one barrier per slab, and the next slab goes to the other buffer", () => {
  for (const tile of TILES) {
    for (const [buffers, barriers, spec] of [[1, 2, dw], [2, 1, dw], [1, 2, dx], [2, 1, dx]] as const) {
      const code = wgsl(spec, tile, buffers);
      const loop = slabLoop(code);
      assertEquals(loop.match(/workgroupBarrier\(\)/g)?.length, barriers, `${name(tile)}, ${buffers} buffer(s)`);
      // No padding, also with B swizzled (dx): one buffer of 128×128×16 is 16 KiB, WebGPU's default limit.
      const aVec4s = buffers * (tile.tileM * tile.tileK) / 4, bVec4s = buffers * (tile.tileN * tile.tileK) / 4;
      assertEquals(16 * (aVec4s + bVec4s), tileStorageBytes(tile, buffers), name(tile));
      assert(code.includes(`var<workgroup> As: array<vec4<f32>, ${aVec4s}>;`), name(tile));
      assert(code.includes(`var<workgroup> Bs: array<vec4<f32>, ${bVec4s}>;`), name(tile));
      if (buffers === 2) {
        // Reads from buffer `cur`, writes to buffer 1 - cur after the multiply, flips once per slab.
        assert(/let bOff = cur \* \d+ \+ tx;/.test(loop), name(tile));
        const multiply = loop.indexOf("// k + 0");
        const store = loop.indexOf(`Bs[(1 - cur) * ${bVec4s / 2} + `);
        assert(multiply >= 0 && store > multiply, `${name(tile)}: the next slab is stored after this one is read`);
        assert(loop.trimEnd().endsWith("cur = 1 - cur;\n  }"), name(tile));
      }
    }
  }
});

Deno.test("the WGSL index evaluator of the bank model truncates like i32 and binds ^ loosest", () => {
  assertEquals(compileIndex("(oo / 4) ^ (kk / 4 * 2 + kk % 2)")({ oo: 13, kk: 9 }), 3 ^ 5);
  assertEquals(compileIndex("bOff ^ 3 + 1")({ bOff: 16 }), 16 ^ 4);
  assertEquals(compileIndex("(0 - 7) / 2")({}), -3);
  let error = "";
  try {
    compileIndex("a[1]");
  } catch (e) {
    error = String(e);
  }
  assert(error.includes("a[1]"), error);
});

Deno.test("every slab read gets the element the multiply needs, for every tile, operand layout and buffer count", () => {
  // Catches a store and a read that disagree on the layout (e.g. a swizzle on one side only) without a GPU.
  for (const tile of TILES) {
    for (const spec of LAYOUTS) {
      for (const buffers of [1, 2] as const) {
        const { mismatches } = slabModel(program(spec, tile, buffers));
        const where = `${name(tile)}, ${layoutName(spec)}, ${buffers} buffer(s)`;
        assertEquals(mismatches, [], `${where}: ${mismatches.slice(0, 3).join("; ")}`);
      }
    }
  }
});

/**
 * Modelled worst bank conflicts (1: none) of slab stores and inner-loop reads. Everything is conflict-free but the
 * stores of B along k read as scalars with TK 16: a warp's 32 threads then store 16 k × 2 columns, and 2 columns
 * use 2 of a vec4's 4 banks, so 16 rows share 8 × 2 banks at best (2-way; 16-way before the swizzle). Before the
 * swizzle (2026-12-01), B along k read as vec4 stored 4-way (TK 16) or 2-way (TK 8).
 */
function expectedWays(tile: GemmTile, spec: UntiledGemmSpec): BankWays {
  const scalarBAlongK = spec.bContiguous === "k" && !spec.bVec4;
  return { aStore: 1, aRead: 1, bStore: scalarBAlongK && tile.tileK === 16 ? 2 : 1, bRead: 1 };
}

Deno.test("slab stores and reads of A and B are free of bank conflicts on every tile (model)", () => {
  for (const tile of TILES) {
    for (const spec of LAYOUTS) {
      for (const buffers of [1, 2] as const) {
        const { ways } = slabModel(program(spec, tile, buffers));
        const where = `${name(tile)}, ${layoutName(spec)}, ${buffers} buffer(s)`;
        const want = expectedWays(tile, spec);
        assertEquals(ways, want, `${where}: ${JSON.stringify(ways)}, expected ${JSON.stringify(want)}`);
      }
    }
  }
});

Deno.test("B is swizzled only where it is stored along k, with s(k) < 8 on every tile", () => {
  for (const tile of TILES) {
    assertEquals(bSwizzle(tile, "n"), undefined, name(tile));
    const s = bSwizzle(tile, "k");
    assert(s, name(tile));
    for (let k = 0; k < tile.tileK; k++) assert(s(k) >= 0 && s(k) < 8, `${name(tile)}: s(${k}) = ${s(k)}`);
    // dw's B (along n) keeps its plain reads; dx's B reads through the swizzle.
    assert(!/Bs\[\(bOff \^/.test(wgsl(dw, tile, 2)), name(tile));
    assert(/Bs\[\(bOff \^ \d\) \+ \d+\]/.test(wgsl(dx, tile, 2)), name(tile));
  }
});
