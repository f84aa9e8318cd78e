/**
 * Sums many scalars on the GPU. Not with `tf.addN`: tfjs-webgpu 4.22 binds one storage buffer per input and, past
 * the adapter's per-stage limit (32 on llvmpipe), silently returns zeros (ResNet-18 has 62 parameters). `tf.stack`
 * splits its inputs into groups the device can bind.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/** The sum of `scalars` ([] each), as a new scalar; call it inside `tf.tidy`. */
export function sumScalars(scalars: tf.Tensor[]): tf.Scalar {
  return tf.sum(tf.stack(scalars));
}
