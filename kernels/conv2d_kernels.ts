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
import { type GemmRunOptions, prepareGemm, prepareGemmsInto } from "./run_gemm.ts";

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** Options of {@linkcode fastConv2DBackpropInput}: the tiling, and whether a strided one goes by parity classes. */
export interface ConvBackpropInputOptions extends GemmRunOptions {
  /**
   * Strided convolutions: one dense GEMM per pixel-parity class. "auto" (default) when every class fills at least
   * half the device, else the single split-K GEMM; "always" and "never" force one path (tests).
   */
  parity?: "auto" | "always" | "never";
}

/** How a convolution of one shape runs: its prepared GEMM(s), or null when ours declines it. */
type PreparedConv = { run(inputs: tf.TensorInfo[]): tf.TensorInfo } | null;

/**
 * Prepared convolutions by pass, shapes and attributes, per backend: a training step runs the same few dozen shapes
 * every step, and the geometry, the GEMM specs (their WGSL loaders), the tiling and the program are the same each
 * time (~20 µs of CPU a call on the software adapter). Only for the device's own tiling (`options` without `tiling`).
 */
const prepared = new WeakMap<object, Map<string, PreparedConv>>();

function preparedConv(
  args: KernelArgs,
  pass: string,
  shapes: readonly (readonly number[])[],
  options: GemmRunOptions & { parity?: string },
  prepare: () => PreparedConv,
): PreparedConv {
  if (options.tiling) return prepare();
  let cache = prepared.get(args.backend);
  if (!cache) prepared.set(args.backend, cache = new Map());
  const a = args.attrs as Record<string, unknown>;
  const key = `${pass}|${shapes.join("|")}|${a.strides}|${a.pad}|${a.dimRoundingMode}|${a.dilations}|${a.dataFormat}|` +
    `${options.parity}|${options.deferSplitK}`;
  let p = cache.get(key);
  if (p === undefined) cache.set(key, p = prepare());
  return p;
}

/** Conv2D (inputs `x`, `filter`) through our GEMM, or undefined. */
export function fastConv2D(args: KernelArgs, options: GemmRunOptions = {}): tf.TensorInfo | undefined {
  const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  if (x.dtype !== "float32" || filter.dtype !== "float32") return undefined;
  const conv = preparedConv(args, "fwd", [x.shape, filter.shape], options, () => {
    const g = convGeometry(x.shape, filter.shape, args.attrs as unknown as ConvAttrs);
    // Batch norm usually follows, and reads split-K partials as it goes (kernels/deferred_split_k.ts).
    return g
      ? prepareGemm(args.backend as WebGPUBackend, convForwardSpec(g), { deferSplitK: true, ...options }) ?? null
      : null;
  });
  return conv?.run([x, filter]);
}

/** Conv2DBackpropFilter (inputs `x`, `dy`; attr `filterShape`) through our split-K GEMM, or undefined. */
export function fastConv2DBackpropFilter(args: KernelArgs, options: GemmRunOptions = {}): tf.TensorInfo | undefined {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
  if (x.dtype !== "float32" || dy.dtype !== "float32") return undefined;
  const conv = preparedConv(args, "dw", [x.shape, dy.shape, attrs.filterShape], options, () => {
    const g = convGeometry(x.shape, attrs.filterShape, { ...attrs, dilations: 1 });
    // The weight gradient usually goes straight to the optimizer, which reads split-K partials as it goes.
    const spec = g && convBackpropFilterSpec(g);
    return spec ? prepareGemm(args.backend as WebGPUBackend, spec, { deferSplitK: true, ...options }) ?? null : null;
  });
  return conv?.run([x, dy]);
}

/** Conv2DBackpropInput (inputs `dy`, `filter`; attr `inputShape`) through our GEMM, or undefined. */
export function fastConv2DBackpropInput(
  args: KernelArgs,
  options: ConvBackpropInputOptions = {},
): tf.TensorInfo | undefined {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
  if (dy.dtype !== "float32" || filter.dtype !== "float32") return undefined;
  const conv = preparedConv(args, "dx", [dy.shape, filter.shape, attrs.inputShape], options, () => {
    const g = convGeometry(attrs.inputShape, filter.shape, { ...attrs, dilations: 1 });
    if (!g) return null;
    const backend = args.backend as WebGPUBackend;
    // Strided: one dense GEMM per pixel-parity class when each is big enough to fill the device on its own.
    const parity = options.parity ?? "auto";
    const byParity = g.strideHeight * g.strideWidth > 1 && parity !== "never"
      ? prepareGemmsInto(backend, convBackpropInputParitySpecs(g), [...attrs.inputShape], {
        tiling: options.tiling,
        force: parity === "always",
        deferSplitK: true,
      })
      : undefined;
    // The gradient of a batch norm's output, usually: its backward reads split-K partials as it goes.
    return byParity ?? prepareGemm(backend, convBackpropInputSpec(g), { deferSplitK: true, ...options }) ?? null;
  });
  return conv?.run([dy, filter]);
}
