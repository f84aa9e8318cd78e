/**
 * Compute programs whose bindings we declare ourselves (several outputs, buffers updated in place), recorded into
 * tfjs-webgpu's own command stream so that they run in order with tfjs's programs. tfjs 4.22's `runWebGPUProgram`
 * binds exactly one output and read-only inputs, which costs a dispatch per output (and a slice per part of a packed
 * output): the BN weight and bias gradients, an optimizer update per parameter.
 *
 * This reaches into tfjs-webgpu 4.22 internals (the version `deno.json` pins): the open command encoder and compute
 * pass, the per-pass dispatch count after which tfjs submits, the set of tensors the pending commands use (tfjs does
 * not recycle their buffers before the submit) and the pooled uniform buffers. {@linkcode runDirectProgram} checks
 * that they exist and throws naming what is missing otherwise.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { cachedBindGroup } from "./bind_group_cache.ts";
import { type WebGPUInternals, webgpuInternals } from "./webgpu_internals.ts";
import { materializeSum, type PendingSum, pendingSum, settleReadersOf } from "./deferred_split_k.ts";

/** One storage binding: `var<storage, read|read_write> name: array<type>` at the binding's index. */
export interface DirectBinding {
  /** WGSL name of the array. */
  name: string;
  /** The tensor bound (its whole buffer). */
  tensor: tf.TensorInfo;
  /**
   * `read`, or `read_write` for a buffer the program writes: a new tensor from {@linkcode allocateTensor} (the program
   * must write every element) or an existing one updated in place (every tensor sharing its data sees the change:
   * tfjs's `clone` and `reshape` share data).
   */
  access: "read" | "read_write";
  /** Element type; default `f32`. */
  type?: "f32" | "i32";
}

/** A program for {@linkcode runDirectProgram}. */
export interface DirectProgram {
  /** Pipeline cache key: must change whenever `code()` or the access modes would. */
  key: string;
  /** Storage bindings 0..n-1, in order. */
  bindings: DirectBinding[];
  /**
   * f32 values passed as the fields of a uniform struct `u` (binding n), so that values changing every step (a learning
   * rate) do not change the shader.
   */
  uniforms?: { name: string; value: number }[];
  /** WGSL after the binding declarations; must define the `@compute` entry point `main`. Called on a cache miss. */
  code: () => string;
  /** Workgroups along x, y, z (each at most the device's maxComputeWorkgroupsPerDimension). */
  workgroups: [number, number, number];
}

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function pipelineFor(device: GPUDevice, program: DirectProgram): GPUComputePipeline {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, cache = new Map());
  const cached = cache.get(program.key);
  if (cached) return cached;
  const n = program.bindings.length;
  const declarations = program.bindings.map((b, i) =>
    `@group(0) @binding(${i}) var<storage, ${b.access}> ${b.name}: array<${b.type ?? "f32"}>;`
  );
  const entries: GPUBindGroupLayoutEntry[] = program.bindings.map((b, i) => ({
    binding: i,
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type: b.access === "read" ? "read-only-storage" : "storage" },
  }));
  if (program.uniforms?.length) {
    const fields = program.uniforms.map((f) => `${f.name}: f32,`).join(" ");
    declarations.push(`struct Uniforms { ${fields} };`, `@group(0) @binding(${n}) var<uniform> u: Uniforms;`);
    entries.push({ binding: n, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } });
  }
  // An explicit layout: with 'auto', bindings the shader does not use would be dropped and the bind group rejected.
  const layout = device.createBindGroupLayout({ entries });
  const pipeline = device.createComputePipeline({
    label: program.key, // names the program in device errors and in call logs
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: {
      module: device.createShaderModule({ code: `${declarations.join("\n")}\n${program.code()}` }),
      entryPoint: "main",
    },
  });
  cache.set(program.key, pipeline);
  return pipeline;
}

/**
 * Records `program` into the active `webgpu` backend's command stream, after the programs tfjs recorded before it and
 * before those it records next; submits when tfjs would (every `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` dispatches).
 * Bindings written in place lose any CPU copy tfjs cached of them (so a later `data()` reads the new values).
 * @throws {Error} off the webgpu backend, for a buffer bound twice when one of the bindings writes it (WebGPU forbids
 *   it), or when tfjs's internals are not the expected ones.
 */
