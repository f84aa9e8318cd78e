/**
 * Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter on the `webgpu` backend as implicit GEMMs ({@linkcode runGemm}).
 * Each returns undefined for what it does not cover (NCHW, dilation, non-f32, a grid too large), and `register.ts`
 * then runs the stock kernel.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { type ConvAttrs, convGeometry } from "./conv_geometry.ts";
import {
  convBackpropFilterSpec,
  convBackpropInputParitySpecs,
  convBackpropInputSpec,
  convForwardSpec,
} from "./conv_gemm_specs.ts";
import { type GemmRunOptions, runGemm, runGemmsInto } from "./run_gemm.ts";

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Options of {@linkcode fastConv2DBackpropInput}: the tiling, and whether a strided one goes by parity classes. */
export interface ConvBackpropInputOptions extends GemmRunOptions {
  /**
   * Strided convolutions: one dense GEMM per pixel-parity class. "auto" (default) when every class fills at least
   * half the device, else the single split-K GEMM; "always" and "never" force one path (tests).
   */
  parity?: "auto" | "always" | "never";
}

/** Conv2D (inputs `x`, `filter`) through our GEMM, or undefined. */
export function fastConv2D(args: KernelArgs, options: GemmRunOptions = {}): tf.TensorInfo | undefined {
  const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  const g = x.dtype === "float32" && filter.dtype === "float32"
    ? convGeometry(x.shape, filter.shape, args.attrs as unknown as ConvAttrs)
    : undefined;
  if (!g) return undefined;
  // Batch norm usually follows, and reads split-K partials as it goes (kernels/deferred_split_k.ts).
  return runGemm(args.backend as WebGPUBackend, convForwardSpec(g), [x, filter], { deferSplitK: true, ...options });
}

/** Conv2DBackpropFilter (inputs `x`, `dy`; attr `filterShape`) through our split-K GEMM, or undefined. */
export function fastConv2DBackpropFilter(args: KernelArgs, options: GemmRunOptions = {}): tf.TensorInfo | undefined {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
  const g = x.dtype === "float32" && dy.dtype === "float32"
    ? convGeometry(x.shape, attrs.filterShape, { ...attrs, dilations: 1 })
    : undefined;
  if (!g) return undefined;
  // The weight gradient usually goes straight to the optimizer, which reads split-K partials as it goes.
  return runGemm(args.backend as WebGPUBackend, convBackpropFilterSpec(g), [x, dy], { deferSplitK: true, ...options });
}

/** Conv2DBackpropInput (inputs `dy`, `filter`; attr `inputShape`) through our GEMM, or undefined. */
export function fastConv2DBackpropInput(
  args: KernelArgs,
  options: ConvBackpropInputOptions = {},
): tf.TensorInfo | undefined {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
  const g = dy.dtype === "float32" && filter.dtype === "float32"
    ? convGeometry(attrs.inputShape, filter.shape, { ...attrs, dilations: 1 })
    : undefined;
  if (!g) return undefined;
  const backend = args.backend as WebGPUBackend;
  // Strided: one dense GEMM per pixel-parity class when each is big enough to fill the device on its own.
  const parity = options.parity ?? "auto";
  const byParity = g.strideHeight * g.strideWidth > 1 && parity !== "never"
    ? runGemmsInto(backend, convBackpropInputParitySpecs(g), [dy, filter], [...attrs.inputShape], {
      tiling: options.tiling,
      force: parity === "always",
    })
    : undefined;
  // The gradient of a batch norm's output, usually: its backward reads split-K partials as it goes.
  return byParity ?? runGemm(backend, convBackpropInputSpec(g), [dy, filter], { deferSplitK: true, ...options });
}
