/**
 * The per-image augmentations of a training batch, in torchvision's order: crop and flip (done by the caller's
 * sampler), then the automatic augmentation on the uint8 image (TrivialAugmentWide, RandAugment or AutoAugment),
 * ToTensor + Normalize, then RandomErasing on the normalised image with value 0. Each draw has its own random stream
 * keyed by (seed, epoch, sample index), so a batch is the same whichever worker builds it, a resumed run sees the
 * same images, and turning an option on leaves the crops and flips of the other options unchanged.
 * @module
 */
import { applyAugmentSteps } from "./augment_ops.ts";
import { AUTO_AUGMENT_POLICIES, type AutoAugmentPolicy, autoAugmentSampler, MAGNITUDE_BINS } from "./auto_augment.ts";
import { RandomStream } from "./batch_plan.ts";
import { keyedRandom } from "./random.ts";
import { eraseBox, sampleRandomErasing } from "./random_erasing.ts";
import { type NormalizeCoefficients, type PadCropFlip, writeCropFlip } from "./transforms.ts";

/** The per-image augmentations after the crop and flip; JSON-serialisable (it travels to the decode workers). */
export interface ImageAugmentation {
  /** TrivialAugmentWide, RandAugment, AutoAugment's ImageNet or CIFAR-10 policy, or none. */
  autoAugment: AutoAugmentPolicy;
  /** RandAugment: operations per image (torchvision's `num_ops`). */
  raNumOps: number;
  /** RandAugment: magnitude bin, 0..30 (torchvision's `magnitude`). */
  raMagnitude: number;
  /** Probability of RandomErasing (torchvision's scale 0.02–0.33, ratio 0.3–3.3, value 0); 0 = off. */
  randomErase: number;
}

/** No augmentation beyond the crop and flip (RandAugment's fields at torchvision's defaults). */
export const NO_IMAGE_AUGMENTATION: Readonly<ImageAugmentation> = {
  autoAugment: "none",
  raNumOps: 2,
  raMagnitude: 9,
  randomErase: 0,
};

/**
 * The problems of `a`, as `field: expected ..., received ...` lines (empty when valid), so that callers can name the
 * field in their own terms.
 */
export function imageAugmentationProblems(a: ImageAugmentation): string[] {
  const problems: string[] = [];
  if (!AUTO_AUGMENT_POLICIES.includes(a.autoAugment)) {
    problems.push(
      `autoAugment: expected ${AUTO_AUGMENT_POLICIES.join(" | ")}, received ${JSON.stringify(a.autoAugment)}`,
    );
  }
  if (!Number.isInteger(a.raNumOps) || a.raNumOps < 0) {
    problems.push(`raNumOps: expected an integer >= 0, received ${JSON.stringify(a.raNumOps)}`);
  }
  if (!Number.isInteger(a.raMagnitude) || a.raMagnitude < 0 || a.raMagnitude >= MAGNITUDE_BINS) {
    problems.push(
      `raMagnitude: expected an integer in [0, ${MAGNITUDE_BINS - 1}], received ${JSON.stringify(a.raMagnitude)}`,
    );
  }
  if (typeof a.randomErase !== "number" || !(a.randomErase >= 0 && a.randomErase <= 1)) {
    problems.push(`randomErase: expected a probability in [0, 1], received ${JSON.stringify(a.randomErase)}`);
  }
  return problems;
}

/**
 * Writes one training image into a batch: crop + flip of the `h`×`w` HWC bytes at `src[srcOffset..]` (zero-padded by
 * `pad`, a `size`×`size` crop at `crop`), the per-image augmentations of sample `index` in `epoch`, and the
 * normalisation, into `out[outOffset..]` (NHWC floats).
 */
export type TrainImageWriter = (
  src: Uint8Array,
  srcOffset: number,
  h: number,
  w: number,
  pad: number,
  crop: PadCropFlip,
  out: Float32Array,
  outOffset: number,
  epoch: number,
  index: number,
) => void;

/** Byte copy instead of normalisation: crop + flip into a byte image. */
const BYTES: NormalizeCoefficients = { scale: Float32Array.of(1, 1, 1), bias: Float32Array.of(0, 0, 0) };

/**
 * The {@linkcode TrainImageWriter} of `augmentation` for `size`×`size` crops normalised by `coefficients`, drawing
 * from streams keyed by `seed`. Without an automatic augmentation the crop, flip and normalisation stay one fused
 * pass; with one, the crop goes to a byte buffer first (torchvision augments the flipped uint8 crop). The two byte
 * buffers are this writer's own: one writer per thread.
 */
export function createTrainImageWriter(
  augmentation: ImageAugmentation,
  size: number,
  coefficients: NormalizeCoefficients,
  seed: number,
): TrainImageWriter {
  const sample = augmentation.autoAugment === "none" ? undefined : autoAugmentSampler(
    { policy: augmentation.autoAugment, raNumOps: augmentation.raNumOps, raMagnitude: augmentation.raMagnitude },
    size,
    size,
  );
  const image = new Uint8Array(size * size * 3), scratch = new Uint8Array(size * size * 3);
  const erase = augmentation.randomErase;
  const whole = { top: 0, left: 0, flip: false };
  return (src, srcOffset, h, w, pad, crop, out, outOffset, epoch, index) => {
    if (sample === undefined) {
      writeCropFlip(src, srcOffset, h, w, pad, crop, size, coefficients, out, outOffset);
    } else {
      if (pad === 0 && h === size && w === size && crop.top === 0 && crop.left === 0) {
        // A crop decoded at its final size (ImageNet): a copy or a mirror, without writeCropFlip's arithmetic.
        if (crop.flip) mirrorInto(src, srcOffset, size, size, image);
        else image.set(src.subarray(srcOffset, srcOffset + image.length));
      } else {
        writeCropFlip(src, srcOffset, h, w, pad, crop, size, BYTES, image, 0);
      }
      const steps = sample(keyedRandom(seed, RandomStream.autoAugment, epoch, index));
      const augmented = applyAugmentSteps(steps, image, scratch, size, size);
      writeCropFlip(augmented, 0, size, size, 0, whole, size, coefficients, out, outOffset);
    }
    if (erase > 0) {
      const box = sampleRandomErasing(keyedRandom(seed, RandomStream.randomErase, epoch, index), erase, size, size);
      if (box) eraseBox(out, outOffset, size, box);
    }
  };
}

/** The horizontal mirror of the `h`×`w` HWC byte image at `src[srcOffset..]`, written to `out` (RandomHorizontalFlip). */
export function mirrorInto(src: Uint8Array, srcOffset: number, h: number, w: number, out: Uint8Array): void {
  const row = w * 3;
  for (let y = 0; y < h; y++) {
    for (let o = y * row, i = srcOffset + o + row - 3; o < (y + 1) * row; o += 3, i -= 3) {
      out[o] = src[i];
      out[o + 1] = src[i + 1];
      out[o + 2] = src[i + 2];
    }
  }
}
