/**
 * torchvision's automatic augmentation policies as data, and their random draws: TrivialAugmentWide, RandAugment
 * (N operations at magnitude bin M of 31) and AutoAugment with the ImageNet and CIFAR-10 policies (torchvision 0.14's
 * tables, magnitude bins and signs). A sampler turns uniform draws into {@linkcode AugmentStep}s; `augment_ops.ts`
 * applies them. The magnitude tables are `torch.linspace` in float32 exactly as PyTorch computes them, because
 * torchvision truncates translations to whole pixels and compares solarize thresholds with bytes, where one ulp
 * changes the image.
 * @module
 */
import { type AugmentOp, type AugmentStep } from "./augment_ops.ts";
import type { Random } from "./random.ts";
import { roundHalfEven } from "./transforms.ts";

const fround = Math.fround;

/**
 * `none`, TrivialAugmentWide (`ta_wide`), RandAugment (`ra`), or AutoAugment with the `imagenet` or `cifar10` policy;
 * the values of torchvision's reference scripts' `--auto-augment`.
 */
export const AUTO_AUGMENT_POLICIES = ["none", "ta_wide", "ra", "imagenet", "cifar10"] as const;
/** One of {@linkcode AUTO_AUGMENT_POLICIES}. */
export type AutoAugmentPolicy = typeof AUTO_AUGMENT_POLICIES[number];

/** Magnitude bins of TrivialAugmentWide and RandAugment (torchvision's `num_magnitude_bins` default). */
export const MAGNITUDE_BINS = 31;
/** Magnitude bins of AutoAugment's policies. */
export const AUTO_AUGMENT_BINS = 10;

/**
 * `torch.linspace(start, end, steps)` in float32 as PyTorch 1.13's CPU kernel computes it (with AVX2): step =
 * (end − start) / (steps − 1); the first half start + i·step, the second end − (steps − 1 − i)·step, each rounded
 * once (the compiler fuses the multiply-add); except that pairs of 8-lane vectors, while 16 values remain, take
 * base + (k·step rounded) from their first lane's value.
 */
