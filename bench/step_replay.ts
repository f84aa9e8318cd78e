/**
 * Replays recorded training steps (`step_recorder.ts`) with raw WebGPU: tfjs defines the step, this executes it
 * (issue 8, part 3, an experiment kept in the bench). A replayed step writes the new batch, labels and learning rate
 * into buffers of its own, then encodes the recorded dispatches and copies into one command encoder (one compute pass
 * between copies) and submits once, without calling tfjs.
 *
 * What varies between steps, found by recording consecutive steps and comparing them ({@linkcode stepSignature}):
 *
 * - **The batch** (`x`): tfjs uploads a new tensor through a staging buffer it creates mapped, then copies into a pool
 *   buffer (always the same one in steady state). The replay copies from a buffer of its own at the same point of the
 *   command stream, written with `queue.writeBuffer` before the submit.
 * - **The labels**: the same, but into one of two pool buffers, alternately (see the period below).
 * - **The learning rate**: the multi-tensor SGD (`kernels/multi_tensor_sgd.ts`) passes it as the first f32 of its
 *   uniform buffer, one per program key rewritten in place when it changes (`kernels/direct_program.ts`); the replay
 *   gives each such dispatch a bind group over a uniform buffer of its own whose first f32 it rewrites each step, and
 *   checks that every other uniform a dispatch reads still holds what the recorded step read.
 * - **Constants tfjs uploads every step** (`tf.variableGrads`'s gradient seed `ones([])`, before `makeTrainStep` kept
 *   one): into a new buffer created mapped, or through a staging copy. The replay copies the recorded bytes into the
 *   recorded buffer each step: at the start for a new buffer (nothing in the step used it before), at the recorded
 *   point for a copy.
 * - **The loss and correct count**: new 4-byte buffers every step in tfjs; the replay writes the recorded ones.
 * - **The BN running statistics**: `ResNet.updateRunningStats` assigns the new [4, C] statistics tensor to the
 *   variable, so the variable's buffer alternates between two buffers of the pool: steady state is a cycle of two
 *   steps, not one. The replay keeps one recording per step of the cycle ({@linkcode StepReplay.period}); tfjs's view
 *   of the model (which buffer each variable owns) agrees with the replayed data only after a whole number of cycles
 *   ({@linkcode StepReplay.inSync}).
 *
 * A replay is only valid while tfjs holds the same buffers as after the recording: each run checks it
 * ({@linkcode StaleRecordingError}).
 * @module
 */
import {
  type BindGroupDescriptorCopy,
  type RecordedCommand,
  type RecordedDispatch,
  type StepRecorder,
  type StepRecording,
  tfjsLiveBuffers,
} from "./step_recorder.ts";

/** The key prefix of the multi-tensor SGD's pipelines (`kernels/multi_tensor_sgd.ts`), whose uniform holds the lr. */
const SGD_PIPELINE_PREFIX = "sgd_";

/** The first f32 of `bytes`, or undefined when shorter. */
function firstF32(bytes: Uint8Array<ArrayBuffer> | undefined): number | undefined {
  return bytes && bytes.byteLength >= 4 ? new DataView(bytes.buffer, bytes.byteOffset).getFloat32(0, true) : undefined;
}

/**
 * The uniform buffer holding `lr` (its first f32) when `pipeline` is the multi-tensor SGD's (its uniform is the last
 * binding), else undefined.
 * @throws {Error} when that uniform does not start with `lr`, or its bind group or content was made before the
 *   recorder was installed (unknown).
 */
function lrUniformOf(
  dispatch: RecordedDispatch,
  descriptor: BindGroupDescriptorCopy | undefined,
  lr: number,
): GPUBuffer | undefined {
  const pipeline = dispatch.pipeline;
  if (!pipeline.label.startsWith(SGD_PIPELINE_PREFIX)) return undefined;
  if (!descriptor) {
    throw new Error(
      `StepReplay: the bind group of SGD pipeline "${pipeline.label}" was created before installStepRecorder; ` +
        "install it before the first step with this learning rate",
    );
  }
  const last = descriptor.entries[descriptor.entries.length - 1];
  const buffer = (last.resource as GPUBufferBinding).buffer;
  if (!(buffer instanceof GPUBuffer) || (buffer.usage & GPUBufferUsage.UNIFORM) === 0) return undefined;
  const content = dispatch.uniforms.get(buffer);
  if (!content) {
    throw new Error(
      `StepReplay: the uniform of SGD pipeline "${pipeline.label}" was written before installStepRecorder; ` +
        "install it before the first step with this learning rate",
    );
  }
  const value = firstF32(content);
  if (value !== Math.fround(lr)) {
    throw new Error(
      `StepReplay: the uniform of SGD pipeline "${pipeline.label}" starts with ${value}, not the step's lr ${lr} ` +
        "(kernels/multi_tensor_sgd.ts changed its uniforms?)",
    );
  }
  return buffer;
}

