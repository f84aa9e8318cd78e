/**
 * tfjs ↔ PyTorch tensor layouts, chosen by rank: conv weights [kh, kw, in, out] ↔ [out, in, kh, kw], the fc weight
 * [in, out] ↔ [out, in], vectors and scalars unchanged. The model's state and the optimizer's momentum buffers
 * (shaped like the parameters) both cross between tfjs and torchvision's `state_dict` layouts with these.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { HostTensor, StateDict } from "../io/host_tensor.ts";

/**
 * Converts tfjs-layout tensors named by torchvision keys to host tensors in PyTorch layout (conv weights
 * [kh, kw, in, out] → [out, in, kh, kw], fc weight [in, out] → [out, in]). Used for weights and optimizer buffers.
 */
export async function toTorchLayout(tensors: Map<string, tf.Tensor>): Promise<StateDict> {
  const transposed = tf.tidy(() =>
    [...tensors].map(([name, t]) => [name, tf.transpose(t, torchPermutation(t.rank))] as const)
  );
  try {
    const out: StateDict = new Map();
    for (const [name, t] of transposed) {
      out.set(name, { dtype: "F32", shape: [...t.shape], data: (await t.data()) as Float32Array });
    }
    return out;
  } finally {
    tf.dispose(transposed.map(([, t]) => t));
  }
}

/** Inverse of {@linkcode toTorchLayout} for one tensor: a PyTorch-layout host tensor as a tfjs-layout tensor. */
export function fromTorchLayout(host: HostTensor, name = "tensor"): tf.Tensor {
  if (host.dtype !== "F32") throw new Error(`${name}: expected F32 data, got ${host.dtype}`);
  return tf.tidy(() =>
    tf.transpose(tf.tensor(host.data as Float32Array, host.shape, "float32"), tfjsPermutation(host.shape.length))
  );
}

/** The PyTorch-layout shape of a tensor of tfjs-layout `shape` (what {@linkcode toTorchLayout} gives it). */
export function torchShape(shape: readonly number[]): number[] {
  return torchPermutation(shape.length).map((i) => shape[i]);
}

/** The tfjs-layout shape of a tensor of PyTorch-layout `shape` (what {@linkcode fromTorchLayout} gives it). */
export function tfjsShape(shape: readonly number[]): number[] {
  return tfjsPermutation(shape.length).map((i) => shape[i]);
}

/** tfjs layout → PyTorch layout permutation for a tensor of this rank ([kh, kw, in, out] → [out, in, kh, kw]). */
function torchPermutation(rank: number): number[] {
  if (rank === 4) return [3, 2, 0, 1];
  if (rank === 2) return [1, 0];
  return [...Array(rank).keys()];
}

/** PyTorch layout → tfjs layout: the inverse of {@linkcode torchPermutation}. */
function tfjsPermutation(rank: number): number[] {
  const forward = torchPermutation(rank);
  return forward.map((_, i) => forward.indexOf(i));
}
