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
 * A batch mixed with its roll by one (mixup or cutmix, `mix_batch.ts`): sample i is `lambda` of itself and
 * `1 − lambda` of sample i − 1 (sample N − 1 for sample 0).
 */
export interface LabelMix {
  /** The weight of each sample's own label, in [0, 1]. */
  lambda: number;
}

/**
 * Mean cross-entropy of `logits` ([N, K] float32) against `labels` ([N] int32) with label smoothing `eps`: the target
 * of sample i is (1 − eps)·onehot(labels[i]) + eps/K; log-softmax is max-shifted. A label outside [0, K) contributes
 * only its smoothing term and is never correct (not checked: that would need a readback). Needs the webgpu backend.
 *
 * With `mix`, the targets are torchvision's mixup/cutmix soft targets with smoothing on top (PyTorch's cross-entropy
 * with probability targets): (1 − eps)·(λ·onehot(labels[i]) + (1 − λ)·onehot(labels[i − 1])) + eps/K, the previous
 * label read from `labels` itself (the roll by one); `correct` then counts the dominant label (labels[i] when λ ≥ 0.5,
 * else labels[i − 1]). λ is a uniform: every batch runs the same pipeline.
 * @throws {Error} off webgpu, for shapes or dtypes other than those above, or eps or λ outside [0, 1].
 */
export function fusedCrossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  eps: number,
  mix?: LabelMix,
): FusedCrossEntropyResult {
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
  if (mix && !(mix.lambda >= 0 && mix.lambda <= 1)) {
    throw new RangeError(`fusedCrossEntropy: mix.lambda must be in [0, 1], got ${mix.lambda}`);
  }
  // Per row: the log of the softmax denominator, lse = max + log Σ exp(x − max); kept for the gradient. [N]
  const lse = allocateTensor([n]);
  const correct = allocateTensor([]) as tf.Scalar;
  const key = `${n}_${k}_${eps}${mix ? "_mix" : ""}`;
  // λ and 1 − λ (in double precision, as torchvision's `1.0 - lambda_param`), only for a mixed batch.
  const uniforms = mix ? [{ name: "lam", value: mix.lambda }, { name: "rest", value: 1 - mix.lambda }] : undefined;
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
      uniforms,
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
${
        mix ? mixedLabels(n, k, onehot) : `    let y = labels[i];
    if (y >= 0 && y < ${k}) {
      let xy = logits[row + u32(y)];
      li -= ${onehot} * (xy - r);`
      }
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
          uniforms,
          workgroups: gridStride(n * k),
          code: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var e = gid.x; e < ${n * k}u; e += nwg.x * 256u) {
    let i = e / ${k}u;
    let j = i32(e % ${k}u);
    ${
            mix
              ? `let prev = labels[(i + ${n - 1}u) % ${n}u];
    let tgt = select(0.0, ${onehot} * u.lam, labels[i] == j) + select(0.0, ${onehot} * u.rest, prev == j) + ${smooth};`
              : `let tgt = select(0.0, ${onehot}, labels[i] == j) + ${smooth};`
          }
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

/**
 * WGSL of the forward program's label terms for a mixed batch (N samples, K classes, the weight (1 − eps) as WGSL): both labels' log-probabilities weighted by
 * λ and 1 − λ, then `y`/`xy` set to the dominant label and its logit for the top-1 test that follows.
 */
function mixedLabels(n: number, k: number, onehot: string): string {
  return `    let own = labels[i];
    let prev = labels[(i + ${n - 1}u) % ${n}u];
    if (own >= 0 && own < ${k}) {
      li -= ${onehot} * u.lam * (logits[row + u32(own)] - r);
    }
    if (prev >= 0 && prev < ${k}) {
      li -= ${onehot} * u.rest * (logits[row + u32(prev)] - r);
    }
    let y = select(prev, own, u.lam >= 0.5);
    if (y >= 0 && y < ${k}) {
      let xy = logits[row + u32(y)];`;
}
