/**
 * WGSL programs of the fused batch norm ({@linkcode batchNormTrain}, {@linkcode batchNormEval}), all direct programs
 * over the N·H·W rows × C channels of an NHWC tensor:
 * - forward: per-channel statistics (which also move the running statistics), then normalise (+ residual) (+ ReLU);
 * - backward: per-channel Σdz and Σdz·x̂ (the bias and weight gradients), then the input (and residual) gradient.
 * When one chunk of rows covers the tensor, each pass is one dispatch: a workgroup reduces its 64 channels over all
 * rows, then (after a barrier) does the element-wise part for them. Otherwise three: chunk partials, per-channel
 * totals, then the element-wise pass over all elements.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { allocateTensor, type DirectBinding, gridStride, runDirectProgram } from "./direct_program.ts";
import { numElements } from "./num_elements.ts";
import { wgslF32 } from "./wgsl_f32.ts";

/**
 * Rows of the statistics tensor the training-mode forward writes: [2, C] (batch mean and biased batch variance, which
 * normalise), or [4, C] with running statistics: then also running_mean and running_var moved toward the batch's as
 * PyTorch does. A model keeps the whole [4, C] tensor as a layer's state, so committing a training pass's running
 * statistics swaps a reference instead of running ops, and evaluation normalises with rows 2-3.
 */
export const BN_STATS_ROWS = { mean: 0, variance: 1, runningMean: 2, runningVar: 3 } as const;

/** Threads along channels and along rows in a reduction workgroup. */
const CH = 64;
const LANES = 4;

/**
 * Rows are reduced in chunks, each one workgroup row; more chunks = more parallelism, more partials to add, and two
 * more dispatches each way once there are two (one chunk does the whole pass in one).
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

/** One training-mode BN layer's shape and options. */
export interface BnSpec {
  /** NHWC shape of x. */
  shape: number[];
  /** From {@linkcode bnChunking}, over the N·H·W rows. */
  chunking: { chunks: number; rowsPerChunk: number };
  eps: number;
  /** ReLU after the normalisation (and the residual). */
  relu: boolean;
  /** A residual input added before the ReLU. */
  residual: boolean;
  /**
   * PyTorch's momentum: the statistics get rows 2-3, running = (1 − momentum) · running + momentum · batch statistic,
   * the variance unbiased (· rows / (rows − 1)), from the previous running statistics in rows 2-3 of `running`.
   * Omitted: [2, C] statistics.
   */
  momentum?: number;
}

/** Tensors of {@linkcode runBnForward}. */
export interface BnForwardTensors {
  x: tf.TensorInfo;
  gamma: tf.TensorInfo;
  beta: tf.TensorInfo;
  residual?: tf.TensorInfo;
  /** The previous [4, C] statistics (with `momentum`). */
  running?: tf.TensorInfo;
  /** Output [2, C] or [4, C] (see {@linkcode BN_STATS_ROWS}). */
  stats: tf.TensorInfo;
  /** Output, x's shape. */
  y: tf.TensorInfo;
}

/** Tensors of {@linkcode runBnBackward}. */
export interface BnBackwardTensors {
  dy: tf.TensorInfo;
  /** The forward's output (its ReLU mask). */
  y: tf.TensorInfo;
  x: tf.TensorInfo;
  /** The forward's statistics (rows 0-1 are read). */
  stats: tf.TensorInfo;
  gamma: tf.TensorInfo;
  /** Outputs [C]. */
  dGamma: tf.TensorInfo;
  dBeta: tf.TensorInfo;
  /** Output, x's shape. */
  dx: tf.TensorInfo;
  /** Output with a residual: its gradient dz = dy (· [y > 0]). */
  dResidual?: tf.TensorInfo;
}

/** Read and written bindings from named tensors (undefined ones left out). */
function bind(
  reads: Record<string, tf.TensorInfo | undefined>,
  writes: Record<string, tf.TensorInfo | undefined>,
): DirectBinding[] {
  const list = (r: Record<string, tf.TensorInfo | undefined>, access: DirectBinding["access"]) =>
    Object.entries(r).filter(([, t]) => t).map(([name, tensor]) => ({ name, tensor: tensor!, access }));
  return [...list(reads, "read"), ...list(writes, "read_write")];
}

