import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { batchNormTrain } from "../../kernels/batch_norm_train.ts";
import { batchNormEval } from "../../kernels/batch_norm_eval.ts";
import { bnChunking } from "../../kernels/batch_norm_programs.ts";
import { relativeError } from "../../bench/relative_error.ts";
import { recordPrograms } from "./program_log.ts";

await initWebGPU();

const TOLERANCE = 1e-4;
const EPS = 1e-5;

/** The composite the model used before: tf.moments + tf.batchNorm (+ tf.add residual) (+ tf.relu). */
function composite(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, relu: boolean, residual?: tf.Tensor) {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const y = tf.batchNorm(x, mean, variance, beta, gamma, EPS);
  const sum = residual ? tf.add(y, residual) : y;
  return { y: relu ? tf.relu(sum) : sum, mean, variance };
}

/** Row `i` of a [R, C] tensor as [C]. */
function row(t: tf.Tensor, i: number): tf.Tensor1D {
  return tf.tidy(() => tf.slice(t, [i, 0], [1, t.shape[1]!]).reshape([t.shape[1]!]));
}

/** [shape, relu, offset added to x] */
const CASES: [[number, number, number, number], boolean, number][] = [
  [[2, 5, 3, 7], true, 0],
  [[2, 5, 3, 7], false, 0],
  // 2,312 rows: several chunks (partials, then totals) also on a software adapter; a mean far from zero.
  [[8, 17, 17, 6], true, 3],
  [[1, 2, 2, 70], false, -2], // more channels than one reduction workgroup covers
];

Deno.test("bnChunking covers every row with chunks of at least 64 rows", () => {
  for (const rows of [1, 63, 64, 65, 324, 2312, 131072, 1605632]) {
    for (const target of [1, 8, 512]) {
      const { chunks, rowsPerChunk } = bnChunking(rows, target);
      assert(rowsPerChunk >= 64);
      assert(bnChunking(rows, target, 1024).rowsPerChunk >= 1024);
      assert(chunks * rowsPerChunk >= rows && (chunks - 1) * rowsPerChunk < rows, `${rows} rows, target ${target}`);
      assert(chunks <= Math.max(1, target), `${rows} rows, target ${target}: ${chunks} chunks`);
    }
  }
  throws(() => bnChunking(0, 8), /rows must be a positive integer, got 0/);
});

Deno.test("batchNormTrain matches tf.moments + tf.batchNorm (+ relu): outputs and gradients", async () => {
  for (const [shape, relu, offset] of CASES) {
    const c = shape[3];
    const x = tf.tidy(() => tf.randomNormal(shape, offset, 1.5, "float32", 21)) as tf.Tensor4D;
    const gamma = tf.randomNormal([c], 1, 0.3, "float32", 22) as tf.Tensor1D;
    const beta = tf.randomNormal([c], 0, 0.3, "float32", 23) as tf.Tensor1D;
    const r = tf.randomNormal(shape, 0, 1, "float32", 24);
    type F = (a: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D, relu: boolean) => { y: tf.Tensor };
    const lossOf = (f: F) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      f(a as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, relu).y.mul(r).sum();
    const { result: ours, programs } = recordPrograms(() => batchNormTrain(x, gamma, beta, { eps: EPS, relu }));
    const [oursMean, oursVariance] = [row(ours.stats, 0), row(ours.stats, 1)];
    const ref = composite(x, gamma, beta, relu);
    const { result: oursGrads, programs: gradPrograms } = recordPrograms(() =>
      tf.grads(lossOf((a, g, b) => batchNormTrain(a, g, b, { eps: EPS, relu })))([x, gamma, beta])
    );
    // The composite would match too: prove that ours ran. Our BN records its programs directly into the command
    // stream (kernels/direct_program.ts), so tfjs runs no program of its own for it; the composite's moments and
    // batchNorm would show here (the loss's mul and sum are the only tfjs programs of the gradient pass).
    const names = (ps: typeof programs) => ps.map((p) => p.constructor.name);
    assertEquals(names(programs), [], `case [${shape}] forward`);
    const loss = recordPrograms(() => x.mul(r).sum());
    loss.result.dispose();
    const lossPrograms = names(loss.programs);
    assertEquals(
      names(gradPrograms).filter((n) => !lossPrograms.includes(n) && n !== "FillProgram"),
      [],
      `case [${shape}]`,
    );
    const refGrads = tf.grads(lossOf(composite))([x, gamma, beta]);
    const pairs: [string, tf.Tensor, tf.Tensor][] = [
      ["y", ours.y, ref.y],
      ["mean", oursMean, ref.mean],
      ["variance", oursVariance, ref.variance],
      ["dx", oursGrads[0], refGrads[0]],
      ["dgamma", oursGrads[1], refGrads[1]],
      ["dbeta", oursGrads[2], refGrads[2]],
    ];
    for (const [name, a, b] of pairs) {
      assertEquals(a.shape, b.shape, `${name} shape, case [${shape}] relu ${relu}`);
      const err = relativeError(await a.data(), await b.data());
      assert(err <= TOLERANCE, `${name}, case [${shape}] relu ${relu} offset ${offset}: relative error ${err}`);
    }
    assertEquals(ours.stats.shape, [2, c]);
    tf.dispose([x, gamma, beta, r, ours.y, ours.stats, oursMean, oursVariance, ref.y, ref.mean, ref.variance]);
    tf.dispose([...oursGrads, ...refGrads]);
  }
});

