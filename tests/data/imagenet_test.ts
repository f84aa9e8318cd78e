import { assert, assertEquals, assertStrictEquals, rejects } from "../assert.ts";
import { basename, join } from "node:path";
import { indexImageNet } from "../../data/imagenet_dataset.ts";
import { INDEX_FILE_NAME } from "../../data/imagenet_index_file.ts";
import { readImageBytes } from "../../data/image_bytes.ts";
import { loadSharp } from "../../data/image_decode.ts";
import { createLoaders } from "../../data/loaders.ts";
import type { FolderSplit } from "../../data/folder_dataset.ts";
import { CLASS_COLOURS, makeMiniImageNet, MINI_CLASSES, TRAIN_PER_CLASS, VAL_LABELS } from "../imagenet_miniature.ts";

const WNIDS = MINI_CLASSES.map((c) => c.wnid);
const NAMES = MINI_CLASSES.map((c) => c.words);
const TRAIN_LABELS = MINI_CLASSES.flatMap((_, k) => Array(TRAIN_PER_CLASS).fill(k));
/** The validation files in torchvision's order (class by class, by name within one), whatever the layout. */
const VAL_ORDER = VAL_LABELS.map((_, i) => i).sort((a, b) => VAL_LABELS[a] - VAL_LABELS[b] || a - b);
const SORTED_VAL_LABELS = VAL_ORDER.map((i) => VAL_LABELS[i]);
const valFile = (i: number) => `ILSVRC2012_val_${String(i + 1).padStart(8, "0")}.JPEG`;

/** The class whose colour image i of `split` has, read from where the index says its bytes are. */
async function decodedClasses(split: FolderSplit): Promise<number[]> {
  const sharp = await loadSharp();
  const out: number[] = [];
  for (let i = 0; i < split.labels.length; i++) {
    const { channels } = await sharp(await readImageBytes(split, i)).stats();
    const mean = channels.slice(0, 3).map((c: { mean: number }) => c.mean);
    const distance = (c: number[]) => c.reduce((s, v, j) => s + (v - mean[j]) ** 2, 0);
    out.push(CLASS_COLOURS.map((c, k) => [distance(c), k]).sort((a, b) => a[0] - b[0])[0][1]);
  }
  return out;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "imagenet-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("indexImageNet reads the official archives in place: nested train tars, flat val tar, devkit names", async () => {
  await withDir(async (tmp) => {
    const dir = await makeMiniImageNet(join(tmp, "in"), "archives");
    const index = await indexImageNet(dir, { cacheDir: join(tmp, "cache") });
    assertStrictEquals(index.layout, "archives");
    assertEquals(index.wnids, WNIDS);
    assertEquals(index.classNames, NAMES);
    assertEquals(Array.from(index.train.labels), TRAIN_LABELS);
    assertEquals(Array.from(index.test.labels), SORTED_VAL_LABELS);
    assertEquals(index.train.names.slice(0, 2), [
      "ILSVRC2012_img_train.tar:n01440764.tar/n01440764_100.JPEG",
      "ILSVRC2012_img_train.tar:n01440764.tar/n01440764_101.JPEG",
    ]);
    assertEquals(index.test.names, VAL_ORDER.map((i) => `ILSVRC2012_img_val.tar:${valFile(i)}`));
    // The offsets are absolute in the outer file: the bytes there decode to the labelled class's colour.
    assertEquals(await decodedClasses(index.train), TRAIN_LABELS);
    assertEquals(await decodedClasses(index.test), SORTED_VAL_LABELS);
    assertEquals(index.indexFile, { path: join(dir, INDEX_FILE_NAME), reused: false });
    assertEquals(index.notes, []);
  });
});

