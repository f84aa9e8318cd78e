/**
 * Records the GPU work a training step encodes (issue 8, part 3, an experiment): for each compute pass the sequence of
 * (pipeline, bind groups, workgroup counts), the buffer copies between passes, `queue.writeBuffer` calls and submit
 * boundaries, so that `step_replay.ts` can encode the same work again with raw WebGPU, without tfjs.
 *
 * Like `gpu_call_counter.ts` it wraps methods of the WebGPU classes' prototypes. Two layers:
 *
 * - Always, from {@linkcode installStepRecorder} on: `GPUDevice.createBindGroup` (each bind group's descriptor, so
 *   that a replay can rebuild one with another uniform buffer) and `GPUQueue.writeBuffer` to uniform buffers (their
 *   content). A steady-state step calls no `createBindGroup` and, with a constant learning rate, no `writeBuffer` (a
 *   new learning rate: one small write per SGD dispatch), so this costs the timed tfjs steps nothing measurable. Install it before the
 *   first step of the process that uses the step's shapes: bind groups are cached (`kernels/bind_group_cache.ts`)
 *   across models, and created over the first steps only.
 * - Only inside {@linkcode StepRecorder.record}: buffer creation and mapping (tfjs uploads a tensor through a buffer
 *   it creates mapped: the host's bytes are kept), command encoders, compute passes and submits.
 *
 * What a recording does not see: anything tfjs keeps on the host (the `num_batches_tracked` counters, a tensor's
 * cached CPU values), and which bytes of an upload are data rather than constants (the caller names its inputs).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";

/** One `dispatchWorkgroups` with the state it ran with. */
export interface RecordedDispatch {
  pipeline: GPUComputePipeline;
  /** Bind group of each group index set before the dispatch. */
  bindGroups: GPUBindGroup[];
  workgroups: [number, number, number];
  /**
   * What each uniform buffer its bind groups name held at the dispatch (as far as the recorder saw it written): a
   * direct program's uniforms are one buffer per program rewritten when they change (`kernels/direct_program.ts`),
   * so the buffer's last content is not necessarily the one this dispatch read.
   */
  uniforms: Map<GPUBuffer, Uint8Array<ArrayBuffer>>;
}

/** What a step's command buffers hold, in order. */
export type RecordedCommand =
  | { kind: "pass"; dispatches: RecordedDispatch[] }
  | {
    kind: "copy";
    src: GPUBuffer;
    srcOffset: number;
    dst: GPUBuffer;
    dstOffset: number;
    size: number;
    /** The input whose upload this is (`src` was a staging buffer created mapped during the step). */
    upload?: string;
  }
  | { kind: "clear"; buffer: GPUBuffer; offset: number; size: number };

/** The queue's timeline of a step: writes happen at the call, before any later submit. */
export type QueueEvent =
  | { kind: "submit"; commands: RecordedCommand[] }
  | { kind: "write"; buffer: GPUBuffer; offset: number; bytes: Uint8Array<ArrayBuffer> };

/** One recorded step. */
export interface StepRecording {
  /** Queue events in call order. */
  events: QueueEvent[];
  /** The GPU buffer of each named input (a tensor tfjs uploaded or that was already on the GPU). */
  inputs: Map<string, GPUBuffer>;
  /** The GPU buffer of each named output. */
  outputs: Map<string, GPUBuffer>;
  /**
   * Buffers created `mappedAtCreation` during the step, with the bytes the host wrote before `unmap` (zeros where it
   * wrote nothing): tfjs's upload staging buffers (copied from, then destroyed after the submit) and tensors tfjs
   * uploaded into a new pool buffer directly (bound by dispatches: tfjs's `variableGrads` seed `ones([])`, made every
   * step before `makeTrainStep` kept one).
   */
  created: Map<GPUBuffer, Uint8Array<ArrayBuffer>>;
  /** Dispatches in the step. */
  dispatches: number;
  /** Submits in the step. */
  submits: number;
}

/** A bind group's descriptor, as created. */
export interface BindGroupDescriptorCopy {
  layout: GPUBindGroupLayout;
  entries: GPUBindGroupEntry[];
}

