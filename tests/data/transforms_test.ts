import { assert, assertEquals, assertStrictEquals, throws } from "../assert.ts";
import { keyedRandom } from "../../data/random.ts";
import {
  centerCrop,
  evalResizeCrop,
  normalizeCoefficients,
  resizeShorterSide,
  roundHalfEven,
  samplePadCropFlip,
  sampleResizedCrop,
  writeCropFlip,
} from "../../data/transforms.ts";

/** A 4×5 RGB image whose byte at (y, x, c) is 100·c + 10·y + x: every value names its own position. */
function positionalImage(h: number, w: number): Uint8Array {
  const img = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) img[(y * w + x) * 3 + c] = 100 * c + 10 * y + x;
  }
  return img;
}

const identity = { scale: Float32Array.of(1, 1, 1), bias: Float32Array.of(0, 0, 0) };

/** Reads the crop back as [y][x] → "R" (or "pad" for padding, which identity-normalises to 0). */
function redPlane(out: Float32Array, size: number): number[][] {
  return Array.from({ length: size }, (_, y) => Array.from({ length: size }, (_, x) => out[(y * size + x) * 3]));
}

Deno.test("writeCropFlip: crop inside the image copies the hand-computed window", () => {
  const img = positionalImage(4, 5);
  const out = new Float32Array(3 * 3 * 3);
  // pad 1, top 2, left 3 in padded coordinates -> image rows 1..3, columns 2..4
  writeCropFlip(img, 0, 4, 5, 1, { top: 2, left: 3, flip: false }, 3, identity, out, 0);
  assertEquals(redPlane(out, 3), [[12, 13, 14], [22, 23, 24], [32, 33, 34]]);
  // green and blue follow the same window
  assertStrictEquals(out[1], 112);
  assertStrictEquals(out[2], 212);
});

Deno.test("writeCropFlip: zero padding on every side, and the flip mirrors the crop (not the source)", () => {
  const img = positionalImage(4, 5);
  const out = new Float32Array(3 * 3 * 3);
  // top-left corner of the padded image: row 0 and column 0 are padding
  writeCropFlip(img, 0, 4, 5, 1, { top: 0, left: 0, flip: false }, 3, identity, out, 0);
  assertEquals(redPlane(out, 3), [[0, 0, 0], [0, 0, 1], [0, 10, 11]]);
  writeCropFlip(img, 0, 4, 5, 1, { top: 0, left: 0, flip: true }, 3, identity, out, 0);
  assertEquals(redPlane(out, 3), [[0, 0, 0], [1, 0, 0], [11, 10, 0]]);
  // bottom-right corner: padded rows 3..5 = image rows 2, 3, padding; columns 4..6 = image columns 3, 4, padding
  writeCropFlip(img, 0, 4, 5, 1, { top: 3, left: 4, flip: true }, 3, identity, out, 0);
  assertEquals(redPlane(out, 3), [[0, 24, 23], [0, 34, 33], [0, 0, 0]]);
  // wider padding than the crop: all padding
  writeCropFlip(img, 0, 4, 5, 4, { top: 0, left: 0, flip: false }, 3, identity, out, 0);
  assertEquals(redPlane(out, 3), [[0, 0, 0], [0, 0, 0], [0, 0, 0]]);
});

Deno.test("writeCropFlip: offsets in source and output, and normalisation (x/255 - mean)/std", () => {
  const img = new Uint8Array(2 * 2 * 2 * 3);
  img.set([255, 0, 51, 255, 0, 51, 255, 0, 51, 255, 0, 51], 12); // second image
  const coefficients = normalizeCoefficients({ mean: [0.5, 0.25, 0.2], std: [0.5, 0.25, 0.1] });
  const out = new Float32Array(2 * 2 * 2 * 3).fill(99);
  writeCropFlip(img, 12, 2, 2, 0, { top: 0, left: 0, flip: false }, 2, coefficients, out, 12);
  assertEquals([...out.subarray(0, 12)], new Array(12).fill(99)); // first slot untouched
  for (let p = 0; p < 4; p++) {
    assert(Math.abs(out[12 + p * 3] - 1) < 1e-6); // (1 - 0.5) / 0.5
    assert(Math.abs(out[13 + p * 3] + 1) < 1e-6); // (0 - 0.25) / 0.25
    assert(Math.abs(out[14 + p * 3] - 0) < 1e-6); // (0.2 - 0.2) / 0.1
  }
  // padding normalises byte 0: -mean/std
  writeCropFlip(img, 12, 2, 2, 1, { top: 0, left: 0, flip: false }, 2, coefficients, out, 0);
  assertEquals([...out.subarray(0, 3)], [-1, -1, -2]);
});

