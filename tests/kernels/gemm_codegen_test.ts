/**
 * What the GEMM generator emits, checked on the WGSL text without a GPU: properties that decide speed on a GPU
 * (bank conflicts, barriers, unrolling) and that the float64 comparisons of conv_tiles_test.ts cannot see.
 * Workgroup-memory banks are modelled as on NVIDIA and AMD: 32 banks of 4 bytes; a 128-bit access is served a
 * quarter of a warp (8 threads) at a time, so those 8 threads must touch 8 different groups of 4 banks.
 */
import { assert, assertEquals } from "../assert.ts";
import { GemmProgram } from "../../kernels/gemm_program.ts";
import { GEMM_TILES, type GemmTile, SOFTWARE_GEMM_TILES, splitTiling } from "../../kernels/gemm_tiling.ts";
import { convBackpropFilterSpec, convBackpropInputSpec } from "../../kernels/conv_gemm_specs.ts";
import { convGeometry } from "../../kernels/conv_geometry.ts";

const TILES = [...GEMM_TILES, ...SOFTWARE_GEMM_TILES];
const name = (t: GemmTile) => `${t.tileM}x${t.tileN}x${t.tileK}`;
const geometry = convGeometry([2, 16, 16, 64], [3, 3, 64, 64], { strides: 1, pad: "same" })!;
/** Backprop-filter: A contiguous along m, B along n (both vec4). */
const dw = convBackpropFilterSpec(geometry);
/** Backprop-input: A and B contiguous along k (vec4). */
const dx = convBackpropInputSpec(geometry);

function wgsl(spec: typeof dw, tile: GemmTile, buffers: 1 | 2): string {
  return new GemmProgram({ ...spec, tiling: splitTiling(tile, spec.k, 1, buffers) }).getUserCode();
}

/** The body of the slab loop `for (var s ...) { ... }`. */
function slabLoop(code: string): string {
  const start = code.indexOf("for (var s = 0; s < SLABS; s++)");
  // A constant trip count: Tint (Chrome) rejects a barrier under a loop bounded by kBegin/kEnd, which derive from
  // workgroupId, a private variable in tfjs's prelude ("must only be called from uniform control flow").
  assert(start >= 0, "a slab loop with a constant trip count");
  let depth = 0;
  for (let i = code.indexOf("{", start); i < code.length; i++) {
    if (code[i] === "{") depth++;
    if (code[i] === "}" && --depth === 0) return code.slice(start, i + 1);
  }
  throw new Error("unbalanced braces");
}

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
    for (const [buffers, barriers] of [[1, 2], [2, 1]] as const) {
      const code = wgsl(dw, tile, buffers);
      const loop = slabLoop(code);
      assertEquals(loop.match(/workgroupBarrier\(\)/g)?.length, barriers, `${name(tile)}, ${buffers} buffer(s)`);
      const aVec4s = buffers * (tile.tileM * tile.tileK) / 4, bVec4s = buffers * (tile.tileN * tile.tileK) / 4;
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

/** Bank groups (vec4 slots: 8 per 32 banks) hit by threads 0..7 of a quarter warp. */
function conflictWays(vec4Indices: number[]): number {
  const count = new Map<number, Set<number>>();
  for (const i of vec4Indices) {
    const g = ((i % 8) + 8) % 8;
    if (!count.has(g)) count.set(g, new Set());
    count.get(g)!.add(i);
  }
  return Math.max(...[...count.values()].map((s) => s.size));
}

Deno.test("B is read from workgroup memory without bank conflicts, with 4 and with 8 columns per thread", () => {
  for (const tile of TILES) {
    const code = wgsl(dw, tile, 2);
    // bOff = cur * S + tx * STRIDE; the reads are Bs[bOff + constant].
    const off = code.match(/let bOff = cur \* \d+ \+ tx(?: \* (\d+))?;/);
    assert(off, name(tile));
    const txStride = Number(off[1] ?? 1);
    const constants = [...code.matchAll(/Bs\[bOff \+ (\d+)\]/g)].map((m) => Number(m[1]));
    assertEquals(constants.length, tile.tileK * (tile.threadN / 4), `${name(tile)}: one read per vec4 per k`);
    const threadsX = tile.tileN / tile.threadN;
    for (const c of constants) {
      // The 8 threads of a quarter warp share ty and have consecutive tx (threadsX ≥ 8 on every tile).
      assert(threadsX >= 8, name(tile));
      const ways = conflictWays([...Array(8).keys()].map((tx) => tx * txStride + c));
      assertEquals(ways, 1, `${name(tile)}: B read at +${c} is a ${ways}-way bank conflict`);
    }
  }
});

Deno.test("operands contiguous along k are stored into workgroup memory as whole vec4s without bank conflicts", () => {
  for (const tile of TILES) {
    const code = wgsl(dx, tile, 2);
    // dx's A is vec4 along k: [TM][TK] slab rows, one vec4 store per staging register, no component stores.
    const stores = [...code.matchAll(/As\[([^\]]*)\](\[[^\]]*\])? = pA\d+;/g)];
    assert(stores.length > 0, name(tile));
    for (const s of stores) {
      assertEquals(s[2], undefined, `${name(tile)}: component store ${s[0]}`);
      assertEquals(s[1].replace(/^.*? \+ /, ""), `(oo * ${tile.tileK} + kk) / 4`, `${name(tile)}: ${s[0]}`);
    }
    // Thread t of the slab stores row oo = t / (TK/4), vec4 kk/4 = t % (TK/4): neighbouring vec4s.
    const perRow = tile.tileK / 4;
    const ways = conflictWays([...Array(8).keys()].map((t) => Math.floor(t / perRow) * perRow + (t % perRow)));
    assertEquals(ways, 1, name(tile));
  }
});