/** An installed recorder. */
export interface StepRecorder {
  /**
   * Runs `fn` (one training step, which must start with no command encoder open: `makeTrainStep` submits its work at
   * the end) and returns its result with what it encoded. `fn` returns the tensors' GPU buffers by name (look them up
   * before disposing anything): inputs, whose upload copies become named uploads, and outputs.
   * @throws {Error} when the step encodes something a replay cannot repeat (commands into an encoder opened before,
   *   dynamic offsets or indirect dispatches).
   */
  record<T>(
    fn: () => { result: T; inputs: Map<string, GPUBuffer>; outputs: Map<string, GPUBuffer> },
  ): { result: T; recording: StepRecording };
  /** The descriptor `bindGroup` was created with; undefined for one created before the recorder was installed. */
  descriptorOf(bindGroup: GPUBindGroup): BindGroupDescriptorCopy | undefined;
  /** The bytes last written to `buffer` with `queue.writeBuffer` at offset 0 (tracked for uniform buffers only). */
  uniformContent(buffer: GPUBuffer): Uint8Array<ArrayBuffer> | undefined;
  /** Puts the original methods back. */
  remove(): void;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** Replaces `proto[name]` by `wrapper(original)`; returns the undo. */
function wrap(proto: object, name: string, wrapper: (original: Method) => Method): () => void {
  const methods = proto as Record<string, Method>;
  const original = methods[name];
  if (typeof original !== "function") throw new Error(`installStepRecorder: WebGPU has no method ${name}`);
  methods[name] = wrapper(original);
  return () => {
    methods[name] = original;
  };
}

/** A copy of `data`'s bytes as `writeBuffer(…, data, dataOffset, size)` reads them (offset and size in elements). */
function bytesOf(data: BufferSource, dataOffset = 0, size?: number): Uint8Array<ArrayBuffer> {
  const view = ArrayBuffer.isView(data) ? data : new Uint8Array(data);
  const element = "BYTES_PER_ELEMENT" in view ? Number(view.BYTES_PER_ELEMENT) : 1;
  const start = view.byteOffset + dataOffset * element;
  const length = size === undefined ? view.byteLength - dataOffset * element : size * element;
  return new Uint8Array((view.buffer as ArrayBuffer).slice(start, start + length));
}

let installed = false;

/**
 * Starts tracking bind-group descriptors and uniform contents in this process (see the module documentation); call
 * `record` around a step and `remove()` when done. Process-wide, one at a time.
 * @throws {Error} when one is already installed or WebGPU's classes are missing.
 */
export function installStepRecorder(): StepRecorder {
  if (installed) throw new Error("installStepRecorder: a recorder is already installed; remove() it first");
  const descriptors = new WeakMap<GPUBindGroup, BindGroupDescriptorCopy>();
  const uniforms = new WeakMap<GPUBuffer, Uint8Array<ArrayBuffer>>();
  /** The step being recorded, undefined outside `record`. */
  let active: {
    events: QueueEvent[];
    created: Map<GPUBuffer, Uint8Array<ArrayBuffer>>;
    mapped: Map<GPUBuffer, { offset: number; range: ArrayBuffer }[]>;
    encoders: Map<GPUCommandEncoder, RecordedCommand[]>;
    finished: Map<GPUCommandBuffer, RecordedCommand[]>;
    passes: Map<
      GPUComputePassEncoder,
      { dispatches: RecordedDispatch[]; pipeline?: GPUComputePipeline; groups: GPUBindGroup[] }
    >;
    dispatches: number;
    submits: number;
    error?: string;
  } | undefined;
  const fail = (why: string) => {
    if (active && !active.error) active.error = why;
  };
  const undo: (() => void)[] = [];
  const undoAll = () => undo.splice(0).reverse().forEach((u) => u());
  try {
    undo.push(wrap(GPUDevice.prototype, "createBindGroup", (original) =>
      function (this: unknown, ...args) {
        const group = original.apply(this, args) as GPUBindGroup;
        const d = args[0] as GPUBindGroupDescriptor;
        descriptors.set(group, { layout: d.layout, entries: [...d.entries].map((e) => ({ ...e })) });
        return group;
      }));
    undo.push(wrap(GPUQueue.prototype, "writeBuffer", (original) =>
      function (this: unknown, ...args) {
        const [buffer, offset, data, dataOffset, size] = args as [GPUBuffer, number, BufferSource, number?, number?];
        const isUniform = (buffer.usage & GPUBufferUsage.UNIFORM) !== 0;
        if (isUniform || active) {
          const bytes = bytesOf(data, dataOffset, size);
          if (isUniform && offset === 0) uniforms.set(buffer, bytes);
          active?.events.push({ kind: "write", buffer, offset, bytes });
        }
        return original.apply(this, args);
      }));
  } catch (e) {
    undoAll();
    throw e;
  }
  /** The wrappers that record a step, installed by `record` only: none slows the steps outside it. */
  const wrapStep = (): () => void => {
    const undo: (() => void)[] = [];
    const undoAll = () => undo.splice(0).reverse().forEach((u) => u());
    try {
      undo.push(wrap(GPUDevice.prototype, "createBuffer", (original) =>
        function (this: unknown, ...args) {
          const buffer = original.apply(this, args) as GPUBuffer;
          const d = args[0] as GPUBufferDescriptor;
          if (d.mappedAtCreation && active) {
            active.created.set(buffer, new Uint8Array(d.size));
            active.mapped.set(buffer, []);
          }
          return buffer;
        }));
      undo.push(wrap(GPUBuffer.prototype, "getMappedRange", (original) =>
        function (this: unknown, ...args) {
          const range = original.apply(this, args) as ArrayBuffer;
          active?.mapped.get(this as GPUBuffer)?.push({ offset: (args[0] as number | undefined) ?? 0, range });
          return range;
        }));
      undo.push(wrap(GPUBuffer.prototype, "unmap", (original) =>
        function (this: unknown, ...args) {
          const ranges = active?.mapped.get(this as GPUBuffer);
          if (ranges) {
            // The host's writes, before unmap detaches the ranges.
            const bytes = active!.created.get(this as GPUBuffer)!;
            for (const { offset, range } of ranges) bytes.set(new Uint8Array(range), offset);
            active!.mapped.delete(this as GPUBuffer);
          }
          return original.apply(this, args);
        }));
      undo.push(wrap(GPUDevice.prototype, "createCommandEncoder", (original) =>
        function (this: unknown, ...args) {
          const encoder = original.apply(this, args) as GPUCommandEncoder;
          active?.encoders.set(encoder, []);
          return encoder;
        }));
      undo.push(wrap(GPUQueue.prototype, "submit", (original) =>
        function (this: unknown, ...args) {
          if (active) {
            const commands: RecordedCommand[] = [];
            for (const buffer of args[0] as GPUCommandBuffer[]) {
              const recorded = active.finished.get(buffer);
              if (!recorded) fail("a command buffer encoded before the recording started was submitted");
              else commands.push(...recorded);
              active.finished.delete(buffer);
            }
            active.events.push({ kind: "submit", commands });
            active.submits++;
          }
          return original.apply(this, args);
        }));
      const commandsOf = (encoder: GPUCommandEncoder) => {
        const list = active?.encoders.get(encoder);
        if (active && !list) fail("a command encoder opened before the recording started was used");
        return list;
      };
      undo.push(wrap(GPUCommandEncoder.prototype, "beginComputePass", (original) =>
        function (this: unknown, ...args) {
          const pass = original.apply(this, args) as GPUComputePassEncoder;
          const list = commandsOf(this as GPUCommandEncoder);
          if (list) {
            const state = { dispatches: [] as RecordedDispatch[], groups: [] as GPUBindGroup[] };
            active!.passes.set(pass, state);
            list.push({ kind: "pass", dispatches: state.dispatches });
          }
          return pass;
        }));
      undo.push(
        wrap(GPUCommandEncoder.prototype, "copyBufferToBuffer", (original) =>
          function (this: unknown, ...args) {
            const list = commandsOf(this as GPUCommandEncoder);
            if (list) {
              if (args.length < 5) fail("copyBufferToBuffer without offsets");
              const [src, srcOffset, dst, dstOffset, size] = args as [GPUBuffer, number, GPUBuffer, number, number];
              list.push({ kind: "copy", src, srcOffset, dst, dstOffset, size });
            }
            return original.apply(this, args);
          }),
      );
      undo.push(wrap(GPUCommandEncoder.prototype, "clearBuffer", (original) =>
        function (this: unknown, ...args) {
          const list = commandsOf(this as GPUCommandEncoder);
          const [buffer, offset = 0, size] = args as [GPUBuffer, number?, number?];
          list?.push({ kind: "clear", buffer, offset, size: size ?? buffer.size - offset });
          return original.apply(this, args);
        }));
      undo.push(wrap(GPUCommandEncoder.prototype, "finish", (original) =>
        function (this: unknown, ...args) {
          const buffer = original.apply(this, args) as GPUCommandBuffer;
          const list = commandsOf(this as GPUCommandEncoder);
          if (list) {
            active!.finished.set(buffer, list);
            active!.encoders.delete(this as GPUCommandEncoder);
          }
          return buffer;
        }));
      const passOf = (pass: unknown) => {
        const state = active?.passes.get(pass as GPUComputePassEncoder);
        if (active && !state) fail("a compute pass begun before the recording started was used");
        return state;
      };
      undo.push(wrap(GPUComputePassEncoder.prototype, "setPipeline", (original) =>
        function (this: unknown, ...args) {
          const state = passOf(this);
          if (state) state.pipeline = args[0] as GPUComputePipeline;
          return original.apply(this, args);
        }));
      undo.push(wrap(GPUComputePassEncoder.prototype, "setBindGroup", (original) =>
        function (this: unknown, ...args) {
          const state = passOf(this);
          if (state) {
            const offsets = args[2] as ArrayLike<number> | undefined;
            if (offsets && offsets.length > 0) fail("setBindGroup with dynamic offsets");
            state.groups[args[0] as number] = args[1] as GPUBindGroup;
          }
          return original.apply(this, args);
        }));
      undo.push(
        wrap(GPUComputePassEncoder.prototype, "dispatchWorkgroups", (original) =>
          function (this: unknown, ...args) {
            const state = passOf(this);
            if (state) {
              const [x, y = 1, z = 1] = args as number[];
              if (!state.pipeline) fail("a dispatch without a pipeline");
              const read = new Map<GPUBuffer, Uint8Array<ArrayBuffer>>();
              for (const g of state.groups) {
                for (const e of descriptors.get(g)?.entries ?? []) {
                  const b = (e.resource as GPUBufferBinding).buffer;
                  const content = b instanceof GPUBuffer ? uniforms.get(b) : undefined;
                  if (content) read.set(b, content);
                }
              }
              state.dispatches.push({
                pipeline: state.pipeline!,
                bindGroups: [...state.groups],
                workgroups: [x, y, z],
                uniforms: read,
              });
              active!.dispatches++;
            }
            return original.apply(this, args);
          }),
      );
      undo.push(
        wrap(
          GPUComputePassEncoder.prototype,
          "dispatchWorkgroupsIndirect",
          (original) =>
            function (this: unknown, ...args) {
              if (passOf(this)) {
                fail("an indirect dispatch");
              }
              return original.apply(this, args);
            },
        ),
      );
    } catch (e) {
      undoAll();
      throw e;
    }
    return undoAll;
  };
  installed = true;
  let removed = false;
  return {
    record(fn) {
      if (removed) throw new Error("StepRecorder.record: the recorder was removed");
      if (active) throw new Error("StepRecorder.record: already recording");
      active = {
        events: [],
        created: new Map(),
        mapped: new Map(),
        encoders: new Map(),
        finished: new Map(),
        passes: new Map(),
        dispatches: 0,
        submits: 0,
      };
      let step: ReturnType<typeof fn>;
      const recorded = active;
      const unwrap = wrapStep();
      try {
        step = fn();
      } finally {
        unwrap();
        active = undefined;
      }
      if (recorded.error) throw new Error(`StepRecorder.record: the step cannot be replayed: ${recorded.error}`);
      if (recorded.encoders.size > 0 || recorded.finished.size > 0) {
        throw new Error("StepRecorder.record: the step left commands encoded but not submitted (submit at its end)");
      }
      const inputOf = new Map([...step.inputs].map(([name, buffer]) => [buffer, name]));
      for (const event of recorded.events) {
        if (event.kind !== "submit") continue;
        for (const c of event.commands) {
          if (c.kind !== "copy" || !recorded.created.has(c.src)) continue;
          const name = inputOf.get(c.dst);
          if (name === undefined) continue; // a constant tfjs uploads each step: kept as the recorded bytes
          c.upload = name;
        }
      }
      return {
        result: step.result,
        recording: {
          events: recorded.events,
          inputs: step.inputs,
          outputs: step.outputs,
          created: recorded.created,
          dispatches: recorded.dispatches,
          submits: recorded.submits,
        },
      };
    },
    descriptorOf: (bindGroup) => descriptors.get(bindGroup),
    uniformContent: (buffer) => uniforms.get(buffer),
    remove() {
      if (removed) return;
      removed = true;
      undoAll();
      installed = false;
    },
  };
}

/**
 * The GPU buffers tfjs's pool has handed out and not taken back on the active webgpu backend: those of live tensors
 * (and of disposed ones whose release waits for the next submit). A replay must find the same set as when it was
 * recorded: another set means a tensor made or freed since, which the replay could overwrite or whose buffer it
 * still names (tfjs-backend-webgpu 4.22's `bufferManager.usedBuffers`).
 * @throws {Error} when this tfjs lacks it.
 */
export function tfjsLiveBuffers(): GPUBuffer[] {
  const manager = (tf.backend() as unknown as { bufferManager?: { usedBuffers?: Map<string, GPUBuffer[]> } })
    .bufferManager;
  const used = manager?.usedBuffers;
  if (!(used instanceof Map)) {
    throw new Error("tfjsLiveBuffers: this tfjs-backend-webgpu has no bufferManager.usedBuffers");
  }
  return [...used.values()].flat();
}

/** The GPU buffer holding `tensor` on the active webgpu backend (uploading it first if it is still on the host). */
export function gpuBufferOf(tensor: tf.TensorInfo): GPUBuffer {
  const backend = tf.backend() as WebGPUBackend;
  backend.uploadToGPU(tensor.dataId);
  const resource = backend.tensorMap.get(tensor.dataId).resource;
  if (!(resource instanceof GPUBuffer)) throw new Error("gpuBufferOf: the tensor is not in a GPU buffer");
  return resource;
}
