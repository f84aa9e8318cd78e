/**
 * Records the WebGPU programs the `webgpu` backend runs while a function executes, so that a kernel test proves our
 * kernel ran: `kernels/register.ts` silently runs the stock kernel when ours returns undefined, and a comparison
 * against a reference passes just as well then.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { GemmProgram } from "../gemm_program.ts";
import { bindGroupCacheInstalled, observeRecordedPrograms } from "../bind_group_cache.ts";

/** Runs `fn` and returns its result with the programs the backend recorded meanwhile, in order. */
export function recordPrograms<T>(fn: () => T): { result: T; programs: WebGPUProgram[] } {
  // Where programs are recorded, not runWebGPUProgram: our GEMMs record a compiled program again without the latter
  // (kernels/run_gemm.ts), through the bind-group cache when it is installed, else through tfjs's recordAndSubmit.
  const programs: WebGPUProgram[] = [];
  if (bindGroupCacheInstalled()) {
    const was = observeRecordedPrograms((p) => programs.push(p as unknown as WebGPUProgram));
    try {
      return { result: fn(), programs };
    } finally {
      observeRecordedPrograms(was);
    }
  }
  const backend = tf.backend() as unknown as { recordAndSubmit: (program: WebGPUProgram, ...rest: unknown[]) => void };
  backend.recordAndSubmit = function (program, ...rest) {
    programs.push(program);
    return Object.getPrototypeOf(this).recordAndSubmit.call(this, program, ...rest);
  };
  try {
    return { result: fn(), programs };
  } finally {
    delete (backend as { recordAndSubmit?: unknown }).recordAndSubmit;
  }
}

/** Our GEMM programs among `programs`. */
export function gemmPrograms(programs: readonly WebGPUProgram[]): GemmProgram[] {
  return programs.filter((p) => p instanceof GemmProgram);
}

/**
 * Class names of tfjs's own convolution and matmul programs among `programs` (`Conv2DMMProgram`,
 * `Conv2DDerInputMMProgram`, `Conv2DDerFilterProgram`, `Im2ColProgram`, `MatMulPackedProgram`, ...): what runs when
 * our kernels fall back to stock.
 */
export function stockGemmPrograms(programs: readonly WebGPUProgram[]): string[] {
  return programs.map((p) => p.constructor.name).filter((name) => /^(Conv2D|MatMul|Im2Col)/.test(name));
}
