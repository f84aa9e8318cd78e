/**
 * Running sums kept on the GPU, e.g. an epoch's summed loss and correct count, grown by one dispatch per step (tfjs
 * ops take a multiply, an add per sum, and a scalar upload for the factor).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { runDirectProgram } from "./direct_program.ts";

/**
 * sums[i] += terms[i] · factors[i] for a float32 `sums` of as many elements as there are `terms` (float32 or int32
 * scalars). On webgpu `sums` is updated in place (the factors are uniforms: no new pipeline when they change) and
 * returned; elsewhere the result is a new tensor and `sums` is disposed. Either way use the returned tensor from then
 * on.
 * @throws {Error} when `sums` is not float32, a term is not a scalar, or the lengths differ.
 */
export function accumulateInPlace(sums: tf.Tensor1D, terms: tf.Tensor[], factors: number[]): tf.Tensor1D {
  if (
    sums.dtype !== "float32" || sums.size !== terms.length || factors.length !== terms.length ||
    terms.some((t) => t.size !== 1)
  ) {
    throw new Error(
      `accumulateInPlace: expected float32 sums with one element per scalar term and factor, got ${sums.dtype} ` +
        `[${sums.shape}], terms of sizes [${terms.map((t) => t.size)}] and ${factors.length} factors`,
    );
  }
  if (tf.getBackend() !== "webgpu") {
    const next = tf.tidy(() =>
      tf.add(sums, tf.stack(terms.map((t, i) => tf.mul(tf.cast(tf.reshape(t, []), "float32"), factors[i]))))
    ) as tf.Tensor1D;
    sums.dispose();
    return next;
  }
  const n = terms.length;
  runDirectProgram({
    key: `accumulate_${terms.map((t) => t.dtype).join(",")}`,
    bindings: [
      { name: "sums", tensor: sums, access: "read_write" },
      ...terms.map((t, i) => ({
        name: `t${i}`,
        tensor: t,
        access: "read" as const,
        type: t.dtype === "int32" ? "i32" as const : "f32" as const,
      })),
    ],
    uniforms: factors.map((value, i) => ({ name: `f${i}`, value })),
    workgroups: [1, 1, 1],
    code: () => `
@compute @workgroup_size(1)
fn main() {${
      Array.from({ length: n }, (_, i) => `
  sums[${i}] = sums[${i}] + f32(t${i}[0]) * u.f${i};`).join("")
    }
}`,
  });
  return sums;
}