export function torchLinspace(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) out[0] = start;
  if (steps <= 1) return out;
  const s = fround(start), e = fround(end);
  const step = fround(fround(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  // step·i is exact in a double and so is the sum: fround rounds once, like a fused multiply-add.
  const scalar = (i: number) => i < half ? fround(s + step * i) : fround(e - step * (steps - i - 1));
  let i = 0;
  for (; i <= steps - 16; i += 16) {
    for (const block of [i, i + 8]) {
      const base = scalar(block);
      for (let k = 0; k < 8; k++) out[block + k] = fround(base + fround(k * step));
    }
  }
  for (; i < steps; i++) out[i] = scalar(i);
  return out;
}

/** One operation of an augmentation space: its magnitudes by bin (empty when it takes none) and whether signed. */
export interface SpaceEntry {
  op: AugmentOp;
  magnitudes: Float32Array;
  signed: boolean;
}

/** The transforms whose augmentation space {@linkcode augmentationSpace} builds. */
export type SpaceKind = "ta_wide" | "ra" | "aa";

/**
 * The `_augmentation_space` of TrivialAugmentWide (`ta_wide`), RandAugment (`ra`) or AutoAugment (`aa`) with `bins`
 * magnitude bins for an `height`×`width` image, in torchvision's order (RandAugment and TrivialAugmentWide draw an
 * operation by its index in this list).
 */
export function augmentationSpace(kind: SpaceKind, bins: number, height: number, width: number): SpaceEntry[] {
  const none = new Float32Array(0);
  const wide = kind === "ta_wide";
  const lin = (end: number) => torchLinspace(0, end, bins);
  // 8 − round(i / ((bins − 1) / k)): float32 quotients, rounded half to even (torch.round).
  const posterize = (k: number) => {
    const divisor = fround((bins - 1) / k);
    return Float32Array.from({ length: bins }, (_, i) => 8 - roundHalfEven(fround(i / divisor)));
  };
  const entries: [AugmentOp, Float32Array, boolean][] = [
    ["Identity", none, false],
    ["ShearX", lin(wide ? 0.99 : 0.3), true],
    ["ShearY", lin(wide ? 0.99 : 0.3), true],
    ["TranslateX", lin(wide ? 32 : (150 / 331) * width), true],
    ["TranslateY", lin(wide ? 32 : (150 / 331) * height), true],
    ["Rotate", lin(wide ? 135 : 30), true],
    ["Brightness", lin(wide ? 0.99 : 0.9), true],
    ["Color", lin(wide ? 0.99 : 0.9), true],
    ["Contrast", lin(wide ? 0.99 : 0.9), true],
    ["Sharpness", lin(wide ? 0.99 : 0.9), true],
    ["Posterize", posterize(wide ? 6 : 4), false],
    ["Solarize", torchLinspace(255, 0, bins), false],
    ["AutoContrast", none, false],
    ["Equalize", none, false],
  ];
  // AutoAugment has no Identity and adds Invert.
  if (kind === "aa") {
    entries.shift();
    entries.push(["Invert", none, false]);
  }
  return entries.map(([op, magnitudes, signed]) => ({ op, magnitudes, signed }));
}

/** One operation of an AutoAugment sub-policy: its name, its probability and its magnitude bin (null: none). */
export type PolicyOp = readonly [AugmentOp, number, number | null];

/** torchvision 0.14's AutoAugment sub-policies (pairs of operations), ImageNet's and CIFAR-10's. */
export const AUTO_AUGMENT_SUBPOLICIES: Readonly<
  Record<"imagenet" | "cifar10", readonly (readonly [PolicyOp, PolicyOp])[]>
> = {
  imagenet: [
    [["Posterize", 0.4, 8], ["Rotate", 0.6, 9]],
    [["Solarize", 0.6, 5], ["AutoContrast", 0.6, null]],
    [["Equalize", 0.8, null], ["Equalize", 0.6, null]],
    [["Posterize", 0.6, 7], ["Posterize", 0.6, 6]],
    [["Equalize", 0.4, null], ["Solarize", 0.2, 4]],
    [["Equalize", 0.4, null], ["Rotate", 0.8, 8]],
    [["Solarize", 0.6, 3], ["Equalize", 0.6, null]],
    [["Posterize", 0.8, 5], ["Equalize", 1.0, null]],
    [["Rotate", 0.2, 3], ["Solarize", 0.6, 8]],
    [["Equalize", 0.6, null], ["Posterize", 0.4, 6]],
    [["Rotate", 0.8, 8], ["Color", 0.4, 0]],
    [["Rotate", 0.4, 9], ["Equalize", 0.6, null]],
    [["Equalize", 0.0, null], ["Equalize", 0.8, null]],
    [["Invert", 0.6, null], ["Equalize", 1.0, null]],
    [["Color", 0.6, 4], ["Contrast", 1.0, 8]],
    [["Rotate", 0.8, 8], ["Color", 1.0, 2]],
    [["Color", 0.8, 8], ["Solarize", 0.8, 7]],
    [["Sharpness", 0.4, 7], ["Invert", 0.6, null]],
    [["ShearX", 0.6, 5], ["Equalize", 1.0, null]],
    [["Color", 0.4, 0], ["Equalize", 0.6, null]],
    [["Equalize", 0.4, null], ["Solarize", 0.2, 4]],
    [["Solarize", 0.6, 5], ["AutoContrast", 0.6, null]],
    [["Invert", 0.6, null], ["Equalize", 1.0, null]],
    [["Color", 0.6, 4], ["Contrast", 1.0, 8]],
    [["Equalize", 0.8, null], ["Equalize", 0.6, null]],
  ],
  cifar10: [
    [["Invert", 0.1, null], ["Contrast", 0.2, 6]],
    [["Rotate", 0.7, 2], ["TranslateX", 0.3, 9]],
    [["Sharpness", 0.8, 1], ["Sharpness", 0.9, 3]],
    [["ShearY", 0.5, 8], ["TranslateY", 0.7, 9]],
    [["AutoContrast", 0.5, null], ["Equalize", 0.9, null]],
    [["ShearY", 0.2, 7], ["Posterize", 0.3, 7]],
    [["Color", 0.4, 3], ["Brightness", 0.6, 7]],
    [["Sharpness", 0.3, 9], ["Brightness", 0.7, 9]],
    [["Equalize", 0.6, null], ["Equalize", 0.5, null]],
    [["Contrast", 0.6, 7], ["Sharpness", 0.6, 5]],
    [["Color", 0.7, 7], ["TranslateX", 0.5, 8]],
    [["Equalize", 0.3, null], ["AutoContrast", 0.4, null]],
    [["TranslateY", 0.4, 3], ["Sharpness", 0.2, 6]],
    [["Brightness", 0.9, 6], ["Color", 0.2, 8]],
    [["Solarize", 0.5, 2], ["Invert", 0.0, null]],
    [["Equalize", 0.2, null], ["AutoContrast", 0.6, null]],
    [["Equalize", 0.2, null], ["Equalize", 0.6, null]],
    [["Color", 0.9, 9], ["Equalize", 0.6, null]],
    [["AutoContrast", 0.8, null], ["Solarize", 0.2, 8]],
    [["Brightness", 0.1, 3], ["Color", 0.7, 0]],
    [["Solarize", 0.4, 5], ["AutoContrast", 0.9, null]],
    [["TranslateY", 0.9, 9], ["TranslateY", 0.7, 9]],
    [["AutoContrast", 0.9, null], ["Solarize", 0.8, 3]],
    [["Equalize", 0.8, null], ["Invert", 0.1, null]],
    [["TranslateY", 0.7, 9], ["AutoContrast", 0.9, null]],
  ],
};

/** What {@linkcode autoAugmentSampler} draws from: the policy, and RandAugment's N operations at bin M. */
export interface AutoAugmentSettings {
  policy: AutoAugmentPolicy;
  /** RandAugment: operations applied in sequence (torchvision's `num_ops`, default 2). */
  raNumOps?: number;
  /** RandAugment: the magnitude bin, 0..30 (torchvision's `magnitude`, default 9). */
  raMagnitude?: number;
}

/** A uniform integer in [0, n). */
function below(random: Random, n: number): number {
  return Math.floor(random() * n);
}

/** A magnitude: bin `bin` of `entry` (0 when it takes none), negated with probability 1/2 when signed. */
function magnitudeOf(entry: SpaceEntry, bin: number | null, negate: () => boolean): number {
  const m = bin === null || entry.magnitudes.length === 0 ? 0 : entry.magnitudes[bin];
  return entry.signed && negate() ? -m : m;
}

/**
 * The random draws of torchvision's `forward` for `settings` on `height`×`width` images, as a function from a
 * uniform stream to the operations to apply (none for `none`; zero, one or two for AutoAugment's sub-policies):
 * - `ta_wide`: one operation uniformly, one of 31 bins uniformly, a sign;
 * - `ra`: `raNumOps` times an operation uniformly (Identity included) at bin `raMagnitude`, a sign;
 * - `imagenet`, `cifar10`: a sub-policy uniformly, then each of its two operations with its probability
 *   (`u ≤ p`) at its bin, a sign.
 * The tables are built once here; the returned function allocates only its result.
 * @throws {RangeError} for a RandAugment bin outside 0..30 or a negative number of operations.
 */
export function autoAugmentSampler(
  settings: AutoAugmentSettings,
  height: number,
  width: number,
): (random: Random) => AugmentStep[] {
  const { policy } = settings;
  const sign = (random: Random) => () => random() < 0.5;
  switch (policy) {
    case "none":
      return () => [];
    case "ta_wide": {
      const space = augmentationSpace("ta_wide", MAGNITUDE_BINS, height, width);
      return (random) => {
        const entry = space[below(random, space.length)];
        const bin = entry.magnitudes.length > 0 ? below(random, entry.magnitudes.length) : null;
        return [{ op: entry.op, magnitude: magnitudeOf(entry, bin, sign(random)) }];
      };
    }
    case "ra": {
      const n = settings.raNumOps ?? 2, bin = settings.raMagnitude ?? 9;
      if (!Number.isInteger(n) || n < 0) throw new RangeError(`raNumOps must be an integer >= 0, received ${n}`);
      if (!Number.isInteger(bin) || bin < 0 || bin >= MAGNITUDE_BINS) {
        throw new RangeError(`raMagnitude must be an integer in [0, ${MAGNITUDE_BINS - 1}], received ${bin}`);
      }
      const space = augmentationSpace("ra", MAGNITUDE_BINS, height, width);
      return (random) =>
        Array.from({ length: n }, () => {
          const entry = space[below(random, space.length)];
          return { op: entry.op, magnitude: magnitudeOf(entry, bin, sign(random)) };
        });
    }
    case "imagenet":
    case "cifar10": {
      const space = new Map(augmentationSpace("aa", AUTO_AUGMENT_BINS, height, width).map((e) => [e.op, e]));
      const subpolicies = AUTO_AUGMENT_SUBPOLICIES[policy];
      return (random) => {
        const pair = subpolicies[below(random, subpolicies.length)];
        // get_params draws the policy, both probabilities and both signs up front.
        const probs = [random(), random()], negate = [random() < 0.5, random() < 0.5];
        const steps: AugmentStep[] = [];
        pair.forEach(([op, p, bin], i) => {
          if (probs[i] <= p) steps.push({ op, magnitude: magnitudeOf(space.get(op)!, bin, () => negate[i]) });
        });
        return steps;
      };
    }
  }
}
