import { assert, assertEquals } from "../assert.ts";
import { applyAugmentSteps } from "../../data/augment_ops.ts";
import { autoAugmentSampler } from "../../data/auto_augment.ts";
import { RandomStream } from "../../data/batch_plan.ts";
import {
  createTrainImageWriter,
  type ImageAugmentation,
  imageAugmentationProblems,
  NO_IMAGE_AUGMENTATION,
} from "../../data/image_augmentation.ts";
import { keyedRandom } from "../../data/random.ts";
import { sampleRandomErasing } from "../../data/random_erasing.ts";
import { normalizeCoefficients, samplePadCropFlip, writeCropFlip } from "../../data/transforms.ts";

const SEED = 21, EPOCH = 3, SIZE = 32, PAD = 4, PIXELS = SIZE * SIZE * 3;
const norm = { mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.3] } as {
  mean: [number, number, number];
  std: [number, number, number];
};
const coefficients = normalizeCoefficients(norm);

/** 40 random 32×32 images in one array, like a CIFAR source. */
const images = (() => {
  const random = keyedRandom(77);
  return Uint8Array.from({ length: 40 * PIXELS }, () => Math.floor(random() * 256));
})();

/**
 * The writer's output for sample `index` (its crop drawn as the batch maker draws it); with `pad` 0 the crop is the
 * whole image, as for an ImageNet crop decoded at its final size.
 */
function written(augmentation: ImageAugmentation, index: number, pad = PAD): Float32Array {
  const write = createTrainImageWriter(augmentation, SIZE, coefficients, SEED);
  const crop = samplePadCropFlip(keyedRandom(SEED, RandomStream.augment, EPOCH, index), SIZE, SIZE, SIZE, pad);
  const out = new Float32Array(PIXELS);
  write(images, index * PIXELS, SIZE, SIZE, pad, crop, out, 0, EPOCH, index);
  return out;
}

/**
 * torchvision's order written out by hand: RandomCrop(pad) + flip on bytes, the automatic augmentation, then
 * ToTensor + Normalize.
 */
function reference(augmentation: ImageAugmentation, index: number, pad = PAD): Float32Array {
  const crop = samplePadCropFlip(keyedRandom(SEED, RandomStream.augment, EPOCH, index), SIZE, SIZE, SIZE, pad);
  const bytes = new Uint8Array(PIXELS);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const sy = crop.top + y - pad, sx0 = crop.left + x - pad;
      const sx = crop.flip ? crop.left + (SIZE - 1 - x) - pad : sx0;
      if (sy < 0 || sy >= SIZE || sx < 0 || sx >= SIZE) continue; // zero padding
      for (let c = 0; c < 3; c++) bytes[(y * SIZE + x) * 3 + c] = images[index * PIXELS + (sy * SIZE + sx) * 3 + c];
    }
  }
  const sample = autoAugmentSampler({ policy: augmentation.autoAugment, ...augmentation }, SIZE, SIZE);
  const steps = sample(keyedRandom(SEED, RandomStream.autoAugment, EPOCH, index));
  const augmented = applyAugmentSteps(steps, bytes, new Uint8Array(PIXELS), SIZE, SIZE);
  return Float32Array.from(augmented, (v, i) => (v / 255 - norm.mean[i % 3]) / norm.std[i % 3]);
}

