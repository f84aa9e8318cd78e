/**
 * Reads a tfjs convolution's attributes into a {@linkcode ConvGeometry}, or says why our kernels do not cover it
 * (then the stock kernel runs).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ConvGeometry } from "./conv_gemm_specs.ts";

/** The attributes tfjs passes to Conv2D, Conv2DBackpropInput and Conv2DBackpropFilter kernels. */
export interface ConvAttrs {
  /** Stride, one number or [height, width]. */
  strides: number | [number, number];
  /** tfjs padding: "valid", "same", a symmetric number, or explicit per-axis pairs. */
  pad: "valid" | "same" | number | tf.backend_util.ExplicitPadding;
  /** Layout; only NHWC is ours. */
  dataFormat?: "NHWC" | "NCHW";
  /** Dilation; only 1 is ours. */
  dilations?: number | [number, number];
  /** Rounding of the output size with numeric padding. */
  dimRoundingMode?: "floor" | "round" | "ceil";
}

/**
 * Geometry of an NHWC, dilation-1 convolution with input shape `xShape` and filter shape `filterShape`
 * ([KH, KW, CI, CO]), or undefined when the convolution is outside what our kernels implement (NCHW, dilation).
 */
export function convGeometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  attrs: ConvAttrs,
): ConvGeometry | undefined {
  if ((attrs.dataFormat ?? "NHWC") !== "NHWC") return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    "channelsLast",
  );
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return undefined;
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}
