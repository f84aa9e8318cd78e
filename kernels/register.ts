/**
 * Swaps our WebGPU kernels in for tfjs's stock ones on the `webgpu` backend, and back, so that one process can run
 * and compare both. Our kernels keep the stock `kernelFunc` and call it for configurations they do not cover.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fastConv2D, fastConv2DBackpropFilter, fastConv2DBackpropInput } from "./conv2d_kernels.ts";
import { fastBatchMatMul } from "./batch_mat_mul_kernel.ts";

/** Options for {@linkcode registerFastKernels}. */
export interface FastKernelOptions {
  /**
   * Use `shader-f16` storage with f32 accumulation where accuracy holds. Not implemented yet: `true` throws rather
   * than silently running f32.
   */
  f16?: boolean;
}

const BACKEND = "webgpu";

/** Kernel name → factory wrapping the stock kernelFunc. */
const FAST: Record<string, (stock: tf.KernelFunc) => tf.KernelFunc> = {
  Conv2D: fastConv2D,
  Conv2DBackpropFilter: fastConv2DBackpropFilter,
  Conv2DBackpropInput: fastConv2DBackpropInput,
  BatchMatMul: fastBatchMatMul,
};

/** The names of the kernels {@linkcode registerFastKernels} replaces. */
export const FAST_KERNEL_NAMES: readonly string[] = Object.keys(FAST);

let stockConfigs: Map<string, tf.KernelConfig> | undefined;
let active = false;

function replace(config: tf.KernelConfig): void {
  tf.unregisterKernel(config.kernelName, BACKEND);
  tf.registerKernel(config);
}

/**
 * Replaces the stock `webgpu` kernels listed in {@linkcode FAST_KERNEL_NAMES} with ours. Idempotent. Call after
 * `initWebGPU()`.
 * @throws {Error} when the active backend is not `webgpu`, or when `options.f16` is set (not implemented yet).
 */
export function registerFastKernels(options: FastKernelOptions = {}): void {
  if (options.f16) {
    throw new Error("registerFastKernels: option f16 is not implemented yet (see KERNEL_NOTES.md); omit it for f32");
  }
  if (tf.getBackend() !== BACKEND) {
    throw new Error(
      `registerFastKernels: the active tfjs backend is "${tf.getBackend()}", expected "webgpu"; ` +
        "call initWebGPU() first",
    );
  }
  if (!stockConfigs) {
    stockConfigs = new Map();
    for (const name of FAST_KERNEL_NAMES) {
      const config = tf.getKernel(name, BACKEND);
      if (!config) throw new Error(`registerFastKernels: tfjs has no stock "${name}" kernel for ${BACKEND}`);
      stockConfigs.set(name, config);
    }
  }
  if (active) return;
  for (const [name, config] of stockConfigs) {
    replace({ kernelName: name, backendName: BACKEND, kernelFunc: FAST[name](config.kernelFunc) });
  }
  active = true;
}

/** Puts the stock kernels back (after {@linkcode registerFastKernels}; otherwise does nothing). Idempotent. */
export function restoreStockKernels(): void {
  if (!active || !stockConfigs) return;
  for (const config of stockConfigs.values()) replace(config);
  active = false;
}

/** Whether our kernels are currently registered. */
export function fastKernelsActive(): boolean {
  return active;
}
