/**
 * The per-batch draws of mixup and cutmix (torchvision's reference `RandomMixup` and `RandomCutmix` with p = 1, one
 * of them per batch with equal probability when both are on, as its `RandomChoice`): λ from Beta(α, α) and, for
 * cutmix, the box and λ re-adjusted to its area. Each batch's draws are a pure function of (seed, epoch, batch
 * index), so a resumed run mixes its batches as an uninterrupted one. The mixing itself runs on the GPU
 * (`kernels/mix_batch.ts`).
 * @module
 */
import { keyedRandom, type Random } from "./random.ts";
import { RandomStream } from "./batch_plan.ts";
import type { MixBox, MixParams } from "../kernels/mix_batch.ts";

export type { MixBox, MixParams };

/** The mixing options of a run: a Beta parameter each, 0 = off. */
export interface BatchMixOptions {
  mixupAlpha: number;
  cutmixAlpha: number;
}

/** One batch's mixing: which, the label weight λ of each sample's own label, and cutmix's box. */
export interface BatchMix extends MixParams {
  kind: "mixup" | "cutmix";
}

/** A standard normal draw (Box–Muller). */
function normal(random: Random): number {
  const u = 1 - random(); // (0, 1]: log(0) never
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** A Gamma(a, 1) draw (Marsaglia and Tsang; for a < 1, Gamma(a + 1)·U^(1/a)). */
export function sampleGamma(random: Random, a: number): number {
  if (!(a > 0)) throw new RangeError(`sampleGamma: shape must be > 0, got ${a}`);
  if (a < 1) return sampleGamma(random, a + 1) * Math.pow(1 - random(), 1 / a);
  const d = a - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(random);
    const v0 = 1 + c * x;
    if (v0 <= 0) continue;
    const v = v0 * v0 * v0;
    const u = 1 - random();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** A Beta(a, a) draw, as the first component of a Dirichlet(a, a) (torch's `_sample_dirichlet`): G1 / (G1 + G2). */
export function sampleBeta(random: Random, a: number): number {
  const g1 = sampleGamma(random, a), g2 = sampleGamma(random, a);
  return g1 + g2 > 0 ? g1 / (g1 + g2) : random() < 0.5 ? 0 : 1; // tiny α: both can underflow to 0
}

/**
 * torchvision's cutmix box for a drawn λ and centre (rx, ry) in an H×W image: half-sides int(r·W), int(r·H) with
 * r = 0.5·√(1 − λ), clamped to the image; λ re-adjusted to 1 − box area / image area.
 */
export function cutmixBox(lambda: number, rx: number, ry: number, height: number, width: number): BatchMix {
  const r = 0.5 * Math.sqrt(1 - lambda);
  const halfW = Math.trunc(r * width), halfH = Math.trunc(r * height);
  const box = {
    x1: Math.max(rx - halfW, 0),
    y1: Math.max(ry - halfH, 0),
    x2: Math.min(rx + halfW, width),
    y2: Math.min(ry + halfH, height),
  };
  return { kind: "cutmix", lambda: 1 - (box.x2 - box.x1) * (box.y2 - box.y1) / (width * height), box };
}

/** One batch's mixing from `random` (null when both are off): the choice, λ ~ Beta(α, α), cutmix's centre. */
export function sampleBatchMix(
  random: Random,
  options: BatchMixOptions,
  height: number,
  width: number,
): BatchMix | null {
  const kinds = ([["mixup", options.mixupAlpha], ["cutmix", options.cutmixAlpha]] as const).filter(([, a]) => a > 0);
  if (kinds.length === 0) return null;
  const [kind, alpha] = kinds.length === 1 ? kinds[0] : kinds[random() < 0.5 ? 0 : 1];
  const lambda = sampleBeta(random, alpha);
  if (kind === "mixup") return { kind, lambda, box: null };
  const rx = Math.floor(random() * width), ry = Math.floor(random() * height);
  return cutmixBox(lambda, rx, ry, height, width);
}

/** The mixing of batch `batch` of epoch `epoch` (null when both are off); the same for the same keys. */
export function batchMixFor(
  seed: number,
  epoch: number,
  batch: number,
  options: BatchMixOptions,
  height: number,
  width: number,
): BatchMix | null {
  return sampleBatchMix(keyedRandom(seed, RandomStream.batchMix, epoch, batch), options, height, width);
}
