import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals } from "./assert.ts";
import { initWebGPU, WebGPUUnavailableError } from "../kernels/webgpu_backend.ts";

Deno.test("initWebGPU selects the webgpu backend and reports the adapter", async () => {
  const report = await initWebGPU();
  assertEquals(tf.getBackend(), "webgpu");
  assert(report.name.length > 0);
  assert(Array.isArray(report.features));
  assert(report.limits.maxBufferSize > 0);
  assertEquals(await initWebGPU(), report, "a second call returns the same device");
});

Deno.test("WebGPUUnavailableError says what to install and where to run", () => {
  const e = new WebGPUUnavailableError("navigator.gpu is undefined");
  assert(e.message.includes("navigator.gpu is undefined"));
  assert(e.message.includes("mesa-vulkan-drivers"));
  assert(e.message.includes("GPU"));
});