function specKey(s: BnSpec): string {
  return `${s.shape}_${s.chunking.chunks}x${s.chunking.rowsPerChunk}_${s.eps}_${s.relu}_${s.residual}_${s.momentum}`;
}

/** WGSL: y[i] from x[i] and channel c's `mean` and `variance` (expressions). */
function normalizeElement(s: { eps: number; relu: boolean; residual: boolean }, mean: string, variance: string) {
  return `
    let v = (x[i] - ${mean}) * inverseSqrt(${variance} + ${wgslF32(s.eps)}) * gamma[c] + beta[c]${
    s.residual ? " + residual[i]" : ""
  };
    y[i] = ${s.relu ? "max(v, 0.0)" : "v"};`;
}

/**
 * WGSL: dx[i] (and dResidual[i]) from dy[i] and channel c's totals `sumDz` (= dβ) and `sumDzXhat` (= dγ):
 * dx = γ / sqrt(var + eps) / L · (L · dz − Σdz − x̂ · Σdz·x̂), dz = dy (· [y > 0] with ReLU), L = N·H·W.
 */
function gradElement(s: BnSpec, sumDz: string, sumDzXhat: string): string {
  const rows = numElements(s.shape) / s.shape[3];
  return `
    let invStd = inverseSqrt(stats[${s.shape[3]} + c] + ${wgslF32(s.eps)});
    let xhat = (x[i] - stats[c]) * invStd;
    let dz = ${s.relu ? "select(0.0, dy[i], y[i] > 0.0)" : "dy[i]"};
    dx[i] = gamma[c] * invStd / ${rows}.0 * (${rows}.0 * dz - ${sumDz} - xhat * ${sumDzXhat});${
    s.residual
      ? `
    dResidual[i] = dz;`
      : ""
  }`;
}

/**
 * WGSL of the per-channel sums over rows [rBegin, rEnd) for channel c by lane `lane`, into `a` and `b`:
 * forward Σ(x − s) and Σ(x − s)² with s = x[row 0, c] (a shift that keeps E[x²] − E[x]² accurate when |mean| ≫ std);
 * backward Σdz and Σdz · x̂.
 */
function accumulate(s: BnSpec, backward: boolean): string {
  const C = s.shape[3];
  const body = backward
    ? `
      let i = row * ${C} + c;
      let dz = ${s.relu ? "select(0.0, dy[i], y[i] > 0.0)" : "dy[i]"};
      a += dz;
      b += dz * (x[i] - mean) * invStd;`
    : `
      let v = x[row * ${C} + c] - shift;
      a += v;
      b += v * v;`;
  return `${
    backward
      ? `
    let mean = stats[c];
    let invStd = inverseSqrt(stats[${C} + c] + ${wgslF32(s.eps)});`
      : `
    let shift = x[c];`
  }
    for (var row = rBegin + lane; row < rEnd; row += ${LANES}) {${body}
    }`;
}

/** WGSL finishing channel c from its totals `t1`, `t2`: the statistics (forward) or dβ, dγ (backward). */
function finish(s: BnSpec, backward: boolean): string {
  if (backward) {
    return `
    dBeta[c] = t1;
    dGamma[c] = t2;`;
  }
  const C = s.shape[3];
  const rows = numElements(s.shape) / C;
  const m = s.momentum;
  const running = m === undefined ? "" : `
    stats[${2 * C} + c] = running[${2 * C} + c] * ${wgslF32(1 - m)} + mean * ${wgslF32(m)};
    stats[${3 * C} + c] = running[${3 * C} + c] * ${wgslF32(1 - m)} +
      variance * ${wgslF32(rows / Math.max(rows - 1, 1))} * ${wgslF32(m)};`;
  return `
    let m = t1 / ${rows}.0;
    let mean = x[c] + m;
    let variance = max(t2 / ${rows}.0 - m * m, 0.0);
    stats[c] = mean;
    stats[${C} + c] = variance;${running}`;
}

