/**
 * ImageNet (ILSVRC-2012) as users hold it, in any of three layouts under one folder:
 *
 * - `archives`: the official `ILSVRC2012_img_train.tar` (a tar of 1,000 per-class tars, indexed in place: each
 *   image's absolute offset and size in the outer file, nothing extracted), `ILSVRC2012_img_val.tar` (50,000 flat
 *   JPEGs labelled by the devkit's ground truth) and `ILSVRC2012_devkit_t12.tar.gz` (classes and names). The index is
 *   kept in an index file (see `imagenet_index_file.ts`) so later runs skip the 1.3 M headers.
 * - `folders`: torchvision's extracted layout `train/<wnid>/*.JPEG`, `val/<wnid>/*.JPEG`; class names from the devkit
 *   archive or `LOC_synset_mapping.txt` beside them when present, else the WNIDs.
 * - `kaggle`: `LOC_synset_mapping.txt`, `LOC_val_solution.csv`, `ILSVRC/Data/CLS-LOC/train/<wnid>/*.JPEG` and the flat
 *   `ILSVRC/Data/CLS-LOC/val/*.JPEG`.
 *
 * Classes are torchvision's: sorted WNIDs, label = position; a class's name is the devkit's `words`. Both splits are in
 * torchvision's (ImageFolder's) order whatever the layout: class by class, by file name within a class.
 * @module
 */
import { basename, join } from "node:path";
import type { FolderIndex, FolderSplit } from "./folder_dataset.ts";
import { indexFolderDataset } from "./folder_dataset.ts";
import { DEVKIT_ARCHIVE, type ImageNetDevkit, type ImageNetSynset, readDevkit } from "./imagenet_devkit.ts";
import {
  type ArchiveIndex,
  archiveKey,
  type IndexedSplit,
  indexFileCandidates,
  readIndexFile,
  writeIndexFile,
} from "./imagenet_index_file.ts";
import { indexTar } from "./tar_index.ts";
import { statIfExists } from "../io/stat_if_exists.ts";
import { readDirFollowingLinks } from "../io/read_dir_following_links.ts";

/** The official archives' file names. */
export const TRAIN_ARCHIVE = "ILSVRC2012_img_train.tar";
export const VAL_ARCHIVE = "ILSVRC2012_img_val.tar";
export { DEVKIT_ARCHIVE };
/** The Kaggle layout's files. */
export const KAGGLE_MAPPING = "LOC_synset_mapping.txt";
export const KAGGLE_VAL_SOLUTION = "LOC_val_solution.csv";
export const KAGGLE_DATA = "ILSVRC/Data/CLS-LOC";

/** What the full ILSVRC-2012 classification set holds. */
export const IMAGENET_COUNTS = { train: 1_281_167, val: 50_000, classes: 1_000 } as const;

/** How the folder holds ImageNet (see the module documentation). */
export type ImageNetLayout = "archives" | "folders" | "kaggle";

/** An indexed ImageNet: a folder index (test = the official validation set) and where it came from. */
export interface ImageNetIndex extends FolderIndex {
  layout: ImageNetLayout;
  /** Sorted WNIDs: label i is wnids[i]; classNames[i] is its name. */
  wnids: string[];
  /** Non-fatal findings: a missing archive, class names that fell back to WNIDs, how the index was obtained. */
  notes: string[];
  /** `archives`: the index file read or written (null when none could be written). */
  indexFile?: { path: string | null; reused: boolean };
}

/** Options of {@linkcode indexImageNet}. */
export interface ImageNetOptions {
  /** `archives`: read and write the index file (default true); false indexes the archives every time. */
  useIndexFile?: boolean;
  /** Where the index goes when the dataset folder is read-only (default `$XDG_CACHE_HOME/resnet-webgpu`). */
  cacheDir?: string;
}

const WNID = /^n\d{8}$/;
const VAL_NAME = /^ILSVRC2012_val_(\d{8})\.JPEG$/;

const isFile = async (p: string) => (await statIfExists(p))?.isFile === true;
const isDir = async (p: string) => (await statIfExists(p))?.isDirectory === true;

