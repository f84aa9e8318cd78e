/**
 * The augmentation operations: small hand-computed cases (everywhere), and every operation at every magnitude bin of
 * TrivialAugmentWide, RandAugment and AutoAugment compared with torchvision's own `_apply_op` on uint8 tensors with
 * NEAREST interpolation (where a Python with torch is installed; see `tests/torch_python.ts`).
 */
import { join } from "node:path";
import { assert, assertEquals, throws } from "../assert.ts";
import { decodeNpy, encodeNpy } from "../../io/npy.ts";
import { applyAugmentOp, applyAugmentSteps, AUGMENT_OPS, type AugmentOp, type Fill } from "../../data/augment_ops.ts";
import { inverseAffineMatrix } from "../../data/affine_warp.ts";
import { augmentationSpace, AUTO_AUGMENT_BINS, MAGNITUDE_BINS } from "../../data/auto_augment.ts";
import { keyedRandom } from "../../data/random.ts";
import { TORCH_PYTHON } from "../torch_python.ts";

const SCRIPT = new URL("../fixtures/torchvision_augment.py", import.meta.url).pathname;

/** An image from rows of [r, g, b] pixels. */
function image(rows: number[][][]): Uint8Array {
  return Uint8Array.from(rows.flat(2));
}

/** The red plane of an `h`×`w` image, as rows. */
function red(img: Uint8Array, h: number, w: number): number[][] {
  return Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => img[(y * w + x) * 3]));
}

/** `op` applied to a copy of `src` (h×w), returned as a new array. */
function apply(op: AugmentOp, magnitude: number, src: Uint8Array, h: number, w: number, fill?: Fill): Uint8Array {
  const dst = new Uint8Array(src.length);
  applyAugmentOp(op, magnitude, src, dst, h, w, fill);
  return dst;
}

/** A 3×4 image whose red byte at (y, x) is 10·y + x + 1 (green and blue follow it, shifted). */
const small = (() => {
  const img = new Uint8Array(3 * 4 * 3);
  for (let p = 0; p < 12; p++) img.set([10 * Math.floor(p / 4) + (p % 4) + 1, 100 + p, 200 + p], p * 3);
  return img;
})();

Deno.test("geometric operations: whole-pixel translations, shears about the top-left corner, rotations about the centre", () => {
  // Expected planes printed by torchvision 0.14's _apply_op on the same 3×4 uint8 tensor (NEAREST, fill None).
  // TranslateX 1 moves the content right by one pixel, bringing in the fill at the left; magnitudes truncate.
  assertEquals(red(apply("TranslateX", 1.9, small, 3, 4), 3, 4), [[0, 1, 2, 3], [0, 11, 12, 13], [0, 21, 22, 23]]);
  const left = red(apply("TranslateX", -1, small, 3, 4, [9, 9, 9]), 3, 4);
  assertEquals(left, [[2, 3, 4, 9], [12, 13, 14, 9], [22, 23, 24, 9]]);
  assertEquals(red(apply("TranslateY", -2, small, 3, 4), 3, 4), [[21, 22, 23, 24], [0, 0, 0, 0], [0, 0, 0, 0]]);
  // ShearX 1 about the top-left corner: output (row y, column x) reads column x + (y + 0.5), rounded half to even
  // (row 0: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4, outside).
  assertEquals(red(apply("ShearX", 1, small, 3, 4), 3, 4), [[1, 3, 3, 0], [13, 13, 0, 0], [23, 0, 0, 0]]);
  assertEquals(red(apply("ShearY", 1, small, 3, 4), 3, 4), [[1, 22, 23, 0], [21, 22, 0, 0], [21, 0, 0, 0]]);
  assertEquals(red(apply("ShearX", -0.5, small, 3, 4), 3, 4), [[1, 2, 3, 4], [0, 11, 12, 13], [0, 21, 22, 23]]);
  // Rotate 180 about the centre maps every pixel onto another exactly; 90 turns counter-clockwise.
  assertEquals(red(apply("Rotate", 180, small, 3, 4), 3, 4), [[24, 23, 22, 21], [14, 13, 12, 11], [4, 3, 2, 1]]);
  const square = image([[[1, 0, 0], [2, 0, 0]], [[3, 0, 0], [4, 0, 0]]]);
  assertEquals(red(apply("Rotate", 90, square, 2, 2), 2, 2), [[2, 4], [1, 3]]);
  // Colour channels move with the red one; the fill is per channel.
  const moved = apply("TranslateY", 1, small, 3, 4, [7, 8, 9]);
  assertEquals([...moved.subarray(0, 3)], [7, 8, 9]);
  assertEquals([...moved.subarray(12, 15)], [...small.subarray(0, 3)]);
});

