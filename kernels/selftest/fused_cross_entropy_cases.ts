/**
 * The fused cross-entropy (kernels/fused_cross_entropy.ts) against a float64 reference of PyTorch's
 * `cross_entropy(logits, labels, label_smoothing=eps)`: the mean loss, its gradient, and the top-1 count (ties to the
 * lower class, as `tf.topk` ranks them).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fusedCrossEntropy } from "../fused_cross_entropy.ts";
import { check, checkClose, checkNoDeviceErrors, type KernelCase } from "./kernel_case.ts";

/** Loss, gradient (of the mean loss) and top-1 count in float64. Labels outside [0, K) add their smoothing only. */
export function referenceCrossEntropy(x: ArrayLike<number>, labels: ArrayLike<number>, k: number, eps: number) {
  const n = labels.length;
  const grad = new Float64Array(n * k);
  let loss = 0, correct = 0;
  for (let i = 0; i < n; i++) {
    let max = -Infinity, best = 0, sum = 0, total = 0;
    for (let j = 0; j < k; j++) {
      const v = x[i * k + j];
      if (v > max) [max, best] = [v, j];
      total += v;
    }
    for (let j = 0; j < k; j++) sum += Math.exp(x[i * k + j] - max);
    const lse = max + Math.log(sum);
    const y = labels[i];
    const inRange = y >= 0 && y < k;
    loss += lse - eps * total / k - (inRange ? (1 - eps) * x[i * k + y] : 0);
    if (inRange && best === y) correct++;
    for (let j = 0; j < k; j++) {
      const target = eps / k + (j === y ? 1 - eps : 0);
      grad[i * k + j] = (Math.exp(x[i * k + j] - lse) - target) / n;
    }
  }
  return { loss: loss / n, grad, correct };
}

/** Deterministic values in [-scale, scale): a linear congruential generator, so no tensor random state is involved. */
function table(count: number, seed: number, scale: number): Float32Array {
  let a = seed;
  return Float32Array.from({ length: count }, () => {
    a = (a * 1103515245 + 12345) % 2 ** 31;
    return (a / 2 ** 30 - 1) * scale;
  });
}

const PROBLEMS: { what: string; n: number; k: number; x: Float32Array; y: number[] }[] = [
  {
    what: "3x4 with a tie",
    n: 3,
    k: 4,
    x: Float32Array.from([2, -1, 0.5, 0, 0.1, 0.4, 0.3, 0.4, -3, 5, 1, 2.5]),
    y: [0, 3, 1],
  },
  {
    what: "2x3 huge logits (max-shifted)",
    n: 2,
    k: 3,
    x: Float32Array.from([1000, 0, -1000, -500, 500, 499]),
    y: [0, 2],
  },
  {
    what: "300x1000 (more rows than threads)",
    n: 300,
    k: 1000,
    x: table(300 * 1000, 7, 8),
    y: Array.from({ length: 300 }, (_, i) => (i * 37) % 1000),
  },
];

/** Every problem with label smoothing 0 and 0.1. */
export const FUSED_CROSS_ENTROPY_CASES: readonly KernelCase[] = PROBLEMS.flatMap((p) =>
  [0, 0.1].map((eps): KernelCase => {
    const where = `fusedCrossEntropy ${p.what}, eps ${eps}`;
    return {
      name: `${where}: loss, gradient and top-1 count against float64`,
      run: async () => {
        const want = referenceCrossEntropy(p.x, p.y, p.k, eps);
        const logits = tf.tensor2d(p.x, [p.n, p.k]);
        const labels = tf.tensor1d(p.y, "int32");
        const { loss, correct } = fusedCrossEntropy(logits, labels, eps);
        // Scaled by 2: the gradient must use the incoming dy, not assume 1.
        const g = tf.grad((l: tf.Tensor) => fusedCrossEntropy(l as tf.Tensor2D, labels, eps).loss.mul(2))(logits);
        try {
          const [l, c, grad] = [(await loss.data())[0], (await correct.data())[0], await g.data()];
          checkNoDeviceErrors(where);
          check(
            Math.abs(l - want.loss) <= 2e-6 * Math.max(1, Math.abs(want.loss)),
            `${where}: loss ${l}, want ${want.loss}`,
          );
          check(c === want.correct, `${where}: top-1 count ${c}, want ${want.correct}`);
          // Relative to the largest gradient: an absolute tolerance would pass anything at 1000 classes.
          checkClose(grad, want.grad.map((v) => 2 * v), 1e-5, `${where}: gradient`);
        } finally {
          tf.dispose([logits, labels, loss, correct, g]);
        }
      },
    };
  })
);
