/**
 * A replayed training step (`bench/step_replay.ts`) is the same computation as tfjs's: two identical models take the
 * same batches and learning rates, one through tfjs all along, the other through tfjs until recorded, then through
 * replays, then through tfjs again; every parameter, momentum buffer and BN running statistic, and each step's loss, must be equal bit for
 * bit (same programs on the same data in the same order: nothing may differ).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU, throwOnWebGPUErrors } from "../../kernels/webgpu_backend.ts";
import { registerFastKernels } from "../../kernels/register.ts";
import { submitPendingWork } from "../../kernels/bind_group_cache.ts";
import { resnet18 } from "../../models/zoo.ts";
import { defaultWeightDecayFilter, SGD } from "../../train/sgd.ts";
import { makeTrainStep } from "../../train/train_step.ts";
import type { StateDict } from "../../io/host_tensor.ts";
import { gpuBufferOf, installStepRecorder, type QueueEvent } from "../../bench/step_recorder.ts";
import { recordReplay, signaturePeriod, StepReplay } from "../../bench/step_replay.ts";
import { runBench } from "../../bench/run_bench.ts";
import type { BenchConfig, BenchReport } from "../../bench/bench_report.ts";
import { formatReport, parseBenchArgs } from "../../tasks/bench.ts";

await initWebGPU();
registerFastKernels();

const N = 2, SIZE = 16;
/** Untimed tfjs steps before recording (pipelines, momentum buffers, bind-group cache, pool). */
const WARMUP = 5;
/** Steps recorded by tfjs. */
const RECORDED = 4;
/** Steps replayed: a whole number of cycles of 2. */
const REPLAYED = 4;
/** tfjs steps after the replayed ones: tfjs takes over where the replay left the buffers. */
const AFTER = 2;
const STEPS = WARMUP + RECORDED + REPLAYED + AFTER;

/** Deterministic batch i: [N, 16, 16, 3] float32, [N] int32 labels; a different learning rate each step. */
function batch(i: number): { x: Float32Array<ArrayBuffer>; labels: Int32Array<ArrayBuffer>; lr: number } {
  const x = Float32Array.from({ length: N * SIZE * SIZE * 3 }, (_, j) => Math.sin(0.37 * j + 1.3 * i));
  const labels = Int32Array.from({ length: N }, (_, j) => (3 * i + 7 * j) % 10);
  return { x, labels, lr: 0.1 * (1 - i / (STEPS + 2)) + 0.001 }; // positive for the steps after STEPS too
}

/** A report around `config`, for formatReport. */
const report = (config: BenchConfig): BenchReport => ({ adapter: "test", isFallbackAdapter: true, date: "", config });

function trainer() {
  const model = resnet18({ width: 2, numClasses: 10, stem: "cifar" });
  const sgd = new SGD(model.parameters(), {
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
    decay: defaultWeightDecayFilter,
  });
  const step = makeTrainStep(model, sgd, { labelSmoothing: 0.1, clipGradNorm: 0 });
  /** tfjs step i, as the trainer runs it: new tensors from host data. */
  const run = (i: number) => {
    const b = batch(i);
    const x = tf.tensor4d(b.x, [N, SIZE, SIZE, 3]);
    const labels = tf.tensor1d(b.labels, "int32");
    const out = step(x, labels, b.lr);
    const buffers = {
      lr: b.lr,
      inputs: new Map([["x", gpuBufferOf(x)], ["labels", gpuBufferOf(labels)]]),
      outputs: new Map([["loss", gpuBufferOf(out.loss)], ["correct", gpuBufferOf(out.correct)]]),
    };
    tf.dispose([x, labels]);
    return { out, buffers };
  };
  return { model, sgd, step, run };
}

/** Model and optimizer state, float32 bits by name; `num_batches_tracked` apart (a host counter). */
async function state(model: ReturnType<typeof resnet18>, sgd: SGD) {
  const bits = (dict: StateDict, prefix: string) =>
    [...dict].filter(([name]) => !name.endsWith("num_batches_tracked")).map((
      [name, t],
    ) => [prefix + name, [...new Uint32Array((t.data as Float32Array).buffer)]] as const);
  const modelState = await model.exportState();
  const tracked = Number((modelState.get("bn1.num_batches_tracked")!.data as BigInt64Array)[0]);
  return { tensors: new Map([...bits(modelState, ""), ...bits(await sgd.exportState(), "optim.")]), tracked };
}

