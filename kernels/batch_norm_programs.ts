/**
 * WGSL programs of the fused training-mode batch norm ({@linkcode batchNormTrain}): per-channel reductions over the
 * N·H·W rows of an NHWC tensor in two passes (chunk partials, then a per-channel total), and the element-wise
 * normalise(+ReLU) and input-gradient passes. Each is one dispatch.
 * @module
 */
import type { WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { numElements } from "./num_elements.ts";

/** Threads along channels and along rows in a reduction workgroup. */
const CH = 64;
const LANES = 4;

/** Rows are reduced in chunks, each one workgroup row; more chunks = more parallelism, more partials to add. */
export function bnChunking(rows: number, targetChunks: number): { chunks: number; rowsPerChunk: number } {
  if (!Number.isInteger(rows) || rows < 1) {
    throw new RangeError(`bnChunking: rows must be a positive integer, got ${rows}`);
  }
  const rowsPerChunk = Math.max(64, Math.ceil(rows / Math.max(1, targetChunks)));
  return { chunks: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

/**
 * Pass 1 of both reductions: for each chunk of rows and each channel, two sums.
 * - `stats` (inputs x): Σ(x − s) and Σ(x − s)², with s = x[row 0, c] (a shift that keeps E[x²] − E[x]² accurate
 *   when |mean| ≫ std).
 * - `grad` (inputs dy, y, x, stats): Σ dz and Σ dz · x̂, where dz = dy (· [y > 0] with ReLU) and
 *   x̂ = (x − mean) / sqrt(var + eps).
 * Output [chunks, 2, C].
 */
export class BnPartialSumsProgram implements WebGPUProgram {
  /** Inputs: `x` (stats) or `dy`, `y`, `x`, `stats` (grad). */
  variableNames: string[];
  /** [chunks, 2, C] */
  outputShape: number[];
  /** Cache key. */
  shaderKey: string;
  /** Nominal non-flat layout (the shader indexes by workgroup id). */
  dispatchLayout = { x: [2], y: [0, 1] };
  /** [ceil(C / 64), chunks, 1] */
  dispatch: [number, number, number];
  /** 64 channels × 4 row lanes. */
  workgroupSize: [number, number, number] = [CH, LANES, 1];
  private readonly mode: "stats" | "grad";
  private readonly rows: number;
  private readonly channels: number;
  private readonly rowsPerChunk: number;
  private readonly relu: boolean;
  private readonly eps: number;

  /**
   * Sums over `rows` × `channels`, cut as `chunking` says.
   * @param mode which sums; `relu` and `eps` matter for `grad` only.
   */
  constructor(
    mode: "stats" | "grad",
    rows: number,
    channels: number,
    chunking: { chunks: number; rowsPerChunk: number },
    relu = false,
    eps = 0,
  ) {
    this.mode = mode;
    this.rows = rows;
    this.channels = channels;
    this.rowsPerChunk = chunking.rowsPerChunk;
    this.relu = relu;
    this.eps = eps;
    this.variableNames = mode === "stats" ? ["x"] : ["dy", "y", "x", "stats"];
    this.outputShape = [chunking.chunks, 2, channels];
    this.dispatch = [Math.ceil(channels / CH), chunking.chunks, 1];
    this.shaderKey = `fastBnPartial_${mode}_${rows}_${channels}_${this.rowsPerChunk}_${relu}_${eps}`;
  }

  /** WGSL body. */
  getUserCode(): string {
    const C = this.channels;
    const body = this.mode === "stats"
      ? `
    let shift = x[c];
    for (var r = rBegin + lane; r < rEnd; r += ${LANES}) {
      let v = x[r * ${C} + c] - shift;
      a += v;
      b += v * v;
    }`
      : `
    _ = y[0]; // bound even without ReLU (the 'auto' layout drops unused bindings)
    let mean = stats[c];
    let invStd = inverseSqrt(stats[${C} + c] + ${this.eps.toExponential()});
    for (var r = rBegin + lane; r < rEnd; r += ${LANES}) {
      let i = r * ${C} + c;
      let dz = ${this.relu ? "select(0.0, dy[i], y[i] > 0.0)" : "dy[i]"};
      a += dz;
      b += dz * (x[i] - mean) * invStd;
    }`;
    return `
var<workgroup> s1: array<f32, ${CH * LANES}>;
var<workgroup> s2: array<f32, ${CH * LANES}>;

fn main() {
  _ = uniforms.NAN; // keep the uniform binding in the 'auto' layout
  let c = i32(workgroupId.x) * ${CH} + i32(localId.x);
  let lane = i32(localId.y);
  let chunk = i32(workgroupId.y);
  var a = 0.0;
  var b = 0.0;
  if (c < ${C}) {
    let rBegin = chunk * ${this.rowsPerChunk};
    let rEnd = min(${this.rows}, rBegin + ${this.rowsPerChunk});${body}
  }
  let li = i32(localIndex);
  s1[li] = a;
  s2[li] = b;
  workgroupBarrier();
  if (lane == 0 && c < ${C}) {
    var t1 = 0.0;
    var t2 = 0.0;
    for (var l = 0; l < ${LANES}; l++) {
      t1 += s1[li + l * ${CH}];
      t2 += s2[li + l * ${CH}];
    }
    result[(chunk * 2) * ${C} + c] = t1;
    result[(chunk * 2 + 1) * ${C} + c] = t2;
  }
}
`;
  }
}

/**
 * Pass 2: adds the chunk partials per channel. Output [2, C]: with `stats` (inputs partial, x) the mean and the
 * biased variance; with `grad` (input partial) Σ dz (= dβ) and Σ dz · x̂ (= dγ).
 */
export class BnTotalsProgram implements WebGPUProgram {
  /** `partial`, and `x` for the shift in `stats` mode. */
  variableNames: string[];
  /** [2, C] */
  outputShape: number[];
  /** Cache key. */
  shaderKey: string;
  /** Flat: one thread per channel. */
  dispatchLayout = { x: [0, 1] };
  /** [ceil(C / 64), 1, 1] */
  dispatch: [number, number, number];
  /** 64 threads. */
  workgroupSize: [number, number, number] = [64, 1, 1];
  private readonly mode: "stats" | "grad";
  private readonly rows: number;
  private readonly channels: number;
  private readonly chunks: number;

  /**
   * Adds `chunks` partials of `channels` channels.
   * @param rows N·H·W, the count the statistics divide by.
   */
  constructor(mode: "stats" | "grad", rows: number, channels: number, chunks: number) {
    this.mode = mode;
    this.rows = rows;
    this.channels = channels;
    this.chunks = chunks;
    this.variableNames = mode === "stats" ? ["partial", "x"] : ["partial"];
    this.outputShape = [2, channels];
    this.dispatch = [Math.ceil(channels / 64), 1, 1];
    this.shaderKey = `fastBnTotals_${mode}_${rows}_${channels}_${chunks}`;
  }

  /** WGSL body; tfjs calls `main` with the flat global index. */
  getUserCode(): string {
    const C = this.channels;
    const finish = this.mode === "stats"
      ? `
    let m = t1 / ${this.rows}.0;
    result[c] = x[c] + m;
    result[${C} + c] = max(t2 / ${this.rows}.0 - m * m, 0.0);`
      : `
    result[c] = t1;
    result[${C} + c] = t2;`;
    return `
fn main(c: i32) {
  _ = uniforms.NAN;
  if (c < ${C}) {
    var t1 = 0.0;
    var t2 = 0.0;
    for (var k = 0; k < ${this.chunks}; k++) {
      t1 += partial[(k * 2) * ${C} + c];
      t2 += partial[(k * 2 + 1) * ${C} + c];
    }${finish}
  }
}
`;
  }
}

/**
 * Element-wise passes over [rows, C]:
 * - `normalize` (inputs x, stats, gamma, beta): y = (x − mean) / sqrt(var + eps) · γ + β, then ReLU if asked.
 * - `gradInput` (inputs dy, y, x, stats, gamma, totals): dx = γ / sqrt(var + eps) / L · (L · dz − Σdz − x̂ · Σdz·x̂).
 */
export class BnElementwiseProgram implements WebGPUProgram {
  /** Inputs per mode (see the class documentation). */
  variableNames: string[];
  /** Shape of x. */
  outputShape: number[];
  /** Cache key. */
  shaderKey: string;
  /** Flat. */
  dispatchLayout: { x: number[] };
  /** [ceil(size / 256), 1, 1] (tfjs folds it into 2-D past 65,535 workgroups). */
  dispatch: [number, number, number];
  /** 256 threads. */
  workgroupSize: [number, number, number] = [256, 1, 1];
  private readonly mode: "normalize" | "gradInput";
  private readonly elements: number;
  private readonly channels: number;
  private readonly relu: boolean;
  private readonly eps: number;

  /**
   * One thread per element of x.
   * @param shape the NHWC shape of x.
   */
  constructor(mode: "normalize" | "gradInput", shape: number[], relu: boolean, eps: number) {
    this.mode = mode;
    this.elements = numElements(shape);
    this.channels = shape[shape.length - 1];
    this.relu = relu;
    this.eps = eps;
    this.variableNames = mode === "normalize"
      ? ["x", "stats", "gamma", "beta"]
      : ["dy", "y", "x", "stats", "gamma", "totals"];
    this.outputShape = [...shape];
    this.dispatchLayout = { x: [...shape.keys()] };
    this.dispatch = [Math.ceil(this.elements / 256), 1, 1];
    this.shaderKey = `fastBn_${mode}_${this.elements}_${this.channels}_${relu}_${eps}`;
  }

  /** WGSL body; tfjs calls `main` with the flat global index. */
  getUserCode(): string {
    const C = this.channels;
    const rows = this.elements / C;
    const eps = this.eps.toExponential();
    const body = this.mode === "normalize"
      ? `
    let v = (x[index] - stats[c]) * inverseSqrt(stats[${C} + c] + ${eps}) * gamma[c] + beta[c];
    result[index] = ${this.relu ? "max(v, 0.0)" : "v"};`
      : `
    _ = y[0]; // bound even without ReLU
    let invStd = inverseSqrt(stats[${C} + c] + ${eps});
    let xhat = (x[index] - stats[c]) * invStd;
    let dz = ${this.relu ? "select(0.0, dy[index], y[index] > 0.0)" : "dy[index]"};
    result[index] = gamma[c] * invStd / ${rows}.0 * (${rows}.0 * dz - totals[c] - xhat * totals[${C} + c]);`;
    return `
fn main(index: i32) {
  _ = uniforms.NAN;
  if (index < ${this.elements}) {
    let c = index % ${C};${body}
  }
}
`;
  }
}
