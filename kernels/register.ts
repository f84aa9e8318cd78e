/**
 * Swaps our WebGPU kernels in for tfjs's stock ones on the `webgpu` backend, and back, so that one process can run
 * and compare both. Our kernels keep the stock `kernelFunc` and call it for configurations they do not cover.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { fastConv2D, fastConv2DBackpropFilter, fastConv2DBackpropInput } from "./conv2d_kernels.ts";
import { fastBatchMatMul } from "./batch_mat_mul_kernel.ts";
import { deferAdd } from "./deferred_split_k.ts";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** Options for {@linkcode registerFastKernels}. */
export interface FastKernelOptions {
  /**
   * Use `shader-f16` storage with f32 accumulation where accuracy holds. Not implemented yet: `true` throws rather
   * than silently running f32.
   */
  f16?: boolean;
  /**
   * Which kernels to replace, a subset of {@linkcode FAST_KERNEL_NAMES} (default: all); the others are stock. Lets a
   * benchmark or test attribute a difference to one kernel.
   */
  kernels?: readonly string[];
}

const BACKEND = "webgpu";

/** Kernel name → our kernel, which returns undefined for a case it does not cover (the stock kernel runs then). */
const FAST: Record<string, (args: Parameters<tf.KernelFunc>[0]) => tf.TensorInfo | undefined> = {
  Conv2D: fastConv2D,
  Conv2DBackpropFilter: fastConv2DBackpropFilter,
  Conv2DBackpropInput: fastConv2DBackpropInput,
  BatchMatMul: fastBatchMatMul,
  // Only where an input is a pending split-K sum (a convolution's output or gradient, tfjs's tape adding a residual
  // block's two input gradients): the sum stays pending for batch norm to read, see deferred_split_k.ts.
  Add: (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    return deferAdd(args.backend as WebGPUBackend, a, b);
  },
};

/** The names of the kernels {@linkcode registerFastKernels} replaces. */
export const FAST_KERNEL_NAMES: readonly string[] = Object.keys(FAST);

let stockConfigs: Map<string, tf.KernelConfig> | undefined;
/** Names of the kernels currently replaced by ours. */
const active = new Set<string>();

function replace(config: tf.KernelConfig): void {
  tf.unregisterKernel(config.kernelName, BACKEND);
  tf.registerKernel(config);
}

/**
 * Replaces the stock `webgpu` kernels listed in {@linkcode FAST_KERNEL_NAMES} (or `options.kernels`) with ours, and
 * puts back the stock ones not listed. Idempotent. Call after `initWebGPU()`.
 * @throws {Error} when the active backend is not `webgpu`, when `options.kernels` names an unknown kernel, or when
 * `options.f16` is set (not implemented yet).
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
  const wanted = new Set(options.kernels ?? FAST_KERNEL_NAMES);
  for (const name of wanted) {
    if (!FAST_KERNEL_NAMES.includes(name)) {
      throw new Error(
        `registerFastKernels: unknown kernel "${name}" in options.kernels; expected one of ` +
          FAST_KERNEL_NAMES.join(", "),
      );
    }
  }
  for (const [name, config] of stockConfigs) {
    if (wanted.has(name) && !active.has(name)) {
      replace({
        kernelName: name,
        backendName: BACKEND,
        kernelFunc: (args) => FAST[name](args) ?? config.kernelFunc(args),
      });
      active.add(name);
    } else if (!wanted.has(name) && active.has(name)) {
      replace(config);
      active.delete(name);
    }
  }
}

/** Puts the stock kernels back (after {@linkcode registerFastKernels}; otherwise does nothing). Idempotent. */
export function restoreStockKernels(): void {
  if (!stockConfigs) return;
  for (const name of active) replace(stockConfigs.get(name)!);
  active.clear();
}

/** Names of the kernels currently replaced by ours (empty when all are stock). */
export function activeFastKernels(): string[] {
  return [...active].sort();
}
