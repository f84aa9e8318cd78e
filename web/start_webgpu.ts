/// <reference lib="dom" />
/**
 * WebGPU for the page: our device (kernels/webgpu_backend.ts) with our kernels registered, once; a browser without
 * WebGPU gets a message that says what to use instead.
 * @module
 */
import { initWebGPU, WebGPUUnavailableError } from "../kernels/webgpu_backend.ts";
import { registerFastKernels } from "../kernels/register.ts";

let started: Promise<void> | undefined;

/**
 * Starts tfjs's webgpu backend on our device (idempotent) and, unless `fastKernels` is false (the self-test, whose
 * cases choose), registers our kernels.
 */
export function startWebGPU(fastKernels = true): Promise<void> {
  started ??= (async () => {
    try {
      await initWebGPU();
    } catch (e) {
      started = undefined;
      if (e instanceof WebGPUUnavailableError) {
        throw new Error(
          "This browser does not offer WebGPU (" + (navigator.gpu ? "no adapter" : "navigator.gpu is missing") +
            "). Use Chrome or Edge 113+ (on Linux: chrome://flags/#enable-unsafe-webgpu, or start it with " +
            "--enable-unsafe-webgpu), Firefox 141+ on Windows, or Safari 26; a page served from another machine " +
            "needs HTTPS.",
        );
      }
      throw e;
    }
    if (fastKernels) registerFastKernels();
  })();
  return started;
}
