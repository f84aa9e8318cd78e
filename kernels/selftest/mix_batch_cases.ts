/**
 * Mixup and cutmix of a batch with its roll by one (kernels/mix_batch.ts) against a float64 reference of
 * torchvision's `RandomMixup` / `RandomCutmix` for given parameters.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mixBatch, type MixParams } from "../mix_batch.ts";
import { checkClose, checkNoDeviceErrors, type KernelCase } from "./kernel_case.ts";

/** Image i mixed with image i − 1 (image N − 1 for image 0), [N, H, W, C] row-major, in float64. */
export function referenceMixBatch(x: ArrayLike<number>, shape: readonly number[], mix: MixParams): Float64Array {
  const [n, h, w, c] = shape;
  const per = h * w * c;
  const out = new Float64Array(n * per);
  for (let i = 0; i < n; i++) {
    const prev = (i + n - 1) % n;
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        const b = mix.box;
        const inBox = b !== null && y >= b.y1 && y < b.y2 && xx >= b.x1 && xx < b.x2;
        for (let ch = 0; ch < c; ch++) {
          const at = (y * w + xx) * c + ch;
          const own = x[i * per + at], other = x[prev * per + at];
          out[i * per + at] = b === null ? mix.lambda * own + (1 - mix.lambda) * other : inBox ? other : own;
        }
      }
    }
  }
  return out;
}

const PROBLEMS: [string, [number, number, number, number], MixParams][] = [
  ["mixup λ 0.3", [4, 5, 6, 3], { lambda: 0.3, box: null }],
  ["mixup λ 0.93, one image (mixed with itself)", [1, 3, 3, 3], { lambda: 0.93, box: null }],
  ["cutmix box rows 1-3, columns 2-5", [3, 6, 7, 3], { lambda: 0.7, box: { x1: 2, y1: 1, x2: 5, y2: 3 } }],
  ["cutmix box the whole image", [2, 4, 4, 3], { lambda: 0, box: { x1: 0, y1: 0, x2: 4, y2: 4 } }],
];

/** One case per problem. */
export const MIX_BATCH_CASES: readonly KernelCase[] = PROBLEMS.map(([what, shape, mix]): KernelCase => {
  const where = `mixBatch ${what} [${shape}]`;
  return {
    name: `${where}: against float64`,
    run: async () => {
      const x = tf.randomNormal(shape, 0, 1, "float32", 81) as tf.Tensor4D;
      const y = mixBatch(x, mix);
      try {
        const want = referenceMixBatch(await x.data(), shape, mix);
        const actual = await y.data();
        checkNoDeviceErrors(where);
        checkClose(actual, want, mix.box === null ? 1e-6 : 0, where);
      } finally {
        tf.dispose([x, y]);
      }
    },
  };
});
