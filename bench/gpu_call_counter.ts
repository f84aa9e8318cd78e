/**
 * Counts the WebGPU calls whose number sets a training step's CPU cost: compute dispatches, queue submits, buffers
 * created, bytes uploaded and bind groups created, and times the submits. Installing wraps methods of the WebGPU classes' prototypes
 * (`GPUDevice`, `GPUQueue`, `GPUComputePassEncoder`), so that objects created before (tfjs's device, queue and open
 * compute pass) are counted too; removing puts the original methods back. Process-wide: it counts the calls of every
 * device, and only one counter can be installed at a time.
 * @module
 */

/** Calls counted since {@linkcode installGpuCallCounter}. */
export interface GpuCallCounts {
  /** `GPUComputePassEncoder.dispatchWorkgroups` calls: one per program tfjs (or our code) runs. */
  dispatches: number;
  /** `GPUQueue.submit` calls (tfjs submits every 15 dispatches, before a readback, and around buffer copies). */
  submits: number;
  /** `GPUDevice.createBuffer` calls: buffers tfjs's pool could not reuse, and upload staging buffers. */
  buffersCreated: number;
  /**
   * Bytes the host wrote for the GPU: `GPUQueue.writeBuffer` sizes (tfjs's per-dispatch uniforms) plus the sizes of
   * buffers created `mappedAtCreation` (tfjs uploads tensor data through those).
   */
  bytesUploaded: number;
  /** `GPUDevice.createBindGroup` calls (tfjs creates one per dispatch and never reuses them). */
  bindGroupsCreated: number;
  /**
   * Milliseconds spent inside `GPUQueue.submit` (a time, not a count). On a GPU this is driver work; on Mesa's
   * llvmpipe/lavapipe it is also the GPU work itself, which runs inside the submit call.
   */
  submitMs: number;
}

/** An installed counter. */
export interface GpuCallCounter {
  /** The counts so far (a copy). */
  counts(): GpuCallCounts;
  /** Puts the original methods back; later calls do nothing. */
  remove(): void;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

let installed = false;

/**
 * Replaces `proto[name]` by a wrapper that calls `count(args)` first and, with `timed`, passes it the milliseconds
 * the original call took; returns the function that undoes it.
 */
function wrap(
  proto: object,
  name: string,
  count: (args: unknown[]) => void,
  timed?: (ms: number) => void,
): () => void {
  const methods = proto as Record<string, Method>;
  const original = methods[name];
  if (typeof original !== "function") throw new Error(`installGpuCallCounter: WebGPU has no method ${name}`);
  methods[name] = function (...args) {
    count(args);
    if (!timed) return original.apply(this, args);
    const t0 = performance.now();
    try {
      return original.apply(this, args);
    } finally {
      timed(performance.now() - t0);
    }
  };
  return () => {
    methods[name] = original;
  };
}

/** Bytes `GPUQueue.writeBuffer(buffer, offset, data, dataOffset?, size?)` copies: offsets and size count elements of a typed array. */
function writtenBytes(data: ArrayBuffer | ArrayBufferView, dataOffset = 0, size?: number): number {
  const element = ArrayBuffer.isView(data) && "BYTES_PER_ELEMENT" in data ? Number(data.BYTES_PER_ELEMENT) : 1;
  return size === undefined ? data.byteLength - dataOffset * element : size * element;
}

/**
 * Starts counting WebGPU calls in this process (see {@linkcode GpuCallCounts}); call `remove()` when done.
 * @throws {Error} when a counter is already installed (nested counters would count each call twice) or WebGPU's
 * classes are missing.
 */
export function installGpuCallCounter(): GpuCallCounter {
  if (installed) throw new Error("installGpuCallCounter: a counter is already installed; remove() it first");
  const counts: GpuCallCounts = {
    dispatches: 0,
    submits: 0,
    buffersCreated: 0,
    bytesUploaded: 0,
    bindGroupsCreated: 0,
    submitMs: 0,
  };
  const undo: (() => void)[] = [];
  const undoAll = () => undo.reverse().forEach((u) => u());
  try {
    undo.push(wrap(GPUComputePassEncoder.prototype, "dispatchWorkgroups", () => counts.dispatches++));
    undo.push(wrap(GPUQueue.prototype, "submit", () => counts.submits++, (ms) => counts.submitMs += ms));
    undo.push(wrap(GPUQueue.prototype, "writeBuffer", ([, , data, dataOffset, size]) => {
      counts.bytesUploaded += writtenBytes(data as ArrayBuffer, dataOffset as number, size as number | undefined);
    }));
    undo.push(wrap(GPUDevice.prototype, "createBuffer", ([descriptor]) => {
      counts.buffersCreated++;
      const d = descriptor as GPUBufferDescriptor;
      if (d.mappedAtCreation) counts.bytesUploaded += d.size;
    }));
    undo.push(wrap(GPUDevice.prototype, "createBindGroup", () => counts.bindGroupsCreated++));
  } catch (e) {
    undoAll();
    throw e;
  }
  installed = true;
  let removed = false;
  return {
    counts: () => ({ ...counts }),
    remove: () => {
      if (removed) return;
      removed = true;
      undoAll();
      installed = false;
    },
  };
}
