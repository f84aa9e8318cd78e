/**
 * Per-op GPU timing for the kernels we replace: convolution forward, backprop-input and backprop-filter at the
 * shapes a ResNet stage runs, and a square matmul. Each measurement launches the op `reps` times back to back and
 * synchronises once (one readback of the last output), so launch overhead is amortised and no per-launch readback
 * serialises the queue.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { batchNormTrain } from "../kernels/batch_norm_train.ts";
import { convOutputSize } from "../models/resnet_summary.ts";

/** One op to time. */
export interface OpCase {
  /** Short label, e.g. "conv3x3 fwd 64ch 32x32". */
  name: string;
  /** `batchNormRelu`: training-mode BN + ReLU forward and backward (ours: fused; stock: tfjs composite). */
  kind: "conv2d" | "conv2dBackpropInput" | "conv2dBackpropFilter" | "matMul" | "batchNormRelu";
  /** conv and batchNormRelu: [batch, height, width, inChannels]; matMul: [m, k]. */
  xShape: number[];
  /** conv: [kh, kw, inChannels, outChannels]; matMul: [k, n]; batchNormRelu: [C]. */
  wShape: number[];
  /** Convolution stride (ignored for matMul). */
  stride: number;
  /** Symmetric convolution padding (ignored for matMul). */
  pad: number;
}

/** Timing of one {@linkcode OpCase}. */
export interface OpTiming {
  /** Mean milliseconds per launch. */
  ms: number;
  /** Achieved TFLOP/s (2 FLOP per multiply-accumulate). */
  tflops: number;
  /** Launches averaged. */
  reps: number;
}

/** Multiply-accumulates of one launch of `c` (the same for the three convolution passes; 0 for batch norm). */
export function opMacs(c: OpCase): number {
  if (c.kind === "batchNormRelu") return 0;
  if (c.kind === "matMul") return c.xShape[0] * c.xShape[1] * c.wShape[1];
  const [b, h, w] = c.xShape;
  const [kh, kw, ci, co] = c.wShape;
  const oh = convOutputSize(h, kh, c.stride, c.pad), ow = convOutputSize(w, kw, c.stride, c.pad);
  return b * oh * ow * co * kh * kw * ci;
}

/**
 * The ops a ResNet's 3×3 convolutions run at each stage (`width`·2^i channels, `size`/2^i pixels, batch `batch`),
 * forward and both backward passes, plus a `matmulSize`³ matmul.
 */
export function resnetOpCases(batch: number, width: number, size: number, matmulSize: number): OpCase[] {
  const cases: OpCase[] = [];
  for (let i = 0; i < 4; i++) {
    const c = width * 2 ** i, s = Math.max(1, Math.floor(size / 2 ** i));
    const base = { xShape: [batch, s, s, c], wShape: [3, 3, c, c], stride: 1, pad: 1 };
    cases.push({ ...base, name: `conv3x3 fwd ${c}ch ${s}x${s}`, kind: "conv2d" });
    cases.push({ ...base, name: `conv3x3 bwd-input ${c}ch ${s}x${s}`, kind: "conv2dBackpropInput" });
    cases.push({ ...base, name: `conv3x3 bwd-filter ${c}ch ${s}x${s}`, kind: "conv2dBackpropFilter" });
    if (i === 0) {
      cases.push({ ...base, wShape: [c], name: `bn+relu fwd+bwd ${c}ch ${s}x${s}`, kind: "batchNormRelu" });
    }
  }
  cases.push({
    name: `matmul ${matmulSize}^3`,
    kind: "matMul",
    xShape: [matmulSize, matmulSize],
    wShape: [matmulSize, matmulSize],
    stride: 1,
    pad: 0,
  });
  return cases;
}

/** Forward and backward of BN + ReLU, fused or composite; returns dx (the other gradients are disposed). */
function batchNormReluStep(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, dy: tf.Tensor, fused: boolean) {
  const f = (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    if (fused) {
      return batchNormTrain(a as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, { eps: 1e-5, relu: true }).y.mul(dy)
        .sum();
    }
    const { mean, variance } = tf.moments(a, [0, 1, 2]);
    return tf.relu(tf.batchNorm(a, mean, variance, b as tf.Tensor1D, g as tf.Tensor1D, 1e-5)).mul(dy).sum();
  };
  return tf.tidy(() => tf.grads(f)([x, gamma, beta])[0]);
}

/**
 * The convolutions a ResNet runs besides its 3×3 stride-1 ones, each forward and both backward passes: the first
 * 3×3/2 of stage 2 (`width` → 2·`width` channels at `size` pixels) and its 1×1/2 projection shortcut, and the 7×7/2
 * ImageNet stem (3 → `width` channels at `input` pixels), so that `--compare-stock` checks the strided paths (the
 * pixel-parity backprop-input), 1×1 and 7×7 on the adapter at hand.
 */