Deno.test("inverseAffineMatrix is torchvision's _get_inverse_affine_matrix", () => {
  // Values printed by torchvision 0.14: F._get_inverse_affine_matrix([-16, -16], 0, [0, 0], 1, [math.degrees(
  // math.atan(0.3)), 0]) and ([0, 0], -30, [3, -2], 1, [0, 0]).
  const close = (a: number[], b: number[]) => a.every((x, i) => Math.abs(x - b[i]) < 1e-12);
  const shear = inverseAffineMatrix([-16, -16], 0, [0, 0], 1, [Math.atan(0.3) * (180 / Math.PI), 0]);
  assert(close(shear, [1, 0.3, 4.8, 0, 1, 0]), `${shear}`);
  const rot = inverseAffineMatrix([0, 0], -30, [3, -2], 1, [0, 0]);
  const c = Math.cos(Math.PI / 6), s = Math.sin(Math.PI / 6);
  assert(close(rot, [c, -s, -3 * c - 2 * s, s, c, -3 * s + 2 * c]), `${rot}`);
});

Deno.test("colour operations on hand-computed bytes", () => {
  const px = image([[[0, 100, 255], [10, 50, 200]]]);
  assertEquals([...apply("Invert", 0, px, 1, 2)], [255, 155, 0, 245, 205, 55]);
  assertEquals([...apply("Posterize", 2, px, 1, 2)], [0, 64, 192, 0, 0, 192]); // keep 2 bits
  assertEquals([...apply("Posterize", 8, px, 1, 2)], [...px]);
  assertEquals([...apply("Solarize", 100, px, 1, 2)], [0, 155, 0, 10, 50, 55]); // v >= 100 inverted
  // Brightness 1.5: 1.5·v clamped at 255 and truncated (0.5·... never rounds up).
  assertEquals([...apply("Brightness", 0.5, px, 1, 2)], [0, 150, 255, 15, 75, 255]);
  assertEquals([...apply("Brightness", -0.99, image([[[255, 199, 1]]]), 1, 1)], [2, 1, 0]); // 2.55 -> 2
  // Color −1 (factor 0) is the grayscale image: trunc(0.2989·r + 0.587·g + 0.114·b).
  assertEquals([...apply("Color", -1, image([[[200, 100, 50]]]), 1, 1)], [124, 124, 124]); // 124.23
  // Contrast −1 (factor 0) is the mean gray level everywhere: pixels of gray 0 and 255 -> mean 127.5 -> 127.
  assertEquals([...apply("Contrast", -1, image([[[0, 0, 0], [255, 255, 255]]]), 1, 2)], [127, 127, 127, 127, 127, 127]);
  // AutoContrast stretches each channel to [0, 255]; a constant channel stays.
  assertEquals([...apply("AutoContrast", 0, image([[[10, 7, 0]], [[20, 7, 255]], [[15, 7, 128]]]), 3, 1)], [
    0,
    7,
    0,
    255,
    7,
    255,
    127,
    7,
    128,
  ]);
  assertEquals([...apply("Identity", 0, px, 1, 2)], [...px]);
});

Deno.test("Equalize is torchvision's tensor equalize (PIL's step rule), channel by channel", () => {
  // 512 pixels: red 0 ×256, 100 ×128, 200 ×128. step = ⌊(256 + 128) / 255⌋ = 1: lut[v] = pixels below v (+0).
  const n = 512, img = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) img.set([p < 256 ? 0 : p < 384 ? 100 : 200, 42, p % 2 ? 255 : 0], p * 3);
  const out = apply("Equalize", 0, img, 1, n);
  assertEquals([out[0], out[256 * 3], out[384 * 3]], [0, 255, 255]); // 256 and 384 pixels below, clamped to 255
  assertEquals(out[1], 42, "a constant channel (step 0) stays");
  // Blue: 256 zeros and 256 × 255: step = ⌊256 / 255⌋ = 1; 255 -> min(255, 256) = 255, 0 -> 0.
  assertEquals([out[2], out[5]], [0, 255]);
  // A channel spread over 600 pixels: step = ⌊(count outside the last value) / 255⌋ = 2, values shift down the CDF.
  const wide = new Uint8Array(600 * 3);
  for (let p = 0; p < 600; p++) wide[p * 3] = p < 300 ? 10 : p < 540 ? 20 : 30;
  const eq = apply("Equalize", 0, wide, 1, 600);
  assertEquals([eq[0], eq[300 * 3], eq[540 * 3]], [0, 150, 255]); // ⌊(0+1)/2⌋·0, ⌊(300+1)/2⌋, min(255, ⌊541/2⌋)
});