Deno.test("batchNormTrain leaves no tensors behind under tf.tidy and rejects bad input by name", () => {
  const x = tf.randomNormal([2, 3, 3, 4]) as tf.Tensor4D;
  const g = tf.ones([4]) as tf.Tensor1D, b = tf.zeros([4]) as tf.Tensor1D;
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    batchNormTrain(x, g, b, { eps: EPS, relu: true });
  });
  assertEquals(tf.memory().numTensors, before);
  throws(() => batchNormTrain(x, tf.ones([3]) as tf.Tensor1D, b, { eps: EPS, relu: false }), /C = 4 elements, got 3/);
  throws(
    () => batchNormTrain(x.toInt() as unknown as tf.Tensor4D, g, b, { eps: EPS, relu: false }),
    /float32 \[N, H, W, C\] tensor, got int32/,
  );
  tf.dispose([x, g, b]);
});

Deno.test("batchNormTrain with a residual matches relu(bn(x) + residual): output and all four gradients", async () => {
  for (const [shape, offset] of [[[2, 5, 3, 7], 0], [[8, 17, 17, 6], 3]] as const) {
    const c = shape[3];
    const x = tf.randomNormal([...shape], offset, 1.5, "float32", 31) as tf.Tensor4D;
    const res = tf.randomNormal([...shape], 0, 1, "float32", 32) as tf.Tensor4D;
    const gamma = tf.randomNormal([c], 1, 0.3, "float32", 33) as tf.Tensor1D;
    const beta = tf.randomNormal([c], 0, 0.3, "float32", 34) as tf.Tensor1D;
    const r = tf.randomNormal([...shape], 0, 1, "float32", 35);
    type F = (a: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D, s: tf.Tensor4D) => tf.Tensor;
    const lossOf = (f: F) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor, s: tf.Tensor) =>
      f(a as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, s as tf.Tensor4D).mul(r).sum();
    const fused: F = (a, g, b, s) => batchNormTrain(a, g, b, { eps: EPS, relu: true, residual: s }).y;
    const ref: F = (a, g, b, s) => composite(a, g, b, true, s).y;
    const [ours, want] = [fused, ref].map((f) => tf.tidy(() => f(x, gamma, beta, res)));
    const oursGrads = tf.grads(lossOf(fused))([x, gamma, beta, res]);
    const refGrads = tf.grads(lossOf(ref))([x, gamma, beta, res]);
    const names = ["y", "dx", "dgamma", "dbeta", "dresidual"];
    const pairs = [[ours, want], ...oursGrads.map((g, i) => [g, refGrads[i]])];
    for (const [i, [a, b]] of pairs.entries()) {
      const err = relativeError(await a.data(), await b.data());
      assert(err <= TOLERANCE, `${names[i]}, case [${shape}]: relative error ${err}`);
    }
    tf.dispose([x, res, gamma, beta, r, ...pairs.flat()]);
  }
});

Deno.test("the running statistics follow PyTorch's update against a float64 reference, in one pass and in two", async () => {
  // 30 rows: one chunk (one dispatch); 2,312 rows: several chunks (partials, then totals); 1 row: n/(n-1) guarded.
  for (const [shape, momentum] of [[[2, 5, 3, 7], 0.1], [[8, 17, 17, 6], 0.1], [[1, 1, 1, 3], 0.25]] as const) {
    const c = shape[3];
    const n = shape[0] * shape[1] * shape[2];
    const x = tf.randomNormal([...shape], 2, 1.5, "float32", 41) as tf.Tensor4D;
    const old = tf.randomUniform([4, c], 0.5, 2, "float32", 42) as tf.Tensor2D;
    const { y, stats } = batchNormTrain(x, tf.ones([c]), tf.zeros([c]), {
      eps: EPS,
      relu: false,
      running: { stats: old, momentum },
    });
    assertEquals(stats.shape, [4, c]);
    const [xs, olds, got] = [await x.data(), await old.data(), await stats.data()];
    for (let ch = 0; ch < c; ch++) {
      let mean = 0, ss = 0;
      for (let i = 0; i < n; i++) mean += xs[i * c + ch] / n;
      for (let i = 0; i < n; i++) ss += (xs[i * c + ch] - mean) ** 2;
      const want = [
        mean,
        ss / n,
        (1 - momentum) * olds[2 * c + ch] + momentum * mean,
        (1 - momentum) * olds[3 * c + ch] + momentum * ss / Math.max(n - 1, 1),
      ];
      want.forEach((w, r) => {
        const g = got[r * c + ch];
        assert(Math.abs(g - w) <= 2e-5 * Math.max(1, Math.abs(w)), `[${shape}] row ${r} channel ${ch}: ${g} vs ${w}`);
      });
    }
    tf.dispose([x, old, y, stats]);
  }
});

