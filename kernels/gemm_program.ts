/**
 * A tiled, register-blocked GEMM as a tfjs WebGPU program, with the operand loads supplied as WGSL snippets so that
 * the same kernel serves plain matrix products and convolutions as implicit GEMMs (the im2col matrix is never built:
 * `loadA`/`loadB` compute each element's address, and padding or out-of-range taps read as zero).
 *
 * C[z, m, n] = Σ_{k in slice s} A(b, m, k) · B(b, k, n), with z = s · batch + b. One workgroup computes a
 * tileM × tileN block of C, staging tileK-deep slabs of A and B in workgroup memory; each thread accumulates a
 * threadM × threadN block in registers (vec4 along N). With split-K (`tiling.splitK > 1`) the output holds one
 * partial C per K slice, which {@linkcode SplitKReduceProgram} sums.
 * @module
 */
import type { WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { type GemmTile, type GemmTiling, tileThreads } from "./gemm_tiling.ts";

/** What a {@linkcode GemmProgram} computes. Every number is baked into the shader as a constant. */
export interface GemmSpec {
  /** Names the loaders and every constant they bake in; part of the pipeline cache key. */
  key: string;
  /** Binding names of the two inputs, in the order they are passed to `runWebGPUProgram`. */
  variableNames: [string, string];
  /** Independent products (matmul batch; 1 for convolutions). */
  batch: number;
  /** Rows of C (and A). */
  m: number;
  /** Columns of C (and B). */
  n: number;
  /** The reduction length. */
  k: number;
  /** Tile and split-K, usually from chooseGemmTiling. */
  tiling: GemmTiling;
  /**
   * WGSL body of `fn loadA(bi: i32, m: i32, k: i32) -> f32`, called only with 0 ≤ m < M and 0 ≤ k < K. Returns
   * A(bi, m, k) for batch index bi; may return 0 for padding.
   */
  loadA: string;
  /** WGSL body of `fn loadB(bi: i32, k: i32, n: i32) -> f32`, called only with 0 ≤ k < K and 0 ≤ n < N. */
  loadB: string;
  /** Which index of A is contiguous in memory, so that neighbouring threads load neighbouring addresses. */
  aContiguous: "m" | "k";
  /** Which index of B is contiguous in memory. */
  bContiguous: "k" | "n";
  /**
   * A is read four elements at a time along its contiguous index: `loadA` returns `vec4<f32>` (elements at that index
   * + 0..3, called with it a multiple of 4) and A's input is bound as `array<vec4<f32>>`. Requires the contiguous
   * dimension (M or K) to be a multiple of 4 and every group of 4 to be contiguous in memory.
   */
  aVec4?: boolean;
  /** B is read four elements at a time along its contiguous index; see `aVec4`. */
  bVec4?: boolean;
  /** Shape to give the output when `tiling.splitK` is 1 (any shape with batch·M·N elements, e.g. NHWC). */
  outputShape: number[];
  /**
   * WGSL body of `fn outRow(z: i32, m: i32) -> i32`: where row m's N outputs start in the output buffer. Default
   * `(z · M + m) · N`. Lets several programs each fill a strided subset of one output; needs `tiling.splitK` 1.
   */
  storeRow?: string;
}

/** WGSL pieces that move one tileK-deep slab of an operand from global memory, via registers, to workgroup memory. */
interface SlabCode {
  /** Declarations of the staging registers. */
  decl: string;
  /** Loads the slab starting at K index `k0` (a WGSL expression) into the registers. */
  fetch: (k0: string) => string;
  /** Writes the registers into the workgroup slab that starts at vec4 index `offset` (a WGSL expression). */
  store: (offset: string) => string;
}

/**
 * The XOR swizzle of B's slab when B is contiguous along k: column vec4 `nv` of slab row k lives at vec4
 * `k · TN/4 + (nv ^ s(k))`, with s(k) = ⌊k/4⌋·G + k mod G, G = 32/TK, a value below 8.
 *
 * Why: a staging register of such a B holds four k of one column n (a vec4 along k), which the [TK][TN] slab stores as
 * four 32-bit component stores into four rows. A warp's 32 threads cover TK/4 groups of four k × 128/TK columns, and
 * without the swizzle every row starts at bank 0 (TN is a multiple of 32), so threads storing the same column in
 * different rows collide: 4-way (vec4 loads with TK 16), 16-way (scalar loads, each thread one k). With s, the rows
 * ⌊k/4⌋ = 0, 1, ... of the same component move the warp's 128/TK columns to disjoint groups of 4 banks (vec4 loads: no
 * conflict), and the k within a group of 4 are spread too (scalar loads: 2-way with TK 16, the least possible, since a
 * warp's 32 scalars then span 2 columns, i.e. 2 of a vec4's 4 banks, × 16 rows).
 * The layout keeps [TK][TN]'s size (no padding: 128×128×16 stays 16 KiB per buffer) and its inner-loop reads: the
 * thread at tx reads the vec4s tx + TX·j of row k, now at (tx ^ s(k)) + TX·j since s < 8 and TX is a multiple of 8,
 * so the 8 threads of a quarter warp (consecutive tx from a multiple of 8) still read 8 different bank groups.
 * Undefined (no swizzle) for B contiguous along n, whose stores are whole rows already, or for a tile where the
 * identities above do not hold.
 */
export function bSwizzle(tile: GemmTile, bContiguous: "k" | "n"): ((k: number) => number) | undefined {
  const threadsX = tile.tileN / tile.threadN;
  if (bContiguous !== "k" || ![4, 8, 16, 32].includes(tile.tileK) || tile.tileN % 32 !== 0 || threadsX % 8 !== 0) {
    return undefined;
  }
  const g = 32 / tile.tileK;
  return (k) => Math.floor(k / 4) * g + (k % g);
}

/** {@linkcode bSwizzle}'s s(k) in WGSL, for `k` a non-negative i32 expression. */
function swizzleWgsl(tileK: number, k: string): string {
  const g = 32 / tileK;
  const e = /^(\w+|\(.*\))$/.test(k) ? k : `(${k})`;
  return g === 1 ? `${e} / 4` : `${e} / 4 * ${g} + ${e} % ${g}`;
}

/**
 * Stages one tileK-deep slab of A (`which` "A": outer index m, tile TM) or B ("B": outer index n, tile TN) in
 * workgroup memory as vec4, laid out [TK][tile outer] (`outerMajor` false: a vec4 holds four outer elements at one
 * k) or [tile outer][TK] (`outerMajor`: a vec4 holds four k of one outer element). Neighbouring threads take
 * neighbouring elements along the operand's contiguous index (`outerContiguous`: the outer index, else k); with
 * `vec4`, four at a time. With `outerMajor` and k contiguous, a thread's four k are one aligned vec4 store and
 * neighbouring threads store neighbouring vec4s (no bank conflict); scalars land on neighbouring words. The
 * per-thread loop is unrolled here so that the staging values live in registers, which lets the next slab's global
 * loads be issued before the current slab is multiplied. With `swizzled` ([TK][tile outer] only), the outer vec4s of
 * each row are permuted by {@linkcode bSwizzle}.
 */
function slabCode(
  which: "A" | "B",
  outerContiguous: boolean,
  vec4: boolean,
  outerMajor: boolean,
  tileOuter: number,
  tileK: number,
  threads: number,
  swizzled = false,
): SlabCode {
  if (swizzled && (outerMajor || outerContiguous)) throw new Error("only a [TK][tile] slab along k is swizzled");
  if (outerMajor && outerContiguous) throw new Error("an outer-major slab is only for operands contiguous along k");
  const [o, base, limit, smem] = which === "A" ? ["m", "m0", "M", "As"] : ["n", "n0", "N", "Bs"];
  const call = which === "A" ? `loadA(bi, ${o}, k)` : `loadB(bi, k, ${o})`;
  const type = vec4 ? "vec4<f32>" : "f32";
  const iterations = (tileOuter * tileK) / (vec4 ? 4 : 1) / threads;
  const reg = (i: number) => `p${which}${i}`;
  // Slab coordinates (kk, oo) of staging register i of this thread.
  const coords = (i: number) => {
    const e = `(${i * threads} + tid)`;
    if (!vec4) {
      return outerContiguous
        ? `let oo = ${e} % ${tileOuter}; let kk = ${e} / ${tileOuter};`
        : `let kk = ${e} % ${tileK}; let oo = ${e} / ${tileK};`;
    }
    return outerContiguous
      ? `let oo = (${e} % ${tileOuter / 4}) * 4; let kk = ${e} / ${tileOuter / 4};`
      : `let kk = (${e} % ${tileK / 4}) * 4; let oo = ${e} / ${tileK / 4};`;
  };
  const storeOne = (i: number, off: string) => {
    if (outerMajor) {
      // Row oo of TK words: four k of one outer element are one vec4.
      return vec4
        ? `${smem}[${off} + (oo * ${tileK} + kk) / 4] = ${reg(i)};`
        : `${smem}[${off} + (oo * ${tileK} + kk) / 4][kk % 4] = ${reg(i)};`;
    }
    // Element (k, oo) of a swizzled slab: component oo % 4 of vec4 (oo / 4) ^ s(k) of row k.
    const at = (k: string) =>
      swizzled
        ? `${smem}[${off} + ${k} * ${tileOuter / 4} + ((oo / 4) ^ (${swizzleWgsl(tileK, k)}))][oo % 4]`
        : `${smem}[${off} + (${k} * ${tileOuter} + oo) / 4][oo % 4]`;
    if (!vec4) return `${at("kk")} = ${reg(i)};`;
    // Four consecutive outer elements at one k: one aligned vec4 of the slab row.
    if (outerContiguous) return `${smem}[${off} + (kk * ${tileOuter} + oo) / 4] = ${reg(i)};`;
    // Four consecutive k at one outer element: one component in each of four slab rows.
    return ["x", "y", "z", "w"].map((c, j) => `${at(`(kk + ${j})`)} = ${reg(i)}.${c};`).join(" ");
  };
  const ids = [...Array(iterations).keys()];
  return {
    decl: ids.map((i) => `var ${reg(i)}: ${type};`).join("\n  "),
    fetch: (k0) =>
      ids.map((i) =>
        `{ ${coords(i)} let ${o} = ${base} + oo; let k = ${k0} + kk; ` +
        `${reg(i)} = ${type}(0.0); if (${o} < ${limit} && k < kEnd) { ${reg(i)} = ${call}; } }`
      ).join("\n    "),
    store: (off) => ids.map((i) => `{ ${coords(i)} ${storeOne(i, off)} }`).join("\n    "),
  };
}

/** A dispatch layout that makes tfjs generate non-flat helpers (our `main` takes no index argument). */
function nonFlatLayout(rank: number): { x: number[]; y: number[] } {
  if (rank < 2) throw new RangeError(`GEMM output must have rank >= 2, got ${rank}`);
  return { x: [rank - 1], y: [...Array(rank - 1).keys()] };
}

/** A GEMM spec before tiling (chosen at run time for the device, see run_gemm.ts). */
export type UntiledGemmSpec = Omit<GemmSpec, "tiling">;

/** WGSL zero of a loader's return type. */
export const zero = (vec4: boolean): string => (vec4 ? "vec4<f32>(0.0)" : "0.0");

/** WGSL for element `index` of `array`; with `vec4`, the group of four starting there (`index` a multiple of 4). */
export const read = (array: string, index: string, vec4: boolean): string =>
  vec4 ? `${array}[(${index}) / 4]` : `${array}[${index}]`;

/** The tiled GEMM program; see the module documentation. */
export class GemmProgram implements WebGPUProgram {
  /** Input binding names. */
  variableNames: string[];
  /** Output shape: `spec.outputShape`, or [splitK · batch, M, N] partial sums. */
  outputShape: number[];
  /** Cache key of the compiled pipeline. */
  shaderKey: string;
  /** Nominal layout for tfjs's generated helpers; the shader indexes by workgroup id itself. */
  dispatchLayout: { x: number[]; y: number[] };
  /** [ceil(N / tileN), ceil(M / tileM), batch · splitK]. */
  dispatch: [number, number, number];
  /** [tileN / threadN, tileM / threadM, 1]. */
  workgroupSize: [number, number, number];
  /** Components per element of each input binding (4 where read as vec4). */
  variableComponents: number[];
  /** What it computes and how it is tiled (read by tests to check which configuration ran). */
  readonly spec: GemmSpec;
  /** Set by tfjs's `runWebGPUProgram` on the first run: the compiled pipeline (run_gemm.ts reuses it). */
  pipeline?: GPUComputePipeline | Promise<GPUComputePipeline>;

  /**
   * Validates the tiling against the spec and sets the dispatch grid.
   * @param spec what to compute and how to tile it.
   */
  constructor(spec: GemmSpec) {
    const t = spec.tiling;
    if (t.threadM % 4 !== 0 || t.threadN % 4 !== 0) {
      throw new RangeError(`threadM and threadN must be multiples of 4, got ${t.threadM} and ${t.threadN}`);
    }
    const threads = tileThreads(t);
    if ((t.tileM * t.tileK) % threads !== 0 || (t.tileN * t.tileK) % threads !== 0) {
      throw new RangeError(`tile ${t.tileM}x${t.tileN}x${t.tileK} cannot be loaded evenly by ${threads} threads`);
    }
    if (spec.aVec4 && (spec.aContiguous === "m" ? spec.m : spec.k) % 4 !== 0) {
      throw new RangeError(`aVec4 needs ${spec.aContiguous.toUpperCase()} to be a multiple of 4 (${spec.key})`);
    }
    if (spec.bVec4 && (spec.bContiguous === "n" ? spec.n : spec.k) % 4 !== 0) {
      throw new RangeError(`bVec4 needs ${spec.bContiguous.toUpperCase()} to be a multiple of 4 (${spec.key})`);
    }
    if (spec.storeRow && t.splitK !== 1) throw new RangeError(`storeRow needs splitK 1, got ${t.splitK} (${spec.key})`);
    this.spec = spec;
    this.variableNames = [...spec.variableNames];
    this.variableComponents = [spec.aVec4 ? 4 : 1, spec.bVec4 ? 4 : 1];
    this.outputShape = t.splitK > 1 ? [t.splitK * spec.batch, spec.m, spec.n] : [...spec.outputShape];
    this.dispatchLayout = nonFlatLayout(this.outputShape.length);
    this.workgroupSize = [t.tileN / t.threadN, t.tileM / t.threadM, 1];
    this.dispatch = [Math.ceil(spec.n / t.tileN), Math.ceil(spec.m / t.tileM), spec.batch * t.splitK];
    this.shaderKey = `fastGemm_${spec.key}_b${spec.batch}_${spec.m}x${spec.n}x${spec.k}_` +
      `${t.tileM}x${t.tileN}x${t.tileK}_${t.threadM}x${t.threadN}_s${t.splitK}x${t.kPerSplit}_w${t.buffers ?? 1}_` +
      `${spec.aContiguous}${spec.bContiguous}_v${spec.aVec4 ? 4 : 1}${spec.bVec4 ? 4 : 1}_r${this.outputShape.length}` +
      (spec.storeRow ? "_rows" : "");
  }

  /** WGSL for the body; tfjs prepends the bindings (`result`, the inputs, `uniforms`) and `_start`. */
  getUserCode(): string {
    const s = this.spec;
    const t = s.tiling;
    const threads = tileThreads(t);
    const buffers = t.buffers ?? 1;
    // A contiguous along k is staged [TM][TK] (vec4 stores of four k); along m, and B always, [TK][tile].
    const aOuterMajor = s.aContiguous === "k";
    const slabA = slabCode("A", s.aContiguous === "m", !!s.aVec4, aOuterMajor, t.tileM, t.tileK, threads);
    // B along k: XOR-swizzled rows, so that its four-row component stores do not conflict (see bSwizzle).
    const swizzle = bSwizzle(t, s.bContiguous);
    const slabB = slabCode("B", s.bContiguous === "n", !!s.bVec4, false, t.tileN, t.tileK, threads, !!swizzle);
    const rm4 = t.threadM / 4; // vec4s of A per thread per k
    const rn4 = t.threadN / 4; // vec4s of B (and accumulators per row) per thread per k
    const tx4 = t.tileN / t.threadN; // threads along N
    const aSize = (t.tileK * t.tileM) / 4; // vec4s of one A slab
    const bSize = (t.tileK * t.tileN) / 4;
    const accDecl: string[] = [];
    const fmas: string[] = [];
    const stores: string[] = [];
    for (let i = 0; i < t.threadM; i++) {
      for (let j = 0; j < rn4; j++) {
        accDecl.push(`var acc_${i}_${j} = vec4<f32>(0.0);`);
        fmas.push(`acc_${i}_${j} = fma(vec4<f32>(a${i >> 2}[${i & 3}]), b${j}, acc_${i}_${j});`);
      }
    }
    // Thread tx owns the column vec4s tx, tx + TX, tx + 2·TX, ... of the tile: in one k row, neighbouring threads
    // read neighbouring vec4s of B (no bank conflict with 8 columns per thread) and store neighbouring vec4s of C.
    for (let i = 0; i < t.threadM; i++) {
      stores.push(`{
        let m = rowBase + ${i};
        if (m < M) {
          let rowOffset = outRow(z, m);
          ${
        Array.from({ length: rn4 }, (_, j) => `storeVec(rowOffset, colBase + ${4 * tx4 * j}, acc_${i}_${j});`)
          .join("\n          ")
      }
        }
      }`);
    }
    // The k loop over one slab, unrolled: straight-line code with constant offsets from aOff and bOff.
    // Swizzled: column vec4 tx + TX·j of row kk is at (tx ^ s(kk)) + TX·j, and bOff ^ s(kk) = cur·bSize + (tx ^ s(kk))
    // (bSize is a multiple of 8, s(kk) < 8): one XOR per k step.
    const bReads = (kk: number) => {
      const sk = swizzle?.(kk) ?? 0;
      const base = sk === 0 ? "bOff" : `(bOff ^ ${sk})`;
      return Array.from({ length: rn4 }, (_, j) => `let b${j} = Bs[${base} + ${kk * (t.tileN / 4) + tx4 * j}];`);
    };
    const steps: string[] = [];
    if (!aOuterMajor) {
      for (let kk = 0; kk < t.tileK; kk++) {
        steps.push(`{ // k + ${kk}
      ${Array.from({ length: rm4 }, (_, i) => `let a${i} = As[aOff + ${kk * (t.tileM / 4) + i}];`).join(" ")}
      ${bReads(kk).join(" ")}
      ${fmas.join("\n      ")}
    }`);
      }
    } else {
      // Rows of A hold four k per vec4: read one per row of the thread for four k, then regroup by k.
      for (let q = 0; q < t.tileK / 4; q++) {
        const rows = Array.from({ length: t.threadM }, (_, i) => `let r${i} = As[aOff + ${i * (t.tileK / 4) + q}];`);
        const inner: string[] = [];
        for (let c = 0; c < 4; c++) {
          const comp = "xyzw"[c];
          const as = Array.from(
            { length: rm4 },
            (_, i) =>
              `let a${i} = vec4<f32>(r${4 * i}.${comp}, r${4 * i + 1}.${comp}, r${4 * i + 2}.${comp}, r${
                4 * i + 3
              }.${comp});`,
          );
          inner.push(`{ // k + ${4 * q + c}
        ${as.join(" ")}
        ${bReads(4 * q + c).join(" ")}
        ${fmas.join("\n        ")}
      }`);
        }
        steps.push(`{
      ${rows.join(" ")}
      ${inner.join("\n      ")}
    }`);
      }
    }
    const aOff = (cur: string) =>
      aOuterMajor ? `${cur} * ${aSize} + ty * ${t.threadM * t.tileK / 4}` : `${cur} * ${aSize} + ty * ${rm4}`;
    const bOff = (cur: string) => `${cur} * ${bSize} + tx`;
    const loop = buffers === 1
      ? `
  ${slabA.fetch("kBegin")}
  ${slabB.fetch("kBegin")}
  for (var s = 0; s < SLABS; s++) {
    ${slabA.store("0")}
    ${slabB.store("0")}
    workgroupBarrier();
    // Issue the next slab's global loads now; they complete while this slab is multiplied.
    let kNext = kBegin + (s + 1) * TK;
    if (s + 1 < SLABS) {
    ${slabA.fetch("kNext")}
    ${slabB.fetch("kNext")}
    }
    let aOff = ${aOff("0")};
    let bOff = ${bOff("0")};
    ${steps.join("\n    ")}
    workgroupBarrier();
  }`
      : `
  ${slabA.fetch("kBegin")}
  ${slabB.fetch("kBegin")}
  ${slabA.store("0")}
  ${slabB.store("0")}
  workgroupBarrier();
  var cur = 0;
  for (var s = 0; s < SLABS; s++) {
    // Issue the next slab's global loads now; they complete while this slab is multiplied, and go to the other
    // buffer, which no thread reads any more (the barrier ending the previous slab): one barrier per slab.
    let kNext = kBegin + (s + 1) * TK;
    let more = s + 1 < SLABS;
    if (more) {
    ${slabA.fetch("kNext")}
    ${slabB.fetch("kNext")}
    }
    let aOff = ${aOff("cur")};
    let bOff = ${bOff("cur")};
    ${steps.join("\n    ")}
    if (more) {
    ${slabA.store(`(1 - cur) * ${aSize}`)}
    ${slabB.store(`(1 - cur) * ${bSize}`)}
    }
    workgroupBarrier();
    cur = 1 - cur;
  }`;
    return `
const M = ${s.m};
const N = ${s.n};
const K = ${s.k};
const BATCH = ${s.batch};
const TM = ${t.tileM};
const TN = ${t.tileN};
const TK = ${t.tileK};
const RM = ${t.threadM};
const RN = ${t.threadN};
const THREADS = ${threads};
const K_PER_SPLIT = ${t.kPerSplit};
// Slabs per K slice: a constant trip count keeps the barriers in uniform control flow for Tint (a bound computed
// from workgroupId, which tfjs's prelude passes through a private variable, is not provably uniform). The last,
// shorter slice multiplies zeros for its missing slabs; the full slices bound the dispatch's time anyway.
const SLABS = ${t.kPerSplit / t.tileK};

// ${buffers} A slab(s) [${aOuterMajor ? "TM][TK" : "TK][TM"}] and B slab(s) [TK][TN], as vec4 so that the inner loop
// reads 128 bits at a time.${
      swizzle ? "\n// B's rows are XOR-swizzled: column vec4 nv of row k is at k * TN / 4 + (nv ^ s(k)), s(k) < 8." : ""
    }
var<workgroup> As: array<vec4<f32>, ${buffers * aSize}>;
var<workgroup> Bs: array<vec4<f32>, ${buffers * bSize}>;

fn loadA(bi: i32, m: i32, k: i32) -> ${s.aVec4 ? "vec4<f32>" : "f32"} {
  ${s.loadA}
}

fn loadB(bi: i32, k: i32, n: i32) -> ${s.bVec4 ? "vec4<f32>" : "f32"} {
  ${s.loadB}
}

fn outRow(z: i32, m: i32) -> i32 {
  ${s.storeRow ?? "return (z * M + m) * N;"}
}

fn storeVec(rowOffset: i32, n: i32, v: vec4<f32>) {
  if (n + 3 < N) {
    result[rowOffset + n] = v.x;
    result[rowOffset + n + 1] = v.y;
    result[rowOffset + n + 2] = v.z;
    result[rowOffset + n + 3] = v.w;
  } else {
    var w = v; // a variable, so that it can be indexed dynamically
    for (var c = 0; c < 4; c++) {
      if (n + c < N) { result[rowOffset + n + c] = w[c]; }
    }
  }
}

fn main() {
  // Statically use the uniforms so that the 'auto' pipeline layout keeps the binding tfjs always supplies.
  _ = uniforms.NAN;
  let tid = i32(localIndex);
  let tx = i32(localId.x);
  let ty = i32(localId.y);
  let n0 = i32(workgroupId.x) * TN;
  let m0 = i32(workgroupId.y) * TM;
  let z = i32(workgroupId.z);
  let bi = z % BATCH;
  let slice = z / BATCH;
  let kBegin = slice * K_PER_SPLIT;
  let kEnd = min(K, kBegin + K_PER_SPLIT);
  ${accDecl.join("\n  ")}
  ${slabA.decl}
  ${slabB.decl}${loop}
  let rowBase = m0 + ty * RM;
  let colBase = n0 + tx * 4;
  ${stores.join("\n  ")}
}
`;
  }
}