Deno.test("replayed steps, and tfjs's steps after them, leave every weight, momentum and BN statistic bit-identical to tfjs's steps", async () => {
  const device = (tf.backend() as WebGPUBackend).device;
  const recorder = installStepRecorder(); // before the first step: bind groups are created then
  try {
    const a = trainer();
    const lossesA: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      const { out } = a.run(i);
      lossesA.push((await out.loss.data())[0]);
      tf.dispose([out.loss, out.correct]);
    }
    const expected = await state(a.model, a.sgd);
    a.model.dispose();
    a.sgd.dispose();
    a.step.dispose();

    const b = trainer();
    let i = 0;
    for (; i < WARMUP; i++) {
      const { out } = b.run(i);
      tf.dispose([out.loss, out.correct]);
    }
    const replay = recordReplay(device, recorder, () => {
      const { out, buffers } = b.run(i++);
      tf.dispose([out.loss, out.correct]);
      return buffers;
    }, RECORDED);
    assertEquals(replay.period, 2, "the BN statistics' buffers alternate: a cycle of two steps");
    const lossesB: number[] = [];
    for (; i < STEPS - AFTER; i++) {
      const { x, labels, lr } = batch(i);
      const outputs = replay.run(new Map<string, ArrayBufferView<ArrayBuffer>>([["x", x], ["labels", labels]]), lr);
      lossesB.push((await replay.read(outputs.get("loss")!))[0]);
    }
    assert(replay.inSync);
    throwOnWebGPUErrors("in the replayed steps");
    for (; i < STEPS; i++) {
      const { out } = b.run(i);
      lossesB.push((await out.loss.data())[0]);
      tf.dispose([out.loss, out.correct]);
    }
    assertEquals(lossesB, lossesA.slice(WARMUP + RECORDED), "losses of the replayed steps, then of tfjs's again");
    const actual = await state(b.model, b.sgd);
    assertEquals([...actual.tensors.keys()], [...expected.tensors.keys()]);
    for (const [name, value] of expected.tensors) {
      const got = actual.tensors.get(name)!;
      const differ = value.findIndex((v, j) => v !== got[j]);
      assertEquals(differ, -1, `${name} differs at element ${differ}`);
    }
    // What a replay does not do: tfjs's host-side counters stay where the recording left them.
    assertEquals(actual.tracked, expected.tracked - REPLAYED);

    // Stale recordings are refused: a tensor alive across the run, a tfjs step short of a whole cycle. exportState's
    // reads and copies above reordered tfjs's free lists, after which a step takes other buffers and the check refuses
    // the replay even after whole cycles; sorting them as every step's end does puts the recorded buffers back.
    submitPendingWork();
    const inputs = new Map<string, ArrayBufferView<ArrayBuffer>>([["x", batch(0).x], ["labels", batch(0).labels]]);
    const live = tf.fill([300], 2);
    await live.data(); // submitted: its buffer is tfjs's from now until it is disposed
    throws(() => replay.run(inputs, 0.01), {
      name: "StaleRecordingError",
      message: /1 of them not held when recorded/,
    });
    live.dispose();
    const { out } = b.run(STEPS);
    tf.dispose([out.loss, out.correct]);
    throws(() => replay.run(inputs, 0.01), { name: "StaleRecordingError", message: /not whole cycles of 2/ });
    const again = b.run(STEPS + 1).out; // a whole cycle again
    tf.dispose([again.loss, again.correct]);
    replay.run(inputs, 0.01);
    replay.destroy();
    b.model.dispose();
    b.sgd.dispose();
    b.step.dispose();
  } finally {
    recorder.remove();
  }
});

Deno.test("signaturePeriod finds the smallest repeat, and none where the steps do not repeat", () => {
  const [p, q, r] = [["a"], ["b"], ["c"]];
  assertEquals(signaturePeriod([p, p, p]), 1);
  assertEquals(signaturePeriod([p, q, p, q]), 2);
  assertEquals(signaturePeriod([p, q, r]), undefined);
  assertEquals(signaturePeriod([p, q, p, r]), undefined);
});

Deno.test("a recorder refuses to be installed twice", () => {
  const recorder = installStepRecorder();
  try {
    throws(() => installStepRecorder(), /already installed/);
  } finally {
    recorder.remove();
  }
});

