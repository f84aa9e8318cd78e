/**
 * torchvision's image transforms as pure functions: the random parameters of RandomCrop(padding) and
 * RandomResizedCrop, the Resize + CenterCrop geometry, and one fused crop + flip + normalise pass from HWC bytes into
 * the float batch. Decoding lives in `image_decode.ts`; this file has no I/O.
 * @module
 */
import { type Random, randomInt } from "./random.ts";

/** Python's `round()` for the halves torchvision's geometry meets: ties go to the even integer. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // halves go up; an odd result of a half goes back down (cheap enough for per-pixel use)
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The two augmentation families: `cifar` (RandomCrop with 4-pixel zero padding + flip, images at their own size) and
 * `imagenet` (RandomResizedCrop + flip for training, Resize + CenterCrop for evaluation).
 */
export type DataTransforms = "imagenet" | "cifar";

/** Every {@linkcode DataTransforms} value. */
export const DATA_TRANSFORMS: readonly DataTransforms[] = ["imagenet", "cifar"];

/** Per-channel mean and std in [0, 1] units, as torchvision's `Normalize` takes them. */
export interface Normalization {
  mean: [number, number, number];
  std: [number, number, number];
}

/** A crop box in pixels of the source image: rows `top .. top+height-1`, columns `left .. left+width-1`. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Random parameters of CIFAR's training augmentation (RandomCrop with padding, then RandomHorizontalFlip). */
export interface PadCropFlip {
  /** Row of the crop's top edge in the zero-padded image. */
  top: number;
  /** Column of the crop's left edge in the zero-padded image. */
  left: number;
  flip: boolean;
}

/**
 * Draws torchvision's `RandomCrop(size, padding=pad)` + `RandomHorizontalFlip()` parameters for an `h`×`w` image:
 * offsets uniform in [0, h + 2·pad − size] and [0, w + 2·pad − size], flip with probability 1/2.
 */
export function samplePadCropFlip(random: Random, h: number, w: number, size: number, pad: number): PadCropFlip {
  if (h + 2 * pad < size || w + 2 * pad < size) {
    throw new RangeError(`crop ${size} is larger than the padded ${h + 2 * pad}x${w + 2 * pad} image`);
  }
  const top = randomInt(random, 0, h + 2 * pad - size);
  const left = randomInt(random, 0, w + 2 * pad - size);
  return { top, left, flip: random() < 0.5 };
}

/** Options of {@linkcode sampleResizedCrop}; the defaults are torchvision's `RandomResizedCrop`. */
export interface ResizedCropOptions {
  /** Range of the crop's area as a fraction of the image's (default [0.08, 1]). */
  scale?: [number, number];
  /** Range of the crop's width/height (default [3/4, 4/3]), sampled log-uniformly. */
  ratio?: [number, number];
}

/**
 * torchvision's `RandomResizedCrop.get_params` for an `height`×`width` image: up to ten tries of a random area and
 * log-uniform aspect ratio, then the central crop clamped to the ratio range.
 */
export function sampleResizedCrop(
  random: Random,
  height: number,
  width: number,
  options: ResizedCropOptions = {},
): CropBox {
  const [smin, smax] = options.scale ?? [0.08, 1];
  const [rmin, rmax] = options.ratio ?? [3 / 4, 4 / 3];
  const area = height * width;
  const logMin = Math.log(rmin), logMax = Math.log(rmax);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * (smin + random() * (smax - smin));
    const aspect = Math.exp(logMin + random() * (logMax - logMin));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      return { top: randomInt(random, 0, height - h), left: randomInt(random, 0, width - w), height: h, width: w };
    }
  }
  // Fallback, as torchvision: the whole image, cut down to the nearest allowed aspect ratio, centred.
  const inRatio = width / height;
  let w = width, h = height;
  if (inRatio < rmin) h = roundHalfEven(w / rmin);
  else if (inRatio > rmax) w = roundHalfEven(h * rmax);
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/**
 * Output size of torchvision's `Resize(size)` with an int size: the shorter side becomes `size`, the longer one
 * `floor(size · long / short)`.
 */
export function resizeShorterSide(height: number, width: number, size: number): { height: number; width: number } {
  if (height <= width) return { height: size, width: Math.floor((size * width) / height) };
  return { height: Math.floor((size * height) / width), width: size };
}