export function runDirectProgram(program: DirectProgram): void {
  const backend = tf.backend() as WebGPUBackend;
  if (tf.getBackend() !== "webgpu") {
    throw new Error(`runDirectProgram: needs the webgpu backend, not ${tf.getBackend()}`);
  }
  const internals = webgpuInternals(backend, "runDirectProgram");
  program = readingPartials(backend, program);
  const buffers = program.bindings.map((b) => {
    // A pending sum that reads a tensor written here must be summed before the write.
    if (b.access === "read_write") settleReadersOf(backend, b.tensor.dataId);
    backend.uploadToGPU(b.tensor.dataId);
    const data = backend.tensorMap.get(b.tensor.dataId);
    if (!(data.resource instanceof GPUBuffer)) {
      throw new Error(`runDirectProgram (${program.key}): binding "${b.name}" is not in a GPU buffer`);
    }
    if (b.access === "read_write") data.values = null as unknown as typeof data.values; // stale after the write
    return data.resource;
  });
  for (let i = 0; i < buffers.length; i++) {
    const j = buffers.indexOf(buffers[i]);
    if (j !== i && (program.bindings[i].access === "read_write" || program.bindings[j].access === "read_write")) {
      throw new Error(
        `runDirectProgram (${program.key}): "${program.bindings[j].name}" and "${program.bindings[i].name}" share a ` +
          "buffer that the program writes",
      );
    }
  }
  const device = backend.device;
  const pipeline = pipelineFor(device, program);
  const resources: GPUBindingResource[] = buffers.map((buffer) => ({ buffer }));
  internals.ensureCommandEncoderReady();
  if (program.uniforms?.length) resources.push(uniformsOf(internals, program.key, program.uniforms));
  const bindGroup = cachedBindGroup(device, pipeline, resources);
  if (!internals.computePassEncoder) internals.computePassEncoder = internals.commandEncoder!.beginComputePass({});
  const pass = internals.computePassEncoder;
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...program.workgroups);
  // tfjs defers the release of these tensors' buffers to the submit that runs this dispatch.
  for (const b of program.bindings) internals.commandQueueOwnedIds.add(b.tensor.dataId);
  internals.dispatchCountInPass++;
  if (internals.dispatchCountInPass >= tf.env().getNumber("WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE")) {
    internals.endComputePassEncoder();
    internals.submitQueue();
  }
}

/** A program key's uniform buffer: what it holds and the command encoder of the last dispatch that read it. */
interface LiveUniforms {
  buffer: GPUBuffer;
  /** What the buffer holds; null before the first write. */
  values: Float32Array<ArrayBuffer> | null;
  readBy: GPUCommandEncoder | null;
}

const liveUniforms = new WeakMap<GPUDevice, Map<string, LiveUniforms>>();

/**
 * The uniform binding of the program `key` holding `fields`: one buffer per key, rewritten in place when the values
 * change. Values that change every step (the SGD's learning rate, a mixup's λ) thus keep one buffer and one bind
 * group per program; uniforms cached by content (tfjs's `makeUniforms` under the bind-group cache) made a buffer and
 * a bind group per distinct learning rate, every step of a schedule. `queue.writeBuffer` takes effect before the
 * next submit, so when a dispatch recorded since the last submit still reads the old values, tfjs's pending work is
 * submitted first. The command encoder must be ready (tfjs makes a new one after each submit).
 */
