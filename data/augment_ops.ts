/**
 * The image operations of torchvision's automatic augmentations (AutoAugment, RandAugment, TrivialAugmentWide) on
 * HWC RGB byte images, as `torchvision.transforms.autoaugment._apply_op` applies them to uint8 tensors (torchvision
 * 0.14): nearest-neighbour geometry with a fill colour, and colour operations computed in float32 in PyTorch's order
 * and truncated back to bytes, so that results match torchvision's byte for byte (`tests/data/augment_ops_test.ts`).
 * Colour operations that map each byte independently run through a 256-entry table per channel.
 * @module
 */
import { type AffineMatrix, degrees, inverseAffineMatrix, translateNearest, warpAffineNearest } from "./affine_warp.ts";

const fround = Math.fround;

/** Every operation, in the order of torchvision's augmentation spaces (TrivialAugmentWide's, then Invert). */
export const AUGMENT_OPS = [
  "Identity",
  "ShearX",
  "ShearY",
  "TranslateX",
  "TranslateY",
  "Rotate",
  "Brightness",
  "Color",
  "Contrast",
  "Sharpness",
  "Posterize",
  "Solarize",
  "AutoContrast",
  "Equalize",
  "Invert",
] as const;

/** An operation's torchvision name. */
export type AugmentOp = typeof AUGMENT_OPS[number];

/** One operation with its signed magnitude, in `_apply_op`'s units (see {@linkcode applyAugmentOp}). */
export interface AugmentStep {
  op: AugmentOp;
  magnitude: number;
}

/** RGB bytes for pixels that a geometric operation brings in from outside the image (the policies' default: black). */
export type Fill = readonly [number, number, number];

/** The policies' fill (`fill=None`: zeros). */
export const BLACK: Fill = [0, 0, 0];

/**
 * Applies `op` with `magnitude` to the `h`×`w` HWC RGB byte image `src`, writing the result to `dst` (a distinct
 * array of the same size). Magnitudes as `_apply_op` takes them: shear factors (the tangent of the shear angle,
 * about the top-left corner), translations in pixels (truncated to integers), rotation in degrees (counter-clockwise,
 * about the centre), enhancement factors minus 1 (Brightness, Color, Contrast, Sharpness), posterize bits (truncated),
 * the solarize threshold; AutoContrast, Equalize, Invert and Identity ignore it.
 */
export function applyAugmentOp(
  op: AugmentOp,
  magnitude: number,
  src: Uint8Array,
  dst: Uint8Array,
  h: number,
  w: number,
  fill: Fill = BLACK,
): void {
  if (src === dst) throw new RangeError("applyAugmentOp needs distinct source and destination arrays");
  if (src.length !== h * w * 3 || dst.length !== h * w * 3) {
    throw new RangeError(`expected ${h}x${w}x3 = ${h * w * 3} bytes, received ${src.length} and ${dst.length}`);
  }
  const warp = (m: AffineMatrix) => warpAffineNearest(src, dst, h, w, m, fill);
  // The tensor path's centre argument is relative to the image centre: shears pivot on the top-left corner.
  const corner = [-w / 2, -h / 2] as const;
  switch (op) {
    case "Identity":
      return dst.set(src);
    case "ShearX":
      return warp(inverseAffineMatrix(corner, 0, [0, 0], 1, [degrees(Math.atan(magnitude)), 0]));
    case "ShearY":
      return warp(inverseAffineMatrix(corner, 0, [0, 0], 1, [0, degrees(Math.atan(magnitude))]));
    case "TranslateX": // F.affine(translate=[int(m), 0]): whole pixels
      return translateNearest(src, dst, h, w, Math.trunc(magnitude), 0, fill);
    case "TranslateY":
      return translateNearest(src, dst, h, w, 0, Math.trunc(magnitude), fill);
    case "Rotate":
      // F.rotate negates the angle for the tensor path's matrix (affine's angle is clockwise).
      return warp(inverseAffineMatrix([0, 0], -magnitude, [0, 0], 1, [0, 0]));
    case "Brightness":
      return mapBytes(src, dst, memoized(`Brightness ${magnitude}`, () => blendTable(1 + magnitude, 0)));
    case "Color":
      return adjustSaturation(src, dst, 1 + magnitude);
    case "Contrast":
      return mapBytes(src, dst, blendTable(1 + magnitude, grayMean(src)));
    case "Sharpness":
      return adjustSharpness(src, dst, h, w, 1 + magnitude);
    case "Posterize": {
      const mask = -(2 ** (8 - Math.trunc(magnitude))) & 0xff; // keep the top `bits` bits
      return mapBytes(src, dst, memoized(`Posterize ${mask}`, () => byteTable((v) => v & mask)));
    }
    case "Solarize":
      return mapBytes(
        src,
        dst,
        memoized(`Solarize ${magnitude}`, () => byteTable((v) => v >= magnitude ? 255 - v : v)),
      );
    case "AutoContrast":
      return mapChannels(src, dst, autocontrastTables(src));
    case "Equalize":
      return mapChannels(src, dst, equalizeTables(src));
    case "Invert":
      return mapBytes(src, dst, memoized("Invert", () => byteTable((v) => 255 - v)));
  }
}