/** torchvision's `CenterCrop(size)` box in an `height`×`width` image: offsets `round((dim − size) / 2)`. */
export function centerCrop(height: number, width: number, size: number): CropBox {
  if (size > height || size > width) throw new RangeError(`center crop ${size} exceeds the ${height}x${width} image`);
  return {
    top: roundHalfEven((height - size) / 2),
    left: roundHalfEven((width - size) / 2),
    height: size,
    width: size,
  };
}

/**
 * The ImageNet evaluation geometry, `Resize(round(size · 256/224))` then `CenterCrop(size)`: the resized image's size
 * and the crop box in it.
 */
export function evalResizeCrop(height: number, width: number, size: number): {
  resized: { height: number; width: number };
  crop: CropBox;
} {
  const resized = resizeShorterSide(height, width, Math.round((size * 256) / 224));
  return { resized, crop: centerCrop(resized.height, resized.width, size) };
}

/** Per-channel `scale` and `bias` so that `byte · scale + bias = (byte/255 − mean) / std`. */
export interface NormalizeCoefficients {
  scale: Float32Array;
  bias: Float32Array;
}

/** Precomputes {@linkcode NormalizeCoefficients} for `Normalize(mean, std)` applied after `ToTensor()`. */
export function normalizeCoefficients(norm: Normalization): NormalizeCoefficients {
  const scale = new Float32Array(3), bias = new Float32Array(3);
  for (let c = 0; c < 3; c++) {
    scale[c] = 1 / (255 * norm.std[c]);
    bias[c] = -norm.mean[c] / norm.std[c];
  }
  return { scale, bias };
}

/**
 * Writes one normalised `size`×`size` crop of an HWC byte image into `out` (NHWC floats) at `outOffset`; with
 * coefficients scale 1 and bias 0, into a byte image (`out` a Uint8Array) for the per-image augmentations.
 * The source is `src[srcOffset ..]`, `h`×`w`×3; it is conceptually zero-padded by `pad` pixels on every side and the
 * crop starts at (`top`, `left`) in padded coordinates; `flip` mirrors the crop horizontally. Padding pixels are
 * byte 0, as torchvision pads the PIL image before `ToTensor`.
 */
export function writeCropFlip(
  src: Uint8Array,
  srcOffset: number,
  h: number,
  w: number,
  pad: number,
  crop: PadCropFlip,
  size: number,
  coefficients: NormalizeCoefficients,
  out: Float32Array | Uint8Array,
  outOffset: number,
): void {
  const { scale, bias } = coefficients;
  const s0 = scale[0], s1 = scale[1], s2 = scale[2], b0 = bias[0], b1 = bias[1], b2 = bias[2];
  const flip = crop.flip;
  // Output columns whose source column lies inside the image; the rest are padding. Hot loop: no per-pixel branches
  // beyond the row bounds.
  const xStart = Math.max(0, pad - crop.left), xEnd = Math.min(size, w + pad - crop.left);
  /** Writes padding (byte 0, normalised) into crop columns [x0, x1) of the row at `rowOut`. */
  const fill = (rowOut: number, x0: number, x1: number) => {
    for (let x = x0; x < x1; x++) {
      const o = rowOut + (flip ? size - 1 - x : x) * 3;
      out[o] = b0;
      out[o + 1] = b1;
      out[o + 2] = b2;
    }
  };
  for (let y = 0; y < size; y++) {
    const sy = crop.top + y - pad;
    const rowOut = outOffset + y * size * 3;
    if (sy < 0 || sy >= h) {
      fill(rowOut, 0, size); // a padding row
      continue;
    }
    fill(rowOut, 0, xStart);
    fill(rowOut, xEnd, size);
    let i = srcOffset + (sy * w + crop.left + xStart - pad) * 3;
    const end = i + (xEnd - xStart) * 3;
    if (flip) {
      for (let o = rowOut + (size - 1 - xStart) * 3; i < end; i += 3, o -= 3) {
        out[o] = src[i] * s0 + b0;
        out[o + 1] = src[i + 1] * s1 + b1;
        out[o + 2] = src[i + 2] * s2 + b2;
      }
    } else {
      for (let o = rowOut + xStart * 3; i < end; i += 3, o += 3) {
        out[o] = src[i] * s0 + b0;
        out[o + 1] = src[i + 1] * s1 + b1;
        out[o + 2] = src[i + 2] * s2 + b2;
      }
    }
  }
}