Deno.test("the recorder keeps passes, copies, uploads, writes and submits in order, and refuses what it cannot replay", () => {
  const device = (tf.backend() as WebGPUBackend).device;
  const module = device.createShaderModule({
    code: "@group(0) @binding(0) var<storage, read_write> v: array<f32>;\n" +
      "@compute @workgroup_size(1) fn main() { v[0] = v[0] + 1.0; }",
  });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const target = device.createBuffer({ size: 16, usage });
  const recorder = installStepRecorder();
  try {
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: target } }],
    });
    assertEquals(recorder.descriptorOf(group)?.entries.length, 1);
    const { result, recording } = recorder.record(() => {
      device.queue.writeBuffer(target, 4, new Float32Array([2, 3]), 1, 1); // element 1 only: 3
      const staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
      new Float32Array(staging.getMappedRange()).set([7, 8, 9, 10]);
      staging.unmap();
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(staging, 0, target, 0, 16);
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(2, 3);
      pass.dispatchWorkgroups(1);
      pass.end();
      device.queue.submit([encoder.finish()]);
      return { result: "done", inputs: new Map([["v", target]]), outputs: new Map() };
    });
    assertEquals(result, "done");
    assertEquals([recording.dispatches, recording.submits], [2, 1]);
    assertEquals(recording.events.map((e) => e.kind), ["write", "submit"]);
    const write = recording.events[0] as Extract<QueueEvent, { kind: "write" }>;
    assertEquals([write.offset, [...new Float32Array(write.bytes.buffer)]], [4, [3]]);
    const [copy, pass] = (recording.events[1] as Extract<QueueEvent, { kind: "submit" }>).commands;
    assertEquals(copy.kind === "copy" && [copy.upload, copy.size, copy.dst === target], ["v", 16, true]);
    const staged = copy.kind === "copy" ? recording.created.get(copy.src) : undefined;
    assertEquals([...new Float32Array(staged!.buffer)], [7, 8, 9, 10], "the host's bytes, kept before unmap");
    assertEquals(pass.kind === "pass" && pass.dispatches.map((d) => [d.workgroups, d.bindGroups[0] === group]), [
      [[2, 3, 1], true],
      [[1, 1, 1], true],
    ]);
    // An encoder opened outside the recording: its commands would be missing from it.
    const early = device.createCommandEncoder();
    throws(() =>
      recorder.record(() => {
        early.beginComputePass().end();
        device.queue.submit([early.finish()]);
        return { result: 0, inputs: new Map(), outputs: new Map() };
      }), /cannot be replayed: a command encoder opened before the recording started/);
    throws(() =>
      recorder.record(() => {
        device.createCommandEncoder().beginComputePass().end();
        return { result: 0, inputs: new Map(), outputs: new Map() };
      }), /encoded but not submitted/);
  } finally {
    recorder.remove();
    target.destroy();
  }
  throws(() => recorder.record(() => ({ result: 0, inputs: new Map(), outputs: new Map() })), /removed/);
});

Deno.test("bench --replay reports the replayed step next to tfjs's: the same dispatches in one submit", async () => {
  const adapter = await initWebGPU();
  // Width 4: other shapes than the tests above, whose bind groups this run's recorder did not see created.
  const args = ["--batch-size", "2", "--input", "16", "--width", "4", "--warmup", "3", "--steps", "2"];
  const { json: _, ...config } = parseBenchArgs([...args, "--skip-ops", "--replay"], adapter);
  const { train } = await runBench(config, adapter, () => {});
  const r = train!.replay!;
  // One submit a step, and the readback's after the last (counted, as on the tfjs side).
  assertEquals([r.period, r.steps, r.replaySubmitsPerStep], [2, 2, (2 + 1) / 2]);
  assertEquals(r.replayDispatchesPerStep, r.tfjsDispatchesPerStep);
  assertEquals(r.tfjsDispatchesPerStep, train!.dispatchesPerStep);
  assert([r.tfjsCpuMsPerStep, r.replayCpuMsPerStep, r.replayMsPerStep].every((ms) => ms > 0), JSON.stringify(r));
  assert(/replay \(new batch and lr each step/.test(formatReport({ ...report(config), train })));
});

Deno.test("a replay restores what the step uploaded each time: a buffer made mapped, and a staging copy", async () => {
  const device = (tf.backend() as WebGPUBackend).device;
  const module = device.createShaderModule({
    code: "@group(0) @binding(0) var<storage, read_write> v: array<f32>;\n" +
      "@group(0) @binding(1) var<storage, read> c: array<f32>;\n" +
      "@group(0) @binding(2) var<storage, read> d: array<f32>;\n" +
      "@compute @workgroup_size(1) fn main() { v[0] = v[0] + c[0]; v[1] = v[1] + d[0]; }",
  });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const v = device.createBuffer({ size: 8, usage });
  const d = device.createBuffer({ size: 4, usage }); // a pool buffer the step uploads into through a staging copy
  const recorder = installStepRecorder();
  let c: GPUBuffer | undefined;
  try {
    const { recording } = recorder.record(() => {
      c = device.createBuffer({ size: 4, usage, mappedAtCreation: true }); // a tensor made on the host, uploaded
      new Float32Array(c.getMappedRange()).set([5]);
      c.unmap();
      const staging = device.createBuffer({ size: 4, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
      new Float32Array(staging.getMappedRange()).set([7]);
      staging.unmap();
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(staging, 0, d, 0, 4);
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(
        0,
        device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [v, c, d].map((buffer, binding) => ({ binding, resource: { buffer } })),
        }),
      );
      pass.dispatchWorkgroups(1);
      pass.end();
      device.queue.submit([encoder.finish()]);
      staging.destroy(); // as tfjs does after the submit
      return { result: 0, inputs: new Map(), outputs: new Map([["v", v]]) };
    });
    const replay = new StepReplay(device, recorder, [{ recording, lr: 0 }]);
    // Whatever wrote them since (tfjs's pool hands them to other tensors), each replay uploads the same bytes again.
    device.queue.writeBuffer(c!, 0, new Float32Array([100]));
    device.queue.writeBuffer(d, 0, new Float32Array([1000]));
    replay.run(new Map(), 0);
    const out = replay.run(new Map(), 0).get("v")!;
    assertEquals([...await replay.read(out)], [3 * 5, 3 * 7]);
    replay.destroy();
  } finally {
    recorder.remove();
    for (const b of [v, d, c]) b?.destroy();
  }
});
