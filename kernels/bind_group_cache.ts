/**
 * Less CPU per dispatch (issue "Speed", part 3): bind groups and uniform buffers reused across the steps of a
 * training loop, for tfjs's programs and ours ({@linkcode runDirectProgram}).
 *
 * tfjs-webgpu 4.22 creates a bind group and writes a fresh uniform buffer for every dispatch (~20 and ~6 µs of CPU
 * each on llvmpipe). A training step repeats the same shapes every step, and tfjs's buffer pool hands the same
 * `GPUBuffer` objects back in the same order, so both repeat:
 *
 * - **Uniforms by content.** {@linkcode installBindGroupCache} replaces the backend's `makeUniforms` with one that
 *   returns a buffer per distinct content, written once and never rewritten (so no dispatch recorded earlier in the
 *   same command buffer can see a later value: a content has one buffer for its whole life).
 * - **Bind groups by (pipeline, buffers).** Keyed by the pipeline and the identity (a number per `GPUBuffer` object),
 *   offset and size of every binding. A bind group names buffers, not tensors: when the pool recycles a buffer for a
 *   new tensor, a bind group over the same buffer objects, offsets and sizes is exactly the one tfjs would create.
 *   A destroyed buffer drops every cached bind group that names it (each keyed buffer's `destroy` is wrapped), so the
 *   cache never holds, nor hands out, a bind group over a destroyed buffer; ids are never reused.
 *
 * tfjs's `recordAndSubmit` is replaced on the backend instance by a copy that differs only in taking its bind group
 * from the cache (profiling with timestamp queries and the pixel programs still go to tfjs's own). Both caches are
 * bounded: past {@linkcode MAX_CACHED} entries they are emptied (uniform buffers destroyed after the pending work is
 * submitted) and fill again.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { type TfjsProgram, type UniformField, type WebGPUInternals, webgpuInternals } from "./webgpu_internals.ts";

/** Cache counters since install (or {@linkcode resetBindGroupCacheStats}). */
export interface BindGroupCacheStats {
  /** Bind groups found in the cache. */
  hits: number;
  /** Bind groups created (and cached). */
  misses: number;
  /** Uniform contents found in the cache. */
  uniformHits: number;
  /** Uniform buffers created. */
  uniformMisses: number;
  /** Cached bind groups dropped because a buffer they name was destroyed. */
  invalidated: number;
  /** Times a cache went past {@linkcode MAX_CACHED} and was emptied. */
  flushes: number;
}

/** Most bind groups (and, separately, uniform buffers) kept before the cache is emptied. */
export const MAX_CACHED = 8192;

const stats: BindGroupCacheStats = {
  hits: 0,
  misses: 0,
  uniformHits: 0,
  uniformMisses: 0,
  invalidated: 0,
  flushes: 0,
};

/** A copy of the counters. */
export function bindGroupCacheStats(): BindGroupCacheStats {
  return { ...stats };
}

/** Zeroes the counters. */
export function resetBindGroupCacheStats(): void {
  for (const k of Object.keys(stats) as (keyof BindGroupCacheStats)[]) stats[k] = 0;
}

const installed = new WeakSet<object>();
/** Changes whenever cached uniform buffers may have been destroyed (a flush, a new install). */
let uniformGeneration = 0;

/**
 * A number that changes whenever a uniform binding returned by the cache's `makeUniforms` may have stopped being
 * valid: who keeps such a binding (a prepared GEMM, whose uniforms never change) makes a new one when it differs.
 */
export function uniformsGeneration(): number {
  return uniformGeneration;
}

/** tfjs 4.22's uniform fields of a program: NaN, Infinity, the shape and strides of each input and the output, size. */
export function programUniformFields(
  program: TfjsProgram,
  output: tf.TensorInfo,
  inputs: tf.TensorInfo[],
  programDefinedUniform?: UniformField[],
): UniformField[] {
  let fields: UniformField[] = [
    { type: "float32", data: [NaN] },
    { type: "float32", data: [Infinity] },
  ];
  for (const t of [...inputs, output]) {
    fields.push({ type: "int32", data: t.shape }, { type: "int32", data: tf.util.computeStrides(t.shape) });
  }
  if (program.size) {
    const size = tf.util.sizeFromShape(program.outputShape);
    fields.push({ type: "int32", data: [program.outputComponent ? size / program.outputComponent : size] });
  }
  if (programDefinedUniform) fields = [...fields, ...programDefinedUniform];
  return fields;
}