export function resnetStridedOpCases(batch: number, width: number, size: number, input: number): OpCase[] {
  const convs = [
    { label: `conv3x3/2 ${width}->${2 * width}ch ${size}x${size}`, c: width, s: size, k: 3, co: 2 * width, pad: 1 },
    { label: `conv1x1/2 ${width}->${2 * width}ch ${size}x${size}`, c: width, s: size, k: 1, co: 2 * width, pad: 0 },
    { label: `conv7x7/2 3->${width}ch ${input}x${input}`, c: 3, s: input, k: 7, co: width, pad: 3 },
  ];
  const kinds = [["fwd", "conv2d"], ["bwd-input", "conv2dBackpropInput"], [
    "bwd-filter",
    "conv2dBackpropFilter",
  ]] as const;
  return convs.flatMap(({ label, c, s, k, co, pad }) =>
    kinds.map(([pass, kind]) => ({
      name: label.replace(" ", ` ${pass} `),
      kind,
      xShape: [batch, s, s, c],
      wShape: [k, k, c, co],
      stride: 2,
      pad,
    }))
  );
}

/**
 * Builds the inputs of `c` and returns a function launching it once (the caller disposes what it returns).
 * `stock` picks the composite batch norm (the registered kernels decide for the other ops).
 */
function prepare(c: OpCase, stock: boolean): { inputs: tf.Tensor[]; launch: () => tf.Tensor } {
  const pad: tf.backend_util.ExplicitPadding = [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]];
  const x = tf.randomNormal(c.xShape, 0, 1, "float32", 1);
  const w = tf.randomNormal(c.wShape, 0, 1, "float32", 2);
  if (c.kind === "matMul") return { inputs: [x, w], launch: () => tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D) };
  if (c.kind === "batchNormRelu") {
    const beta = tf.randomNormal(c.wShape, 0, 1, "float32", 4);
    const dy = tf.randomNormal(c.xShape, 0, 1, "float32", 3);
    return {
      inputs: [x, w, beta, dy],
      launch: () => batchNormReluStep(x as tf.Tensor4D, w as tf.Tensor1D, beta as tf.Tensor1D, dy, !stock),
    };
  }
  const yShape = tf.backend_util.computeConv2DInfo(
    c.xShape as [number, number, number, number],
    c.wShape as [number, number, number, number],
    c.stride,
    1,
    pad,
  ).outShape;
  const dy = tf.randomNormal(yShape, 0, 1, "float32", 3);
  const attrs = { strides: [c.stride, c.stride], pad, dataFormat: "NHWC" };
  const launch = {
    conv2d: () => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, pad),
    conv2dBackpropInput: () =>
      tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: w }, { ...attrs, inputShape: c.xShape }) as tf.Tensor,
    conv2dBackpropFilter: () =>
      tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, { ...attrs, filterShape: c.wShape }) as tf.Tensor,
  }[c.kind];
  return { inputs: [x, w, dy], launch };
}

/**
 * The output of one launch of `c` with whatever kernels are registered, read back (inputs are seeded, so two calls
 * see the same inputs): compare ours with stock at full size on the adapter at hand.
 */
export async function opOutput(c: OpCase, options: { stock?: boolean } = {}): Promise<Float32Array> {
  const { inputs, launch } = prepare(c, options.stock ?? false);
  try {
    const y = launch();
    try {
      return (await y.data()) as Float32Array;
    } finally {
      y.dispose();
    }
  } finally {
    tf.dispose(inputs);
  }
}

/** Options of {@linkcode timeOp}. */
export interface TimeOpOptions {
  /** Untimed launches, each synchronised (the first compiles the pipelines; the last sizes the run). Default 2. */
  warmup?: number;
  /** Timed launches; default: enough for about `targetSeconds`, going by the last warm-up launch. */
  reps?: number;
  /** Wanted length of the timed run when `reps` is not given (default 0.5 s). */
  targetSeconds?: number;
  /** Most timed launches when `reps` is not given (default 50). */
  maxReps?: number;
  /** The composite batch norm instead of ours (the registered kernels decide for the other ops). */
  stock?: boolean;
}

/**
 * Times `c` with whatever kernels are registered: `warmup` synchronised launches, then `reps` launches (or enough
 * for about `targetSeconds`, at least 1, at most `maxReps`) synchronised once. To compare two sides fairly, time one
 * and pass its `reps` to the other: both then run the same warm-up and the same repetitions.
 */
export async function timeOp(c: OpCase, options: TimeOpOptions = {}): Promise<OpTiming> {
  const { warmup = 2, targetSeconds = 0.5, maxReps = 50, stock = false } = options;
  if (!(warmup >= 1)) throw new RangeError(`timeOp: warmup must be >= 1, got ${warmup}`);
  const { inputs, launch } = prepare(c, stock);
  try {
    const runSynced = async (n: number) => {
      const t0 = performance.now();
      let last: tf.Tensor | undefined;
      for (let i = 0; i < n; i++) {
        last?.dispose();
        last = launch();
      }
      // Wait on a one-element slice queued after the last launch: the queue is in order, so this synchronises on
      // every launch without timing the readback of a large output.
      const probe = tf.tidy(() => last!.reshape([-1]).slice(0, 1));
      await probe.data();
      tf.dispose([probe, last!]);
      return (performance.now() - t0) / 1000;
    };
    let once = 0;
    for (let i = 0; i < warmup; i++) once = await runSynced(1);
    const reps = options.reps ?? Math.max(1, Math.min(maxReps, Math.ceil(targetSeconds / Math.max(once, 1e-6))));
    const seconds = await runSynced(reps);
    const ms = (seconds / reps) * 1000;
    return { ms, tflops: (2 * opMacs(c)) / (ms / 1000) / 1e12, reps };
  } finally {
    tf.dispose(inputs);
  }
}