/**
 * Indexes the ImageNet under `dir` in whichever layout it is (checked in the order folders, kaggle, archives).
 * @throws {Error} naming the file at fault: no layout found, a missing devkit or ground truth, a truncated archive, a
 * validation image the ground truth does not list, a class folder or tar that is not a devkit class.
 */
export async function indexImageNet(dir: string, options: ImageNetOptions = {}): Promise<ImageNetIndex> {
  if (!(await isDir(dir))) throw new Error(`${dir}: not a folder (expected the folder that holds ImageNet)`);
  if (await isDir(join(dir, "train"))) return await indexExtracted(dir);
  if (await isFile(join(dir, KAGGLE_MAPPING))) return await indexKaggle(dir);
  const present = await Promise.all([TRAIN_ARCHIVE, VAL_ARCHIVE, DEVKIT_ARCHIVE].map((f) => isFile(join(dir, f))));
  if (present.some((p) => p)) return await indexOfficial(dir, options);
  throw new Error(
    `${dir}: no ImageNet found; expected one of: ${TRAIN_ARCHIVE}, ${VAL_ARCHIVE} and ${DEVKIT_ARCHIVE} (the ` +
      `official archives); train/<wnid>/ and val/<wnid>/ (torchvision's extracted layout); ${KAGGLE_MAPPING} with ` +
      `${KAGGLE_DATA}/ (Kaggle's layout)`,
  );
}

/** Sorted WNIDs and their names, from leaf synsets. */
function classesOf(synsets: ImageNetSynset[]): { wnids: string[]; classNames: string[] } {
  const sorted = [...synsets].sort((a, b) => (a.wnid < b.wnid ? -1 : a.wnid > b.wnid ? 1 : 0));
  return { wnids: sorted.map((s) => s.wnid), classNames: sorted.map((s) => s.words) };
}

// ---------------------------------------------------------------------------------------------------------------
// The official archives.

async function indexOfficial(dir: string, options: ImageNetOptions): Promise<ImageNetIndex> {
  const devkitPath = join(dir, DEVKIT_ARCHIVE);
  if (!(await isFile(devkitPath))) {
    throw new Error(
      `${devkitPath}: missing; the ILSVRC-2012 devkit names the classes and labels the validation images ` +
        `(download it with the image archives)`,
    );
  }
  const notes: string[] = [];
  const files = [TRAIN_ARCHIVE, VAL_ARCHIVE, DEVKIT_ARCHIVE];
  const useFile = options.useIndexFile ?? true;
  const key = await archiveKey(dir, files);
  const candidates = await indexFileCandidates(dir, options.cacheDir);
  let index: ArchiveIndex | null = null;
  let indexFile: ImageNetIndex["indexFile"];
  const unusable: string[] = [];
  if (useFile) {
    for (const path of candidates) {
      const found = await readIndexFile(path, key);
      if (found === null) continue;
      if (typeof found === "string") {
        unusable.push(found);
        continue;
      }
      index = found;
      indexFile = { path, reused: true };
      break;
    }
  }
  if (!index) {
    for (const why of unusable) notes.push(`${why}; rebuilt`);
    index = await buildArchiveIndex(dir);
    if (useFile) indexFile = { path: await writeIndexFile(candidates, key, index), reused: false };
  }
  for (const [split, file] of [[index.train, TRAIN_ARCHIVE], [index.val, VAL_ARCHIVE]] as const) {
    if (key[file] === null) {
      notes.push(
        `${join(dir, file)}: missing, so the ${split === index.train ? "training" : "validation"} split is empty`,
      );
    }
  }
  const split = (s: IndexedSplit, archive: string): FolderSplit => ({
    tar: {
      archives: [join(dir, archive)],
      archive: new Int32Array(s.names.length),
      offsets: Float64Array.from(s.offsets),
      sizes: Float64Array.from(s.sizes),
    },
    names: s.names.map((n) => `${archive}:${n}`),
    labels: Int32Array.from(s.labels),
  });
  return {
    layout: "archives",
    wnids: index.wnids,
    classNames: index.classNames,
    train: split(index.train, TRAIN_ARCHIVE),
    test: split(index.val, VAL_ARCHIVE),
    testFolder: "val",
    notes,
    indexFile,
  };
}