Deno.test("batchNormEval matches tf.batchNorm with the running statistics (+ residual) (+ relu)", async () => {
  const shape = [3, 4, 5, 6] as const;
  const x = tf.randomNormal([...shape], 1, 2, "float32", 51) as tf.Tensor4D;
  const res = tf.randomNormal([...shape], 0, 1, "float32", 52) as tf.Tensor4D;
  const gamma = tf.randomNormal([6], 1, 0.3, "float32", 53) as tf.Tensor1D;
  const beta = tf.randomNormal([6], 0, 0.3, "float32", 54) as tf.Tensor1D;
  // Rows 0-1 (a batch's statistics) are not what evaluation uses: make them wildly different.
  const stats = tf.concat([
    tf.fill([2, 6], 50),
    tf.randomNormal([1, 6], 0.5, 1, "float32", 55),
    tf.randomUniform([1, 6], 0.5, 3, "float32", 56),
  ]) as tf.Tensor2D;
  for (const [relu, residual] of [[false, undefined], [true, undefined], [true, res]] as const) {
    const ours = batchNormEval(x, gamma, beta, stats, { eps: EPS, relu, residual });
    const want = tf.tidy(() => {
      const y = tf.batchNorm(x, row(stats, 2), row(stats, 3), beta, gamma, EPS);
      const sum = residual ? tf.add(y, residual) : y;
      return relu ? tf.relu(sum) : sum;
    });
    const err = relativeError(await ours.data(), await want.data());
    assert(err <= 1e-6, `relu ${relu}, residual ${!!residual}: relative error ${err}`);
    tf.dispose([ours, want]);
  }
  throws(
    () => batchNormEval(x, gamma, beta, row(stats, 0) as unknown as tf.Tensor2D, { eps: EPS, relu: false }),
    /stats \[4, 6\]/,
  );
  tf.dispose([x, res, gamma, beta, stats]);
});

Deno.test("batchNormTrain dispatches: 1 forward and 1 backward in one chunk, 3 and 3 in several, a residual included", () => {
  const original = GPUComputePassEncoder.prototype.dispatchWorkgroups;
  let dispatches = 0;
  GPUComputePassEncoder.prototype.dispatchWorkgroups = function (...args) {
    dispatches++;
    return original.apply(this, args);
  };
  try {
    for (const [shape, onePass] of [[[2, 5, 3, 7], true], [[8, 17, 17, 6], false]] as const) {
      const c = shape[3];
      const x = tf.randomNormal([...shape]) as tf.Tensor4D, dy = tf.randomNormal([...shape]);
      const g = tf.ones([c]) as tf.Tensor1D, b = tf.zeros([c]) as tf.Tensor1D;
      const running = { stats: tf.zeros([4, c]) as tf.Tensor2D, momentum: 0.1 };
      for (const residual of [undefined, tf.randomNormal([...shape]) as tf.Tensor4D]) {
        dispatches = 0;
        const fwd = batchNormTrain(x, g, b, { eps: EPS, relu: true, residual, running });
        const forward = dispatches;
        dispatches = 0;
        const inputs = residual ? [x, g, b, residual] : [x, g, b];
        const f = (...a: tf.Tensor[]) =>
          batchNormTrain(a[0] as tf.Tensor4D, a[1] as tf.Tensor1D, a[2] as tf.Tensor1D, {
            eps: EPS,
            relu: true,
            residual: a[3] as tf.Tensor4D | undefined,
            running,
          }).y;
        const grads = tf.grads(f)(inputs, dy);
        const backward = dispatches - forward; // tf.grads runs the forward again first
        const passes = onePass ? 1 : 3;
        assertEquals([forward, backward], [passes, passes], `[${shape}] residual ${!!residual}`);
        tf.dispose([fwd.y, fwd.stats, ...grads, ...(residual ? [residual] : [])]);
      }
      tf.dispose([x, dy, g, b, running.stats]);
    }
  } finally {
    GPUComputePassEncoder.prototype.dispatchWorkgroups = original;
  }
});
