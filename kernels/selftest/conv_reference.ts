/**
 * Float64 CPU reference of the three convolution passes, shared by the convolution kernel tests.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** [batch, height, width, inChannels, outChannels, kernel, stride, pad] */
export type ConvCase = [number, number, number, number, number, number, number, number];

/** tfjs's explicit form of a symmetric padding `p` of height and width (NHWC). */
export const explicitPad = (p: number): tf.backend_util.ExplicitPadding => [[0, 0], [p, p], [p, p], [0, 0]];

/** Float64 reference of the three convolution passes (NHWC, filter [k, k, ci, co], symmetric padding). */
export function referenceConv(
  c: ConvCase,
  x: Float32Array,
  f: Float32Array,
  dy: Float32Array,
): { y: Float64Array; dx: Float64Array; dw: Float64Array } {
  const [b, h, w, ci, co, k, s, p] = c;
  const oh = Math.floor((h + 2 * p - k) / s) + 1, ow = Math.floor((w + 2 * p - k) / s) + 1;
  const y = new Float64Array(b * oh * ow * co);
  const dx = new Float64Array(b * h * w * ci);
  const dw = new Float64Array(k * k * ci * co);
  for (let n = 0; n < b; n++) {
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let r = 0; r < k; r++) {
          const ih = i * s - p + r;
          if (ih < 0 || ih >= h) continue;
          for (let q = 0; q < k; q++) {
            const iw = j * s - p + q;
            if (iw < 0 || iw >= w) continue;
            for (let a = 0; a < ci; a++) {
              const xi = ((n * h + ih) * w + iw) * ci + a;
              for (let o = 0; o < co; o++) {
                const yi = ((n * oh + i) * ow + j) * co + o;
                const wi = ((r * k + q) * ci + a) * co + o;
                y[yi] += x[xi] * f[wi];
                dx[xi] += dy[yi] * f[wi];
                dw[wi] += x[xi] * dy[yi];
              }
            }
          }
        }
      }
    }
  }
  return { y, dx, dw };
}
