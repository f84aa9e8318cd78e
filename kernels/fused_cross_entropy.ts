/**
 * The training loss and top-1 count of a batch in one dispatch, and the loss's gradient in one more: mean
 * cross-entropy with label smoothing (PyTorch's `cross_entropy(logits, labels, label_smoothing=eps)`), against about
 * 20 tfjs ops for `logSoftmax` + `oneHot` + sums and `topk` + comparisons, and 6 more for the gradient.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { allocateTensor, gridStride, runDirectProgram } from "./direct_program.ts";
import { wgslF32 } from "./wgsl_f32.ts";

/** Output of {@linkcode fusedCrossEntropy}. */
export interface FusedCrossEntropyResult {
  /** [] mean loss over the batch; differentiable with respect to the logits. */
  loss: tf.Scalar;
  /**
   * [] float32: samples whose label is the top-1 class, ties going to the lower class index (as `tf.topk` ranks
   * them). Not differentiable.
   */
  correct: tf.Scalar;
}

/**
 * Mean cross-entropy of `logits` ([N, K] float32) against `labels` ([N] int32) with label smoothing `eps`: the target
 * of sample i is (1 − eps)·onehot(labels[i]) + eps/K; log-softmax is max-shifted. A label outside [0, K) contributes
 * only its smoothing term and is never correct (not checked: that would need a readback). Needs the webgpu backend.
 * @throws {Error} off webgpu, for shapes or dtypes other than those above, or eps outside [0, 1].
 */
export function fusedCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, eps: number): FusedCrossEntropyResult {
  if (tf.getBackend() !== "webgpu") throw new Error(`fusedCrossEntropy: needs webgpu, not ${tf.getBackend()}`);
  if (logits.rank !== 2 || logits.dtype !== "float32" || labels.rank !== 1 || labels.dtype !== "int32") {
    throw new Error(
      `fusedCrossEntropy: expected float32 logits [N, K] and int32 labels [N], got ${logits.dtype} [${logits.shape}] ` +
        `and ${labels.dtype} [${labels.shape}]`,
    );
  }
  const [n, k] = logits.shape;
  if (labels.shape[0] !== n) throw new Error(`fusedCrossEntropy: ${n} rows of logits but ${labels.shape[0]} labels`);
  if (!(eps >= 0 && eps <= 1)) throw new RangeError(`fusedCrossEntropy: eps must be in [0, 1], got ${eps}`);
  // Per row: the log of the softmax denominator, lse = max + log Σ exp(x − max); kept for the gradient. [N]
  const lse = allocateTensor([n]);
  const correct = allocateTensor([]) as tf.Scalar;
  const key = `${n}_${k}_${eps}`;
  const onehot = wgslF32(1 - eps);
  const smooth = wgslF32(eps / k);
  const forward = tf.customGrad((x, save) => {
    const loss = allocateTensor([]) as tf.Scalar;
    runDirectProgram({
      key: `crossEntropy_${key}`,
      bindings: [
        { name: "logits", tensor: x as tf.Tensor, access: "read" },
        { name: "labels", tensor: labels, access: "read", type: "i32" },
        { name: "lse", tensor: lse, access: "read_write" },
        { name: "loss", tensor: loss, access: "read_write" },
        { name: "correct", tensor: correct, access: "read_write" },
      ],
      workgroups: [1, 1, 1],
      code: () => `
var<workgroup> sl: array<f32, 256>;
var<workgroup> sc: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {
  var l = 0.0;
  var c = 0.0;
  for (var i = t; i < ${n}u; i += 256u) {
    let row = i * ${k}u;
    var m = logits[row];
    for (var j = 1u; j < ${k}u; j++) {
      m = max(m, logits[row + j]);
    }
    var s = 0.0;
    for (var j = 0u; j < ${k}u; j++) {
      s += exp(logits[row + j] - m);
    }
    let r = m + log(s);
    lse[i] = r;
    var li = 0.0;${
        eps > 0
          ? `
    var sumLogp = 0.0;
    for (var j = 0u; j < ${k}u; j++) {
      sumLogp += logits[row + j] - r;
    }
    li = -${smooth} * sumLogp;`
          : ""
      }
    let y = labels[i];
    if (y >= 0 && y < ${k}) {
      let xy = logits[row + u32(y)];
      li -= ${onehot} * (xy - r);
      var top = true;
      for (var j = 0u; j < ${k}u; j++) {
        let v = logits[row + j];
        if (v > xy || (v == xy && j < u32(y))) {
          top = false;
        }
      }
      if (top) {
        c += 1.0;
      }
    }
    l += li;
  }
  sl[t] = l;
  sc[t] = c;
  workgroupBarrier();
  for (var w = 128u; w > 0u; w >>= 1u) {
    if (t < w) {
      sl[t] += sl[t + w];
      sc[t] += sc[t + w];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    loss[0] = sl[0] / ${n}.0;
    correct[0] = sc[0];
  }
}`,
    });
    (save as tf.GradSaveFunc)([x as tf.Tensor, lse]);
    return {
      value: loss,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, rowLse] = saved;
        // d loss / d x[i, j] = dy / N · (softmax(x)[i, j] − target[i, j]). [N, K]
        const dx = allocateTensor([n, k]);
        runDirectProgram({
          key: `crossEntropyGrad_${key}`,
          bindings: [
            { name: "dy", tensor: dy, access: "read" },
            { name: "logits", tensor: xs, access: "read" },
            { name: "lse", tensor: rowLse, access: "read" },
            { name: "labels", tensor: labels, access: "read", type: "i32" },
            { name: "dx", tensor: dx, access: "read_write" },
          ],
          workgroups: gridStride(n * k),
          code: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var e = gid.x; e < ${n * k}u; e += nwg.x * 256u) {
    let i = e / ${k}u;
    let j = i32(e % ${k}u);
    let tgt = select(0.0, ${onehot}, labels[i] == j) + ${smooth};
    dx[e] = dy[0] / ${n}.0 * (exp(logits[e] - lse[i]) - tgt);
  }
}`,
        });
        return dx;
      },
    };
  });
  const loss = forward(logits) as tf.Scalar;
  lse.dispose(); // the gradient function holds its own reference
  return { loss, correct };
}
