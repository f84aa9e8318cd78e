/**
 * Mixup and cutmix of a batch with its roll by one, torchvision's `RandomMixup` / `RandomCutmix` (references/
 * classification/transforms.py) for given parameters, in one dispatch on the GPU: the batch is already there and the
 * step reads it once more and writes it once, while on the host the same pass costs 0.4 ms per 224² image (a JS loop,
 * measured on a shared 2-core machine), 6-9 % more CPU than the 4.6-6.1 ms per image the ImageNet pipeline spends, and
 * it would need each whole batch in one worker.
 * The draws (which of the two, λ, the box) are made on the host, per batch (`data/batch_mix.ts`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { allocateTensor, gridStride, runDirectProgram } from "./direct_program.ts";

/** A box of the image, rows [y1, y2) and columns [x1, x2), as torchvision's cutmix computes it. */
export interface MixBox {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/** What {@linkcode mixBatch} does: mixup (`box` null) or cutmix (`box` pasted from the previous sample). */
export interface MixParams {
  /** Mixup: the weight of each image itself. Cutmix: the area outside the box (the label weight); unused here. */
  lambda: number;
  box: MixBox | null;
}

/**
 * A new tensor ([N, H, W, C] float32, the caller owns it): image i mixed with image i − 1 (image N − 1 for image 0),
 * `torch.roll(batch, 1, 0)`. Mixup: f32(λ·x_i) + f32((1 − λ)·x_{i−1}), as `batch_rolled.mul_(1 − λ)` and
 * `batch.mul_(λ).add_(batch_rolled)` round (1 − λ taken in double precision). Cutmix: x_i with the box's pixels of
 * x_{i−1}. On webgpu one dispatch; else tfjs ops computing the same.
 */
export function mixBatch(x: tf.Tensor4D, mix: MixParams): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (!(mix.lambda >= 0 && mix.lambda <= 1)) {
    throw new RangeError(`mixBatch: lambda must be in [0, 1], got ${mix.lambda}`);
  }
  const box = mix.box;
  if (box && !(0 <= box.x1 && box.x1 <= box.x2 && box.x2 <= w && 0 <= box.y1 && box.y1 <= box.y2 && box.y2 <= h)) {
    throw new RangeError(`mixBatch: box ${JSON.stringify(box)} is not inside the ${h}x${w} image`);
  }
  if (tf.getBackend() !== "webgpu") return mixWithOps(x, mix);
  const out = allocateTensor(x.shape) as tf.Tensor4D;
  const image = h * w * c;
  runDirectProgram({
    // λ and the box are uniforms: every batch runs the same pipeline.
    key: `mixBatch_${n}_${h}_${w}_${c}_${box ? "cut" : "mix"}`,
    bindings: [
      { name: "x", tensor: x, access: "read" },
      { name: "out", tensor: out, access: "read_write" },
    ],
    uniforms: [
      { name: "lam", value: mix.lambda },
      { name: "rest", value: 1 - mix.lambda },
      { name: "x1", value: box?.x1 ?? 0 },
      { name: "y1", value: box?.y1 ?? 0 },
      { name: "x2", value: box?.x2 ?? 0 },
      { name: "y2", value: box?.y2 ?? 0 },
    ],
    workgroups: gridStride(n * image),
    code: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var e = gid.x; e < ${n * image}u; e += nwg.x * 256u) {
    let i = e / ${image}u;
    let inImage = e % ${image}u;
    let prev = ((i + ${n - 1}u) % ${n}u) * ${image}u + inImage;${
      box
        ? `
    let row = f32(inImage / ${w * c}u);
    let col = f32((inImage / ${c}u) % ${w}u);
    let inside = row >= u.y1 && row < u.y2 && col >= u.x1 && col < u.x2;
    out[e] = select(x[e], x[prev], inside);`
        : `
    let own = u.lam * x[e];
    let other = u.rest * x[prev];
    out[e] = own + other;`
    }
  }
}`,
  });
  return out;
}

/** {@linkcode mixBatch} as tfjs ops (off webgpu). */
function mixWithOps(x: tf.Tensor4D, mix: MixParams): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w] = x.shape;
    const rolled = n < 2 ? x : tf.concat([tf.slice(x, [n - 1], [1]), tf.slice(x, [0], [n - 1])], 0);
    const box = mix.box;
    if (!box) return tf.add(tf.mul(x, mix.lambda), tf.mul(rolled, 1 - mix.lambda)) as tf.Tensor4D;
    const mask = new Uint8Array(h * w).map((_, p) => {
      const [row, col] = [Math.floor(p / w), p % w];
      return row >= box.y1 && row < box.y2 && col >= box.x1 && col < box.x2 ? 1 : 0;
    });
    return tf.where(tf.tensor4d(mask, [1, h, w, 1], "bool"), rolled, x) as tf.Tensor4D;
  });
}
