import { assert, assertEquals, assertStrictEquals, rejects } from "../assert.ts";
import { tar } from "../run_tar.ts";
import { indexFolderDataset } from "../../data/folder_dataset.ts";
import {
  type Batch,
  type BatchLoader,
  createLoaders,
  IMAGENET_NORMALIZATION,
  type Loaders,
} from "../../data/loaders.ts";
import { loadSharp } from "../../data/image_decode.ts";
import { FieldMessageError } from "../../io/config_error.ts";
import { flagOf } from "../../tasks/args.ts";
import { CIFAR10_CLASS_NAMES } from "../../data/class_names.ts";
import { join } from "node:path";

const SHARED_JPG = new URL("../../../shared/data/cifar10-jpg", import.meta.url).pathname;
const haveShared = (() => {
  try {
    return Deno.statSync(join(SHARED_JPG, "train.tar.gz")).isFile;
  } catch {
    return false;
  }
})();

const RGB: [number, number, number] = [200, 50, 30];
const PNG_RGB: [number, number, number] = [10, 220, 90];
const GRAY = 128;

/**
 * A class-folder tree: classes created out of order (dog, ant, cat), a grayscale JPEG, a CMYK JPEG, a PNG named
 * .JPEG, a truncated JPEG and a non-image file. Returns the tree's root.
 */
async function makeTree(dir: string): Promise<string> {
  const sharp = await loadSharp();
  const solid = (c: [number, number, number], w = 40, h = 30) =>
    sharp({ create: { width: w, height: h, channels: 3, background: { r: c[0], g: c[1], b: c[2] } } });
  const jpeg = await solid(RGB).jpeg({ quality: 95 }).toBuffer();
  const gray = await solid([GRAY, GRAY, GRAY]).toColourspace("b-w").jpeg().toBuffer();
  const cmyk = await solid(RGB).toColourspace("cmyk").jpeg({ quality: 95 }).toBuffer();
  const png = await sharp({
    create: {
      width: 30,
      height: 40,
      channels: 4,
      background: { r: PNG_RGB[0], g: PNG_RGB[1], b: PNG_RGB[2], alpha: 1 },
    },
  }).png().toBuffer();
  // The fixtures really are what they claim.
  assertEquals([(await sharp(gray).metadata()).channels, (await sharp(cmyk).metadata()).space], [1, "cmyk"]);
  assertStrictEquals((await sharp(png).metadata()).format, "png");
  const root = join(dir, "tree");
  const files: Record<string, Uint8Array> = {
    "train/dog/d1.jpg": jpeg,
    "train/dog/d2.jpg": jpeg,
    "train/ant/gray.jpg": gray,
    "train/ant/cmyk.jpg": cmyk,
    "train/cat/png_content.JPEG": png,
    "train/cat/truncated.jpg": jpeg.subarray(0, jpeg.length >> 1),
    "train/cat/notes.txt": new TextEncoder().encode("not an image"),
    "val/ant/v1.jpg": gray,
    "val/cat/v2.jpeg": png,
    "val/dog/v3.jpg": jpeg,
  };
  for (const [name, bytes] of Object.entries(files)) {
    await Deno.mkdir(join(root, name, ".."), { recursive: true });
    await Deno.writeFile(join(root, name), bytes);
  }
  return root;
}

async function collect(loader: BatchLoader, epoch = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.batches(epoch)) out.push(b);
  return out;
}

async function closeAll(l: Loaders): Promise<void> {
  await Promise.all([l.train.close(), l.val?.close(), l.test.close()]);
}

/** The normalised value of byte `v` in channel `c`. */
const norm = (v: number, c: number) => (v / 255 - IMAGENET_NORMALIZATION.mean[c]) / IMAGENET_NORMALIZATION.std[c];

