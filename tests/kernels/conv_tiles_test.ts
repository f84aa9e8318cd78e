/**
 * Every GEMM tile with every convolution loader (kernels/selftest/conv_tile_cases.ts, the cases the browser
 * self-test runs too), against a float64 reference.
 * @module
 */
import { assertEquals } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import {
  ALL_TILES,
  buffersOf,
  CONV_TILE_CASES,
  splitOf,
  TILE_LOADER_CASES,
} from "../../kernels/selftest/conv_tile_cases.ts";

await initWebGPU();

Deno.test("every tile runs split-K 1 and 2 and 1 and 2 slab buffers, and so does every loader (split-K: but the parity GEMMs)", () => {
  const cases = TILE_LOADER_CASES;
  for (let t = 0; t < ALL_TILES.length; t++) assertEquals(new Set(cases.map((c) => splitOf(c, t))), new Set([1, 2]));
  for (const c of cases.filter((c) => c.parity !== "always")) {
    assertEquals(new Set(ALL_TILES.map((_, t) => splitOf(c, t))), new Set([1, 2]), c.why);
  }
  for (let t = 0; t < ALL_TILES.length; t++) assertEquals(new Set(cases.map((c) => buffersOf(c, t))), new Set([1, 2]));
  for (const c of cases) {
    const pairs = new Set(ALL_TILES.map((_, t) => `${splitOf(c, t)}/${buffersOf(c, t)}`));
    assertEquals(pairs.size, c.parity === "always" ? 2 : 4, `every split-K with both buffer counts: ${c.why}`);
  }
  assertEquals(CONV_TILE_CASES.length, ALL_TILES.length * cases.length);
});

for (const c of CONV_TILE_CASES) Deno.test(c.name, c.run);
