/**
 * Indexes an ImageNet-style class-folder tree, `train/<class>/<image>` and `val/<class>/<image>` (or `test/`), from a
 * directory or straight from a `.tar`/`.tar.gz` archive of such a tree (streamed; image bytes are kept in memory,
 * nothing is extracted to disk). Classes are the sorted folder names of `train/`; files are sorted by name.
 * @module
 */
import { join } from "node:path";
import { packBlob } from "./byte_blob.ts";
import type { ImageStore } from "./image_bytes.ts";
import { indexTar, readRange } from "./tar_index.ts";
import { statIfExists } from "../io/stat_if_exists.ts";
import { isGzipFile, readTarFiles } from "./tar_entries.ts";
import { readDirFollowingLinks } from "../io/read_dir_following_links.ts";

/** File extensions taken as images (case-insensitive); anything else in a class folder is ignored. */
export const IMAGE_EXTENSIONS: readonly string[] = [".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"];

function isImageName(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

/** One split of a folder dataset: where its images are (see ImageStore), their names and labels. */
export interface FolderSplit extends ImageStore {
  /** [N] display names for warnings: the path, or `archive:member`. */
  names: string[];
  /** [N] class indices into {@linkcode FolderIndex.classNames}. */
  labels: Int32Array;
}

/** A whole folder dataset. */
export interface FolderIndex {
  /** Sorted class folder names of `train/`; a label is an index into this list. */
  classNames: string[];
  train: FolderSplit;
  /** `val/` if present, else `test/`. */
  test: FolderSplit;
  /** Which folder {@linkcode FolderIndex.test} came from. */
  testFolder: "val" | "test";
}

type Listing = Map<string, Map<string, string[]>>; // split -> class -> member names

function checkedIndex(
  root: string,
  listing: Listing,
  options: FolderOptions,
  unfollowed = 0,
): { classNames: string[]; testFolder: "val" | "test" } {
  const train = listing.get("train");
  // Without training images, the classes a trained model recorded still give the labels.
  const recorded = !train || train.size === 0 ? options.classNames : undefined;
  if (!recorded && (!train || train.size === 0)) {
    const links = unfollowed > 0
      ? `; ${unfollowed} symbolic link${unfollowed === 1 ? "" : "s"} could not be followed (missing target?)`
      : "";
    throw new Error(
      `${root}: no train/<class>/<image> files found (expected an ImageNet-style class-folder tree)${links}`,
    );
  }
  const testFolder = listing.has("val") ? "val" : listing.has("test") ? "test" : undefined;
  if (!testFolder) {
    throw new Error(`${root}: ${recorded ? "holds" : "has train/ but"} neither val/<class>/ nor test/<class>/ images`);
  }
  if (listing.has("val") && listing.has("test")) {
    options.onWarning?.(`${root}: val/ and test/ both exist: val/ is the evaluation split; test/ is ignored`);
  }
  const classNames = recorded ? [...recorded] : [...train!.keys()].sort();
  const known = new Set(classNames);
  for (const cls of listing.get(testFolder)!.keys()) {
    if (known.has(cls)) continue;
    throw new Error(
      recorded
        ? `${root}: ${testFolder}/${cls}/ is not one of the ${recorded.length} classes the model was trained on`
        : `${root}: ${testFolder}/${cls}/ is a class that train/ does not have`,
    );
  }
  return { classNames, testFolder };
}

/** The members of `split` class by class in `classNames` order, sorted within a class, and their labels. */
function ordered(listing: Listing, split: string, classNames: string[]): { members: string[]; labels: Int32Array } {
  const members: string[] = [], labels: number[] = [];
  classNames.forEach((cls, label) => {
    for (const member of (listing.get(split)?.get(cls) ?? []).sort()) {
      members.push(member);
      labels.push(label);
    }
  });
  return { members, labels: Int32Array.from(labels) };
}

/** Reads the class-folder tree under the directory `root`. */
async function indexDirectory(root: string, options: FolderOptions): Promise<FolderIndex> {
  const listing: Listing = new Map();
  let unfollowed = 0;
  for (const split of ["train", "val", "test"]) {
    const splitDir = join(root, split);
    if (!(await statIfExists(splitDir))?.isDirectory) continue;
    const classes = new Map<string, string[]>();
    for await (const entry of readDirFollowingLinks(splitDir)) {
      if (entry.unfollowed) unfollowed++;
      if (!entry.isDirectory) continue;
      const files: string[] = [];
      for await (const f of readDirFollowingLinks(join(splitDir, entry.name))) {
        if (f.unfollowed) unfollowed++;
        if (f.isFile && isImageName(f.name)) files.push(join(splitDir, entry.name, f.name));
      }
      if (files.length > 0) classes.set(entry.name, files);
    }
    if (classes.size > 0) listing.set(split, classes);
  }
  const { classNames, testFolder } = checkedIndex(root, listing, options, unfollowed);
  const build = (split: string): FolderSplit => {
    const { members: paths, labels } = ordered(listing, split, classNames);
    return { paths, names: paths, labels };
  };
  return { classNames, train: build("train"), test: build(testFolder), testFolder };
}

const MEMBER = /^(?:.*\/)?(train|val|test)\/([^/]+)\/([^/]+)$/;

/** Options of {@linkcode indexFolderDataset}. */
export interface FolderOptions {
  /** Bytes of `.tar.gz` images held in memory at most (default: a quarter of the machine's memory). */
  maxInMemoryBytes?: number;
  /** Said once when the tree holds both val/ and test/ (val/ is evaluated, test/ ignored). */
  onWarning?: (message: string) => void;
  /**
   * The classes (label i = classNames[i]) when the tree has no train/ images: a trained model's, which its run
   * recorded, so that val/ or test/ alone can be evaluated (the train split is then empty). With train/ images,
   * their folders give the classes as always.
   */
  classNames?: readonly string[];
}

/** A quarter of the machine's memory: packing the images into shared memory briefly holds them twice. */
function defaultInMemoryLimit(): number {
  return Math.floor(Deno.systemMemoryInfo().total / 4);
}

/** Where a member of an uncompressed archive is: index into the archive list, data offset and size. */
type InPlace = { archive: number; offset: number; size: number };

/**
 * Reads the class-folder tree held by one or more archives (e.g. `train.tar.gz` + `val.tar.gz`). Uncompressed `.tar`
 * archives are indexed (headers only) and their images read in place; `.tar.gz` archives, which allow no random
 * access, are streamed once and their images kept in shared memory. `root` names the dataset in errors.
 */
async function indexArchives(root: string, archives: string[], options: FolderOptions): Promise<FolderIndex> {
  const listing: Listing = new Map();
  const contents = new Map<string, Uint8Array | InPlace>(); // "archive:member" -> the bytes (.tar.gz) or where (.tar)
  const limit = options.maxInMemoryBytes ?? defaultInMemoryLimit();
  let inMemory = 0;
  const tooLarge = (archive: string, bytes: number): never => {
    throw new Error(
      `${archive}: its images (${bytes} bytes or more) exceed the ${limit} bytes a .tar.gz may hold in memory ` +
        `(gzip allows no reading in place); extract it (tar xzf) or decompress it to a .tar (gunzip), ` +
        "which are read in place, or raise DataConfig.maxInMemoryBytes",
    );
  };
  const add = (archive: string, name: string, content: Uint8Array | InPlace) => {
    const m = MEMBER.exec(name);
    if (!m || !isImageName(name)) return;
    const [, split, cls] = m;
    if (!listing.has(split)) listing.set(split, new Map());
    const classes = listing.get(split)!;
    if (!classes.has(cls)) classes.set(cls, []);
    const key = `${archive}:${name}`;
    classes.get(cls)!.push(key);
    contents.set(key, content);
  };
  for (const [i, archive] of archives.entries()) {
    if (await isGzipFile(archive)) {
      // JPEGs do not compress: the archive's size says before reading whether its images will fit.
      const compressed = (await Deno.stat(archive)).size;
      if (inMemory + compressed > limit) tooLarge(archive, inMemory + compressed);
      await readTarFiles(
        archive,
        (name, bytes) => {
          inMemory += bytes.length;
          if (inMemory > limit) tooLarge(archive, inMemory);
          add(archive, name, bytes);
        },
        (name) => MEMBER.test(name) && isImageName(name),
      );
    } else {
      for (const m of await indexTar(archive)) add(archive, m.name, { archive: i, offset: m.offset, size: m.size });
    }
  }
  const { classNames, testFolder } = checkedIndex(root, listing, options);
  const build = async (split: string): Promise<FolderSplit> => {
    const { members, labels } = ordered(listing, split, classNames);
    const found = members.map((name) => contents.get(name)!);
    for (const name of members) contents.delete(name);
    let store: ImageStore;
    if (found.every((c) => !(c instanceof Uint8Array))) {
      const at = found as InPlace[];
      store = {
        tar: {
          archives,
          archive: Int32Array.from(at, (c) => c.archive),
          offsets: Float64Array.from(at, (c) => c.offset),
          sizes: Float64Array.from(at, (c) => c.size),
        },
      };
    } else {
      // A split drawn from both kinds of archive (rare): all of it in memory, each split's bytes once.
      const bytes: Uint8Array[] = [];
      for (const c of found) {
        bytes.push(c instanceof Uint8Array ? c : await readRange(archives[c.archive], c.offset, c.size));
      }
      store = { blob: packBlob(bytes) };
    }
    return { ...store, names: members, labels };
  };
  return { classNames, train: await build("train"), test: await build(testFolder), testFolder };
}

const ARCHIVE = /\.(tar|tar\.gz|tgz)$/i;

/**
 * Indexes the class-folder dataset at `root`: a directory holding `train/` (and `val/` or `test/`); a directory
 * holding no `train/` but `.tar`/`.tar.gz` archives of the tree (e.g. `train.tar.gz` and `test.tar.gz`); or one
 * such archive. Inside archives the tree may sit at the top or under leading folders.
 * @throws {Error} naming `root` when it is missing, has no `train/` images (and no `options.classNames`), no
 * `val/`/`test/` images, or an evaluation class that training lacks.
 */
export async function indexFolderDataset(root: string, options: FolderOptions = {}): Promise<FolderIndex> {
  const info = await statIfExists(root);
  if (!info) throw new Error(`${root}: not found (expected a class-folder directory or a .tar/.tar.gz of one)`);
  if (!info.isDirectory) return indexArchives(root, [root], options);
  if ((await statIfExists(join(root, "train")))?.isDirectory) return indexDirectory(root, options);
  if (options.classNames) {
    for (const split of ["val", "test"]) {
      if ((await statIfExists(join(root, split)))?.isDirectory) return indexDirectory(root, options);
    }
  }
  const archives: string[] = [];
  for await (const entry of readDirFollowingLinks(root)) {
    if (entry.isFile && ARCHIVE.test(entry.name)) archives.push(join(root, entry.name));
  }
  if (archives.length === 0) {
    const folders = options.classNames ? "train/, val/ or test/" : "train/";
    throw new Error(`${root}: holds neither a ${folders} folder nor .tar/.tar.gz archives of a class-folder tree`);
  }
  return indexArchives(root, archives.sort(), options);
}
