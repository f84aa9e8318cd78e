/**
 * Finds the images of a split that do not decode, by decoding every one exactly as evaluation does (sharp, Resize +
 * CenterCrop to `size`, `failOn: "truncated"`), several at a time; reports how fast that went.
 * @module
 */
import { decodeCrop, loadSharp } from "./image_decode.ts";
import { type ImageStore, readImageBytes } from "./image_bytes.ts";

/** An image that failed, and why. */
export interface UndecodableImage {
  name: string;
  message: string;
}

/** What {@linkcode checkDecodes} found. */
export interface DecodeCheck {
  failures: UndecodableImage[];
  images: number;
  bytes: number;
  seconds: number;
}

/** Options of {@linkcode checkDecodes}. */
export interface DecodeCheckOptions {
  /** Decodes in flight at once (default: cores); libvips runs each on one thread. */
  concurrency?: number;
  /** Crop side (default 224). */
  size?: number;
  /** Called every `progressEvery` images (default 10,000) with the count done. */
  onProgress?: (done: number, total: number) => void;
  progressEvery?: number;
}

/** Decodes every image of `split` (names for the report); never throws for an image, only for unreadable storage. */
export async function checkDecodes(
  split: ImageStore & { names: string[] },
  options: DecodeCheckOptions = {},
): Promise<DecodeCheck> {
  const sharp = await loadSharp(1);
  const total = split.names.length;
  const concurrency = Math.max(1, options.concurrency ?? navigator.hardwareConcurrency);
  const every = options.progressEvery ?? 10_000;
  const failures: UndecodableImage[] = [];
  let next = 0, done = 0, bytes = 0;
  const start = performance.now();
  const lane = async () => {
    while (next < total) {
      const i = next++;
      const data = await readImageBytes(split, i); // a storage error (a vanished archive) stops the check
      bytes += data.length;
      try {
        await decodeCrop(sharp, data, options.size ?? 224);
      } catch (e) {
        failures.push({ name: split.names[i], message: (e as Error).message });
      }
      if (++done % every === 0) options.onProgress?.(done, total);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, lane));
  failures.sort((a, b) => (a.name < b.name ? -1 : 1));
  return { failures, images: total, bytes, seconds: (performance.now() - start) / 1000 };
}