/**
 * Records tfjs `program` (its pipeline compiled) on `inputs` into `output` with the given uniform binding (from the
 * cache's `makeUniforms`), as the cache's `recordAndSubmit` does, without building the uniforms again; for callers
 * that run the same program on the same shapes many times. Needs the cache installed on the active backend and no
 * profiling timers.
 */
export function recordWithUniforms(
  program: TfjsProgram & { pipeline: GPUComputePipeline },
  output: tf.TensorInfo,
  inputs: tf.TensorInfo[],
  uniforms: GPUBufferBinding,
): void {
  record(webgpuInternals(tf.backend(), "recordWithUniforms"), program, output, inputs, uniforms);
}

let observer: ((program: TfjsProgram) => void) | undefined;

/**
 * Calls `fn` with every tfjs program recorded through the cache from now on (`recordAndSubmit` and
 * {@linkcode recordWithUniforms}), until it is called again (undefined: none). For tests that check which programs
 * ran; returns the previous observer.
 */
export function observeRecordedPrograms(
  fn: ((program: TfjsProgram) => void) | undefined,
): ((program: TfjsProgram) => void) | undefined {
  const was = observer;
  observer = fn;
  return was;
}

function record(
  self: WebGPUInternals,
  program: TfjsProgram & { pipeline: GPUComputePipeline },
  output: tf.TensorInfo,
  inputs: tf.TensorInfo[],
  uniforms: GPUBufferBinding,
): void {
  observer?.(program);
  const resources = [self.tensorToBinding(output), ...inputs.map((t) => self.tensorToBinding(t)), uniforms];
  for (const t of inputs) self.commandQueueOwnedIds.add(t.dataId);
  self.commandQueueOwnedIds.add(output.dataId);
  const bindGroup = cachedBindGroup(self.device, program.pipeline, resources);
  self.ensureCommandEncoderReady();
  if (!self.computePassEncoder) self.computePassEncoder = self.commandEncoder!.beginComputePass({});
  const pass = self.computePassEncoder;
  pass.setPipeline(program.pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(program.dispatch[0], program.dispatch[1], program.dispatch[2]);
  self.dispatchCountInPass++;
  if (tf.env().getNumber("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE") <= self.dispatchCountInPass) {
    self.endComputePassEncoder();
    self.submitQueue();
  }
}
/** Ids of buffers count up and are never reused. */
let nextBufferId = 1;
/** Pipeline → (binding key → bind group). */
let bindGroups = new WeakMap<GPUComputePipeline, Map<string, GPUBindGroup>>();
/** Buffer id → the cache entries that name it, to drop on destroy. */
let byBuffer = new Map<number, [Map<string, GPUBindGroup>, string][]>();
let cachedBindGroups = 0;

/** Own property holding a buffer's id (faster than a WeakMap look-up, which costs ~3 µs a dispatch on this CPU). */
const ID = Symbol("bindGroupCacheBufferId");

function idOf(buffer: GPUBuffer): number {
  const tagged = buffer as GPUBuffer & { [ID]?: number };
  const known = tagged[ID];
  if (known !== undefined) return known;
  const id = nextBufferId++;
  const destroy = buffer.destroy;
  Object.defineProperty(buffer, ID, { value: id });
  // Own property on this buffer only: drop the bind groups naming it, then destroy as usual.
  Object.defineProperty(buffer, "destroy", {
    configurable: true,
    writable: true,
    value: function (this: GPUBuffer) {
      forgetBuffer(id);
      return destroy.call(this);
    },
  });
  return id;
}

function forgetBuffer(id: number): void {
  const entries = byBuffer.get(id);
  if (!entries) return;
  byBuffer.delete(id);
  for (const [map, key] of entries) {
    if (map.delete(key)) {
      stats.invalidated++;
      cachedBindGroups--;
    }
  }
}

/**
 * The bind group of `pipeline`'s group 0 over `resources` (binding i = resources[i]), from the cache when one with the
 * same buffer objects, offsets and sizes was made before. A resource that is not a buffer binding (a texture view)
 * gets a new, uncached bind group every call.
 */
export function cachedBindGroup(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  resources: (GPUBindingResource | null)[],
): GPUBindGroup {
  let key = "";
  for (const r of resources) {
    const b = r as GPUBufferBinding | null;
    if (!b || !(b.buffer instanceof GPUBuffer)) return createBindGroup(device, pipeline, resources);
    // Whole-buffer bindings (tfjs's storage bindings) as just the id.
    key += b.offset || b.size !== undefined ? `${idOf(b.buffer)}:${b.offset ?? 0}:${b.size},` : `${idOf(b.buffer)},`;
  }
  let map = bindGroups.get(pipeline);
  if (!map) bindGroups.set(pipeline, map = new Map());
  const hit = map.get(key);
  if (hit) {
    stats.hits++;
    return hit;
  }
  stats.misses++;
  if (cachedBindGroups >= MAX_CACHED) {
    stats.flushes++;
    bindGroups = new WeakMap();
    byBuffer = new Map();
    cachedBindGroups = 0;
    bindGroups.set(pipeline, map = new Map());
  }
  const group = createBindGroup(device, pipeline, resources);
  map.set(key, group);
  cachedBindGroups++;
  for (const r of resources) {
    const id = idOf((r as GPUBufferBinding).buffer);
    let list = byBuffer.get(id);
    if (!list) byBuffer.set(id, list = []);
    list.push([map, key]);
  }
  return group;
}

function createBindGroup(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  resources: (GPUBindingResource | null)[],
): GPUBindGroup {
  return device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: resources.map((resource, binding) => ({ binding, resource: resource! })),
  });
}

