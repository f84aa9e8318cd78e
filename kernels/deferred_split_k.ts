/**
 * Sums left to the consumer. A split-K GEMM writes [splits, M, N] partial sums, and a second dispatch adds them up
 * ({@linkcode SplitKReduceProgram}); tfjs's gradient tape adds the two gradients of a residual block's input with one
 * more dispatch. When the consumer of the result is a program of ours that can add the terms while it reads them
 * (batch norm reads a convolution's output and the gradient of its own output; the multi-tensor SGD reads a
 * convolution's weight gradient), those dispatches are wasted.
 *
 * {@linkcode deferSplitKSum} returns the result of a split-K GEMM as a tensor whose sum is *pending*: it has no GPU
 * buffer yet, and its terms (the partials) stay alive with it. Without split-K the GEMM's output is the one term
 * (reading it costs nothing more; summing it hands its buffer over), so that tfjs's add of it can stay pending too. The `Add` kernel of `register.ts` adds a pending
 * tensor and another tensor of the same shape by making a pending tensor of both terms ({@linkcode deferAdd}).
 * `runDirectProgram` binds a pending tensor's terms and sums them at each read. Everything else (any tfjs program,
 * `data()`/`dataSync()`, `readToGPU`, tfjs's CPU forwarding of small tensors) goes through backend methods that first
 * run the sum into the tensor's own buffer (hooks on the backend instance: `uploadToGPU`, `read`, `readSync`,
 * `readToGPU`, `shouldExecuteOnCPU`), so the tensor behaves like any other. A direct program that writes a tensor in
 * place first settles the pending sums that read it. Disposing a pending tensor releases its terms.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { SplitKReduceProgram } from "./split_k_reduce_program.ts";
import { webgpuInternals } from "./webgpu_internals.ts";

/** One term of a pending sum: `splits` consecutive blocks of `length` floats of `tensor`, all added. */
export interface PendingTerm {
  /** The partial sums of a split-K GEMM ([splits · batch, M, N], a backend tensor) or a tensor added to them. */
  tensor: tf.TensorInfo;
  /** Number of blocks (1 for a plain tensor). */
  splits: number;
}

/** A pending sum: the tensor is Σ over terms, Σ over each term's blocks, element by element. */
export interface PendingSum {
  /** In the order they are added (left to right, as the reduction and tfjs's add would). */
  terms: PendingTerm[];
  /** Elements of the summed tensor. */
  length: number;
}

/** Most terms a pending sum takes: every term is one storage binding of each program that reads it. */
export const MAX_PENDING_TERMS = 4;

const pending = new Map<object, PendingSum>();
/** Term tensor → the pending sums that read it (settled before it is written in place). */
const readers = new Map<object, Set<object>>();
const hooked = new WeakSet<object>();
let enabled = true;

/**
 * Turns deferral on (default) or off for the GEMMs and adds run from now on; returns the previous setting. Off, every
 * split-K GEMM runs its reduction pass at once and every add is tfjs's, as before deferral existed (tests and
 * before/after measurements).
 */
