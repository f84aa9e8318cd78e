/**
 * Decodes one JPEG/PNG (bytes, or a file path) with `sharp` straight to the transformed `size`×`size` RGB crop:
 * RandomResizedCrop for training, Resize + CenterCrop for evaluation. The crop is done as "resize the whole image so
 * the crop box becomes size×size, then extract it", which keeps it one libvips pipeline: JPEG shrink-on-load applies
 * whenever the crop is at least twice the output, and libvips computes only the extracted region. Grayscale, CMYK
 * and alpha images come out as 3-channel sRGB. `sharp` is imported lazily so CIFAR/synthetic runs never load it.
 * @module
 */
import { FieldMessageError, literal } from "../io/config_error.ts";
import type { Random } from "./random.ts";
import { evalResizeCrop, sampleResizedCrop } from "./transforms.ts";

// deno-lint-ignore no-explicit-any
type SharpFactory = any;

let sharpPromise: Promise<SharpFactory> | undefined;

// A computed specifier: `deno bundle` follows literal dynamic imports, and single-file GPU bundles cannot carry the
// native addon. At run time the import map still resolves it to the pinned npm:sharp.
const SHARP: string = "sharp";

/**
 * Loads `sharp` once per thread. `threads` sets libvips' thread count (1 inside decode workers, so N workers use N
 * cores without oversubscription).
 */
export function loadSharp(threads?: number): Promise<SharpFactory> {
  sharpPromise ??= import(SHARP).catch((e) => {
    throw new FieldMessageError(
      `cannot load sharp (libvips, a native addon): ${literal((e as Error).message)}. Single-file bundles cannot ` +
        "carry it; decode JPEGs in JavaScript instead with {decoder} js (with {transforms} cifar)",
    );
  }).then((m) => {
    const sharp = m.default;
    sharp.cache(false); // every image is seen once per epoch; caching only costs memory
    if (threads !== undefined) sharp.concurrency(threads);
    return sharp;
  });
  return sharpPromise;
}

/** A decoded crop: `size`×`size`×3 bytes, HWC, plus whether the caller must mirror it (RandomHorizontalFlip). */
export interface DecodedCrop {
  pixels: Uint8Array;
  flip: boolean;
}

/**
 * Decodes `input` and returns its transformed crop. With `random` (training): RandomResizedCrop(size, scale
 * 0.08–1, ratio 3/4–4/3) and a flip with probability 1/2, all drawn from `random`. Without (evaluation):
 * Resize(round(size·256/224)) then CenterCrop(size). Bilinear filtering with antialiasing, as torchvision's PIL path.
 * @throws {Error} when sharp cannot decode the image (corrupt, truncated, not an image).
 */
export async function decodeCrop(
  sharp: SharpFactory,
  input: string | Uint8Array,
  size: number,
  random?: Random,
): Promise<DecodedCrop> {
  // "truncated" rejects partial images but accepts the harmless warnings many real photos carry. Random access lets
  // libvips compute only the extracted region of the resized image (3.5 instead of 5.2 ms for a 500×375 JPEG).
  const options = { failOn: "truncated" as const, sequentialRead: false };
  const meta = await sharp(input, options).metadata();
  const height: number = meta.height, width: number = meta.width;
  if (!height || !width) throw new Error(`no image dimensions (format ${meta.format ?? "unknown"})`);
  let resizeW: number, resizeH: number, left: number, top: number, flip = false;
  if (random) {
    const box = sampleResizedCrop(random, height, width);
    flip = random() < 0.5;
    // Scale so the box maps onto size×size (the two axes scale independently, like torchvision's resize of the crop).
    resizeW = Math.max(size, Math.round((width * size) / box.width));
    resizeH = Math.max(size, Math.round((height * size) / box.height));
    left = Math.min(resizeW - size, Math.round((box.left * size) / box.width));
    top = Math.min(resizeH - size, Math.round((box.top * size) / box.height));
  } else {
    const { resized, crop } = evalResizeCrop(height, width, size);
    resizeW = resized.width;
    resizeH = resized.height;
    left = crop.left;
    top = crop.top;
  }
  const pipeline = sharp(input, options)
    .resize(resizeW, resizeH, { fit: "fill", kernel: "linear" })
    .extract({ left, top, width: size, height: size });
  return { pixels: (await sharpRGB(pipeline, size)).pixels, flip };
}

/**
 * Ends a sharp `pipeline` in 3-channel sRGB bytes, [height, width, 3] HWC: alpha dropped, grayscale and CMYK
 * converted. With `size`, the image must come out `size`×`size`.
 * @throws {Error} when libvips fails, or hands back another shape.
 */
export async function sharpRGB(
  pipeline: SharpFactory,
  size?: number,
): Promise<{ pixels: Uint8Array; height: number; width: number }> {
  const { data, info } = await pipeline.removeAlpha().toColourspace("srgb").raw().toBuffer({ resolveWithObject: true });
  const sized = size === undefined || (info.width === size && info.height === size);
  if (info.channels !== 3 || !sized || data.length !== info.width * info.height * 3) {
    throw new Error(`decoded to ${info.width}x${info.height}x${info.channels} (${data.length} bytes), expected RGB`);
  }
  return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width };
}