Deno.test("indexImageNet reads torchvision's extracted folders and Kaggle's layout with the same classes", async () => {
  await withDir(async (tmp) => {
    const folders = await makeMiniImageNet(join(tmp, "folders"), "folders");
    let index = await indexImageNet(folders);
    assertStrictEquals(index.layout, "folders");
    assertEquals(index.wnids, WNIDS);
    assertEquals(index.classNames, WNIDS, "no devkit beside train/: WNIDs");
    assert(index.notes[0].includes("named by their WNIDs"), index.notes[0]);
    assertEquals(Array.from(index.train.labels), TRAIN_LABELS);
    assertEquals(Array.from(index.test.labels), SORTED_VAL_LABELS);
    assertEquals(await decodedClasses(index.test), SORTED_VAL_LABELS);
    // The devkit beside the folders names the classes.
    const archives = await makeMiniImageNet(join(tmp, "archives"), "archives");
    await Deno.copyFile(join(archives, "ILSVRC2012_devkit_t12.tar.gz"), join(folders, "ILSVRC2012_devkit_t12.tar.gz"));
    index = await indexImageNet(folders);
    assertEquals([index.classNames, index.notes], [NAMES, []]);

    // Validation images extracted flat into val/ and never sorted: labelled by the devkit beside train/.
    const flat = await makeMiniImageNet(join(tmp, "flat"), "folders", { flatVal: true });
    await rejects(
      indexImageNet(flat),
      /ILSVRC2012_devkit_t12\.tar\.gz: missing, so the 8 flat images of .*val have no labels/,
    );
    await Deno.copyFile(join(archives, "ILSVRC2012_devkit_t12.tar.gz"), join(flat, "ILSVRC2012_devkit_t12.tar.gz"));
    index = await indexImageNet(flat);
    assertEquals([index.layout, index.wnids, index.classNames, index.notes], ["folders", WNIDS, NAMES, []]);
    assertEquals(Array.from(index.train.labels), TRAIN_LABELS);
    assertEquals(Array.from(index.test.labels), SORTED_VAL_LABELS);
    assertEquals(await decodedClasses(index.test), SORTED_VAL_LABELS);

    const kaggle = await makeMiniImageNet(join(tmp, "kaggle"), "kaggle");
    index = await indexImageNet(kaggle);
    assertStrictEquals(index.layout, "kaggle");
    assertEquals([index.wnids, index.classNames], [WNIDS, NAMES]);
    assertEquals(Array.from(index.train.labels), TRAIN_LABELS);
    assertEquals(Array.from(index.test.labels), SORTED_VAL_LABELS);
    assertEquals(await decodedClasses(index.train), TRAIN_LABELS);
    assertEquals(await decodedClasses(index.test), SORTED_VAL_LABELS);
    // Every layout lists the validation images in the same (torchvision's) order, so saved logits line up.
    for (const root of [folders, flat, kaggle]) {
      const names = (await indexImageNet(root)).test.names.map((n) => basename(n));
      assertEquals(names, VAL_ORDER.map(valFile), root);
    }
  });
});