/** Reads the devkit and the headers of both image archives (whichever exist). */
async function buildArchiveIndex(dir: string): Promise<ArchiveIndex> {
  const devkit = await readDevkit(join(dir, DEVKIT_ARCHIVE));
  const { wnids, classNames } = classesOf(devkit.synsets);
  const labelOf = new Map(wnids.map((w, i) => [w, i]));
  const empty = (): IndexedSplit => ({ names: [], offsets: [], sizes: [], labels: [] });
  const train = empty(), val = empty();

  const trainPath = join(dir, TRAIN_ARCHIVE);
  if (await isFile(trainPath)) {
    const classTars = await indexTar(trainPath);
    const found: { name: string; offset: number; size: number; label: number }[] = [];
    for (const inner of classTars) {
      const wnid = inner.name.replace(/\.tar$/, "");
      const label = labelOf.get(wnid);
      if (!inner.name.endsWith(".tar") || label === undefined) {
        throw new Error(
          `${trainPath}: member ${inner.name} at byte ${inner.offset} is not <wnid>.tar of a class of ${devkit.metaName}`,
        );
      }
      for (
        const m of await indexTar(trainPath, { start: inner.offset, size: inner.size, name: `member ${inner.name}` })
      ) {
        found.push({ name: `${inner.name}/${m.name}`, offset: m.offset, size: m.size, label });
      }
    }
    // ImageFolder's order: by class, then by file name.
    found.sort((a, b) => a.label - b.label || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const f of found) {
      train.names.push(f.name);
      train.offsets.push(f.offset);
      train.sizes.push(f.size);
      train.labels.push(f.label);
    }
  }

  const valPath = join(dir, VAL_ARCHIVE);
  if (await isFile(valPath)) {
    const members = (await indexTar(valPath)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (members.length > 0 && devkit.groundTruth === null) {
      throw new Error(
        `${devkit.groundTruthName}: missing, so the ${members.length} images of ${valPath} have no labels`,
      );
    }
    const valLabel = validationLabeller(devkit, wnids);
    const labelled = members.map((m) => ({ ...m, label: valLabel(m.name, valPath) }));
    for (const m of byClass(labelled)) {
      val.names.push(m.name);
      val.offsets.push(m.offset);
      val.sizes.push(m.size);
      val.labels.push(m.label);
    }
  }
  if (train.names.length === 0 && val.names.length === 0) {
    throw new Error(`${dir}: neither ${TRAIN_ARCHIVE} nor ${VAL_ARCHIVE} holds any image`);
  }
  return { wnids, classNames, train, val };
}

/**
 * Labels validation images: image `ILSVRC2012_val_N.JPEG` (named in errors as in `where`) takes line N of the ground
 * truth, by number rather than position, so a partial download keeps its labels.
 */
function validationLabeller(devkit: ImageNetDevkit, wnids: string[]): (name: string, where: string) => number {
  const labelOfId = new Map(devkit.synsets.map((s) => [s.id, wnids.indexOf(s.wnid)]));
  return (name, where) => {
    const number = VAL_NAME.exec(basename(name))?.[1];
    if (number === undefined) throw new Error(`${where}: ${name} is not named ILSVRC2012_val_NNNNNNNN.JPEG`);
    if (devkit.groundTruth === null) {
      throw new Error(`${devkit.groundTruthName}: missing, so the validation images of ${where} have no labels`);
    }
    const n = parseInt(number, 10);
    const id = devkit.groundTruth[n - 1];
    if (id === undefined) {
      throw new Error(
        `${devkit.groundTruthName}: has ${devkit.groundTruth.length} lines, so it has no label for ${name} ` +
          `(image ${n}) of ${where}`,
      );
    }
    const label = labelOfId.get(id);
    if (label === undefined) {
      throw new Error(`${devkit.groundTruthName}: line ${n} is ${id}, which is not the ILSVRC2012_ID of a class`);
    }
    return label;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Class folders: torchvision's extracted layout, Kaggle's.

/** Class names by WNID from `LOC_synset_mapping.txt` ("n01440764 tench, Tinca tinca" lines). */
async function readMapping(path: string): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const lines = (await Deno.readTextFile(path)).split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const m = /^(n\d{8})\s+(.*)$/.exec(line.trim());
    if (!m) throw new Error(`${path}: line ${i + 1} is ${JSON.stringify(line)}, expected "<wnid> <names>"`);
    names.set(m[1], m[2]);
  });
  if (names.size === 0) throw new Error(`${path}: holds no "<wnid> <names>" lines`);
  return names;
}