/**
 * One line per command of `recording`, naming buffers by a number per buffer object, uniform buffers by their
 * content (the SGD's learning rate as `lr`) and buffers created during the step by their size: equal signatures of two
 * steps mean the same programs on the same buffers, so a replay of one is the other (given the new batch, labels and
 * lr). `ids` numbers buffers, pipelines and bind groups across the calls that share it. A bind group created before
 * the recorder was installed (descriptor unknown) is named by its identity: the bind-group cache returns the same
 * object for the same pipeline and buffers.
 * @throws {Error} for an SGD bind group or uniform created before the recorder was installed (see `lrUniformOf`).
 */
export function stepSignature(
  recorder: StepRecorder,
  recording: StepRecording,
  lr: number,
  ids: Map<object, number>,
): string[] {
  const id = (o: object) => {
    let n = ids.get(o);
    if (n === undefined) ids.set(o, n = ids.size);
    return n;
  };
  const buffer = (b: GPUBuffer) => recording.created.has(b) ? `new${b.size}` : `#${id(b)}`;
  const lines: string[] = [];
  for (const event of recording.events) {
    if (event.kind === "write") {
      // Uniform buffers written when first made (cache misses): their content is in the bind groups' lines.
      if ((event.buffer.usage & GPUBufferUsage.UNIFORM) === 0) lines.push(`write ${buffer(event.buffer)}`);
      continue;
    }
    lines.push("submit");
    for (const c of event.commands) {
      if (c.kind === "copy") {
        const src = c.upload
          ? `upload(${c.upload})`
          : recording.created.has(c.src)
          ? `bytes(${recording.created.get(c.src)!.join(",")})`
          : buffer(c.src);
        lines.push(`copy ${src}+${c.srcOffset} -> ${buffer(c.dst)}+${c.dstOffset} ${c.size}`);
      } else if (c.kind === "clear") {
        lines.push(`clear ${buffer(c.buffer)}+${c.offset} ${c.size}`);
      } else {
        lines.push("pass");
        for (const d of c.dispatches) {
          const groups = d.bindGroups.map((g) => {
            const descriptor = recorder.descriptorOf(g);
            // Made before the recorder was installed: cached, so the same object as long as its buffers are the same.
            if (!descriptor && !d.pipeline.label.startsWith(SGD_PIPELINE_PREFIX)) return `group${id(g)}`;
            const lrBuffer = lrUniformOf(d, descriptor, lr);
            return descriptor!.entries.map((e) => {
              const r = e.resource as GPUBufferBinding;
              if (!(r.buffer instanceof GPUBuffer)) return `${e.binding}:?`;
              const range = `${r.offset ?? 0}:${r.size ?? "all"}`;
              if ((r.buffer.usage & GPUBufferUsage.UNIFORM) === 0) return `${e.binding}:${buffer(r.buffer)}:${range}`;
              const content = [...d.uniforms.get(r.buffer) ?? []];
              const text = r.buffer === lrBuffer ? `lr,${content.slice(4).join(",")}` : content.join(",");
              return `${e.binding}:u(${text}):${range}`;
            }).join(" ");
          });
          lines.push(`  ${d.pipeline.label || `pipeline${id(d.pipeline)}`} [${groups.join(" | ")}] ${d.workgroups}`);
        }
      }
    }
  }
  return lines;
}

/**
 * The period of a run of consecutive recordings' signatures: the smallest p with signature[i] = signature[i - p] for
 * every i >= p; undefined when none below the number of recordings fits (not yet in steady state).
 */
