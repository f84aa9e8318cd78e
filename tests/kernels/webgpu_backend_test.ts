import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import {
  initWebGPU,
  takeWebGPUErrors,
  throwOnWebGPUErrors,
  WebGPUUnavailableError,
} from "../../kernels/webgpu_backend.ts";

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

Deno.test("device errors tfjs ignores are collected, and throwOnWebGPUErrors turns them into an error", async () => {
  const report = await initWebGPU();
  takeWebGPUErrors(); // start clean
  throwOnWebGPUErrors("with no error"); // nothing to report: no throw
  // An AddN binding one storage buffer per input, past the device's limit: tfjs returns garbage without a word.
  const n = (tf.backend() as unknown as { device: GPUDevice }).device.limits.maxStorageBuffersPerShaderStage + 8;
  const sum = tf.tidy(() => tf.addN(Array.from({ length: n }, () => tf.ones([4]))));
  await sum.data(); // a readback: the device has reported by now
  sum.dispose();
  throws(
    () => throwOnWebGPUErrors("in the test's AddN"),
    { name: "WebGPUDeviceError", message: /error\(s\) in the test's AddN.*[Ss]torage/ },
    `${report.name}: the invalid pipeline was reported`,
  );
  assertEquals(takeWebGPUErrors(), [], "reported once, then cleared");
});

Deno.test("starting WebGPU prints no 'error:' line on a headless machine (Mesa's device-select layer)", async () => {
  // Without XDG_RUNTIME_DIR, Mesa's Vulkan device-select layer makes libwayland print "error: XDG_RUNTIME_DIR is
  // invalid or not set" twice (seen on lavapipe, the adapter a fresh CI machine gets); only our errors may say error.
  const env = { ...Deno.env.toObject(), NO_COLOR: "1" };
  delete (env as Record<string, string>).XDG_RUNTIME_DIR;
  const script = `import { initWebGPU } from ${
    JSON.stringify(new URL("../../kernels/webgpu_backend.ts", import.meta.url).href)
  };
    await initWebGPU(); console.log(Deno.env.get("XDG_RUNTIME_DIR") ?? "unset");`;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    env,
    clearEnv: true,
  }).output();
  const err = new TextDecoder().decode(stderr);
  assertEquals(code, 0, err);
  assertEquals(err.split("\n").filter((l) => /^error:/i.test(l)), []);
  assertEquals(new TextDecoder().decode(stdout).trim(), "unset", "the variable is restored");
});