function uniformsOf(internals: WebGPUInternals, key: string, fields: { value: number }[]): GPUBufferBinding {
  let byKey = liveUniforms.get(internals.device);
  if (!byKey) liveUniforms.set(internals.device, byKey = new Map());
  let live = byKey.get(key);
  const values = Float32Array.from(fields, (f) => f.value);
  if (!live) {
    const buffer = internals.device.createBuffer({
      label: `${key} uniforms`,
      size: Math.max(16, Math.ceil(values.byteLength / 16) * 16), // a uniform struct of f32s: 16-byte multiple
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    byKey.set(key, live = { buffer, values: null, readBy: null });
  }
  const held = live.values;
  if (!held || held.length !== values.length || !values.every((v, i) => Object.is(v, held[i]))) {
    if (values.byteLength > live.buffer.size) {
      throw new Error(`runDirectProgram (${key}): ${values.length} uniforms, the key's first run had fewer`);
    }
    if (live.readBy !== null && live.readBy === internals.commandEncoder) {
      internals.endComputePassEncoder();
      internals.submitQueue();
      internals.ensureCommandEncoderReady();
    }
    internals.device.queue.writeBuffer(live.buffer, 0, values);
    live.values = values;
  }
  live.readBy = internals.commandEncoder;
  return { buffer: live.buffer };
}

/**
 * `program` reading each read-only f32 binding whose sum is pending (`deferred_split_k.ts`) as its terms, added up at
 * each read: the binding gets the first term and bindings `name_t1`, ... the others, and every `name[index]` in the
 * code becomes a call of a generated function that sums the terms at that index (from 0.0, in the order the
 * reduction pass would). Saves the reduction's (and an add's) dispatch when a program of ours is the consumer (batch
 * norm after a convolution, SGD after a weight gradient). A pending binding whose terms would take the program past
 * the device's storage bindings is summed into its own buffer first. `program` itself when nothing is pending.
 */
function readingPartials(backend: WebGPUBackend, program: DirectProgram): DirectProgram {
  let summed: { name: string; sum: PendingSum }[] | undefined;
  let count = program.bindings.length;
  const limit = backend.device.limits.maxStorageBuffersPerShaderStage;
  const bindings: DirectBinding[] = [];
  for (const b of program.bindings) {
    let sum = b.access === "read" && (b.type ?? "f32") === "f32" ? pendingSum(b.tensor.dataId) : undefined;
    if (sum && count + sum.terms.length - 1 > limit) {
      materializeSum(backend, b.tensor.dataId);
      sum = undefined;
    }
    if (!sum) {
      bindings.push(b);
      continue;
    }
    count += sum.terms.length - 1;
    (summed ??= []).push({ name: b.name, sum });
    sum.terms.forEach((t, j) => bindings.push({ ...b, name: j === 0 ? b.name : `${b.name}_t${j}`, tensor: t.tensor }));
  }
  if (!summed) return program;
  const terms = summed.map(({ name, sum }) => `${name}/${sum.length}/${sum.terms.map((t) => t.splits).join("+")}`);
  return {
    ...program,
    key: `${program.key}|partials:${terms.join(",")}`,
    bindings,
    code: () => {
      let code = program.code();
      const functions = summed!.map(({ name, sum }) => {
        code = sumReads(code, name);
        const reads = sum.terms.flatMap((t, j) =>
          Array.from(
            { length: t.splits },
            (_, s) => `\n  v += ${j === 0 ? name : `${name}_t${j}`}[${s * sum.length}u + i];`,
          )
        );
        return `fn ${name}${SUM_SUFFIX}(i: u32) -> f32 {\n  var v = 0.0;${reads.join("")}\n  return v;\n}\n`;
      });
      return `${functions.join("")}${code}`;
    },
  };
}

const SUM_SUFFIX = "_summed";

/** `code` with every read `name[expr]` (not `xname[`, not `.name[`) replaced by `name_summed(u32(expr))`. */
export function sumReads(code: string, name: string): string {
  const pattern = new RegExp(`(?<![A-Za-z0-9_.])${name}\\s*\\[`, "g");
  let out = "";
  let from = 0;
  for (let m = pattern.exec(code); m; m = pattern.exec(code)) {
    const open = m.index + m[0].length; // just after "["
    let depth = 1, close = open;
    for (; close < code.length && depth > 0; close++) {
      if (code[close] === "[") depth++;
      else if (code[close] === "]") depth--;
    }
    if (depth !== 0) throw new Error(`runDirectProgram: unbalanced "[" after ${name} in the shader code`);
    const index = sumReads(code.slice(open, close - 1), name);
    out += `${code.slice(from, m.index)}${name}${SUM_SUFFIX}(u32(${index}))`;
    from = close;
    pattern.lastIndex = close;
  }
  return out + code.slice(from);
}

/**
 * A new float32 (or int32) tensor of `shape` with a GPU buffer from tfjs's pool and undefined contents, for a direct
 * program to fill (every element). The caller owns it.
 */
export function allocateTensor(shape: number[], dtype: "float32" | "int32" = "float32"): tf.Tensor {
  const backend = tf.backend() as WebGPUBackend;
  const info = backend.makeTensorInfo(shape, dtype);
  backend.uploadToGPU(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** Threads per workgroup of the grid-stride loops ({@linkcode gridStride}). */
export const STRIDE_WORKGROUP = 256;

/**
 * Workgroups for a grid-stride loop over `n` items with {@linkcode STRIDE_WORKGROUP} threads each: one item per thread
 * up to `maxWorkgroups` workgroups (4,096 by default: a million threads fill any GPU), more per thread beyond. The
 * loop: `for (var i = gid.x; i < n; i += nwg.x * 256u)`.
 */
export function gridStride(n: number, maxWorkgroups = 4096): [number, number, number] {
  return [Math.max(1, Math.min(maxWorkgroups, Math.ceil(n / STRIDE_WORKGROUP))), 1, 1];
}