export function signaturePeriod(signatures: string[][]): number | undefined {
  const same = (a: string[], b: string[]) => a.length === b.length && a.every((line, i) => line === b[i]);
  for (let p = 1; p < signatures.length; p++) {
    if (signatures.every((s, i) => i < p || same(s, signatures[i - p]))) return p;
  }
  return undefined;
}

/** A recorded step made ready to encode. */
interface PreparedStep {
  ops: (
    | { kind: "pass"; dispatches: { pipeline: GPUComputePipeline; bindGroups: GPUBindGroup[]; workgroups: number[] }[] }
    | { kind: "copy"; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number }
    | { kind: "clear"; buffer: GPUBuffer; offset: number; size: number }
  )[];
  /** Input name → the replay's own buffer its data is written into, then copied from. */
  uploads: Map<string, GPUBuffer>;
  /** The replay's own SGD uniform buffers, whose first f32 is the lr. */
  lrUniforms: GPUBuffer[];
  /** [replay's copy, recorded buffer] of each buffer the step created mapped and did not only copy from. */
  constants: [GPUBuffer, GPUBuffer][];
  outputs: Map<string, GPUBuffer>;
}

/** {@linkcode StepReplay.run} found that the recording no longer matches tfjs's state. */
export class StaleRecordingError extends Error {
  override name = "StaleRecordingError";
}

/** Options of {@linkcode StepReplay}. */
export interface StepReplayOptions {
  /**
   * The buffers tfjs holds for live tensors (`tfjsLiveBuffers`), called when the replay is made and before each run:
   * a run refuses when the set changed (see {@linkcode StaleRecordingError}). Without it, nothing is checked.
   */
  liveBuffers?: () => GPUBuffer[];
}

/** A cycle of recorded steps (see the module documentation), replayed one step per {@linkcode StepReplay.run}. */
export class StepReplay {
  /** Steps in the cycle (2 for a ResNet training step: the BN statistics' buffers alternate). */
  readonly period: number;
  readonly #device: GPUDevice;
  readonly #steps: PreparedStep[];
  readonly #own: GPUBuffer[] = [];
  #next = 0;
  #lr = new Float32Array(1);
  readonly #liveBuffers?: () => GPUBuffer[];
  readonly #live: Set<GPUBuffer>;

  /**
   * Prepares `recordings` (consecutive steps of one cycle, in order, each with the lr it ran with) for replay; the
   * first replayed step is the one after the last recording, which must therefore be the cycle's first again.
   * @throws {Error} for a recorded write the replay cannot repeat, or a bind group the recorder did not see created.
   */
  constructor(
    device: GPUDevice,
    recorder: StepRecorder,
    recordings: { recording: StepRecording; lr: number }[],
    options: StepReplayOptions = {},
  ) {
    if (recordings.length === 0) throw new Error("StepReplay: no recordings");
    this.#device = device;
    this.period = recordings.length;
    this.#steps = recordings.map(({ recording, lr }) => this.#prepare(recorder, recording, lr));
    this.#liveBuffers = options.liveBuffers;
    this.#live = new Set(options.liveBuffers?.() ?? []);
  }

  /**
   * Throws unless tfjs holds the same buffers as when the replay was made. Between runs only whole cycles of tfjs
   * steps keep them (a BN statistics variable swaps buffers every step), and a tensor made or freed since changes them.
   */
  #checkLive(): void {
    if (!this.#liveBuffers) return;
    const now = this.#liveBuffers();
    const unknown = now.filter((b) => !this.#live.has(b)).length;
    if (unknown > 0 || now.length !== this.#live.size) {
      throw new StaleRecordingError(
        `StepReplay.run: tfjs holds ${now.length} buffers, ${unknown} of them not held when recorded ` +
          `(${this.#live.size} then): a tensor made or freed since, or tfjs steps that were not whole cycles of ` +
          `${this.period}; record again`,
      );
    }
  }

  #buffer(size: number, usage: number, bytes?: Uint8Array<ArrayBuffer>): GPUBuffer {
    const buffer = this.#device.createBuffer({ size: Math.ceil(size / 4) * 4, usage });
    this.#own.push(buffer);
    if (bytes) this.#device.queue.writeBuffer(buffer, 0, bytes);
    return buffer;
  }

