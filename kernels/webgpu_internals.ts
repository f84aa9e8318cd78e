/**
 * The tfjs-webgpu 4.22 backend members our direct programs and the bind-group cache drive: private in its typings,
 * so their presence is checked once, by name, with an error that says which are missing, instead of failing later
 * with an undefined method. One list for every module that reaches into the backend.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** A uniform field as tfjs lays them out. */
export type UniformField = { type: string; data: number[] };

/** What tfjs's `recordAndSubmit` reads of a program. */
export interface TfjsProgram {
  pipeline: GPUComputePipeline | Promise<GPUComputePipeline>;
  pixelsOpType?: number | null;
  outputShape: number[];
  outputComponent?: number;
  size?: boolean;
  dispatch: [number, number, number];
}

/** The members (see the module documentation). */
export interface WebGPUInternals {
  device: GPUDevice;
  queue: GPUQueue;
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  dispatchCountInPass: number;
  commandQueueOwnedIds: WeakSet<object>;
  activeTimers: unknown[] | null | undefined;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  makeUniforms(uniforms: UniformField[]): GPUBufferBinding;
  tensorToBinding(t: tf.TensorInfo): GPUBindingResource | null;
  recordAndSubmit(
    program: TfjsProgram,
    output: tf.TensorInfo,
    inputs: tf.TensorInfo[],
    programDefinedUniform?: UniformField[],
  ): void;
}

const REQUIRED = [
  "device",
  "queue",
  "dispatchCountInPass",
  "commandQueueOwnedIds",
  "ensureCommandEncoderReady",
  "endComputePassEncoder",
  "submitQueue",
  "makeUniforms",
  "tensorToBinding",
  "recordAndSubmit",
  "uploadToGPU",
  "tensorMap",
] as const;

/** Backends whose internals have been checked. */
const checked = new WeakSet<object>();

/**
 * `backend`'s internals, typed.
 * @param who names the caller in the error (e.g. "runDirectProgram").
 * @throws {Error} when this tfjs-backend-webgpu lacks any of them (another version than 4.22.0).
 */
export function webgpuInternals(backend: WebGPUBackend | tf.KernelBackend, who: string): WebGPUInternals {
  // Checked once per backend: this runs for every direct program and prepared GEMM (~3 µs a check here).
  if (checked.has(backend)) return backend as unknown as WebGPUInternals;
  const missing = REQUIRED.filter((m) => !(m in backend));
  if (missing.length > 0) {
    throw new Error(
      `${who}: this tfjs-backend-webgpu lacks ${missing.join(", ")} (written against 4.22.0); ` +
        "see kernels/webgpu_internals.ts",
    );
  }
  checked.add(backend);
  return backend as unknown as WebGPUInternals;
}
