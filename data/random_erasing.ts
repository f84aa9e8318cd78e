/**
 * torchvision's `RandomErasing` (Zhong et al.): with probability p, a rectangle of random area and aspect ratio is
 * set to a value in the normalised image. The rectangle's draw ({@linkcode sampleRandomErasing}) and the erasure of
 * an NHWC float batch slot ({@linkcode eraseBox}) are separate pure functions.
 * @module
 */
import type { Random } from "./random.ts";
import { randomInt } from "./random.ts";
import { type CropBox, roundHalfEven } from "./transforms.ts";

/** Options of {@linkcode sampleRandomErasing}; the defaults are torchvision's. */
export interface RandomErasingOptions {
  /** Range of the erased area as a fraction of the image's (default [0.02, 0.33]). */
  scale?: [number, number];
  /** Range of the rectangle's height/width (default [0.3, 3.3]), sampled log-uniformly. */
  ratio?: [number, number];
}

/**
 * The rectangle `RandomErasing(p)` erases in an `height`×`width` image, or null when it leaves the image alone: one
 * draw against `p`, then `get_params`' up to ten tries of an area fraction (uniform in `scale`) and a log-uniform
 * aspect ratio, h = round(√(area·ratio)), w = round(√(area/ratio)) (half to even, like Python), accepted when
 * h < height and w < width; offsets uniform. When no try fits, torchvision "erases" the image with itself: null.
 */
export function sampleRandomErasing(
  random: Random,
  p: number,
  height: number,
  width: number,
  options: RandomErasingOptions = {},
): CropBox | null {
  if (!(random() < p)) return null;
  const [smin, smax] = options.scale ?? [0.02, 0.33];
  const [rmin, rmax] = options.ratio ?? [0.3, 3.3];
  const area = height * width;
  const logMin = Math.log(rmin), logMax = Math.log(rmax);
  for (let attempt = 0; attempt < 10; attempt++) {
    const eraseArea = area * (smin + random() * (smax - smin));
    const aspect = Math.exp(logMin + random() * (logMax - logMin));
    const h = roundHalfEven(Math.sqrt(eraseArea * aspect));
    const w = roundHalfEven(Math.sqrt(eraseArea / aspect));
    if (!(h < height && w < width)) continue;
    return { top: randomInt(random, 0, height - h), left: randomInt(random, 0, width - w), height: h, width: w };
  }
  return null;
}

/**
 * Sets `box` of the `width`-wide NHWC image at `offset` in `out` to `value` in every channel (torchvision's
 * `F.erase(img, i, j, h, w, v)` with a scalar v, applied after `Normalize`: 0 is the mean colour).
 */
export function eraseBox(out: Float32Array, offset: number, width: number, box: CropBox, value = 0): void {
  for (let y = box.top; y < box.top + box.height; y++) {
    const row = offset + (y * width + box.left) * 3;
    out.fill(value, row, row + box.width * 3);
  }
}
