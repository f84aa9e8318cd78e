/**
 * Split-K sums left to the consumer. A split-K GEMM writes [splits, M, N] partial sums, and a second dispatch adds
 * them up ({@linkcode SplitKReduceProgram}). When the consumer of the result is a program of ours that can add the
 * partials while it reads them (the multi-tensor SGD reads a convolution's weight gradient exactly once), that second
 * dispatch is wasted: one per split-K convolution weight gradient of a training step.
 *
 * {@linkcode deferSplitKSum} returns the result as a tensor whose sum is *pending*: it has no GPU buffer yet, and the
 * partials stay alive with it. A consumer that understands partials asks {@linkcode pendingSplitK} and binds them
 * instead; everything else (any tfjs program, our direct programs, `data()`/`dataSync()`, `readToGPU`, tfjs's CPU
 * forwarding of small tensors) goes through backend methods that first run the reduction into the tensor's own
 * buffer (hooks on the backend instance: `uploadToGPU`, `read`, `readSync`, `readToGPU`, `shouldExecuteOnCPU`), so the
 * tensor behaves like any other. Disposing the tensor disposes the partials.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { SplitKReduceProgram } from "./split_k_reduce_program.ts";
import { webgpuInternals } from "./webgpu_internals.ts";

/** A pending split-K sum: `partials` holds [splits, length] floats whose sum over the splits is the tensor. */
export interface PendingSplitK {
  /** The [splits · batch, M, N] partial sums (a backend tensor, not an engine one). */
  partials: tf.TensorInfo;
  /** Number of partial sums. */
  splits: number;
  /** Elements of the summed tensor. */
  length: number;
}

const pending = new Map<object, PendingSplitK>();
let enabled = true;

/**
 * Turns deferral on (default) or off for the GEMMs run from now on; returns the previous setting. Off, every split-K
 * GEMM runs its reduction pass at once, as before deferral existed (tests and before/after measurements).
 */
export function setSplitKDeferral(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** Whether split-K sums are deferred (see {@linkcode setSplitKDeferral}). */
export function splitKDeferral(): boolean {
  return enabled;
}
const hooked = new WeakSet<object>();

/** The backend members the hooks wrap (private in tfjs's typings). */
interface Hookable {
  tensorMap: { has(id: object): boolean; get(id: object): { resource: unknown } };
  uploadToGPU(dataId: object): void;
  read(dataId: object): Promise<unknown>;
  readSync(dataId: object): unknown;
  readToGPU(dataId: object): unknown;
  shouldExecuteOnCPU(inputs: tf.TensorInfo[], sizeThreshold?: number): boolean;
  disposeData(dataId: object, force?: boolean): boolean;
  runWebGPUProgram: WebGPUBackend["runWebGPUProgram"];
}

/** The pending sum of `dataId`, if {@linkcode deferSplitKSum} made it and nothing has needed its values yet. */
export function pendingSplitK(dataId: object): PendingSplitK | undefined {
  return pending.get(dataId);
}

/** Number of tensors whose split-K sum is pending (tests). */
export function pendingSplitKCount(): number {
  return pending.size;
}

/**
 * Runs the reduction of `dataId`'s pending sum into the tensor's own (new) buffer and frees the partials; does
 * nothing when the sum is not pending.
 */
export function materializeSplitK(backend: WebGPUBackend, dataId: object): void {
  const p = pending.get(dataId);
  if (!p) return;
  pending.delete(dataId); // first: the reduction's own uploadToGPU of the output must not recurse
  const self = backend as unknown as Hookable;
  const shape = [p.length];
  // The output is the pending tensor itself (flat view of the same dataId): its buffer is allocated now.
  backend.runWebGPUProgram(new SplitKReduceProgram(shape, p.splits), [p.partials], "float32", undefined, {
    dataId: dataId as tf.DataId,
    shape,
    dtype: "float32",
  });
  self.disposeData(p.partials.dataId); // deferred by tfjs until the reduction has been submitted
}

function install(backend: WebGPUBackend): void {
  if (hooked.has(backend)) return;
  webgpuInternals(backend, "deferSplitKSum");
  const self = backend as unknown as Hookable;
  // Own properties shadow the prototype's methods on this backend instance only.
  const { uploadToGPU, read, readSync, readToGPU, shouldExecuteOnCPU, disposeData } = self;
  const settle = (dataId: object) => {
    if (pending.size > 0) materializeSplitK(backend, dataId);
  };
  self.uploadToGPU = function (dataId) {
    settle(dataId);
    return uploadToGPU.call(this, dataId);
  };
  self.read = function (dataId) {
    settle(dataId);
    return read.call(this, dataId);
  };
  self.readSync = function (dataId) {
    settle(dataId);
    return readSync.call(this, dataId);
  };
  self.readToGPU = function (dataId) {
    settle(dataId);
    return readToGPU.call(this, dataId);
  };
  self.shouldExecuteOnCPU = function (inputs, sizeThreshold) {
    // A pending tensor has no buffer, which tfjs would take for "values on the CPU".
    for (const t of inputs) settle(t.dataId);
    return shouldExecuteOnCPU.call(this, inputs, sizeThreshold);
  };
  self.disposeData = function (dataId, force) {
    const gone = disposeData.call(this, dataId, force);
    const p = gone ? pending.get(dataId) : undefined;
    if (p) {
      pending.delete(dataId);
      disposeData.call(this, p.partials.dataId);
    }
    return gone;
  };
  hooked.add(backend);
}

/**
 * Returns a new tensor of `outputShape` whose value is the sum of `partials` ([splits, …] with `length` elements
 * each) over the splits, computed only when something needs it (see the module documentation). Takes ownership of
 * `partials`.
 */
export function deferSplitKSum(
  backend: WebGPUBackend,
  partials: tf.TensorInfo,
  outputShape: number[],
  splits: number,
): tf.TensorInfo {
  install(backend);
  const out = backend.makeTensorInfo([...outputShape], "float32");
  const length = outputShape.reduce((a, b) => a * b, 1);
  pending.set(out.dataId, { partials, splits, length });
  return out;
}