/** The bytes tfjs 4.22's `makeUniforms` writes for `fields` (same std140-like layout, copied from it). */
function uniformBytes(fields: UniformField[]): ArrayBuffer {
  let currentOffset = 0;
  let preLength = 0;
  let maxAlignment = 1;
  const offsets: number[] = [];
  for (const d of fields) {
    if (d.data.length === 0) d.data = [1];
    let alignment: number;
    switch (d.data.length) {
      case 1:
        alignment = 4;
        break;
      case 2:
        alignment = 8;
        break;
      case 3:
      case 4:
      case 5:
      case 6:
        alignment = 16;
        break;
      default:
        throw new Error(`makeUniforms: unsupported ${d.data.length}D shape`);
    }
    if (preLength === 5 || preLength === 6) alignment = 16;
    if (alignment > maxAlignment) maxAlignment = alignment;
    currentOffset = Math.ceil(currentOffset / alignment) * alignment;
    preLength = d.data.length;
    offsets.push(currentOffset);
    currentOffset += d.data.length * 4;
  }
  currentOffset = Math.ceil(currentOffset / maxAlignment) * maxAlignment;
  const bytes = new ArrayBuffer(currentOffset);
  fields.forEach((d, i) => {
    const View = d.type === "int32" ? Int32Array : d.type === "uint32" ? Uint32Array : Float32Array;
    new View(bytes, offsets[i], d.data.length).set(d.data);
  });
  return bytes;
}

/**
 * Makes the active `webgpu` backend reuse uniform buffers by content and bind groups by (pipeline, buffers), for
 * tfjs's programs and ours. Idempotent per backend instance.
 * @throws {Error} off the webgpu backend, or when tfjs's internals are not the 4.22 ones this was written against.
 */
