/**
 * A ResNet's head — global average pooling then the fully-connected classifier — in one dispatch forward and one
 * backward, against about 4 tfjs ops forward (transpose, mean, matMul, add) and 6 backward (two matMuls, the bias sum
 * and the mean's broadcast, with two uploads).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { allocateTensor, gridStride, runDirectProgram } from "./direct_program.ts";

/** Output of {@linkcode pooledLinear}. */
export interface PooledLinearResult {
  /** [N, K] = pooled · weight + bias; differentiable with respect to x, weight and bias. */
  logits: tf.Tensor2D;
  /** [N, C] the mean of x over H and W (for inspection; not differentiable). */
  pooled: tf.Tensor2D;
}

/**
 * logits = mean_{H,W}(x) · weight + bias for `x` [N, H, W, C], `weight` [C, K] (tfjs's layout: in, out) and `bias`
 * [K], all float32, on the webgpu backend.
 * @throws {Error} off webgpu, or for shapes that do not fit together (or more than 65,535 samples).
 */
export function pooledLinear(x: tf.Tensor4D, weight: tf.Tensor2D, bias: tf.Tensor1D): PooledLinearResult {
  if (tf.getBackend() !== "webgpu") throw new Error(`pooledLinear: needs webgpu, not ${tf.getBackend()}`);
  const [n, h, w, c] = x.shape;
  const k = weight.shape[1];
  if (
    x.rank !== 4 || weight.rank !== 2 || weight.shape[0] !== c || bias.rank !== 1 || bias.shape[0] !== k ||
    [x, weight, bias].some((t) => t.dtype !== "float32") || n > 65535
  ) {
    throw new Error(
      `pooledLinear: expected float32 x [N ≤ 65535, H, W, C], weight [C, K], bias [K]; got [${x.shape}], ` +
        `[${weight.shape}], [${bias.shape}]`,
    );
  }
  const hw = h * w;
  const key = `${n}_${hw}_${c}_${k}`;
  const pooled = allocateTensor([n, c]) as tf.Tensor2D;
  const forward = tf.customGrad((xIn, wIn, bIn, save) => {
    const logits = allocateTensor([n, k]) as tf.Tensor2D;
    runDirectProgram({
      key: `pooledLinear_${key}`,
      bindings: [
        { name: "x", tensor: xIn as tf.Tensor, access: "read" },
        { name: "weight", tensor: wIn as tf.Tensor, access: "read" },
        { name: "bias", tensor: bIn as tf.Tensor, access: "read" },
        { name: "pooled", tensor: pooled, access: "read_write" },
        { name: "logits", tensor: logits, access: "read_write" },
      ],
      workgroups: [n, 1, 1],
      // One workgroup per sample: its C means (to global memory, then a storage barrier), then its K logits.
      code: () => `
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let s = wg.x;
  for (var ch = t; ch < ${c}u; ch += 256u) {
    var acc = 0.0;
    for (var p = 0u; p < ${hw}u; p++) {
      acc += x[(s * ${hw}u + p) * ${c}u + ch];
    }
    pooled[s * ${c}u + ch] = acc / ${hw}.0;
  }
  storageBarrier();
  for (var o = t; o < ${k}u; o += 256u) {
    var acc = 0.0;
    for (var ch = 0u; ch < ${c}u; ch++) {
      acc += pooled[s * ${c}u + ch] * weight[ch * ${k}u + o];
    }
    logits[s * ${k}u + o] = acc + bias[o];
  }
}`,
    });
    (save as tf.GradSaveFunc)([wIn as tf.Tensor, pooled]);
    return {
      value: logits,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [ws, ps] = saved;
        const [dx, dw, db] = [allocateTensor([n, h, w, c]), allocateTensor([c, k]), allocateTensor([k])];
        // Items: N·C input-gradient columns (each written to its H·W pixels), C·K weight and K bias gradients.
        const [nc, ck] = [n * c, c * k];
        runDirectProgram({
          key: `pooledLinearGrad_${key}`,
          bindings: [
            { name: "dy", tensor: dy, access: "read" },
            { name: "weight", tensor: ws, access: "read" },
            { name: "pooled", tensor: ps, access: "read" },
            { name: "dx", tensor: dx, access: "read_write" },
            { name: "dw", tensor: dw, access: "read_write" },
            { name: "db", tensor: db, access: "read_write" },
          ],
          workgroups: gridStride(nc + ck + k),
          code: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var e = gid.x; e < ${nc + ck + k}u; e += nwg.x * 256u) {
    if (e < ${nc}u) {
      let s = e / ${c}u;
      let ch = e % ${c}u;
      var acc = 0.0;
      for (var o = 0u; o < ${k}u; o++) {
        acc += dy[s * ${k}u + o] * weight[ch * ${k}u + o];
      }
      let v = acc / ${hw}.0;
      for (var p = 0u; p < ${hw}u; p++) {
        dx[(s * ${hw}u + p) * ${c}u + ch] = v;
      }
    } else if (e < ${nc + ck}u) {
      let i = e - ${nc}u;
      let ch = i / ${k}u;
      let o = i % ${k}u;
      var acc = 0.0;
      for (var s = 0u; s < ${n}u; s++) {
        acc += pooled[s * ${c}u + ch] * dy[s * ${k}u + o];
      }
      dw[i] = acc;
    } else {
      let o = e - ${nc + ck}u;
      var acc = 0.0;
      for (var s = 0u; s < ${n}u; s++) {
        acc += dy[s * ${k}u + o];
      }
      db[o] = acc;
    }
  }
}`,
        });
        return [dx, dw, db];
      },
    };
  });
  return { logits: forward(x, weight, bias) as tf.Tensor2D, pooled };
}
