/**
 * A deterministic in-memory dataset of 10 classes of 32×32 RGB images that a small ResNet learns within a minute on
 * a software WebGPU adapter: the offline default for demos and tests. Each class is an oriented sine grating
 * (orientation and frequency set by the class) tinted with a class colour; every image draws its own phase,
 * contrast, brightness and per-pixel noise, so the network must learn shape and colour, not memorise pixels.
 * @module
 */
import { keyedRandom } from "./random.ts";
import type { CifarSplit } from "./cifar_binary.ts";
import type { Normalization } from "./transforms.ts";

/** Number of classes of the synthetic dataset. */
export const SYNTHETIC_CLASSES = 10;
/** Side of the synthetic images. */
export const SYNTHETIC_SIZE = 32;
/** Class names of the synthetic dataset. */
export const SYNTHETIC_CLASS_NAMES: string[] = Array.from({ length: SYNTHETIC_CLASSES }, (_, c) => `pattern${c}`);

/** Tint of class `c`: a hue wheel in tenths, as RGB weights in [0.25, 1]. */
function classColour(c: number): [number, number, number] {
  const hue = (c * 3) % SYNTHETIC_CLASSES / SYNTHETIC_CLASSES; // neighbours in orientation get distant hues
  const channel = (shift: number) => 0.625 + 0.375 * Math.cos(2 * Math.PI * (hue - shift));
  return [channel(0), channel(1 / 3), channel(2 / 3)];
}

/**
 * Generates `count` images (labels cycle 0..9 so classes are balanced), keyed by `seed` and `stream` (use different
 * streams for train and test so they share no image).
 */
export function generateSynthetic(count: number, seed: number, stream: number): CifarSplit {
  const S = SYNTHETIC_SIZE;
  const images = new Uint8Array(new SharedArrayBuffer(count * S * S * 3)); // shared with decode workers
  const labels = new Uint8Array(count);
  const wave = new Float32Array(S * S);
  for (let n = 0; n < count; n++) {
    const c = n % SYNTHETIC_CLASSES;
    labels[n] = c;
    const random = keyedRandom(seed, 0x5e7, stream, n);
    const angle = (c * Math.PI) / SYNTHETIC_CLASSES + (random() - 0.5) * 0.15;
    const freq = (2 * Math.PI * (2 + (c % 3))) / S;
    const phase = random() * 2 * Math.PI;
    const kx = Math.cos(angle) * freq, ky = Math.sin(angle) * freq;
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) wave[y * S + x] = Math.sin(kx * x + ky * y + phase);
    const contrast = 50 + 30 * random(), brightness = 110 + 40 * random();
    const tint = classColour(c);
    const base = n * S * S * 3;
    for (let p = 0; p < S * S; p++) {
      for (let ch = 0; ch < 3; ch++) {
        const v = brightness * tint[ch] + contrast * wave[p] + (random() - 0.5) * 60;
        images[base + p * 3 + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { images, labels, count };
}

/** Per-channel mean and std (in [0, 1] units) of HWC byte images, for `Normalize`. */
export function channelStats(images: Uint8Array): Normalization {
  const sum = [0, 0, 0], sq = [0, 0, 0];
  for (let i = 0; i < images.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      const v = images[i + c];
      sum[c] += v;
      sq[c] += v * v;
    }
  }
  const n = images.length / 3;
  const mean = sum.map((s) => s / n / 255) as [number, number, number];
  const std = sq.map((q, c) => Math.sqrt(Math.max(q / n / 65025 - mean[c] * mean[c], 1e-12))) as [
    number,
    number,
    number,
  ];
  return { mean, std };
}