/** Names of the extracted layout's classes: the devkit's, Kaggle's mapping, or the WNIDs (with a note). */
async function namesBeside(dir: string): Promise<{ names: Map<string, string> | null; source: string }> {
  const devkit = join(dir, DEVKIT_ARCHIVE);
  if (await isFile(devkit)) {
    const { synsets } = await readDevkit(devkit);
    return { names: new Map(synsets.map((s) => [s.wnid, s.words])), source: devkit };
  }
  const mapping = join(dir, KAGGLE_MAPPING);
  if (await isFile(mapping)) return { names: await readMapping(mapping), source: mapping };
  return { names: null, source: "" };
}

async function indexExtracted(dir: string): Promise<ImageNetIndex> {
  const valDir = join(dir, "val");
  const flat = (await isDir(valDir)) ? (await imagesIn(valDir)).filter((f) => VAL_NAME.test(f)) : [];
  if (flat.length > 0) return await indexExtractedFlatVal(dir, flat);
  const folder = await indexFolderDataset(dir);
  const notes: string[] = [];
  const { names, source } = await namesBeside(dir);
  for (const wnid of folder.classNames) {
    if (!WNID.test(wnid)) {
      throw new Error(`${join(dir, "train", wnid)}: a class folder not named by a WNID (n########)`);
    }
    if (names && !names.has(wnid)) {
      throw new Error(`${join(dir, "train", wnid)}: WNID ${wnid} is not a class of ${source}`);
    }
  }
  if (!names) {
    notes.push(
      `${dir}: no ${DEVKIT_ARCHIVE} or ${KAGGLE_MAPPING} beside train/, so the classes are named by their WNIDs`,
    );
  }
  return {
    ...folder,
    layout: "folders",
    wnids: folder.classNames,
    classNames: folder.classNames.map((w) => names?.get(w) ?? w),
    notes,
  };
}

/**
 * The extracted layout with the validation images still flat in `val/` (`tar xf ILSVRC2012_img_val.tar -C val`
 * without torchvision's or `valprep.sh`'s sorting into class folders): labelled by the devkit beside `train/`.
 */