/**
 * The reduction workgroup: 64 channels × 4 lanes sum chunk `wg.y` of the rows. With one chunk it finishes, and after a
 * barrier does the element-wise pass of its channels (`elementwise`, given the finished `t1`, `t2` in s1, s2); else
 * it writes its partial sums.
 */
function reductionCode(s: BnSpec, backward: boolean, elementwise?: string): string {
  const C = s.shape[3];
  const rows = numElements(s.shape) / C;
  const { chunks, rowsPerChunk } = s.chunking;
  const store = chunks === 1
    ? `${finish(s, backward)}
    s1[lx] = ${backward ? "t1" : "mean"};
    s2[lx] = ${backward ? "t2" : "variance"};`
    : `
    partial[(chunk * 2) * ${C} + c] = t1;
    partial[(chunk * 2 + 1) * ${C} + c] = t2;`;
  const then = elementwise === undefined ? "" : `
  workgroupBarrier();
  if (c < ${C}) {
    for (var row = lane; row < ${rows}; row += ${LANES}) {
      let i = row * ${C} + c;${elementwise}
    }
  }`;
  return `
var<workgroup> s1: array<f32, ${CH * LANES}>;
var<workgroup> s2: array<f32, ${CH * LANES}>;

@compute @workgroup_size(${CH}, ${LANES}, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let lx = i32(lid.x);
  let c = i32(wg.x) * ${CH} + lx;
  let lane = i32(lid.y);
  let chunk = i32(wg.y);
  var a = 0.0;
  var b = 0.0;
  if (c < ${C}) {
    let rBegin = chunk * ${rowsPerChunk};
    let rEnd = min(${rows}, rBegin + ${rowsPerChunk});${accumulate(s, backward)}
  }
  s1[lane * ${CH} + lx] = a;
  s2[lane * ${CH} + lx] = b;
  workgroupBarrier();
  if (lane == 0 && c < ${C}) {
    var t1 = 0.0;
    var t2 = 0.0;
    for (var l = 0; l < ${LANES}; l++) {
      t1 += s1[l * ${CH} + lx];
      t2 += s2[l * ${CH} + lx];
    }${store}
  }${then}
}
`;
}

/** Second pass with several chunks: one thread per channel adds the partials and finishes. */
function totalsCode(s: BnSpec, backward: boolean): string {
  const C = s.shape[3];
  return `
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = i32(gid.x);
  if (c < ${C}) {
    var t1 = 0.0;
    var t2 = 0.0;
    for (var k = 0; k < ${s.chunking.chunks}; k++) {
      t1 += partial[(k * 2) * ${C} + c];
      t2 += partial[(k * 2 + 1) * ${C} + c];
    }${finish(s, backward)}
  }
}
`;
}

/** An element-wise pass over all of x's elements (grid-stride), `body` given i and c. */
function elementwiseCode(shape: number[], body: string): string {
  const n = numElements(shape);
  return `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < ${n}u; i += nwg.x * 256u) {
    let c = i % ${shape[3]}u;${body}
  }
}
`;
}

/**
 * A pass (forward or backward): with one chunk, one dispatch doing the reduction and then the element-wise part; else
 * partials, totals, then the element-wise part over all elements.
 */