export function installBindGroupCache(): void {
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`installBindGroupCache: needs the webgpu backend, not ${tf.getBackend()}`);
  }
  const backend = tf.backend() as WebGPUBackend;
  if (installed.has(backend)) return;
  const self = webgpuInternals(backend, "installBindGroupCache");
  const device = self.device;
  const stockRecord = self.recordAndSubmit.bind(self);
  let uniforms = new Map<string, GPUBufferBinding>();
  uniformGeneration++;

  self.makeUniforms = (fields) => {
    // The values as text (a third of the CPU time of laying out the bytes and joining them): equal keys mean equal
    // bytes; unequal keys may still have equal bytes (a float64 that rounds to the same float32), which costs a
    // duplicate buffer, never a wrong one. Type letters are lower case, so no value ("Infinity", "NaN") starts like
    // a field; -0 is told apart from 0.
    let key = "";
    for (const f of fields) {
      key += f.type === "float32" ? "f" : f.type === "int32" ? "i" : "u";
      for (const v of f.data) key += (v === 0 && 1 / v < 0 ? "-0" : v) + ",";
    }
    const hit = uniforms.get(key);
    if (hit) {
      stats.uniformHits++;
      return hit;
    }
    stats.uniformMisses++;
    if (uniforms.size >= MAX_CACHED) {
      stats.flushes++;
      // Recorded, unsubmitted dispatches may use them: submit first (destroy waits for submitted work).
      if (self.commandEncoder) {
        self.endComputePassEncoder();
        self.submitQueue();
      }
      for (const b of uniforms.values()) b.buffer.destroy();
      uniforms = new Map();
      uniformGeneration++;
    }
    const bytes = uniformBytes(fields);
    // Never rewritten: a content has one buffer for its whole life, so writing it now cannot change what an earlier,
    // unsubmitted dispatch reads.
    const buffer = device.createBuffer({
      size: bytes.byteLength,
      usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.UNIFORM,
    });
    self.queue.writeBuffer(buffer, 0, bytes);
    const binding = { offset: 0, size: bytes.byteLength, buffer };
    uniforms.set(key, binding);
    return binding;
  };

  // tfjs 4.22's recordAndSubmit, but with the bind group from the cache.
  self.recordAndSubmit = (program, output, inputs, programDefinedUniform) => {
    if (self.activeTimers != null || program.pixelsOpType != null) {
      return stockRecord(program, output, inputs, programDefinedUniform);
    }
    if (program.pipeline instanceof Promise) {
      throw new Error("Please call checkCompileCompletionAsync to ensure parallel compilation is done!");
    }
    const binding = self.makeUniforms(programUniformFields(program, output, inputs, programDefinedUniform));
    record(self, program as TfjsProgram & { pipeline: GPUComputePipeline }, output, inputs, binding);
  };
  installed.add(backend);
}

/** Whether the active backend reuses uniforms and bind groups (see {@linkcode installBindGroupCache}). */
export function bindGroupCacheInstalled(): boolean {
  return installed.has(tf.backend());
}

/**
 * Puts tfjs's own uniform and bind-group creation back on the active backend: stock tfjs, e.g. for the stock side of
 * `deno task bench --compare-stock`. Buffers already cached are left to the garbage collector (recorded commands may
 * still use them). {@linkcode installBindGroupCache} installs a fresh cache again.
 */
export function uninstallBindGroupCache(): void {
  const backend = tf.backend();
  if (!installed.has(backend)) return;
  // The cache replaced two methods on the instance; deleting the own properties exposes the class's again.
  delete (backend as { makeUniforms?: unknown }).makeUniforms;
  delete (backend as { recordAndSubmit?: unknown }).recordAndSubmit;
  installed.delete(backend);
  uniformGeneration++;
}

/**
 * Ends a training step for the cache: submits the commands tfjs has recorded but not submitted yet (it submits every
 * `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` dispatches and on readbacks), which releases the buffers of the tensors disposed
 * meanwhile to its pool, then puts each of the pool's free lists in a fixed order (by buffer id). tfjs's pool hands out
 * the most recently released buffer first, so without this each step starts from a permutation of the previous
 * step's pool and gets other buffers (measured: 39 of 177 bind groups hit after 10 steps); with it, a step that
 * starts from the same set of free buffers gets the same ones, and its bind groups repeat. Does nothing off the
 * webgpu backend or when tfjs's internals differ (the cache then just hits less).
 */
export function submitPendingWork(): void {
  if (tf.getBackend() !== "webgpu") return;
  const self = tf.backend() as unknown as Partial<WebGPUInternals> & {
    bufferManager?: { freeBuffers?: Map<string, GPUBuffer[]> };
  };
  if (!self.endComputePassEncoder || !self.submitQueue) return;
  if (self.commandEncoder) {
    self.endComputePassEncoder();
    self.submitQueue();
  }
  const free = self.bufferManager?.freeBuffers;
  if (!(free instanceof Map)) return;
  // Sorted descending: acquireBuffer pops from the end, so the lowest id goes out first.
  for (const list of free.values()) if (list.length > 1) list.sort((a, b) => idOf(b) - idOf(a));
}