Deno.test("Sharpness blends with the 3×3 smoothed image inside and leaves the border; tiny images are unchanged", () => {
  const img = new Uint8Array(3 * 3 * 3);
  img[4 * 3] = 130; // centre red
  // Factor 0 (magnitude −1): the degenerate image itself: centre round(5·130/13) = 50, border unchanged.
  assertEquals(red(apply("Sharpness", -1, img, 3, 3), 3, 3), [[0, 0, 0], [0, 50, 0], [0, 0, 0]]);
  // Factor 2: 2·130 − 50 = 210.
  assertEquals(red(apply("Sharpness", 1, img, 3, 3), 3, 3)[1][1], 210);
  const tiny = Uint8Array.of(1, 2, 3, 4, 5, 6);
  assertEquals([...apply("Sharpness", 0.9, tiny, 1, 2)], [...tiny]);
});

Deno.test("applyAugmentSteps chains operations through the scratch array, and the arguments are checked", () => {
  const scratch = new Uint8Array(small.length);
  const copy = small.slice();
  const out = applyAugmentSteps(
    [{ op: "Invert", magnitude: 0 }, { op: "TranslateX", magnitude: 1 }],
    copy,
    scratch,
    3,
    4,
  );
  assertEquals(red(out, 3, 4), [[0, 254, 253, 252], [0, 244, 243, 242], [0, 234, 233, 232]]);
  assert(applyAugmentSteps([], copy, scratch, 3, 4) === copy, "no steps: the image itself");
  throws(() => applyAugmentOp("Invert", 0, copy, copy, 3, 4), /distinct source and destination/);
  throws(() => applyAugmentOp("Invert", 0, copy, new Uint8Array(3), 3, 4), /expected 3x4x3 = 36 bytes/);
});

/**
 * A photo-like `h`×`w` image: smooth colour fields, an edge and grain, clipped to [lo, hi] (narrower than 0..255 by
 * default, so that AutoContrast and Equalize have work to do).
 */
function photoLike(h: number, w: number, seed: number, lo = 12, hi = 240): Uint8Array {
  const random = keyedRandom(0xa11, seed);
  const img = new Uint8Array(h * w * 3);
  const f = [random() * 6, random() * 6, random() * 6];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const v = 120 + 70 * Math.sin((f[c] * x) / w + c) * Math.cos((f[c] * y) / h) + (x > w / 2 ? 25 : 0) +
          (random() - 0.5) * 40;
        img[(y * w + x) * 3 + c] = Math.max(lo, Math.min(hi, v));
      }
    }
  }
  return img;
}

/** Every (operation, signed magnitude) of the three transforms' spaces for an `h`×`w` image, without duplicates. */
function allCases(h: number, w: number, options: { oneSign?: boolean; spaces?: ("ta_wide" | "ra" | "aa")[] } = {}) {
  const seen = new Set<string>(), cases: [AugmentOp, number][] = [];
  for (const kind of options.spaces ?? ["ta_wide", "ra", "aa"]) {
    const bins = kind === "aa" ? AUTO_AUGMENT_BINS : MAGNITUDE_BINS;
    for (const { op, magnitudes, signed } of augmentationSpace(kind, bins, h, w)) {
      const values = magnitudes.length ? [...magnitudes] : [0];
      values.forEach((m, bin) => {
        const signs = !signed ? [1] : options.oneSign ? [bin % 2 ? -1 : 1] : [1, -1];
        for (const s of signs) {
          const key = `${op} ${s * m}`;
          if (!seen.has(key)) cases.push([op, s * m]), seen.add(key);
        }
      });
    }
  }
  return cases;
}