function close(a: Float32Array, b: Float32Array, what: string): void {
  assertEquals(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert(worst < 1e-5, `${what}: max difference ${worst}`);
}

Deno.test("without options the writer is the fused crop + flip + normalise pass", () => {
  for (let index = 0; index < 10; index++) {
    const crop = samplePadCropFlip(keyedRandom(SEED, RandomStream.augment, EPOCH, index), SIZE, SIZE, SIZE, PAD);
    const fused = new Float32Array(PIXELS);
    writeCropFlip(images, index * PIXELS, SIZE, SIZE, PAD, crop, SIZE, coefficients, fused, 0);
    assertEquals(written(NO_IMAGE_AUGMENTATION, index), fused);
  }
});

Deno.test("the automatic augmentation applies to the cropped, flipped bytes, before normalising", () => {
  for (const autoAugment of ["ta_wide", "ra", "cifar10", "imagenet"] as const) {
    const augmentation = { ...NO_IMAGE_AUGMENTATION, autoAugment, raNumOps: 3, raMagnitude: 14 };
    let changed = 0;
    for (let index = 0; index < 40; index++) {
      const ours = written(augmentation, index);
      close(ours, reference(augmentation, index), `${autoAugment} sample ${index}`);
      if (ours.join() !== written(NO_IMAGE_AUGMENTATION, index).join()) changed++;
      // A whole-image crop (ImageNet's, decoded at its size) takes the copy-or-mirror path: the same images.
      close(written(augmentation, index, 0), reference(augmentation, index, 0), `${autoAugment} ${index}, pad 0`);
    }
    assert(changed >= 10, `${autoAugment} changed only ${changed} of 40 images`);
  }
  // The order matters: a flipped sample whose operation is a shear differs from shear-then-flip.
  const ta = { ...NO_IMAGE_AUGMENTATION, autoAugment: "ta_wide" as const };
  const sample = autoAugmentSampler({ policy: "ta_wide" }, SIZE, SIZE);
  const index = Array.from({ length: 40 }, (_, i) => i).find((i) =>
    samplePadCropFlip(keyedRandom(SEED, RandomStream.augment, EPOCH, i), SIZE, SIZE, SIZE, PAD).flip &&
    /Shear|Translate|Rotate/.test(sample(keyedRandom(SEED, RandomStream.autoAugment, EPOCH, i))[0].op)
  )!;
  assert(index !== undefined, "a flipped sample with a geometric operation among the 40");
  const crop = samplePadCropFlip(keyedRandom(SEED, RandomStream.augment, EPOCH, index), SIZE, SIZE, SIZE, PAD);
  const unflipped = new Uint8Array(PIXELS), flippedLater = new Float32Array(PIXELS);
  writeCropFlip(
    images,
    index * PIXELS,
    SIZE,
    SIZE,
    PAD,
    { ...crop, flip: false },
    SIZE,
    {
      scale: Float32Array.of(1, 1, 1),
      bias: Float32Array.of(0, 0, 0),
    },
    unflipped,
    0,
  );
  const steps = sample(keyedRandom(SEED, RandomStream.autoAugment, EPOCH, index));
  const augmented = applyAugmentSteps(steps, unflipped, new Uint8Array(PIXELS), SIZE, SIZE);
  writeCropFlip(augmented, 0, SIZE, SIZE, 0, { top: 0, left: 0, flip: true }, SIZE, coefficients, flippedLater, 0);
  assert(written(ta, index).join() !== flippedLater.join(), "augmenting before the flip gave the same image");
});

Deno.test("RandomErasing zeroes a box of the normalised image (value 0, not black) and touches nothing else", () => {
  const erase = { ...NO_IMAGE_AUGMENTATION, randomErase: 1 };
  for (let index = 0; index < 20; index++) {
    const box = sampleRandomErasing(keyedRandom(SEED, RandomStream.randomErase, EPOCH, index), 1, SIZE, SIZE);
    const plain = written(NO_IMAGE_AUGMENTATION, index), ours = written(erase, index);
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) {
        const inside = box !== null && y >= box.top && y < box.top + box.height && x >= box.left &&
          x < box.left + box.width;
        for (let c = 0; c < 3; c++) {
          const i = (y * SIZE + x) * 3 + c;
          assertEquals(ours[i], inside ? 0 : plain[i], `sample ${index} (${y}, ${x}, ${c})`);
        }
      }
    }
  }
  // With p = 0.5 about half the images are erased, and the others are exactly the plain ones: options draw from
  // their own streams, so turning one on changes no other draw.
  const half = { ...NO_IMAGE_AUGMENTATION, randomErase: 0.5 };
  let same = 0;
  for (let index = 0; index < 40; index++) {
    if (written(half, index).join() === written(NO_IMAGE_AUGMENTATION, index).join()) same++;
  }
  assert(same >= 10 && same <= 30, `${same} of 40 left alone`);
  // Erasing comes after the automatic augmentation: the box is 0 in the augmented image too.
  const both = { ...NO_IMAGE_AUGMENTATION, autoAugment: "ta_wide" as const, randomErase: 1 };
  const box = sampleRandomErasing(keyedRandom(SEED, RandomStream.randomErase, EPOCH, 5), 1, SIZE, SIZE)!;
  const out = written(both, 5), aug = reference(both, 5);
  const at = (y: number, x: number) => (y * SIZE + x) * 3;
  assertEquals(out[at(box.top, box.left)], 0);
  const outside = box.top > 0 ? at(0, 0) : at(SIZE - 1, SIZE - 1);
  assert(Math.abs(out[outside] - aug[outside]) < 1e-5);
});

Deno.test("imageAugmentationProblems names each bad field with what it expects", () => {
  assertEquals(imageAugmentationProblems(NO_IMAGE_AUGMENTATION), []);
  assertEquals(
    imageAugmentationProblems({ autoAugment: "svhn" as "ra", raNumOps: -1, raMagnitude: 31, randomErase: 1.5 }),
    [
      'autoAugment: expected none | ta_wide | ra | imagenet | cifar10, received "svhn"',
      "raNumOps: expected an integer >= 0, received -1",
      "raMagnitude: expected an integer in [0, 30], received 31",
      "randomErase: expected a probability in [0, 1], received 1.5",
    ],
  );
});
