/**
 * The fused classifier head (global average pool + linear, kernels/pooled_linear.ts) against a float64 reference:
 * logits, pooled means and the three gradients.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { pooledLinear } from "../pooled_linear.ts";
import { checkClose, checkNoDeviceErrors, checkSame, type KernelCase } from "./kernel_case.ts";

/**
 * The head in float64 on the host, and the gradients of Σ r · logits: pooled = mean over H, W; logits = pooled · W + b;
 * dW = pooledᵀ · r; db = Σ_n r; dx[n, h, w, c] = (r · Wᵀ)[n, c] / (H·W).
 */
function referencePooledLinear(
  x: Float32Array,
  shape: readonly number[],
  w: Float32Array,
  b: Float32Array,
  r: Float32Array,
  k: number,
) {
  const [n, h, wd, c] = shape;
  const hw = h * wd;
  const pooled = new Float64Array(n * c);
  for (let s = 0; s < n; s++) {
    for (let p = 0; p < hw; p++) for (let ch = 0; ch < c; ch++) pooled[s * c + ch] += x[(s * hw + p) * c + ch] / hw;
  }
  const logits = new Float64Array(n * k), dw = new Float64Array(c * k), db = new Float64Array(k);
  const dx = new Float64Array(n * hw * c);
  for (let s = 0; s < n; s++) {
    for (let o = 0; o < k; o++) {
      logits[s * k + o] = b[o];
      db[o] += r[s * k + o];
      for (let ch = 0; ch < c; ch++) {
        logits[s * k + o] += pooled[s * c + ch] * w[ch * k + o];
        dw[ch * k + o] += pooled[s * c + ch] * r[s * k + o];
        for (let p = 0; p < hw; p++) dx[(s * hw + p) * c + ch] += r[s * k + o] * w[ch * k + o] / hw;
      }
    }
  }
  return { logits, pooled, dx, dw, db };
}

/** More channels and classes than a workgroup's 256 threads; 1x1 and 4x4 maps; means far from zero. */
const PROBLEMS: [[number, number, number, number], number][] = [[[3, 2, 2, 5], 4], [[2, 4, 4, 300], 7], [
  [5, 1, 1, 8],
  300,
]];

/** One case per [N, H, W, C] × classes. */
export const POOLED_LINEAR_CASES: readonly KernelCase[] = PROBLEMS.map(([shape, k]) => ({
  name: `pooledLinear [${shape}] × ${k}: logits, pooled means and the three gradients`,
  run: async () => {
    const c = shape[3];
    const x = tf.randomNormal([...shape], 2, 1, "float32", 61) as tf.Tensor4D;
    const w = tf.randomNormal([c, k], 0, 0.5, "float32", 62) as tf.Tensor2D;
    const b = tf.randomNormal([k], 0, 1, "float32", 63) as tf.Tensor1D;
    const r = tf.randomNormal([shape[0], k], 0, 1, "float32", 64);
    const want = referencePooledLinear(
      (await x.data()) as Float32Array,
      shape,
      (await w.data()) as Float32Array,
      (await b.data()) as Float32Array,
      (await r.data()) as Float32Array,
      k,
    );
    const ours = pooledLinear(x, w, b);
    const grads = tf.grads((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      pooledLinear(x as tf.Tensor4D, w as tf.Tensor2D, b as tf.Tensor1D).logits.mul(r).sum()
    )([x, w, b]);
    try {
      const pairs: [string, tf.Tensor, Float64Array][] = [
        ["logits", ours.logits, want.logits],
        ["pooled", ours.pooled, want.pooled],
        ["dx", grads[0], want.dx],
        ["dweight", grads[1], want.dw],
        ["dbias", grads[2], want.db],
      ];
      for (const [name, a, e] of pairs) {
        const actual = await a.data();
        checkNoDeviceErrors(`pooledLinear ${name}`);
        checkClose(actual, e, 1e-5, `${name}, [${shape}] × ${k}`);
      }
      checkSame(
        [ours.logits.shape, ours.pooled.shape, grads[0].shape],
        [[shape[0], k], [shape[0], c], [...shape]],
        `pooledLinear [${shape}] × ${k} shapes`,
      );
    } finally {
      tf.dispose([x, w, b, r, ours.logits, ours.pooled, ...grads]);
    }
  },
}));
