import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertStrictEquals, throws } from "../assert.ts";
import { installGpuCallCounter } from "../../bench/gpu_call_counter.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";

Deno.test("installGpuCallCounter counts dispatches, submits, buffers, uploaded bytes and bind groups exactly", async () => {
  const adapter = await navigator.gpu.requestAdapter();
  const device = await adapter!.requestDevice();
  const module = device.createShaderModule({
    code: "@group(0) @binding(0) var<storage, read_write> v: array<f32>;\n" +
      "@compute @workgroup_size(1) fn main() { v[0] = v[0] + 1.0; }",
  });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const counter = installGpuCallCounter();
  try {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const buffer = device.createBuffer({ size: 64, usage, mappedAtCreation: true }); // 64 bytes written by the host
    buffer.unmap();
    device.createBuffer({ size: 32, usage }); // created, nothing uploaded
    device.queue.writeBuffer(buffer, 0, new Float32Array(4), 1, 2); // offset and size in elements: 8 bytes
    device.queue.writeBuffer(buffer, 16, new ArrayBuffer(12)); // all of it: 12 bytes
    device.queue.writeBuffer(buffer, 0, new Uint8Array(10), 4); // from element 4 on: 6 bytes
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer } }],
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < 3; i++) pass.dispatchWorkgroups(1);
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    const { submitMs, ...counts } = counter.counts(); // a time: only its presence is checked
    assert(submitMs >= 0);
    assertEquals(counts, {
      dispatches: 3,
      submits: 1,
      buffersCreated: 2,
      bytesUploaded: 64 + 8 + 12 + 6,
      bindGroupsCreated: 1,
    });
  } finally {
    counter.remove();
    device.destroy();
  }
});

Deno.test("the counter sees tfjs's calls, removes cleanly and refuses to nest", async () => {
  await initWebGPU();
  const originals = [GPUDevice.prototype.createBuffer, GPUQueue.prototype.submit];
  // Above tfjs's CPU hand-off threshold (1,000 elements), so that the add runs on the GPU.
  const a = tf.fill([2048], 1);
  const warm = tf.add(a, a); // compile and pool the buffers first
  await warm.data();
  const counter = installGpuCallCounter();
  throws(() => installGpuCallCounter(), /already installed/);
  const sum = tf.add(a, a);
  await sum.data();
  counter.remove();
  counter.remove(); // idempotent
  const counts = counter.counts();
  assertEquals([counts.dispatches, counts.bindGroupsCreated, counts.submits], [1, 1, 1], JSON.stringify(counts));
  assertStrictEquals(GPUDevice.prototype.createBuffer, originals[0]);
  assertStrictEquals(GPUQueue.prototype.submit, originals[1]);
  const after = tf.add(a, a);
  await after.data();
  assertEquals(counter.counts(), counts, "nothing counted after remove()");
  installGpuCallCounter().remove(); // installable again
  tf.dispose([a, warm, sum, after]);
});