Deno.test("indexImageNet: a truncated archive, a missing ground truth, an unlisted image each name the file", async () => {
  await withDir(async (tmp) => {
    const dir = await makeMiniImageNet(join(tmp, "cut"), "archives");
    const train = join(dir, "ILSVRC2012_img_train.tar");
    const bytes = await Deno.readFile(train);
    // Cut inside the last class tar (n01440764.tar: the miniature stores the classes in reverse order).
    await Deno.writeFile(train, bytes.subarray(0, bytes.length - 9000));
    await rejects(
      indexImageNet(dir, { useIndexFile: false }),
      new RegExp(`${train}: n01440764\\.tar is cut short: its \\d+ bytes from byte \\d+ run past the end`),
    );

    const noTruth = await makeMiniImageNet(join(tmp, "no-truth"), "archives", { noGroundTruth: true });
    await rejects(
      indexImageNet(noTruth, { useIndexFile: false }),
      /ILSVRC2012_devkit_t12\.tar\.gz:ILSVRC2012_devkit_t12\/data\/ILSVRC2012_validation_ground_truth\.txt: missing, so the 8 images of .*ILSVRC2012_img_val\.tar have no labels/,
    );

    const short = await makeMiniImageNet(join(tmp, "short"), "archives", { groundTruthShortBy: 1 });
    await rejects(
      indexImageNet(short, { useIndexFile: false }),
      /ILSVRC2012_validation_ground_truth\.txt: has 7 lines, so it has no label for ILSVRC2012_val_00000008\.JPEG \(image 8\) of .*ILSVRC2012_img_val\.tar/,
    );

    const noDevkit = await makeMiniImageNet(join(tmp, "no-devkit"), "archives");
    await Deno.remove(join(noDevkit, "ILSVRC2012_devkit_t12.tar.gz"));
    await rejects(indexImageNet(noDevkit), /ILSVRC2012_devkit_t12\.tar\.gz: missing; the ILSVRC-2012 devkit names/);

    const kaggle = await makeMiniImageNet(join(tmp, "kaggle"), "kaggle");
    const csv = join(kaggle, "LOC_val_solution.csv");
    const rows = (await Deno.readTextFile(csv)).split("\n").filter((r) => !r.startsWith("ILSVRC2012_val_00000003"));
    await Deno.writeTextFile(csv, rows.join("\n"));
    await rejects(indexImageNet(kaggle), /LOC_val_solution\.csv: has no row for .*ILSVRC2012_val_00000003\.JPEG/);
    await Deno.remove(csv);
    await rejects(indexImageNet(kaggle), /LOC_val_solution\.csv: missing, so the 8 images of .*val have no labels/);

    await rejects(indexImageNet(join(tmp, "nothing")), /nothing: not a folder/);
    await Deno.mkdir(join(tmp, "empty"));
    await rejects(
      indexImageNet(join(tmp, "empty")),
      /empty: no ImageNet found; expected one of: ILSVRC2012_img_train\.tar/,
    );
  });
});

Deno.test("indexImageNet labels a validation image by its number, so a partial validation tar keeps its labels", async () => {
  await withDir(async (tmp) => {
    const dir = await makeMiniImageNet(join(tmp, "partial"), "archives", { dropVal: [0, 2] });
    const index = await indexImageNet(dir, { useIndexFile: false });
    const kept = VAL_ORDER.filter((i) => i !== 0 && i !== 2).map((i) => VAL_LABELS[i]);
    assertEquals(Array.from(index.test.labels), kept);
    assertEquals(await decodedClasses(index.test), kept);
  });
});

Deno.test("indexImageNet: a missing archive leaves its split empty with a note", async () => {
  await withDir(async (tmp) => {
    const dir = await makeMiniImageNet(join(tmp, "val-only"), "archives");
    await Deno.remove(join(dir, "ILSVRC2012_img_train.tar"));
    const index = await indexImageNet(dir, { useIndexFile: false });
    assertEquals([index.train.labels.length, index.test.labels.length], [0, VAL_LABELS.length]);
    assert(/ILSVRC2012_img_train\.tar: missing, so the training split is empty/.test(index.notes.join("\n")));
  });
});