  #prepare(recorder: StepRecorder, recording: StepRecording, lr: number): PreparedStep {
    const step: PreparedStep = {
      ops: [],
      uploads: new Map(),
      lrUniforms: [],
      constants: [],
      outputs: recording.outputs,
    };
    const ownUniform = new Map<GPUBuffer, GPUBuffer>();
    const copiedFrom = new Set<GPUBuffer>();
    const commands: RecordedCommand[] = [];
    for (const event of recording.events) {
      if (event.kind === "submit") commands.push(...event.commands);
      else if ((event.buffer.usage & GPUBufferUsage.UNIFORM) === 0 || !recorder.uniformContent(event.buffer)) {
        throw new Error(
          `StepReplay: the step wrote ${event.bytes.byteLength} bytes into a buffer with queue.writeBuffer; ` +
            "only uniform buffers can be (those of the bind-group cache and of direct programs)",
        );
      }
    }
    for (const c of commands) {
      if (c.kind === "copy") {
        let src = c.src;
        if (c.upload) {
          src = this.#buffer(c.size, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
          step.uploads.set(c.upload, src);
          copiedFrom.add(c.src);
        } else if (recording.created.has(c.src)) {
          // A tensor tfjs uploads every step with the same bytes (the gradient seed): copied from a copy of them.
          src = this.#buffer(c.size, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, recording.created.get(c.src));
          copiedFrom.add(c.src);
        }
        step.ops.push({ ...c, src });
      } else if (c.kind === "clear") {
        step.ops.push(c);
      } else {
        const dispatches = c.dispatches.map((d) => ({
          pipeline: d.pipeline,
          workgroups: d.workgroups,
          bindGroups: d.bindGroups.map((g) => {
            const descriptor = recorder.descriptorOf(g);
            const uniform = lrUniformOf(d, descriptor, lr);
            if (!uniform) {
              // Another uniform is bound as it is: it must still hold what this dispatch read.
              for (const [buffer, content] of d.uniforms) {
                const now = recorder.uniformContent(buffer);
                if (!now || now.length !== content.length || now.some((v, i) => v !== content[i])) {
                  throw new Error(
                    `StepReplay: the uniforms of pipeline "${d.pipeline.label}" were rewritten after this step read ` +
                      "them; only the SGD's learning rate can change between replayed steps",
                  );
                }
              }
              return g;
            }
            let own = ownUniform.get(uniform);
            if (!own) {
              own = this.#buffer(
                uniform.size,
                GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
                d.uniforms.get(uniform),
              );
              ownUniform.set(uniform, own);
              step.lrUniforms.push(own);
            }
            return this.#device.createBindGroup({
              layout: descriptor!.layout,
              entries: descriptor!.entries.map((e) =>
                (e.resource as GPUBufferBinding).buffer === uniform
                  ? { ...e, resource: { ...(e.resource as GPUBufferBinding), buffer: own } }
                  : e
              ),
            });
          }),
        }));
        // tfjs ends a pass at each submit; between two copies one pass will do.
        const last = step.ops[step.ops.length - 1];
        if (last?.kind === "pass") last.dispatches.push(...dispatches);
        else step.ops.push({ kind: "pass", dispatches });
      }
    }
    for (const [buffer, bytes] of recording.created) {
      if (copiedFrom.has(buffer)) continue;
      step.constants.push([
        this.#buffer(bytes.byteLength, GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, bytes),
        buffer,
      ]);
    }
    return step;
  }

  /** Whether a whole number of cycles has been replayed: tfjs's view of which buffer holds what is right again. */
  get inSync(): boolean {
    return this.#next === 0;
  }

  /**
   * Encodes and submits the next step of the cycle with `inputs` (by the names given to the recorder; the bytes of
   * each must be as many as the recorded upload) and learning rate `lr`.
   * @returns the buffers of the step's named outputs (valid until the next run).
   * @throws {StaleRecordingError} when tfjs's live buffers changed since the recording (see
   *   {@linkcode StepReplayOptions.liveBuffers}).
   * @throws {Error} for a missing input or one of another size.
   */
  run(inputs: Map<string, ArrayBufferView<ArrayBuffer>>, lr: number): Map<string, GPUBuffer> {
    this.#checkLive();
    const step = this.#steps[this.#next];
    const queue = this.#device.queue;
    for (const [name, buffer] of step.uploads) {
      const data = inputs.get(name);
      if (!data) throw new Error(`StepReplay.run: no data for input "${name}"`);
      if (data.byteLength > buffer.size || Math.ceil(data.byteLength / 4) * 4 !== buffer.size) {
        throw new Error(
          `StepReplay.run: input "${name}" has ${data.byteLength} bytes, the recorded upload ${buffer.size}`,
        );
      }
      queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    }
    this.#lr[0] = lr;
    for (const u of step.lrUniforms) queue.writeBuffer(u, 0, this.#lr);
    const encoder = this.#device.createCommandEncoder();
    for (const [own, recorded] of step.constants) encoder.copyBufferToBuffer(own, 0, recorded, 0, recorded.size);
    for (const op of step.ops) {
      if (op.kind === "copy") {
        encoder.copyBufferToBuffer(op.src, op.srcOffset, op.dst, op.dstOffset, op.size);
      } else if (op.kind === "clear") {
        encoder.clearBuffer(op.buffer, op.offset, op.size);
      } else {
        const pass = encoder.beginComputePass();
        let pipeline: GPUComputePipeline | undefined;
        for (const d of op.dispatches) {
          if (d.pipeline !== pipeline) pass.setPipeline(pipeline = d.pipeline);
          for (let i = 0; i < d.bindGroups.length; i++) pass.setBindGroup(i, d.bindGroups[i]);
          pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1], d.workgroups[2]);
        }
        pass.end();
      }
    }
    queue.submit([encoder.finish()]);
    this.#next = (this.#next + 1) % this.period;
    return step.outputs;
  }

  /** Reads `buffer` (an output of {@linkcode run}) back as float32 after the work submitted so far. */
  async read(buffer: GPUBuffer): Promise<Float32Array> {
    const staging = this.#device.createBuffer({
      size: buffer.size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      const encoder = this.#device.createCommandEncoder();
      encoder.copyBufferToBuffer(buffer, 0, staging, 0, buffer.size);
      this.#device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      return new Float32Array(staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
  }

  /** Destroys the replay's own buffers (the recorded ones stay tfjs's). */
  destroy(): void {
    for (const b of this.#own.splice(0)) b.destroy();
  }
}

