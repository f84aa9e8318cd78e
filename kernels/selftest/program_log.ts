/**
 * Records the WebGPU programs the `webgpu` backend runs while a function executes, so that a kernel test proves our
 * kernel ran: `kernels/register.ts` silently runs the stock kernel when ours returns undefined, and a comparison
 * against a reference passes just as well then.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend, WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { GemmProgram } from "../gemm_program.ts";

/** Runs `fn` and returns its result with the programs the backend ran meanwhile, in order. */
export function recordPrograms<T>(fn: () => T): { result: T; programs: WebGPUProgram[] } {
  const backend = tf.backend() as WebGPUBackend;
  const programs: WebGPUProgram[] = [];
  const run = backend.runWebGPUProgram;
  // An own property shadows the class method for this backend instance only; deleting it restores the method.
  backend.runWebGPUProgram = function (program, ...rest) {
    programs.push(program);
    return run.call(this, program, ...rest);
  };
  try {
    return { result: fn(), programs };
  } finally {
    delete (backend as { runWebGPUProgram?: unknown }).runWebGPUProgram;
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
