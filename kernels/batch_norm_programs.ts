/**
 * WGSL programs of the fused batch norm ({@linkcode batchNormTrain}, {@linkcode batchNormEval}): per-channel
 * reductions over the N·H·W rows of an NHWC tensor (one pass when one chunk of rows covers them, else chunk partials
 * then totals), which also finish the statistics (and move the running statistics) or write the weight and bias
 * gradients as two tensors; the element-wise normalise(+residual)(+ReLU); the input (and residual) gradient.
 * @module
 */
import type { WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { allocateTensor, type DirectBinding, gridStride, runDirectProgram } from "./direct_program.ts";
import { numElements } from "./num_elements.ts";
import { wgslF32 } from "./wgsl_f32.ts";

/**
 * Rows of the statistics tensor the training-mode reduction writes: [2, C] (batch mean and biased batch variance, which
 * normalise), or [4, C] with running statistics: then also running_mean and running_var moved toward the batch's as
 * PyTorch does. A model keeps the whole [4, C] tensor as a layer's state, so committing a training pass's running
 * statistics swaps a reference instead of running ops, and evaluation normalises with rows 2-3.
 */
export const BN_STATS_ROWS = { mean: 0, variance: 1, runningMean: 2, runningVar: 3 } as const;

/** Threads along channels and along rows in a reduction workgroup. */
const CH = 64;
const LANES = 4;

/**
 * Rows are reduced in chunks, each one workgroup row; more chunks = more parallelism, more partials to add, and a
 * second dispatch once there are two (one chunk finishes in the first).
 * @param minRowsPerChunk fewer rows than this per chunk are not worth the parallelism (default 64).
 */
export function bnChunking(
  rows: number,
  targetChunks: number,
  minRowsPerChunk = 64,
): { chunks: number; rowsPerChunk: number } {
  if (!Number.isInteger(rows) || rows < 1) {
    throw new RangeError(`bnChunking: rows must be a positive integer, got ${rows}`);
  }
  const rowsPerChunk = Math.max(minRowsPerChunk, Math.ceil(rows / Math.max(1, targetChunks)));
  return { chunks: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

/** A per-channel reduction over [rows, C] and how it ends. */
export interface BnReduction {
  /**
   * `stats` (inputs `x` and, with `momentum`, `running`; output `stats`): Σ(x − s) and Σ(x − s)² with s = x[row 0, c]
   * (a shift that keeps E[x²] − E[x]² accurate when |mean| ≫ std), finished as the [2, C] or [4, C] statistics of
   * {@linkcode BN_STATS_ROWS}.
   * `grad` (inputs `dy`, `y` with `relu`, `x`, `stats`; outputs `dGamma`, `dBeta`): Σ dz · x̂ and Σ dz, where
   * dz = dy (· [y > 0] with `relu`) and x̂ = (x − mean) / sqrt(var + eps).
   */
  mode: "stats" | "grad";
  /** N·H·W, the count the statistics divide by. */
  rows: number;
  channels: number;
  /** From {@linkcode bnChunking}. */
  chunking: { chunks: number; rowsPerChunk: number };
  /** grad: the forward applied ReLU. */
  relu: boolean;
  /** grad: the forward's eps. */
  eps: number;
  /**
   * stats: PyTorch's BN momentum; the output gets rows 2-3: running = (1 − momentum) · running + momentum · batch
   * statistic, the variance unbiased (· rows / (rows − 1)). `running` (input) holds the previous running statistics in
   * its rows 2-3. Omitted: a [2, C] output.
   */
  momentum?: number;
}

/** WGSL that sums one chunk of rows into `a` and `b` for channel `c` (lane `lane` of LANES). */
function accumulate(r: BnReduction): string {
  const C = r.channels;
  if (r.mode === "stats") {
    return `
    let shift = x[c];
    for (var row = rBegin + lane; row < rEnd; row += ${LANES}) {
      let v = x[row * ${C} + c] - shift;
      a += v;
      b += v * v;
    }`;
  }
  return `
    let mean = stats[c];
    let invStd = inverseSqrt(stats[${C} + c] + ${wgslF32(r.eps)});
    for (var row = rBegin + lane; row < rEnd; row += ${LANES}) {
      let i = row * ${C} + c;
      let dz = ${r.relu ? "select(0.0, dy[i], y[i] > 0.0)" : "dy[i]"};
      a += dz;
      b += dz * (x[i] - mean) * invStd;
    }`;
}

/** WGSL that writes the results of channel `c` from its totals `t1` and `t2`. */
function finish(r: BnReduction): string {
  const C = r.channels;
  if (r.mode === "grad") {
    return `
    dBeta[c] = t1;
    dGamma[c] = t2;`;
  }
  const running = r.momentum === undefined ? "" : `
    stats[${2 * C} + c] = running[${2 * C} + c] * ${wgslF32(1 - r.momentum)} + mean * ${wgslF32(r.momentum)};
    stats[${3 * C} + c] = running[${3 * C} + c] * ${wgslF32(1 - r.momentum)} +
      variance * ${wgslF32(r.rows / Math.max(r.rows - 1, 1))} * ${wgslF32(r.momentum)};`;
  return `
    let m = t1 / ${r.rows}.0;
    let mean = x[c] + m;
    let variance = max(t2 / ${r.rows}.0 - m * m, 0.0);
    stats[c] = mean;
    stats[${C} + c] = variance;${running}`;
}

function reductionKey(r: BnReduction): string {
  return `${r.mode}_${r.rows}_${r.channels}_${r.chunking.chunks}x${r.chunking.rowsPerChunk}_${r.relu}_${r.eps}_` +
    `${r.momentum}`;
}

/**
 * Runs reduction `r`: one dispatch when one chunk covers the rows (the workgroup finishes its channels), else two
 * (chunk partials [chunks, 2, C], then per-channel totals and finish).
 * @param inputs the read bindings `r.mode` names, any order.
 * @param outputs the written bindings it names: new tensors of the right shape (every element is written).
 */
export function runBnReduction(
  r: BnReduction,
  inputs: Omit<DirectBinding, "access">[],
  outputs: Omit<DirectBinding, "access">[],
): void {
  const C = r.channels;
  const { chunks, rowsPerChunk } = r.chunking;
  const want = r.mode === "stats"
    ? [["x", ...(r.momentum === undefined ? [] : ["running"])], ["stats"]]
    : [["dy", ...(r.relu ? ["y"] : []), "x", "stats"], ["dGamma", "dBeta"]];
  const got = [inputs, outputs].map((l) => l.map((b) => b.name).sort().join());
  if (got[0] !== [...want[0]].sort().join() || got[1] !== [...want[1]].sort().join()) {
    throw new Error(`runBnReduction (${r.mode}): expected inputs ${want[0]} and outputs ${want[1]}, got ${got}`);
  }
  const reads = inputs.map((b) => ({ ...b, access: "read" as const }));
  const writes = outputs.map((b) => ({ ...b, access: "read_write" as const }));
  const single = chunks === 1;
  const partial = single ? undefined : allocateTensor([chunks, 2, C]);
  const store = single ? finish(r) : `
    partial[(chunk * 2) * ${C} + c] = t1;
    partial[(chunk * 2 + 1) * ${C} + c] = t2;`;
  runDirectProgram({
    key: `bnPartial_${reductionKey(r)}_${inputs.map((b) => b.name).join(",")}`,
    bindings: single ? [...reads, ...writes] : [...reads, { name: "partial", tensor: partial!, access: "read_write" }],
    workgroups: [Math.ceil(C / CH), chunks, 1],
    code: () => `
var<workgroup> s1: array<f32, ${CH * LANES}>;
var<workgroup> s2: array<f32, ${CH * LANES}>;

@compute @workgroup_size(${CH}, ${LANES}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = i32(wg.x) * ${CH} + i32(lid.x);
  let lane = i32(lid.y);
  let chunk = i32(wg.y);
  var a = 0.0;
  var b = 0.0;
  if (c < ${C}) {
    let rBegin = chunk * ${rowsPerChunk};
    let rEnd = min(${r.rows}, rBegin + ${rowsPerChunk});${accumulate(r)}
  }
  let li = lane * ${CH} + i32(lid.x);
  s1[li] = a;
  s2[li] = b;
  workgroupBarrier();
  if (lane == 0 && c < ${C}) {
    var t1 = 0.0;
    var t2 = 0.0;
    for (var l = 0; l < ${LANES}; l++) {
      t1 += s1[li + l * ${CH}];
      t2 += s2[li + l * ${CH}];
    }${store}
  }
}
`,
  });
  if (single) return;
  // The totals need the partials, and `x` (shift) and `running` in stats mode; grad mode needs no other input.
  const totalsInputs = reads.filter((b) => b.name === "x" || b.name === "running");
  runDirectProgram({
    key: `bnTotals_${reductionKey(r)}`,
    bindings: [
      { name: "partial", tensor: partial!, access: "read" },
      ...(r.mode === "stats" ? totalsInputs : []),
      ...writes,
    ],
    workgroups: [Math.ceil(C / 64), 1, 1],
    code: () => `
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = i32(gid.x);
  if (c < ${C}) {
    var t1 = 0.0;
    var t2 = 0.0;
    for (var k = 0; k < ${chunks}; k++) {
      t1 += partial[(k * 2) * ${C} + c];
      t2 += partial[(k * 2 + 1) * ${C} + c];
    }${finish(r)}
  }
}
`,
  });
  partial!.dispose();
}

/** What a {@linkcode BnNormalizeProgram} computes. */
export interface BnNormalize {
  /** NHWC shape of x. */
  shape: number[];
  relu: boolean;
  eps: number;
  /** Add a residual input before the ReLU. */
  residual?: boolean;
  /** First row of mean and var in stats (0: the batch's; 2: the running statistics of a [4, C] tensor). */
  statsRow?: number;
}

/**
 * One thread per element of x (inputs x, stats, gamma, beta, and residual with `residual`):
 * y = (x − mean) / sqrt(var + eps) · γ + β (+ residual), then ReLU if asked; mean and var from rows `statsRow` and
 * `statsRow` + 1 of stats.
 */
export class BnNormalizeProgram implements WebGPUProgram {
  /** x, stats, gamma, beta (, residual). */
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
  private readonly e: BnNormalize;
  private readonly elements: number;
  private readonly channels: number;

  /** @param e what to compute. */
  constructor(e: BnNormalize) {
    this.e = { ...e };
    this.elements = numElements(e.shape);
    this.channels = e.shape[e.shape.length - 1];
    this.variableNames = ["x", "stats", "gamma", "beta", ...(e.residual ? ["residual"] : [])];
    this.outputShape = [...e.shape];
    this.dispatchLayout = { x: [...e.shape.keys()] };
    this.dispatch = [Math.ceil(this.elements / 256), 1, 1];
    this.shaderKey = `fastBn_normalize_${this.elements}_${this.channels}_${e.relu}_${e.eps}_${e.residual ?? false}_` +
      `${e.statsRow ?? 0}`;
  }

  /** WGSL body; tfjs calls `main` with the flat global index. */
  getUserCode(): string {
    const C = this.channels;
    const { relu, residual } = this.e;
    const row = this.e.statsRow ?? 0;
    return `
fn main(index: i32) {
  _ = uniforms.NAN;
  if (index < ${this.elements}) {
    let c = index % ${C};
    let v = (x[index] - stats[${row * C} + c]) * inverseSqrt(stats[${(row + 1) * C} + c] + ${wgslF32(this.e.eps)}) *
      gamma[c] + beta[c]${residual ? " + residual[index]" : ""};
    result[index] = ${relu ? "max(v, 0.0)" : "v"};
  }
}
`;
  }
}

/**
 * The input gradient of training-mode BN in one pass over the elements (inputs dy, y with `relu`, x, stats [2+, C],
 * gamma, dGamma, dBeta; output dx, and dResidual with `residual`):
 * dx = γ / sqrt(var + eps) / L · (L · dz − Σdz − x̂ · Σdz·x̂), dz = dy (· [y > 0] with `relu`), L = N·H·W; with a
 * residual input (added before the ReLU) its gradient dz is written too, in the same pass.
 */
export function runBnGradInput(
  e: { shape: number[]; relu: boolean; eps: number; residual: boolean },
  inputs: Omit<DirectBinding, "access">[],
  outputs: Omit<DirectBinding, "access">[],
): void {
  const elements = numElements(e.shape);
  const C = e.shape[e.shape.length - 1];
  const rows = elements / C;
  runDirectProgram({
    key: `bnGradInput_${elements}_${C}_${e.relu}_${e.eps}_${e.residual}`,
    bindings: [
      ...inputs.map((b) => ({ ...b, access: "read" as const })),
      ...outputs.map((b) => ({ ...b, access: "read_write" as const })),
    ],
    workgroups: gridStride(elements),
    code: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < ${elements}u; i += nwg.x * 256u) {
    let c = i % ${C}u;
    let invStd = inverseSqrt(stats[${C}u + c] + ${wgslF32(e.eps)});
    let xhat = (x[i] - stats[c]) * invStd;
    let dz = ${e.relu ? "select(0.0, dy[i], y[i] > 0.0)" : "dy[i]"};
    dx[i] = gamma[c] * invStd / ${rows}.0 * (${rows}.0 * dz - dBeta[c] - xhat * dGamma[c]);${
      e.residual
        ? `
    dResidual[i] = dz;`
        : ""
    }
  }
}
`,
  });
}
