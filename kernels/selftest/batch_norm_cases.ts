/**
 * Our batch-norm programs (kernels/batch_norm_programs.ts) against their references: training forward and backward
 * (+ relu) (+ residual) against the composite tf.moments + tf.batchNorm the model used before, the running statistics
 * against a float64 reference of PyTorch's update, and evaluation against tf.batchNorm with the running statistics.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { batchNormTrain } from "../batch_norm_train.ts";
import { batchNormEval } from "../batch_norm_eval.ts";
import { recordPrograms } from "./program_log.ts";
import { check, checkClose, checkNoDeviceErrors, checkSame, type KernelCase } from "./kernel_case.ts";

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

/** Compares pairs of tensors (ours, reference) after checking the device reported no error. */
async function comparePairs(pairs: [string, tf.Tensor, tf.Tensor][], where: string, tolerance = TOLERANCE) {
  for (const [name, a, b] of pairs) {
    checkSame(a.shape, b.shape, `${name} shape, ${where}`);
    const [actual, expected] = [await a.data(), await b.data()];
    checkNoDeviceErrors(`${name}, ${where}`);
    checkClose(actual, expected, tolerance, `${name}, ${where}`);
  }
}

/** [shape, relu, offset added to x] */
const TRAIN_PROBLEMS: [[number, number, number, number], boolean, number][] = [
  [[2, 5, 3, 7], true, 0],
  [[2, 5, 3, 7], false, 0],
  // 2,312 rows: several chunks (partials, then totals) also on a software adapter; a mean far from zero.
  [[8, 17, 17, 6], true, 3],
  [[1, 2, 2, 70], false, -2], // more channels than one reduction workgroup covers
];

const trainCases = TRAIN_PROBLEMS.map(([shape, relu, offset]): KernelCase => {
  const where = `batchNormTrain [${shape}] relu ${relu} offset ${offset}`;
  return {
    name: `${where}: outputs and gradients match tf.moments + tf.batchNorm`,
    run: async () => {
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
      const refGrads = tf.grads(lossOf(composite))([x, gamma, beta]);
      const loss = recordPrograms(() => x.mul(r).sum());
      loss.result.dispose();
      try {
        // The composite would match too: prove that ours ran. Our BN records its programs directly into the command
        // stream (kernels/direct_program.ts), so tfjs runs no program of its own for it; the composite's moments and
        // batchNorm would show here (the loss's mul and sum are the only tfjs programs of the gradient pass).
        const names = (ps: typeof programs) => ps.map((p) => p.constructor.name);
        checkSame(names(programs), [], `${where}: tfjs programs of the forward pass`);
        const lossPrograms = names(loss.programs);
        checkSame(
          names(gradPrograms).filter((n) => !lossPrograms.includes(n) && n !== "FillProgram"),
          [],
          `${where}: tfjs programs of the gradient pass`,
        );
        await comparePairs([
          ["y", ours.y, ref.y],
          ["mean", oursMean, ref.mean],
          ["variance", oursVariance, ref.variance],
          ["dx", oursGrads[0], refGrads[0]],
          ["dgamma", oursGrads[1], refGrads[1]],
          ["dbeta", oursGrads[2], refGrads[2]],
        ], where);
        checkSame(ours.stats.shape, [2, c], `${where}: stats shape`);
      } finally {
        tf.dispose([x, gamma, beta, r, ours.y, ours.stats, oursMean, oursVariance, ref.y, ref.mean, ref.variance]);
        tf.dispose([...oursGrads, ...refGrads]);
      }
    },
  };
});

const residualCases = ([[[2, 5, 3, 7], 0], [[8, 17, 17, 6], 3]] as const).map(([shape, offset]): KernelCase => {
  const where = `batchNormTrain [${shape}] with a residual, offset ${offset}`;
  return {
    name: `${where}: relu(bn(x) + residual), output and all four gradients`,
    run: async () => {
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
      try {
        await comparePairs(pairs.map(([a, b], i) => [names[i], a, b]), where);
      } finally {
        tf.dispose([x, res, gamma, beta, r, ...pairs.flat()]);
      }
    },
  };
});

// 30 rows: one chunk (one dispatch); 2,312 rows: several chunks (partials, then totals); 1 row: n/(n-1) guarded.
const runningCases = ([[[2, 5, 3, 7], 0.1], [[8, 17, 17, 6], 0.1], [[1, 1, 1, 3], 0.25]] as const).map(
  ([shape, momentum]): KernelCase => ({
    name: `batchNormTrain [${shape}] momentum ${momentum}: running statistics follow PyTorch's update (float64)`,
    run: async () => {
      const c = shape[3];
      const n = shape[0] * shape[1] * shape[2];
      const x = tf.randomNormal([...shape], 2, 1.5, "float32", 41) as tf.Tensor4D;
      const old = tf.randomUniform([4, c], 0.5, 2, "float32", 42) as tf.Tensor2D;
      const [gamma, beta] = [tf.ones([c]) as tf.Tensor1D, tf.zeros([c]) as tf.Tensor1D];
      const { y, stats } = batchNormTrain(x, gamma, beta, { eps: EPS, relu: false, running: { stats: old, momentum } });
      try {
        checkSame(stats.shape, [4, c], `[${shape}] stats shape`);
        const [xs, olds, got] = [await x.data(), await old.data(), await stats.data()];
        checkNoDeviceErrors(`running statistics [${shape}]`);
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
            check(
              Math.abs(g - w) <= 2e-5 * Math.max(1, Math.abs(w)),
              `[${shape}] row ${r} channel ${ch}: ${g} vs ${w}`,
            );
          });
        }
      } finally {
        tf.dispose([x, old, y, stats, gamma, beta]);
      }
    },
  }),
);

const evalCases = ([[false, false], [true, false], [true, true]] as const).map(([relu, withResidual]): KernelCase => {
  const where = `batchNormEval relu ${relu}, residual ${withResidual}`;
  return {
    name: `${where}: matches tf.batchNorm with the running statistics`,
    run: async () => {
      const shape = [3, 4, 5, 6] as const;
      const x = tf.randomNormal([...shape], 1, 2, "float32", 51) as tf.Tensor4D;
      const res = tf.randomNormal([...shape], 0, 1, "float32", 52) as tf.Tensor4D;
      const gamma = tf.randomNormal([6], 1, 0.3, "float32", 53) as tf.Tensor1D;
      const beta = tf.randomNormal([6], 0, 0.3, "float32", 54) as tf.Tensor1D;
      // Rows 0-1 (a batch's statistics) are not what evaluation uses: make them wildly different.
      const stats = tf.tidy(() =>
        tf.concat([
          tf.fill([2, 6], 50),
          tf.randomNormal([1, 6], 0.5, 1, "float32", 55),
          tf.randomUniform([1, 6], 0.5, 3, "float32", 56),
        ])
      ) as tf.Tensor2D;
      const residual = withResidual ? res : undefined;
      const ours = batchNormEval(x, gamma, beta, stats, { eps: EPS, relu, residual });
      const want = tf.tidy(() => {
        const y = tf.batchNorm(x, row(stats, 2), row(stats, 3), beta, gamma, EPS);
        const sum = residual ? tf.add(y, residual) : y;
        return relu ? tf.relu(sum) : sum;
      });
      try {
        await comparePairs([["y", ours, want]], where, 1e-6);
      } finally {
        tf.dispose([x, res, gamma, beta, stats, ours, want]);
      }
    },
  };
});

/** Every batch-norm case. */
export const BATCH_NORM_CASES: readonly KernelCase[] = [...trainCases, ...residualCases, ...runningCases, ...evalCases];