function runPass(
  name: string,
  s: BnSpec,
  backward: boolean,
  reduce: { reads: Record<string, tf.TensorInfo | undefined>; writes: Record<string, tf.TensorInfo | undefined> },
  elementwise: {
    /** Reads the one-dispatch pass needs beyond the reduction's. */
    fusedReads: Record<string, tf.TensorInfo | undefined>;
    /** Reads of the separate element-wise pass. */
    reads: Record<string, tf.TensorInfo | undefined>;
    writes: Record<string, tf.TensorInfo | undefined>;
    /** WGSL given i, c and the channel's finished sums in s1[lx], s2[lx]. */
    fused: string;
    /** WGSL given i and c. */
    separate: string;
  },
): void {
  const C = s.shape[3];
  const groups: [number, number, number] = [Math.ceil(C / CH), s.chunking.chunks, 1];
  if (s.chunking.chunks === 1) {
    runDirectProgram({
      key: `bn${name}1_${specKey(s)}`,
      bindings: bind({ ...reduce.reads, ...elementwise.fusedReads }, { ...reduce.writes, ...elementwise.writes }),
      workgroups: groups,
      code: () => reductionCode(s, backward, elementwise.fused),
    });
    return;
  }
  const partial = allocateTensor([s.chunking.chunks, 2, C]);
  runDirectProgram({
    key: `bn${name}Partial_${specKey(s)}`,
    bindings: bind(reduce.reads, { partial }),
    workgroups: groups,
    code: () => reductionCode(s, backward),
  });
  // The totals need the partials, and x (the shift) and the running statistics going forward.
  const totalsReads = backward ? { partial } : { partial, x: reduce.reads.x, running: reduce.reads.running };
  runDirectProgram({
    key: `bn${name}Totals_${specKey(s)}`,
    bindings: bind(totalsReads, reduce.writes),
    workgroups: [Math.ceil(C / 64), 1, 1],
    code: () => totalsCode(s, backward),
  });
  partial.dispose();
  runDirectProgram({
    key: `bn${name}Elementwise_${specKey(s)}`,
    bindings: bind(elementwise.reads, elementwise.writes),
    workgroups: gridStride(numElements(s.shape)),
    code: () => elementwiseCode(s.shape, elementwise.separate),
  });
}

/** Training-mode forward: writes `t.stats` and `t.y`. One dispatch with one chunk of rows, else three. */
export function runBnForward(s: BnSpec, t: BnForwardTensors): void {
  const C = s.shape[3];
  const params = { gamma: t.gamma, beta: t.beta, residual: t.residual };
  runPass("Forward", s, false, { reads: { x: t.x, running: t.running }, writes: { stats: t.stats } }, {
    fusedReads: params,
    reads: { x: t.x, stats: t.stats, ...params },
    writes: { y: t.y },
    // The fused pass keeps channel c's statistics in s1, s2 (index lx); the separate one reads them back.
    fused: normalizeElement(s, "s1[lx]", "s2[lx]"),
    separate: normalizeElement(s, "stats[c]", `stats[${C}u + c]`),
  });
}

/** Training-mode backward: writes `t.dGamma`, `t.dBeta`, `t.dx` (and `t.dResidual`). One dispatch or three. */
export function runBnBackward(s: BnSpec, t: BnBackwardTensors): void {
  if (s.residual !== (t.dResidual !== undefined)) throw new Error("runBnBackward: dResidual iff a residual");
  const reads = { dy: t.dy, y: s.relu ? t.y : undefined, x: t.x, stats: t.stats };
  runPass("Backward", s, true, { reads, writes: { dGamma: t.dGamma, dBeta: t.dBeta } }, {
    fusedReads: { gamma: t.gamma },
    reads: { ...reads, gamma: t.gamma, dGamma: t.dGamma, dBeta: t.dBeta },
    writes: { dx: t.dx, dResidual: t.dResidual },
    fused: gradElement(s, "s1[lx]", "s2[lx]"),
    separate: gradElement(s, "dBeta[c]", "dGamma[c]"),
  });
}

/**
 * Normalisation with given statistics (evaluation: the running statistics, `statsRow` 2 of [4, C]): writes `t.y` =
 * (x − mean) / sqrt(var + eps) · γ + β (+ residual) (then ReLU) in one dispatch.
 */
export function runBnNormalize(
  s: { shape: number[]; eps: number; relu: boolean; residual: boolean },
  t: Omit<BnForwardTensors, "running">,
  statsRow: number,
): void {
  const C = s.shape[3];
  runDirectProgram({
    key: `bnNormalize_${s.shape}_${s.eps}_${s.relu}_${s.residual}_${statsRow}`,
    bindings: bind({ x: t.x, stats: t.stats, gamma: t.gamma, beta: t.beta, residual: t.residual }, { y: t.y }),
    workgroups: gridStride(numElements(s.shape)),
    code: () =>
      elementwiseCode(s.shape, normalizeElement(s, `stats[${statsRow * C}u + c]`, `stats[${(statsRow + 1) * C}u + c]`)),
  });
}