Deno.test("folder: sorted classes, images only, and gray/CMYK/PNG-content files decoded to RGB", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = await makeTree(dir);
    const index = await indexFolderDataset(root);
    assertEquals(index.classNames, ["ant", "cat", "dog"]);
    assertEquals([...index.train.labels], [0, 0, 1, 1, 2, 2]);
    assertEquals(index.train.paths!.map((p) => p.slice(root.length + 1)), [
      "train/ant/cmyk.jpg",
      "train/ant/gray.jpg",
      "train/cat/png_content.JPEG",
      "train/cat/truncated.jpg",
      "train/dog/d1.jpg",
      "train/dog/d2.jpg",
    ]);
    assertStrictEquals(index.testFolder, "val");

    const loaders = await createLoaders({
      dataset: "folder",
      dataDir: root,
      valSplit: 0,
      seed: 1,
      batchSize: 1,
      imageSize: 16,
      workers: 0,
    });
    try {
      assertEquals([loaders.numClasses, loaders.imageSize, loaders.test.numImages], [3, 16, 3]);
      // Evaluation keeps order: gray (ant), PNG (cat), RGB JPEG (dog). Solid images stay solid through resize + crop.
      const [gray, png, rgb] = await collect(loaders.test);
      assertEquals([...gray.labels, ...png.labels, ...rgb.labels], [0, 1, 2]);
      for (const b of [gray, png, rgb]) assertEquals([b.size, b.height, b.width, b.images.length], [1, 16, 16, 768]);
      const expect = (b: Batch, rgbBytes: number[], tol: number) => {
        for (let p = 0; p < 256; p++) {
          for (let c = 0; c < 3; c++) {
            const got = b.images[p * 3 + c], want = norm(rgbBytes[c], c);
            assert(Math.abs(got - want) <= tol, `pixel ${p} channel ${c}: ${got} vs ${want}`);
          }
        }
      };
      expect(gray, [GRAY, GRAY, GRAY], 2 / 255 / 0.224);
      expect(png, PNG_RGB, 1e-5); // lossless
      expect(rgb, RGB, 4 / 255 / 0.224);
      // CMYK goes through a colour profile; it must come back close to the RGB it was made from.
      const cmyk = (await collect(loaders.train)).find((b) =>
        b.labels[0] === 0 && Math.abs(b.images[0] - b.images[1]) > 1
      );
      assert(cmyk, "the CMYK image decodes to a coloured (not gray) RGB image");
      for (let c = 0; c < 3; c++) assert(Math.abs(cmyk.images[c] - norm(RGB[c], c)) < 40 / 255 / 0.224, `cmyk ch ${c}`);
    } finally {
      await closeAll(loaders);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("folder: links to images and to class folders are followed (ImageFolder's followlinks); broken ones skipped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = await makeTree(dir);
    const linked = join(dir, "linked");
    for (const split of ["train", "val"]) {
      await Deno.mkdir(join(linked, split), { recursive: true });
      for await (const c of Deno.readDir(join(root, split))) {
        if (c.name === "dog") { // a whole class folder as one link
          await Deno.symlink(join(root, split, c.name), join(linked, split, c.name));
          continue;
        }
        await Deno.mkdir(join(linked, split, c.name));
        for await (const f of Deno.readDir(join(root, split, c.name))) {
          await Deno.symlink(join(root, split, c.name, f.name), join(linked, split, c.name, f.name));
        }
      }
    }
    await Deno.symlink(join(dir, "gone.jpg"), join(linked, "train", "ant", "broken.jpg"));
    await Deno.symlink(join(linked, "train", "ant", "loop.jpg"), join(linked, "train", "ant", "loop.jpg"));
    const [real, links] = [await indexFolderDataset(root), await indexFolderDataset(linked)];
    assertEquals(links.classNames, real.classNames);
    assertEquals([...links.train.labels], [...real.train.labels]);
    assertEquals([...links.test.labels], [...real.test.labels]);
    assertEquals(
      links.train.paths!.map((p) => p.slice(linked.length)),
      real.train.paths!.map((p) => p.slice(root.length)),
    );
    // Links into a disk that is not mounted: the error says why nothing was found.
    const dangling = join(dir, "dangling");
    await Deno.mkdir(join(dangling, "train", "ant"), { recursive: true });
    for (const f of ["a.jpg", "b.jpg"]) {
      await Deno.symlink(join(dir, "unmounted", f), join(dangling, "train", "ant", f));
    }
    await rejects(
      () => indexFolderDataset(dangling),
      /dangling: no train\/<class>\/<image> files found .*; 2 symbolic links could not be followed/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("folder: a truncated image is skipped with one warning, counted once, and too many stop the run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = await makeTree(dir);
    const warnings: string[] = [];
    const config = { dataset: "folder" as const, dataDir: root, valSplit: 0, seed: 3, batchSize: 2, imageSize: 16 };
    const loaders = await createLoaders({ ...config, workers: 0, maxSkippedImages: 1 }, {
      onWarning: (m) => warnings.push(m),
    });
    try {
      for (const epoch of [0, 1]) {
        const batches = await collect(loaders.train, epoch);
        assertStrictEquals(batches.length, 3);
        // 6 images, one unreadable: five come through, in batches of 2, 2 and 1 (the short one holds the gap).
        assertEquals(batches.map((b) => b.size).sort(), [1, 2, 2]);
        for (const b of batches) assertStrictEquals(b.images.length, b.size * 16 * 16 * 3);
      }
      assertStrictEquals(loaders.stats.skippedImages, 1);
      assertStrictEquals(warnings.length, 1);
      // The reason is libvips's own text, which differs between builds ("premature end", "corrupt header"): the
      // contract is the file named and a reason given.
      assert(
        /^skipped .*train\/cat\/truncated\.jpg: \S.* \(1 skipped so far, limit 1\)$/.test(warnings[0]),
        warnings[0],
      );
    } finally {
      await closeAll(loaders);
    }
    const strict = await createLoaders({ ...config, workers: 0, maxSkippedImages: 0 });
    try {
      await rejects(
        collect(strict.train),
        /1 images failed to decode, more than DataConfig\.maxSkippedImages \(0\); the last was .*truncated\.jpg/,
      );
    } finally {
      await closeAll(strict);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("folder: .tar and .tar.gz archives (workers) give exactly the batches of the directory (inline)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = await makeTree(dir);
    await tar(["-cf", join(dir, "tree.tar"), "-C", dir, "tree"]); // tree under a leading folder
    await tar(["-czf", join(dir, "train.tar.gz"), "-C", root, "train"]); // split across two archives, like
    await tar(["-czf", join(dir, "val.tar.gz"), "-C", root, "val"]); // ../shared/data/cifar10-jpg
    const both = join(dir, "both");
    await Deno.mkdir(both);
    await Deno.rename(join(dir, "train.tar.gz"), join(both, "train.tar.gz"));
    await Deno.rename(join(dir, "val.tar.gz"), join(both, "val.tar.gz"));
    const config = {
      dataset: "folder" as const,
      valSplit: 1,
      seed: 9,
      batchSize: 2,
      imageSize: 12,
      maxSkippedImages: 1,
    };
    const snapshot = async (dataDir: string, workers: number) => {
      const l = await createLoaders({ ...config, dataDir, workers });
      try {
        assertEquals(l.classNames, ["ant", "cat", "dog"]);
        return {
          train: await collect(l.train, 2),
          val: await collect(l.val!),
          test: await collect(l.test),
          skipped: l.stats.skippedImages,
        };
      } finally {
        await closeAll(l);
      }
    };
    const reference = await snapshot(root, 0);
    assertStrictEquals(reference.test.length, 2);
    assertEquals(await snapshot(root, 2), reference, "directory, workers (paths as a shared string table)");
    assertEquals(await snapshot(join(dir, "tree.tar"), 2), reference);
    assertEquals(await snapshot(both, 1), reference);
    await rejects(indexFolderDataset(join(dir, "nope")), /nope: not found \(expected a class-folder directory/);
    await Deno.remove(join(root, "val"), { recursive: true });
    await rejects(indexFolderDataset(root), /tree: has train\/ but neither val\/<class>\/ nor test\/<class>\/ images/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "folder: the real CIFAR-10 JPEG archives index all 60,000 images; decoded channel means match reference.md",
  ignore: !haveShared,
  async fn() {
    const index = await indexFolderDataset(SHARED_JPG);
    assertEquals(index.classNames, CIFAR10_CLASS_NAMES);
    assertStrictEquals(index.train.labels.length, 50000);
    assertStrictEquals(index.test.labels.length, 10000);
    assertStrictEquals(index.testFolder, "test");
    const perClass = new Array(10).fill(0);
    for (const label of index.train.labels) perClass[label]++;
    assertEquals(perClass, new Array(10).fill(5000));

    const loaders = await createLoaders({
      dataset: "folder",
      dataDir: SHARED_JPG,
      valSplit: 0,
      seed: 0,
      batchSize: 256,
      imageSize: 32,
      workers: 2,
    });
    try {
      assertStrictEquals(loaders.train.numImages, 50000);
      assertStrictEquals(loaders.train.batchesPerEpoch, 195);
      assertStrictEquals(loaders.test.batchesPerEpoch, 40);
      // Two shuffled training batches: 512 images from all classes.
      const sums = [0, 0, 0];
      let pixels = 0, seen = 0;
      for await (const b of loaders.train.batches(0)) {
        for (let i = 0; i < b.images.length; i += 3) {
          for (let c = 0; c < 3; c++) {
            sums[c] += b.images[i + c] * IMAGENET_NORMALIZATION.std[c] + IMAGENET_NORMALIZATION.mean[c];
          }
        }
        pixels += b.images.length / 3;
        if (++seen === 2) break;
      }
      const reference = [0.4912, 0.4821, 0.4465];
      for (let c = 0; c < 3; c++) {
        const mean = sums[c] / pixels;
        assert(Math.abs(mean - reference[c]) < 0.03, `channel ${c} mean ${mean.toFixed(4)} vs ${reference[c]}`);
      }
      assertStrictEquals(loaders.stats.skippedImages, 0);
    } finally {
      await closeAll(loaders);
    }
  },
});

/** A tree of `size`-pixel images for `transforms: "cifar"`: solid JPEGs, a gray and a PNG one, a truncated JPEG and
 *  a JPEG of the wrong size. Returns the root and the RGB each kept training image must decode to, in split order. */
async function makeSmallTree(dir: string, size: number) {
  const sharp = await loadSharp();
  const solid = (c: [number, number, number], w = size, h = size) =>
    sharp({ create: { width: w, height: h, channels: 3, background: { r: c[0], g: c[1], b: c[2] } } });
  const red = await solid(RGB).jpeg({ quality: 100 }).toBuffer();
  const green = await solid(PNG_RGB).jpeg({ quality: 100 }).toBuffer();
  const files: Record<string, Uint8Array> = {
    "train/a/1.jpg": red,
    "train/a/2.jpg": green,
    "train/a/wide.jpg": await solid(RGB, size + 4, size).jpeg().toBuffer(),
    "train/b/1.jpg": await solid([GRAY, GRAY, GRAY]).toColourspace("b-w").jpeg({ quality: 100 }).toBuffer(),
    "train/b/2.png": await solid(PNG_RGB).png().toBuffer(),
    "train/b/cut.jpg": red.subarray(0, red.length >> 1),
    "test/a/1.jpg": green,
    "test/b/1.jpg": red,
  };
  const root = join(dir, "small");
  for (const [name, bytes] of Object.entries(files)) {
    await Deno.mkdir(join(root, name, ".."), { recursive: true });
    await Deno.writeFile(join(root, name), bytes);
  }
  return root;
}

Deno.test("folder, transforms cifar: decoded once at their size by sharp or js; odd-sized and broken files skipped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const size = 16;
    const root = await makeSmallTree(dir, size);
    const pixelsOf = (b: Batch, k: number, mean: number[], std: number[]) =>
      [0, 1, 2].map((c) => (b.images[k * size * size * 3 + c] * std[c] + mean[c]) * 255);
    const results: Record<string, number[][]> = {};
    for (const decoder of ["sharp", "js"] as const) {
      const warnings: string[] = [];
      const loaders = await createLoaders({
        dataset: "folder",
        dataDir: root,
        valSplit: 0,
        seed: 1,
        batchSize: 2,
        imageSize: size,
        transforms: "cifar",
        decoder,
        workers: 0,
      }, { onWarning: (m) => warnings.push(m), nameOf: flagOf }); // as deno task train says them
      try {
        // sharp reads the PNG; jpeg-js reads JPEG only and says so.
        const kept = decoder === "sharp" ? 4 : 3;
        assertStrictEquals(loaders.train.numImages, kept);
        assertStrictEquals(loaders.stats.skippedImages, 6 - kept);
        assertStrictEquals(loaders.imageSize, size);
        // The fields the advice names, as the caller names them (here as flags).
        assert(
          warnings.some((w) =>
            /wide\.jpg: is 20x16, expected 16x16 \(--transforms cifar .*; see --image-size\)/.test(w)
          ),
          warnings[0],
        );
        assert(warnings.some((w) => /cut\.jpg: \S/.test(w)), warnings.join("\n"));
        if (decoder === "js") {
          assert(warnings.some((w) => /2\.png: not a JPEG.* use --decoder sharp \(/.test(w)), warnings.join("\n"));
        }
        // Normalised by the kept training images' own statistics: solid red, green and gray (and green PNG).
        const imgs = decoder === "sharp"
          ? [RGB, PNG_RGB, [GRAY, GRAY, GRAY], PNG_RGB]
          : [RGB, PNG_RGB, [GRAY, GRAY, GRAY]];
        for (let c = 0; c < 3; c++) {
          const m = imgs.reduce((s, p) => s + p[c], 0) / imgs.length / 255;
          assert(Math.abs(loaders.mean[c] - m) < 2 / 255, `${decoder} mean ${c}: ${loaders.mean[c]} vs ${m}`);
        }
        // The test split, unaugmented, in folder order: green then red.
        const [test] = await collect(loaders.test);
        results[decoder] = [pixelsOf(test, 0, loaders.mean, loaders.std), pixelsOf(test, 1, loaders.mean, loaders.std)];
        assertEquals(test.size, 2);
        // Training batches are CIFAR's pad-4 crops: some contain the zero padding, which a solid image never has.
        let padded = 0;
        for (const b of await collect(loaders.train, 0)) {
          for (let k = 0; k < b.size; k++) {
            for (let p = 0; p < size * size; p++) {
              const zero = [0, 1, 2].every((c) =>
                Math.abs(b.images[(k * size * size + p) * 3 + c] * loaders.std[c] + loaders.mean[c]) < 1e-6
              );
              if (zero) padded++;
            }
          }
        }
        assert(padded > 0, "augmented crops reach into the zero padding");
      } finally {
        await closeAll(loaders);
      }
    }
    // Past the limit the run stops; its error keeps the advice's fields, which a command line says as flags.
    const over = await createLoaders({
      dataset: "folder",
      dataDir: root,
      valSplit: 0,
      seed: 1,
      batchSize: 2,
      imageSize: size,
      transforms: "cifar",
      decoder: "js",
      workers: 0,
      maxSkippedImages: 0,
    }).catch((e) => e);
    assert(over instanceof FieldMessageError, String(over));
    assert(
      /the last was .*wide\.jpg: is 20x16, expected 16x16 \(--transforms cifar .*; see --image-size\)$/.test(
        over.describe(flagOf),
      ),
      over.describe(flagOf),
    );
    for (const decoder of ["sharp", "js"]) {
      const [green, red] = results[decoder];
      for (let c = 0; c < 3; c++) {
        assert(Math.abs(green[c] - PNG_RGB[c]) < 3, `${decoder} green ${green}`);
        assert(Math.abs(red[c] - RGB[c]) < 3, `${decoder} red ${red}`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "folder, transforms cifar, js decoder: the real CIFAR-10 JPEGs decode to reference.md's mean and std",
  ignore: !haveShared,
  async fn() {
    const loaders = await createLoaders({
      dataset: "folder",
      dataDir: SHARED_JPG,
      valSplit: 0,
      seed: 0,
      batchSize: 512,
      transforms: "cifar",
      decoder: "js",
      workers: 0,
    });
    try {
      assertStrictEquals(loaders.train.numImages, 50000);
      assertStrictEquals(loaders.test.numImages, 10000);
      assertStrictEquals(loaders.stats.skippedImages, 0);
      assertEquals(loaders.classNames, CIFAR10_CLASS_NAMES);
      // jpeg-js reads 0.4900 0.4802 0.4453 / 0.2458 0.2430 0.2612 (sharp: reference.md's figures to 1e-4): its chroma
      // replication and rounding sit about half a level low.
      const mean = [0.4912, 0.4821, 0.4465], std = [0.2452, 0.2428, 0.2606];
      for (let c = 0; c < 3; c++) {
        assert(Math.abs(loaders.mean[c] - mean[c]) < 0.003, `mean ${c}: ${loaders.mean[c]} vs ${mean[c]}`);
        assert(Math.abs(loaders.std[c] - std[c]) < 0.003, `std ${c}: ${loaders.std[c]} vs ${std[c]}`);
      }
    } finally {
      await closeAll(loaders);
    }
  },
});

Deno.test("folder: with val/ and test/ both present, val/ is evaluated and test/ ignored, said once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = join(dir, "three");
    // Nothing is decoded while indexing: names are enough.
    for (const name of ["train/a/1.jpg", "train/b/1.jpg", "val/a/2.jpg", "test/a/3.jpg", "test/b/4.jpg"]) {
      await Deno.mkdir(join(root, name, ".."), { recursive: true });
      await Deno.writeFile(join(root, name), new Uint8Array([1]));
    }
    await tar(["-cf", join(dir, "three.tar"), "-C", dir, "three"]);
    const said = `${root}: val/ and test/ both exist: val/ is the evaluation split; test/ is ignored`;
    for (const source of [root, join(dir, "three.tar")]) {
      const warnings: string[] = [];
      const index = await indexFolderDataset(source, { onWarning: (m) => warnings.push(m) });
      assertEquals([index.testFolder, index.test.labels.length], ["val", 1]);
      assertEquals(warnings, [said.replace(root, source)]);
    }
    // Through the loaders' warning callback, as deno task train and eval print it.
    const warnings: string[] = [];
    const loaders = await createLoaders(
      { dataset: "folder", dataDir: root, valSplit: 0, seed: 0, batchSize: 1, imageSize: 8, workers: 0 },
      { onWarning: (m) => warnings.push(m) },
    );
    await closeAll(loaders);
    assertEquals([loaders.test.numImages, warnings], [1, [said]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("folder, evaluating a trained model: recorded classes and normalisation make test/ alone enough", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const size = 16;
    const root = await makeSmallTree(dir, size);
    const recorded = {
      mean: [0.25, 0.5, 0.75] as [number, number, number],
      std: [0.5, 0.25, 0.125] as [number, number, number],
    };
    const config = {
      dataset: "folder" as const,
      dataDir: root,
      valSplit: 0,
      seed: 1,
      batchSize: 2,
      imageSize: size,
      transforms: "cifar" as const,
      workers: 0,
    };
    // With train/ there, the recorded mean/std replace its statistics and its images are not even decoded.
    const warnings: string[] = [];
    let l = await createLoaders({ ...config, normalization: recorded }, { onWarning: (m) => warnings.push(m) });
    try {
      assertEquals([l.mean, l.std, l.train.numImages, l.test.numImages, warnings], [
        recorded.mean,
        recorded.std,
        0,
        2,
        [], // the broken training images were never read
      ]);
      const [test] = await collect(l.test);
      for (const [k, rgb] of [[0, PNG_RGB], [1, RGB]] as const) {
        for (let c = 0; c < 3; c++) {
          const byte = (test.images[k * size * size * 3 + c] * recorded.std[c] + recorded.mean[c]) * 255;
          assert(Math.abs(byte - rgb[c]) < 3, `image ${k} channel ${c}: ${byte} vs ${rgb[c]}`);
        }
      }
    } finally {
      await closeAll(l);
    }
    // Validation images are held out of train/, which is then decoded (and normalised as recorded).
    l = await createLoaders({ ...config, valSplit: 1, normalization: recorded });
    await closeAll(l);
    assertEquals([l.mean, l.train.numImages + l.val!.numImages], [recorded.mean, 4]);

    await Deno.remove(join(root, "train"), { recursive: true });
    await rejects(indexFolderDataset(root), /small: holds neither a train\/ folder nor \.tar\/\.tar\.gz archives/);
    // The classes come from the record: test/ need not hold them all, but may hold no other.
    const index = await indexFolderDataset(root, { classNames: ["a", "b", "c"] });
    assertEquals([index.classNames, [...index.test.labels], index.train.labels.length], [["a", "b", "c"], [0, 1], 0]);
    await rejects(
      indexFolderDataset(root, { classNames: ["a", "c"] }),
      /small: test\/b\/ is not one of the 2 classes the model was trained on/,
    );
    await Deno.mkdir(join(root, "train")); // an empty train/ is no train/
    assertEquals((await indexFolderDataset(root, { classNames: ["a", "b"] })).test.labels.length, 2);
    l = await createLoaders({ ...config, normalization: recorded, classNames: ["a", "b"] });
    await closeAll(l);
    assertEquals([l.classNames, l.test.numImages, l.train.numImages], [["a", "b"], 2, 0]);
    // The imagenet transforms normalise with fixed constants: the classes are all they need.
    l = await createLoaders({ ...config, transforms: "imagenet", classNames: ["a", "b"] });
    try {
      assertEquals([l.mean, l.test.numImages], [IMAGENET_NORMALIZATION.mean, 2]);
      assertStrictEquals((await collect(l.test)).length, 1);
    } finally {
      await closeAll(l);
    }
    // Without a recorded normalisation, transforms cifar has nothing to take its mean/std from.
    await rejects(
      createLoaders({ ...config, classNames: ["a", "b"] }),
      /small: no training images to take the mean\/std of transforms "cifar" from/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