export function setSplitKDeferral(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** Whether sums are deferred (see {@linkcode setSplitKDeferral}). */
export function splitKDeferral(): boolean {
  return enabled;
}

/** The backend members the hooks wrap (private in tfjs's typings). */
interface Hookable {
  uploadToGPU(dataId: object): void;
  read(dataId: object): Promise<unknown>;
  readSync(dataId: object): unknown;
  readToGPU(dataId: object): unknown;
  shouldExecuteOnCPU(inputs: tf.TensorInfo[], sizeThreshold?: number): boolean;
  disposeData(dataId: object, force?: boolean): boolean;
  incRef(dataId: object): void;
  refCount(dataId: object): number;
  tensorMap: { get(dataId: object): { resource: unknown } };
  commandQueueOwnedIds: WeakSet<object>;
}

/** The pending sum of `dataId`, if it is one and nothing has needed its values yet. */
export function pendingSum(dataId: object): PendingSum | undefined {
  return pending.get(dataId);
}

/** Number of tensors whose sum is pending (tests). */
export function pendingSumCount(): number {
  return pending.size;
}

function track(dataId: object, sum: PendingSum): void {
  pending.set(dataId, sum);
  for (const t of sum.terms) {
    let set = readers.get(t.tensor.dataId);
    if (!set) readers.set(t.tensor.dataId, set = new Set());
    set.add(dataId);
  }
}

/** Forgets `dataId`'s pending sum and returns it (the caller releases its terms). */
function untrack(dataId: object): PendingSum | undefined {
  const sum = pending.get(dataId);
  if (!sum) return undefined;
  pending.delete(dataId);
  for (const t of sum.terms) {
    const set = readers.get(t.tensor.dataId);
    set?.delete(dataId);
    if (set?.size === 0) readers.delete(t.tensor.dataId);
  }
  return sum;
}

/**
 * Runs `dataId`'s pending sum into the tensor's own (new) buffer and releases its terms; does nothing when the sum
 * is not pending.
 */
export function materializeSum(backend: WebGPUBackend, dataId: object): void {
  const sum = untrack(dataId); // first: the reduction's own uploadToGPU of the output must not recurse
  if (!sum) return;
  const self = backend as unknown as Hookable;
  const [first] = sum.terms;
  if (sum.terms.length === 1 && first.splits === 1 && self.refCount(first.tensor.dataId) === 1) {
    // A GEMM output without split-K that nothing else holds: the tensor takes over its buffer, no dispatch.
    const from = self.tensorMap.get(first.tensor.dataId);
    self.tensorMap.get(dataId).resource = from.resource;
    from.resource = null;
    // Recorded work may still write the buffer: its release waits for the submit, as tfjs's own outputs' does.
    self.commandQueueOwnedIds.add(dataId);
    self.disposeData(first.tensor.dataId);
    return;
  }
  const shape = [sum.length];
  // The output is the pending tensor itself (flat view of the same dataId): its buffer is allocated now.
  const program = new SplitKReduceProgram(shape, sum.terms.map((t) => t.splits));
  backend.runWebGPUProgram(program, sum.terms.map((t) => t.tensor), "float32", undefined, {
    dataId: dataId as tf.DataId,
    shape,
    dtype: "float32",
  });
  for (const t of sum.terms) self.disposeData(t.tensor.dataId); // deferred by tfjs until the sum is submitted
}

/** Settles every pending sum that reads `dataId`, before something writes it in place. */
export function settleReadersOf(backend: WebGPUBackend, dataId: object): void {
  const set = readers.get(dataId);
  if (set) { for (const reader of [...set]) materializeSum(backend, reader); }
}

function install(backend: WebGPUBackend): void {
  if (hooked.has(backend)) return;
  webgpuInternals(backend, "deferSplitKSum");
  const self = backend as unknown as Hookable;
  // Own properties shadow the prototype's methods on this backend instance only.
  const { uploadToGPU, read, readSync, readToGPU, shouldExecuteOnCPU, disposeData } = self;
  const settle = (dataId: object) => {
    if (pending.size > 0) materializeSum(backend, dataId);
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
    const sum = gone && pending.size > 0 ? untrack(dataId) : undefined;
    if (sum) { for (const t of sum.terms) disposeData.call(this, t.tensor.dataId); }
    return gone;
  };
  hooked.add(backend);
}

/**
 * Returns a new tensor of `outputShape` whose value is the sum of `partials` ([splits, …] with as many elements as
 * `outputShape` each) over the splits, computed only when something needs it (see the module documentation). Takes
 * ownership of `partials`.
 */
export function deferSplitKSum(
  backend: WebGPUBackend,
  partials: tf.TensorInfo,
  outputShape: number[],
  splits: number,
): tf.TensorInfo {
  install(backend);
  const out = backend.makeTensorInfo([...outputShape], "float32");
  track(out.dataId, { terms: [{ tensor: partials, splits }], length: outputShape.reduce((a, b) => a * b, 1) });
  return out;
}

/**
 * `a + b` as a pending sum of their terms, when at least one is pending, both are float32 of the same shape and the
 * terms stay within {@linkcode MAX_PENDING_TERMS}; else undefined (the caller adds them as usual). The new tensor
 * holds a reference to every term, so `a` and `b` may be disposed.
 */
export function deferAdd(backend: WebGPUBackend, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo | undefined {
  if (!enabled || pending.size === 0) return undefined;
  const pa = pending.get(a.dataId), pb = pending.get(b.dataId);
  if (!pa && !pb) return undefined;
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length !== b.shape.length) return undefined;
  if (a.shape.some((d, i) => d !== b.shape[i])) return undefined;
  const terms = [...(pa?.terms ?? [{ tensor: a, splits: 1 }]), ...(pb?.terms ?? [{ tensor: b, splits: 1 }])];
  if (terms.length > MAX_PENDING_TERMS) return undefined;
  const self = backend as unknown as Hookable;
  for (const t of terms) self.incRef(t.tensor.dataId);
  const out = backend.makeTensorInfo([...a.shape], "float32");
  track(out.dataId, { terms, length: pa?.length ?? pb!.length });
  return out;
}
