/**
 * Host-side tensors: the currency of checkpoints and interop. A {@linkcode StateDict} holds tensors in torchvision's
 * layouts under torchvision's `state_dict` names, in torchvision's order (Map insertion order).
 * @module
 */

/** Element types a state dict may hold, named as in the safetensors format. */
export type HostDType = "F32" | "I64";

/** A tensor in host memory, in PyTorch's layout (row-major, e.g. conv weights [out, in, kh, kw]). */
export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  /** F32 -> Float32Array, I64 -> BigInt64Array; length is the product of `shape` (1 for a scalar, shape []). */
  data: Float32Array | BigInt64Array;
}

/** Named host tensors in a meaningful order (torchvision's `state_dict()` order for models). */
export type StateDict = Map<string, HostTensor>;

/** Whether this machine stores numbers little-endian, as safetensors and `.npy` files (`<f4`) do. */
export const HOST_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
