/**
 * A real copy of a tensor. tfjs's `clone` (and `reshape`) share the original's GPU buffer, which is right for
 * immutable tensors but not next to programs that update a buffer in place (`runDirectProgram`): the change would show
 * in every tensor sharing it.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { allocateTensor, gridStride, runDirectProgram } from "./direct_program.ts";

/**
 * A copy of `t` (float32 or int32) in a buffer of its own on the webgpu backend (one dispatch); elsewhere, where
 * nothing writes in place, `tf.clone`. The caller owns it.
 */
export function copyTensor(t: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== "webgpu") return tf.clone(t);
  if (t.dtype !== "float32" && t.dtype !== "int32") throw new TypeError(`copyTensor: unsupported dtype ${t.dtype}`);
  const out = allocateTensor(t.shape, t.dtype);
  const n = t.size;
  if (n === 0) return out;
  const type = t.dtype === "float32" ? "f32" : "i32";
  runDirectProgram({
    key: `copy_${type}_${n}`,
    bindings: [{ name: "src", tensor: t, access: "read", type }, {
      name: "dst",
      tensor: out,
      access: "read_write",
      type,
    }],
    workgroups: gridStride(n),
    code: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < ${n}u; i += nwg.x * 256u) {
    dst[i] = src[i];
  }
}`,
  });
  return out;
}