Deno.test("samplePadCropFlip: offsets cover exactly [0, 2·pad] and both flips occur, per key reproducibly", () => {
  const tops = new Set<number>(), lefts = new Set<number>(), flips = new Set<boolean>();
  for (let i = 0; i < 2000; i++) {
    const p = samplePadCropFlip(keyedRandom(7, i), 32, 32, 32, 4);
    tops.add(p.top);
    lefts.add(p.left);
    flips.add(p.flip);
    assertEquals(p, samplePadCropFlip(keyedRandom(7, i), 32, 32, 32, 4));
  }
  assertEquals([...tops].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assertEquals([...lefts].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assertEquals(flips.size, 2);
  throws(() => samplePadCropFlip(keyedRandom(1), 8, 8, 20, 2), /larger than the padded 12x12/);
});

Deno.test("sampleResizedCrop: boxes lie inside the image with area and ratio in range", () => {
  for (const [h, w] of [[375, 500], [500, 375], [32, 32], [224, 1000]]) {
    for (let i = 0; i < 500; i++) {
      const b = sampleResizedCrop(keyedRandom(3, h, w, i), h, w);
      assert(b.top >= 0 && b.left >= 0 && b.top + b.height <= h && b.left + b.width <= w, JSON.stringify(b));
      assert(b.height > 0 && b.width > 0);
      const area = (b.height * b.width) / (h * w);
      const ratio = b.width / b.height;
      // Rounding to whole pixels widens the ranges slightly on small images.
      const slack = 2 / Math.min(b.height, b.width);
      assert(area >= 0.08 * (1 - 2 * slack) && area <= 1, `area ${area}`);
      assert(ratio >= (3 / 4) * (1 - slack) && ratio <= (4 / 3) * (1 + slack), `ratio ${ratio}`);
    }
  }
});

Deno.test("sampleResizedCrop: falls back to torchvision's centred crop when no try fits", () => {
  // scale above 1 can never fit, so all ten tries fail.
  const always = () => 0.999;
  assertEquals(sampleResizedCrop(always, 100, 400, { scale: [2, 2] }), { top: 0, left: 133, height: 100, width: 133 });
  assertEquals(sampleResizedCrop(always, 400, 100, { scale: [2, 2] }), { top: 133, left: 0, height: 133, width: 100 });
  assertEquals(sampleResizedCrop(always, 90, 100, { scale: [2, 2] }), { top: 0, left: 0, height: 90, width: 100 });
});

Deno.test("resize/center-crop geometry matches torchvision's Resize(int) and CenterCrop", () => {
  assertEquals(resizeShorterSide(375, 500, 256), { height: 256, width: 341 }); // int(256·500/375) = 341
  assertEquals(resizeShorterSide(500, 375, 256), { height: 341, width: 256 });
  assertEquals(resizeShorterSide(300, 300, 256), { height: 256, width: 256 });
  assertEquals(centerCrop(256, 341, 224), { top: 16, left: 58, height: 224, width: 224 }); // round(58.5) = 58
  assertEquals(centerCrop(256, 343, 224), { top: 16, left: 60, height: 224, width: 224 }); // round(59.5) = 60
  assertEquals(evalResizeCrop(375, 500, 224), {
    resized: { height: 256, width: 341 },
    crop: { top: 16, left: 58, height: 224, width: 224 },
  });
  // imageSize 32 (CIFAR JPEGs): Resize(37), CenterCrop(32), offsets round(2.5) = 2
  assertEquals(evalResizeCrop(32, 32, 32), {
    resized: { height: 37, width: 37 },
    crop: { top: 2, left: 2, height: 32, width: 32 },
  });
  throws(() => centerCrop(10, 300, 224), /exceeds the 10x300 image/);
});

Deno.test("roundHalfEven is Python's round()", () => {
  const cases: [number, number][] = [[0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [2.4, 2], [2.6, 3], [7, 7], [58.5, 58]];
  for (const [x, want] of cases) assertStrictEquals(roundHalfEven(x), want, `round(${x})`);
});