async function indexExtractedFlatVal(dir: string, files: string[]): Promise<ImageNetIndex> {
  const devkitPath = join(dir, DEVKIT_ARCHIVE);
  const valDir = join(dir, "val");
  if (!(await isFile(devkitPath))) {
    throw new Error(
      `${devkitPath}: missing, so the ${files.length} flat images of ${valDir} have no labels (put the devkit ` +
        "beside train/, or sort val/ into class folders)",
    );
  }
  const devkit = await readDevkit(devkitPath);
  const { wnids, classNames } = classesOf(devkit.synsets);
  const train = await listClassFolders(join(dir, "train"), wnids, devkit.metaName);
  const valLabel = validationLabeller(devkit, wnids);
  const val = pathsAndLabels(byClass(files.map((f) => ({ path: join(valDir, f), label: valLabel(f, valDir) }))));
  return {
    layout: "folders",
    wnids,
    classNames,
    train: fileSplit(train),
    test: fileSplit(val),
    testFolder: "val",
    notes: [],
  };
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function imagesIn(folder: string): Promise<string[]> {
  const files: string[] = [];
  for await (const f of readDirFollowingLinks(folder)) {
    if (f.isFile && /\.jpe?g$/i.test(f.name)) files.push(f.name);
  }
  return files.sort(byName);
}

/** The images of `<trainDir>/<wnid>/` for the classes `wnids` (sorted), class by class, by name within one. */
async function listClassFolders(
  trainDir: string,
  wnids: string[],
  classSource: string,
): Promise<{ paths: string[]; labels: number[] }> {
  const folders = new Set<string>();
  for await (const e of readDirFollowingLinks(trainDir)) if (e.isDirectory) folders.add(e.name);
  for (const wnid of [...folders].sort(byName)) {
    if (!wnids.includes(wnid)) {
      throw new Error(`${join(trainDir, wnid)}: WNID ${wnid} is not a class of ${classSource}`);
    }
  }
  const train = { paths: [] as string[], labels: [] as number[] };
  for (const [label, wnid] of wnids.entries()) {
    if (!folders.has(wnid)) continue;
    for (const f of await imagesIn(join(trainDir, wnid))) {
      train.paths.push(join(trainDir, wnid, f));
      train.labels.push(label);
    }
  }
  return train;
}

/**
 * Validation images (in file-name order) in torchvision's order: `ImageNet(split="val")` is an ImageFolder of the
 * images sorted into class folders, so class by class, by name within a class (a stable sort keeps the names' order).
 */
function byClass<T extends { label: number }>(items: T[]): T[] {
  return [...items].sort((a, b) => a.label - b.label);
}

function pathsAndLabels(items: { path: string; label: number }[]): { paths: string[]; labels: number[] } {
  return { paths: items.map((i) => i.path), labels: items.map((i) => i.label) };
}

/** A folder split of files on disk. */
function fileSplit(s: { paths: string[]; labels: number[] }): FolderSplit {
  return { paths: s.paths, names: s.paths, labels: Int32Array.from(s.labels) };
}

async function indexKaggle(dir: string): Promise<ImageNetIndex> {
  const mappingPath = join(dir, KAGGLE_MAPPING);
  const names = await readMapping(mappingPath);
  const wnids = [...names.keys()].sort(byName);
  const labelOf = new Map(wnids.map((w, i) => [w, i]));
  const notes: string[] = [];
  const trainDir = join(dir, KAGGLE_DATA, "train"), valDir = join(dir, KAGGLE_DATA, "val");
  let train = { paths: [] as string[], labels: [] as number[] };
  if (await isDir(trainDir)) train = await listClassFolders(trainDir, wnids, mappingPath);
  else notes.push(`${trainDir}: missing, so the training split is empty`);
  let val = { paths: [] as string[], labels: [] as number[] };
  if (await isDir(valDir)) {
    const files = await imagesIn(valDir);
    const solutionPath = join(dir, KAGGLE_VAL_SOLUTION);
    if (files.length > 0 && !(await isFile(solutionPath))) {
      throw new Error(`${solutionPath}: missing, so the ${files.length} images of ${valDir} have no labels`);
    }
    const solution = files.length > 0 ? await readValSolution(solutionPath, labelOf) : new Map<string, number>();
    const labelled = files.map((f) => {
      const label = solution.get(f.replace(/\.jpe?g$/i, ""));
      if (label === undefined) throw new Error(`${solutionPath}: has no row for ${join(valDir, f)}`);
      return { path: join(valDir, f), label };
    });
    val = pathsAndLabels(byClass(labelled));
  } else notes.push(`${valDir}: missing, so the validation split is empty`);
  if (train.paths.length === 0 && val.paths.length === 0) {
    throw new Error(`${join(dir, KAGGLE_DATA)}: holds no train/<wnid>/*.JPEG or val/*.JPEG images`);
  }
  return {
    layout: "kaggle",
    wnids,
    classNames: wnids.map((w) => names.get(w)!),
    train: fileSplit(train),
    test: fileSplit(val),
    testFolder: "val",
    notes,
  };
}

/** `LOC_val_solution.csv`: "ImageId,PredictionString" rows, the label being the first token's WNID. */
async function readValSolution(path: string, labelOf: Map<string, number>): Promise<Map<string, number>> {
  const lines = (await Deno.readTextFile(path)).split(/\r?\n/);
  if (!/^ImageId,PredictionString$/.test(lines[0]?.trim() ?? "")) {
    throw new Error(`${path}: line 1 is ${JSON.stringify(lines[0] ?? "")}, expected "ImageId,PredictionString"`);
  }
  const labels = new Map<string, number>();
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].trim() === "") continue;
    const [id, prediction] = lines[i].split(",");
    const wnid = prediction?.trim().split(/\s+/)[0];
    const label = wnid === undefined ? undefined : labelOf.get(wnid);
    if (!id || label === undefined) {
      throw new Error(
        `${path}: line ${i + 1} is ${JSON.stringify(lines[i])}, expected "<ImageId>,<wnid> ..." with a known WNID`,
      );
    }
    labels.set(id.trim(), label);
  }
  return labels;
}