Deno.test("the index file is reused while the archives are unchanged, rebuilt when stale or damaged", async () => {
  await withDir(async (tmp) => {
    const dir = await makeMiniImageNet(join(tmp, "in"), "archives");
    const options = { cacheDir: join(tmp, "cache") };
    const fresh = await indexImageNet(dir, options);
    const file = join(dir, INDEX_FILE_NAME);
    assertEquals(fresh.indexFile, { path: file, reused: false });
    const same = (a: typeof fresh, b: typeof fresh) => {
      assertEquals([a.wnids, a.classNames, a.train.names, a.test.names], [
        b.wnids,
        b.classNames,
        b.train.names,
        b.test.names,
      ]);
      assertEquals([a.train.tar, a.train.labels, a.test.tar, a.test.labels], [
        b.train.tar,
        b.train.labels,
        b.test.tar,
        b.test.labels,
      ]);
    };
    const reused = await indexImageNet(dir, options);
    assertEquals(reused.indexFile, { path: file, reused: true });
    same(reused, fresh);

    // Damaged: one digit of one offset changed (still valid JSON): the digest catches it.
    const text = await Deno.readTextFile(file);
    const at = text.indexOf('"offsets":[') + '"offsets":['.length;
    await Deno.writeTextFile(file, text.slice(0, at) + (text[at] === "1" ? "2" : "1") + text.slice(at + 1));
    const repaired = await indexImageNet(dir, options);
    assertEquals(repaired.indexFile, { path: file, reused: false });
    assert(/damaged \(its contents do not match the digest/.test(repaired.notes.join("\n")), repaired.notes.join("\n"));
    same(repaired, fresh);
    await Deno.writeTextFile(file, "{not json");
    assert(/damaged \(its header line is not JSON\)/.test((await indexImageNet(dir, options)).notes.join("\n")));

    // Stale: the validation archive replaced by one with an image fewer (another size and time).
    const val = join(dir, "ILSVRC2012_img_val.tar");
    const other = await makeMiniImageNet(join(tmp, "other"), "archives");
    await Deno.copyFile(join(other, "ILSVRC2012_img_val.tar"), val);
    await Deno.utime(val, new Date(), new Date(Date.now() + 60_000));
    const stale = await indexImageNet(dir, options);
    assert(/stale \(made for archives/.test(stale.notes.join("\n")), stale.notes.join("\n"));
    assertEquals(stale.indexFile, { path: file, reused: false });
    same(stale, await indexImageNet(dir, { useIndexFile: false }));
    assertEquals((await indexImageNet(dir, options)).indexFile, { path: file, reused: true });
  });
});

Deno.test("the index file goes to the cache folder when the dataset folder cannot take it", async () => {
  await withDir(async (tmp) => {
    const dir = await makeMiniImageNet(join(tmp, "in"), "archives");
    // A folder where the index file would go makes the write there fail, as a read-only folder does (tests run as
    // root, for whom permissions do not).
    await Deno.mkdir(join(dir, INDEX_FILE_NAME));
    const cacheDir = join(tmp, "cache");
    const first = await indexImageNet(dir, { cacheDir });
    assert(first.indexFile?.path?.startsWith(cacheDir + "/imagenet-"), JSON.stringify(first.indexFile));
    assertStrictEquals(first.indexFile?.reused, false);
    const second = await indexImageNet(dir, { cacheDir });
    assertEquals(second.indexFile, { path: first.indexFile!.path, reused: true });
    assertEquals(second.notes, [], "the unreadable one in the dataset folder is passed over: nothing was rebuilt");
  });
});

Deno.test("createLoaders: the validation archive and the devkit alone serve evaluation, with a warning", async () => {
  await withDir(async (tmp) => {
    const dir = await makeMiniImageNet(join(tmp, "in"), "archives");
    await Deno.remove(join(dir, "ILSVRC2012_img_train.tar"));
    const warnings: string[] = [];
    const loaders = await createLoaders(
      { dataset: "imagenet", dataDir: dir, valSplit: 0, seed: 0, batchSize: 4, imageSize: 32, workers: 0 },
      { onWarning: (w) => warnings.push(w) },
    );
    try {
      assertEquals([loaders.train.numImages, loaders.train.batchesPerEpoch, loaders.test.numImages], [0, 0, 8]);
      assert(/ILSVRC2012_img_train\.tar: missing, so the training split is empty/.test(warnings.join("\n")));
    } finally {
      await Promise.all([loaders.train.close(), loaders.test.close()]);
    }
  });
});

Deno.test("createLoaders({dataset: 'imagenet'}) gives the devkit's class names and batches of the right labels", async () => {
  await withDir(async (tmp) => {
    const dir = await makeMiniImageNet(join(tmp, "in"), "archives");
    const loaders = await createLoaders({
      dataset: "imagenet",
      dataDir: dir,
      valSplit: 0,
      seed: 0,
      batchSize: 4,
      imageSize: 32,
      workers: 0,
    });
    try {
      assertEquals([loaders.classNames, loaders.numClasses, loaders.imageSize], [NAMES, 4, 32]);
      const labels: number[] = [];
      for await (const b of loaders.test.batches(0)) {
        assertEquals(b.images.length, b.labels.length * 32 * 32 * 3);
        labels.push(...b.labels);
      }
      assertEquals(labels, SORTED_VAL_LABELS);
    } finally {
      await Promise.all([loaders.train.close(), loaders.test.close()]);
    }
  });
});