Deno.test({
  name: "every operation at every magnitude bin equals torchvision's _apply_op on uint8 tensors (NEAREST, fill)",
  ignore: TORCH_PYTHON === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "augment_ops_" });
    try {
      // A low-range image with a constant and a two-valued channel: the edge cases of AutoContrast and Equalize.
      const flat = new Uint8Array(16 * 16 * 3);
      for (let p = 0; p < 256; p++) flat.set([60 + (p * 7) % 61, 77, p % 3 ? 30 : 31], p * 3);
      const geometric = (c: [AugmentOp, number]) => /Shear|Translate|Rotate/.test(c[0]);
      const images: {
        name: string;
        h: number;
        w: number;
        pixels: Uint8Array;
        fill?: Fill;
        cases: [AugmentOp, number][];
      }[] = [
        { name: "32x32", h: 32, w: 32, pixels: photoLike(32, 32, 1), cases: allCases(32, 32) },
        { name: "37x53", h: 37, w: 53, pixels: photoLike(37, 53, 2), cases: allCases(37, 53) },
        { name: "16x16 flat", h: 16, w: 16, pixels: flat, cases: allCases(16, 16, { spaces: ["ta_wide"] }) },
        {
          name: "37x53 fill",
          h: 37,
          w: 53,
          pixels: photoLike(37, 53, 2),
          fill: [200, 100, 50],
          cases: allCases(37, 53).filter(geometric),
        },
        {
          name: "224x224",
          h: 224,
          w: 224,
          pixels: photoLike(224, 224, 3),
          cases: allCases(224, 224, { oneSign: true, spaces: ["ta_wide", "aa"] }),
        },
        // Twelve more images of other sizes (3×50 to 80×17) and value ranges (narrow, clipped, full), above all for
        // the histogram and colour operations, whose result depends on the whole image.
        ...Array.from({ length: 12 }, (_, k) => {
          const h = 3 + 7 * k, w = 50 - 3 * k, lo = [0, 60, 100, 5][k % 4], hi = [255, 90, 250, 140][k % 4];
          return {
            name: `${h}x${w} [${lo}, ${hi}]`,
            h,
            w,
            pixels: photoLike(h, w, 10 + k, lo, hi),
            cases: [...allCases(h, w, { spaces: ["ta_wide", "ra"] }), ["Invert", 0] as [AugmentOp, number]],
          };
        }),
      ];
      for (const [k, img] of images.entries()) {
        await Deno.writeFile(join(dir, `img_${k}.npy`), encodeNpy(img.pixels, [img.h, img.w, 3]));
      }
      const request = {
        images: images.map((img, k) => ({ file: `img_${k}.npy`, fill: img.fill ?? null, cases: img.cases })),
      };
      await Deno.writeTextFile(join(dir, "request.json"), JSON.stringify(request));
      const result = await new Deno.Command(TORCH_PYTHON!, { args: [SCRIPT, dir] }).output();
      assert(result.success, new TextDecoder().decode(result.stderr));

      // Per operation: the largest byte difference and how many bytes differ, over every image and magnitude.
      const worst = new Map<AugmentOp, { maxDiff: number; differing: number; bytes: number; cases: number }>(
        AUGMENT_OPS.map((op) => [op, { maxDiff: 0, differing: 0, bytes: 0, cases: 0 }]),
      );
      const failures: string[] = [];
      for (const [k, img] of images.entries()) {
        const theirs = decodeNpy(await Deno.readFile(join(dir, `ops_${k}.npy`))).data as Uint8Array;
        const size = img.h * img.w * 3;
        assertEquals(theirs.length, img.cases.length * size);
        const ours = new Uint8Array(size);
        img.cases.forEach(([op, magnitude], c) => {
          applyAugmentOp(op, magnitude, img.pixels, ours, img.h, img.w, img.fill);
          const reference = theirs.subarray(c * size, (c + 1) * size);
          const stats = worst.get(op)!;
          let differing = 0, maxDiff = 0;
          for (let i = 0; i < size; i++) {
            const d = Math.abs(ours[i] - reference[i]);
            if (d > 0) differing++, maxDiff = Math.max(maxDiff, d);
          }
          stats.maxDiff = Math.max(stats.maxDiff, maxDiff);
          stats.differing += differing;
          stats.bytes += size;
          stats.cases++;
          if (differing > 0) failures.push(`${img.name} ${op} ${magnitude}: ${differing} bytes differ, max ${maxDiff}`);
        });
      }
      console.log("operation     cases  max |ours - torchvision|  differing bytes");
      for (const [op, s] of worst) {
        console.log(
          `${op.padEnd(13)} ${String(s.cases).padStart(5)}  ${
            String(s.maxDiff).padStart(24)
          }  ${s.differing} of ${s.bytes}`,
        );
      }
      // torch's affine_grid (the shears and rotations) multiplies through the system BLAS: found 2026-12-01, with
      // Debian's OpenBLAS selected (python3-scipy pulls it in) ShearX/ShearY differ in a few nearest-neighbour
      // pixels; the reference BLAS (`update-alternatives --set libblas.so.3-x86_64-linux-gnu
      // /usr/lib/x86_64-linux-gnu/blas/libblas.so.3`) gives the bytes we match.
      assertEquals(
        failures,
        [],
        `not byte-identical to torchvision (see the BLAS note above):\n${failures.join("\n")}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
