/**
 * Records the WebGPU programs the `webgpu` backend runs while a function executes, so that a kernel test proves our
 * kernel ran: `kernels/register.ts` silently runs the stock kernel when ours returns undefined, and a comparison
 * against a reference passes just as well then.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { GemmProgram } from "../../kernels/gemm_program.ts";

/** Runs `fn` and returns its result with the programs the backend recorded meanwhile, in order. */
export function recordPrograms<T>(fn: () => T): { result: T; programs: WebGPUProgram[] } {
  // recordAndSubmit, not runWebGPUProgram: our GEMMs record a compiled program again without the latter
  // (kernels/run_gemm.ts). It is an own property of the backend when the bind-group cache is installed.
  const backend = tf.backend() as unknown as { recordAndSubmit: (program: WebGPUProgram, ...rest: unknown[]) => void };
  const programs: WebGPUProgram[] = [];
  const own = Object.hasOwn(backend, "recordAndSubmit");
  const record = backend.recordAndSubmit;
  backend.recordAndSubmit = function (program, ...rest) {
    programs.push(program);
    return record.call(this, program, ...rest);
  };
  try {
    return { result: fn(), programs };
  } finally {
    if (own) backend.recordAndSubmit = record;
    else delete (backend as { recordAndSubmit?: unknown }).recordAndSubmit;
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
