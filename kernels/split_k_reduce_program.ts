/**
 * Second pass of a split-K GEMM: sums the per-slice partial products written by {@linkcode GemmProgram}, and any
 * tensors added to them before anyone read the sum (`deferred_split_k.ts`).
 * @module
 */
import type { WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { numElements } from "./num_elements.ts";

/**
 * out[i] = Σ_s partial[s · L + i] for i < L, where L is the size of `outputShape`; with several inputs, the same
 * over each input in turn (input j holding splits[j] blocks of L).
 */
export class SplitKReduceProgram implements WebGPUProgram {
  /** The inputs: "partial" ([splits · L] partial sums), then "partial1", ... */
  variableNames: string[];
  /** The final GEMM output shape. */
  outputShape: number[];
  /** Cache key of the compiled pipeline. */
  shaderKey: string;
  /** Flat: one thread per output element (tfjs folds large dispatches into 2-D itself). */
  dispatchLayout: { x: number[] };
  /** [ceil(L / 256), 1, 1]. */
  dispatch: [number, number, number];
  /** 256 threads. */
  workgroupSize: [number, number, number] = [256, 1, 1];
  private readonly splits: number[];
  private readonly length: number;

  /**
   * One thread per output element.
   * @param outputShape shape of the summed result.
   * @param splits number of partial sums stacked in the input (per input, for several).
   */
  constructor(outputShape: number[], splits: number | number[]) {
    this.outputShape = [...outputShape];
    this.splits = typeof splits === "number" ? [splits] : [...splits];
    this.variableNames = this.splits.map((_, j) => j === 0 ? "partial" : `partial${j}`);
    this.length = numElements(outputShape);
    this.dispatchLayout = { x: [...outputShape.keys()] };
    this.dispatch = [Math.ceil(this.length / 256), 1, 1];
    this.shaderKey = `fastSplitKReduce_${this.splits.join("+")}_${this.length}`;
  }

  /** WGSL body; tfjs calls `main` with the flat global index. */
  getUserCode(): string {
    return `
fn main(index: i32) {
  _ = uniforms.NAN; // keep the uniform binding in the 'auto' layout
  if (index < ${this.length}) {
    var sum = 0.0;${
      this.variableNames.map((name, j) => `
    for (var s = 0; s < ${this.splits[j]}; s++) {
      sum += ${name}[s * ${this.length} + index];
    }`).join("")
    }
    result[index] = sum;
  }
}
`;
  }
}
