/**
 * A miniature ImageNet for tests, made at run time in any of the three layouts users hold: the official archives
 * (a train tar of per-class tars, a flat validation tar, a devkit .tar.gz whose meta.mat is
 * `fixtures/imagenet_meta.mat`, written by scipy), torchvision's extracted folders, and Kaggle's layout. Its four
 * classes are the fixture's leaf synsets; every image of class k is a JPEG of one colour, {@linkcode CLASS_COLOURS}[k]
 * (k in sorted-WNID order) with a little noise, so a test can check a label by decoding the image.
 * @module
 */
import { join } from "node:path";
import { loadSharp } from "../data/image_decode.ts";
import { tar } from "./run_tar.ts";

/** The fixture's leaf synsets as torchvision orders them (sorted WNIDs), with their names and ILSVRC2012_IDs. */
export const MINI_CLASSES = [
  { wnid: "n01440764", id: 2, words: "tench, Tinca tinca" },
  { wnid: "n01443537", id: 4, words: "goldfish, Carassius auratus" },
  { wnid: "n01484850", id: 3, words: "great white shark, white shark, man-eater, Carcharodon carcharias" },
  { wnid: "n01530575", id: 1, words: "brambling, Fringilla montifringilla" },
] as const;

/** The colour of class k's images. */
export const CLASS_COLOURS: [number, number, number][] = [[220, 40, 40], [40, 200, 40], [40, 60, 220], [230, 220, 40]];

/** Training images per class, and the validation images' labels in file order (ILSVRC2012_val_00000001 first). */
export const TRAIN_PER_CLASS = 3;
export const VAL_LABELS = [2, 0, 3, 1, 1, 3, 0, 2];

export const META_FIXTURE = new URL("./fixtures/imagenet_meta.mat", import.meta.url).pathname;

/** One JPEG of class `label` (`seed` varies the noise so files differ). */
export async function classJpeg(label: number, seed: number, width = 72, height = 56): Promise<Uint8Array> {
  const sharp = await loadSharp();
  const [r, g, b] = CLASS_COLOURS[label];
  const pixels = new Uint8Array(width * height * 3);
  let s = seed * 2654435761 >>> 0;
  for (let i = 0; i < pixels.length; i += 3) {
    s = (s * 1103515245 + 12345) >>> 0;
    const noise = ((s >>> 16) % 17) - 8;
    pixels[i] = r + noise;
    pixels[i + 1] = g + noise;
    pixels[i + 2] = b + noise;
  }
  return new Uint8Array(await sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer());
}

async function write(path: string, bytes: Uint8Array | string): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  if (typeof bytes === "string") await Deno.writeTextFile(path, bytes);
  else await Deno.writeFile(path, bytes);
}

const valName = (i: number) => `ILSVRC2012_val_${String(i + 1).padStart(8, "0")}`;
const trainName = (wnid: string, j: number) => `${wnid}_${100 + j}.JPEG`;

/** Options of {@linkcode makeMiniImageNet}. */
export interface MiniOptions {
  /** archives: leave the ground truth out of the devkit. */
  noGroundTruth?: boolean;
  /** archives: a ground truth shorter than the validation set by this many lines. */
  groundTruthShortBy?: number;
  /** archives: validation images (0-based file order) left out of the validation tar (a partial download). */
  dropVal?: number[];
  /** folders: the validation images flat in val/ (extracted, never sorted into class folders). */
  flatVal?: boolean;
}

/** Writes the miniature in `layout` under `dir` (created); returns `dir`. */
export async function makeMiniImageNet(
  dir: string,
  layout: "archives" | "folders" | "kaggle",
  options: MiniOptions = {},
): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const work = await Deno.makeTempDir({ dir, prefix: ".build-" });
  if (layout === "archives") {
    // Per-class tars with flat member names, as in ILSVRC2012_img_train.tar.
    const classTars: string[] = [];
    for (const [k, c] of MINI_CLASSES.entries()) {
      const cdir = join(work, "class", c.wnid);
      const names: string[] = [];
      for (let j = 0; j < TRAIN_PER_CLASS; j++) {
        names.push(trainName(c.wnid, j));
        await write(join(cdir, names[j]), await classJpeg(k, k * 10 + j));
      }
      await Deno.mkdir(join(work, "outer"), { recursive: true });
      await tar(["-cf", join(work, "outer", `${c.wnid}.tar`), "-C", cdir, ...names.reverse()]);
      classTars.push(`${c.wnid}.tar`);
    }
    await tar(["-cf", join(dir, "ILSVRC2012_img_train.tar"), "-C", join(work, "outer"), ...classTars.reverse()]);
    const vals: string[] = [];
    for (const [i, label] of VAL_LABELS.entries()) {
      if (options.dropVal?.includes(i)) continue;
      vals.push(`${valName(i)}.JPEG`);
      await write(join(work, "val", vals.at(-1)!), await classJpeg(label, 100 + i));
    }
    await tar(["-cf", join(dir, "ILSVRC2012_img_val.tar"), "-C", join(work, "val"), ...vals]);
    const data = join(work, "devkit", "ILSVRC2012_devkit_t12", "data");
    await write(join(data, "meta.mat"), await Deno.readFile(META_FIXTURE));
    const members = ["ILSVRC2012_devkit_t12/data/meta.mat"];
    if (!options.noGroundTruth) {
      const lines = VAL_LABELS.slice(0, VAL_LABELS.length - (options.groundTruthShortBy ?? 0));
      await write(
        join(data, "ILSVRC2012_validation_ground_truth.txt"),
        lines.map((l) => `${MINI_CLASSES[l].id}\n`).join(""),
      );
      members.push("ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt");
    }
    await write(join(data, "..", "readme.txt"), "miniature devkit");
    await tar(["-czf", join(dir, "ILSVRC2012_devkit_t12.tar.gz"), "-C", join(work, "devkit"), ...members]);
  } else {
    const root = layout === "folders" ? dir : join(dir, "ILSVRC", "Data", "CLS-LOC");
    for (const [k, c] of MINI_CLASSES.entries()) {
      for (let j = 0; j < TRAIN_PER_CLASS; j++) {
        await write(join(root, "train", c.wnid, trainName(c.wnid, j)), await classJpeg(k, k * 10 + j));
      }
    }
    for (const [i, label] of VAL_LABELS.entries()) {
      const path = layout === "folders" && !options.flatVal
        ? join(root, "val", MINI_CLASSES[label].wnid, `${valName(i)}.JPEG`)
        : join(root, "val", `${valName(i)}.JPEG`);
      await write(path, await classJpeg(label, 100 + i));
    }
    if (layout === "kaggle") {
      // The real mapping lists every class in WNID order; the solution's rows are in no particular order.
      await write(join(dir, "LOC_synset_mapping.txt"), MINI_CLASSES.map((c) => `${c.wnid} ${c.words}\n`).join(""));
      const rows = VAL_LABELS.map((l, i) =>
        `${valName(i)},${MINI_CLASSES[l].wnid} 10 20 30 40 ${MINI_CLASSES[l].wnid} 1 2 3 4\n`
      );
      await write(join(dir, "LOC_val_solution.csv"), "ImageId,PredictionString\n" + rows.reverse().join(""));
    }
  }
  await Deno.remove(work, { recursive: true });
  return dir;
}