/**
 * Applies `steps` in order to `image` (`h`×`w`×3 bytes), using `scratch` (same size) between steps; returns the
 * array that holds the result (`image` or `scratch`).
 */
export function applyAugmentSteps(
  steps: readonly AugmentStep[],
  image: Uint8Array,
  scratch: Uint8Array,
  h: number,
  w: number,
  fill: Fill = BLACK,
): Uint8Array {
  let from = image, to = scratch;
  for (const step of steps) {
    if (step.op === "Identity") continue;
    applyAugmentOp(step.op, step.magnitude, from, to, h, w, fill);
    [from, to] = [to, from];
  }
  return from;
}

/** Tables that depend on a magnitude alone, kept across images: the policies use a few dozen magnitudes. */
const memo = new Map<string, unknown>();

/** `make()`, computed once per `key` (the memo is emptied past 4,096 keys, so arbitrary magnitudes cannot grow it). */
function memoized<T>(key: string, make: () => T): T {
  let value = memo.get(key) as T | undefined;
  if (value === undefined) {
    if (memo.size >= 4096) memo.clear();
    memo.set(key, value = make());
  }
  return value;
}

/** `torch.Tensor.to(uint8)` of a float clamped to [0, 255]: truncation. */
function clampTruncate(x: number): number {
  return x <= 0 ? 0 : x >= 255 ? 255 : Math.trunc(x);
}

/** A 256-entry table of `f` over the byte values. */
function byteTable(f: (v: number) => number): Uint8Array {
  const table = new Uint8Array(256);
  for (let v = 0; v < 256; v++) table[v] = f(v);
  return table;
}

/**
 * torchvision's `_blend(img, other, ratio)` for a constant `other`: `(ratio·v + (1 − ratio)·other)` in float32,
 * clamped and truncated, as a table over v. Both factors are rounded to float32 as PyTorch's scalar operands are.
 */
function blendTable(ratio: number, other: number): Uint8Array {
  const r1 = fround(ratio), r2o = fround(fround(1 - ratio) * other);
  return byteTable((v) => clampTruncate(fround(fround(r1 * v) + r2o)));
}

function mapBytes(src: Uint8Array, dst: Uint8Array, table: Uint8Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = table[src[i]];
}

/** Maps channel c of every pixel through `tables[c]`. */
function mapChannels(src: Uint8Array, dst: Uint8Array, tables: readonly [Uint8Array, Uint8Array, Uint8Array]): void {
  const [t0, t1, t2] = tables;
  for (let i = 0; i < src.length; i += 3) {
    dst[i] = t0[src[i]];
    dst[i + 1] = t1[src[i + 1]];
    dst[i + 2] = t2[src[i + 2]];
  }
}

/** rgb_to_grayscale's float32 products coefficient · byte, per channel: 0.2989, 0.587, 0.114 as float32 scalars. */
const GRAY_R = new Float32Array(256), GRAY_G = new Float32Array(256), GRAY_B = new Float32Array(256);
for (let v = 0; v < 256; v++) {
  GRAY_R[v] = fround(0.2989) * v;
  GRAY_G[v] = fround(0.587) * v;
  GRAY_B[v] = fround(0.114) * v;
}

/** `rgb_to_grayscale` of one pixel: the float32 weighted sum, truncated to a byte. */
function gray(r: number, g: number, b: number): number {
  return Math.trunc(fround(fround(GRAY_R[r] + GRAY_G[g]) + GRAY_B[b]));
}

/**
 * The float32 mean of the grayscale image, as `adjust_contrast` computes it. The byte sum is exact in float32 up to
 * 2^24 / 255 pixels (256×256), so summation order cannot matter there.
 */
function grayMean(src: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < src.length; i += 3) sum += gray(src[i], src[i + 1], src[i + 2]);
  return fround(fround(sum) / (src.length / 3));
}

/** The two products of `_blend(v, other, factor)` in float32, for every byte value: factor·v and (1 − factor)·v. */
function blendProducts(factor: number): { scaled: Float32Array; others: Float32Array } {
  return memoized(`blend ${factor}`, () => {
    const r1 = fround(factor), r2 = fround(1 - factor);
    const scaled = new Float32Array(256), others = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      scaled[v] = fround(r1 * v);
      others[v] = fround(r2 * v);
    }
    return { scaled, others };
  });
}