/** One step run by tfjs for {@linkcode recordReplay}: its lr and its inputs' and outputs' buffers. */
export interface RecordableStep {
  lr: number;
  /** Buffers of the named inputs (the batch, the labels), looked up after the step. */
  inputs: Map<string, GPUBuffer>;
  /** Buffers of the named outputs (loss, correct count). */
  outputs: Map<string, GPUBuffer>;
}

/**
 * Records `steps` consecutive tfjs steps (`runStep` runs one, with the next batch and lr), checks that their
 * signatures repeat with some period p (steady state), and returns the replay of the last p recordings: its first
 * run is the step after the last recorded one. `runStep` must dispose what the step returns: the replay checks before
 * each run that tfjs holds the buffers it held after the last recorded step (`tfjsLiveBuffers`).
 * @throws {Error} when the recorded steps do not repeat (more warm-up needed, or a step that changes every time).
 */
export function recordReplay(
  device: GPUDevice,
  recorder: StepRecorder,
  runStep: () => RecordableStep,
  steps = 4,
): StepReplay {
  const recorded: { recording: StepRecording; lr: number }[] = [];
  for (let i = 0; i < steps; i++) {
    const { result, recording } = recorder.record(() => {
      const s = runStep();
      return { result: s.lr, inputs: s.inputs, outputs: s.outputs };
    });
    recorded.push({ recording, lr: result });
  }
  const ids = new Map<object, number>();
  const signatures = recorded.map((r) => stepSignature(recorder, r.recording, r.lr, ids));
  const period = signaturePeriod(signatures);
  if (period === undefined || period > steps / 2) {
    const first = signatures[0].findIndex((line, i) => signatures.some((s) => s[i] !== line));
    throw new Error(
      `recordReplay: ${steps} recorded steps do not repeat (${
        period === undefined ? "no period" : `period ${period}`
      }` +
        `); the first difference is at line ${first}: ${signatures.map((s) => s[first]).join(" / ")}`,
    );
  }
  return new StepReplay(device, recorder, recorded.slice(steps - period), { liveBuffers: tfjsLiveBuffers });
}
