/**
 * Decodes every image of a class-folder split once, at its own size, into one CIFAR-like byte array: what
 * `--transforms cifar` trains on (small images such as the CIFAR-10 JPEG copy, where decoding each epoch would cost
 * more than the augmentation). Unreadable images and images of another size are reported and left out.
 * @module
 */
import { FieldMessageError, templateOf } from "../io/config_error.ts";
import { decodeRGB, type ImageDecoder } from "./decode_rgb.ts";
import type { FolderSplit } from "./folder_dataset.ts";
import { readImageBytes } from "./image_bytes.ts";

/** A split decoded to bytes: what an `array` batch source reads. */
export interface DecodedSplit {
  /** [count, size, size, 3] bytes, HWC, SharedArrayBuffer-backed (shared with decode workers). */
  images: Uint8Array;
  /** [count] class indices. */
  labels: Int32Array;
  count: number;
}

/**
 * Decodes all images of `split` with `decoder`; each must be `size`×`size`. `onFailure(name, why)` hears of each
 * image left out (it may throw to stop); `why` is a template naming config fields as `{field}` (io/config_error.ts). The order of the kept images is the split's.
 */
export async function decodeFolderSplit(
  split: FolderSplit,
  size: number,
  decoder: ImageDecoder,
  onFailure: (name: string, why: string) => void,
  parallel = 8,
): Promise<DecodedSplit> {
  const n = split.labels.length, pixels = size * size * 3;
  const images = new Uint8Array(new SharedArrayBuffer(n * pixels));
  const ok = new Uint8Array(n);
  const errors: (string | undefined)[] = new Array(n);
  let next = 0;
  // A few decodes in flight: sharp works on libvips' threads, so this overlaps them; jpeg-js is synchronous anyway.
  const lane = async () => {
    while (next < n) {
      const i = next++;
      try {
        const bytes = await readImageBytes(split, i);
        const image = await decodeRGB(bytes, decoder);
        if (image.height !== size || image.width !== size) {
          throw new FieldMessageError(
            `is ${image.width}x${image.height}, expected ${size}x${size} ({transforms} cifar trains on images at ` +
              "their own size; see {imageSize})",
          );
        }
        images.set(image.pixels, i * pixels);
        ok[i] = 1;
      } catch (e) {
        errors[i] = templateOf(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, parallel)) }, lane));
  // Report in split order (deterministic whatever the lanes' timing), and compact the kept images in place.
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    if (!ok[i]) {
      onFailure(split.names[i], errors[i]!);
      continue;
    }
    if (labels.length !== i) images.copyWithin(labels.length * pixels, i * pixels, (i + 1) * pixels);
    labels.push(split.labels[i]);
  }
  const count = labels.length;
  const kept = count === n ? images : new Uint8Array(new SharedArrayBuffer(count * pixels));
  if (kept !== images) kept.set(images.subarray(0, count * pixels));
  return { images: kept, labels: Int32Array.from(labels), count };
}