/** `adjust_saturation`: each pixel blended with its own grayscale value. */
function adjustSaturation(src: Uint8Array, dst: Uint8Array, factor: number): void {
  const { scaled, others } = blendProducts(factor);
  for (let i = 0; i < src.length; i += 3) {
    const o = others[gray(src[i], src[i + 1], src[i + 2])];
    dst[i] = clampTruncate(fround(scaled[src[i]] + o));
    dst[i + 1] = clampTruncate(fround(scaled[src[i + 1]] + o));
    dst[i + 2] = clampTruncate(fround(scaled[src[i + 2]] + o));
  }
}

/**
 * `adjust_sharpness`: blends with the "degenerate" image, which is the image smoothed by the 3×3 kernel
 * [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 inside and the image itself on its one-pixel border. The smoothed value is
 * rounded to a byte; S/13 (S the weighted byte sum) is never within 1/26 of a half, so integer rounding is exact.
 */
function adjustSharpness(src: Uint8Array, dst: Uint8Array, h: number, w: number, factor: number): void {
  if (h <= 2 || w <= 2) return dst.set(src);
  const { scaled, others } = blendProducts(factor);
  const row = w * 3;
  // The border blends each byte with itself.
  const border = (i: number) => dst[i] = clampTruncate(fround(scaled[src[i]] + others[src[i]]));
  for (let i = 0; i < row; i++) border(i), border((h - 1) * row + i);
  for (let y = 1; y < h - 1; y++) {
    const start = y * row;
    for (let c = 0; c < 3; c++) border(start + c), border(start + row - 3 + c);
    for (let i = start + 3; i < start + row - 3; i++) {
      const s = src[i - row - 3] + src[i - row] + src[i - row + 3] + src[i - 3] + 5 * src[i] + src[i + 3] +
        src[i + row - 3] + src[i + row] + src[i + row + 3];
      dst[i] = clampTruncate(fround(scaled[src[i]] + others[Math.floor((2 * s + 13) / 26)])); // round(s / 13)
    }
  }
}

// Per-channel histograms and tables of AutoContrast and Equalize, reused from image to image (one thread, no await).
const HISTOGRAMS = [new Uint32Array(256), new Uint32Array(256), new Uint32Array(256)] as const;
const TABLES = [new Uint8Array(256), new Uint8Array(256), new Uint8Array(256)] as const;

/** Per-channel histograms of `src`, [3][256] (shared arrays, overwritten by the next call). */
function histograms(src: Uint8Array): readonly [Uint32Array, Uint32Array, Uint32Array] {
  const [h0, h1, h2] = HISTOGRAMS;
  h0.fill(0), h1.fill(0), h2.fill(0);
  for (let i = 0; i < src.length; i += 3) {
    h0[src[i]]++;
    h1[src[i + 1]]++;
    h2[src[i + 2]]++;
  }
  return HISTOGRAMS;
}

/**
 * `autocontrast`: each channel stretched linearly so its minimum becomes 0 and its maximum 255, in float32
 * (`(v − min) · (1 / (max − min)) · 255`, truncated); a constant channel is left alone.
 */
function autocontrastTables(src: Uint8Array): readonly [Uint8Array, Uint8Array, Uint8Array] {
  histograms(src).forEach((hist, c) => {
    const table = TABLES[c];
    let min = 0, max = 255;
    while (min < 255 && hist[min] === 0) min++;
    while (max > 0 && hist[max] === 0) max--;
    // 255.0 / tensor is Tensor.__rtruediv__: reciprocal() * 255, two float32 roundings (one division differs).
    const scale = fround(fround(1 / (max - min)) * 255);
    for (let v = 0; v < 256; v++) table[v] = max <= min ? v : clampTruncate(fround((v - min) * scale));
  });
  return TABLES;
}

/**
 * `equalize` (the tensor version of PIL's ImageOps.equalize): per channel, step = ⌊(pixels outside the last
 * non-empty bin) / 255⌋ and value v maps to ⌊(count below v + ⌊step/2⌋) / step⌋ (at most 255); step 0 leaves the
 * channel alone.
 */
function equalizeTables(src: Uint8Array): readonly [Uint8Array, Uint8Array, Uint8Array] {
  histograms(src).forEach((hist, c) => {
    const table = TABLES[c];
    let last = 255;
    while (last > 0 && hist[last] === 0) last--;
    let total = 0;
    for (let v = 0; v < last; v++) total += hist[v];
    const step = Math.floor(total / 255);
    let below = 0; // pixels with a smaller value than v
    for (let v = 0; v < 256; v++) {
      table[v] = step === 0 ? v : v === 0 ? 0 : Math.min(255, Math.floor((below + Math.floor(step / 2)) / step));
      below += hist[v];
    }
  });
  return TABLES;
}
