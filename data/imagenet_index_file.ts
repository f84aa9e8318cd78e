/**
 * The index file of an ImageNet held as the official archives: the member names, offsets, sizes and labels found by
 * reading the 1.3 M tar headers once, so that later runs start in seconds. It is written atomically next to the
 * archives (`.resnet-webgpu-index.json`) or, when that folder is read-only, under the user's cache folder, and is
 * keyed by the archives' sizes and modification times; a stale key, a digest that does not match (a damaged file)
 * or contents that do not fit the archives make {@linkcode readIndexFile} say why, and the caller rebuilds it.
 *
 * Format: one JSON header line `{"format", "key", "digest", "bytes"}`, then the payload JSON whose SHA-256 is
 * `digest`.
 * @module
 */
import { join, resolve } from "node:path";
import { atomicWriteFile } from "../io/atomic_write.ts";
import { statIfExists } from "../io/stat_if_exists.ts";

/** The file's name inside the dataset folder. */
export const INDEX_FILE_NAME = ".resnet-webgpu-index.json";
const FORMAT = "resnet-webgpu-imagenet-index/1";

/** One split as indexed: names inside its archive, data offsets and sizes in the archive, labels. */
export interface IndexedSplit {
  names: string[];
  offsets: number[];
  sizes: number[];
  labels: number[];
}

/** What the index file holds. */
export interface ArchiveIndex {
  /** Sorted WNIDs: label i is wnids[i]. */
  wnids: string[];
  classNames: string[];
  train: IndexedSplit;
  val: IndexedSplit;
}

/** Size and modification time of each archive (null: absent), by file name. */
export type ArchiveKey = Record<string, { size: number; mtimeMs: number } | null>;

/** The key of the archives `files` in `dir`. */
export async function archiveKey(dir: string, files: readonly string[]): Promise<ArchiveKey> {
  const key: ArchiveKey = {};
  for (const f of files) {
    const info = await statIfExists(join(dir, f));
    key[f] = info ? { size: info.size, mtimeMs: info.mtime?.getTime() ?? 0 } : null;
  }
  return key;
}

/** Where the index of `dir` may be: in `dir`, then under `cacheDir` (default `$XDG_CACHE_HOME` or `~/.cache`). */
export async function indexFileCandidates(dir: string, cacheDir?: string): Promise<string[]> {
  const base = cacheDir ??
    join(Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? ".", ".cache"), "resnet-webgpu");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(resolve(dir)));
  const hex = Array.from(new Uint8Array(digest).subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  return [join(dir, INDEX_FILE_NAME), join(base, `imagenet-${hex}.json`)];
}

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The index stored at `path` if it is whole and was made from archives with exactly `key`; otherwise why not
 * (`null` when there is no file).
 */
export async function readIndexFile(path: string, key: ArchiveKey): Promise<ArchiveIndex | string | null> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    return `${path}: unreadable (${(e as Error).message})`;
  }
  const newline = bytes.indexOf(10);
  let header: { format?: unknown; key?: unknown; digest?: unknown; bytes?: unknown };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(0, newline < 0 ? bytes.length : newline)));
  } catch {
    return `${path}: damaged (its header line is not JSON)`;
  }
  if (header?.format !== FORMAT) return `${path}: not an index of format ${FORMAT}`;
  if (JSON.stringify(header.key) !== JSON.stringify(key)) {
    return `${path}: stale (made for archives ${JSON.stringify(header.key)}, found ${JSON.stringify(key)})`;
  }
  const payload = bytes.subarray(newline + 1);
  if (payload.length !== header.bytes || (await sha256(payload)) !== header.digest) {
    return `${path}: damaged (its contents do not match the digest it was written with)`;
  }
  let index: ArchiveIndex;
  try {
    index = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    return `${path}: damaged (its contents are not JSON)`;
  }
  return checkIndex(index, key) ?? index;
}

/** Why `index` cannot describe archives of `key` (wrong shape, labels or byte ranges out of range), or null. */
function checkIndex(index: ArchiveIndex, key: ArchiveKey): string | null {
  if (!Array.isArray(index?.wnids) || !Array.isArray(index.classNames)) return "no class list";
  if (index.classNames.length !== index.wnids.length) return "class names and WNIDs differ in number";
  for (const [split, archive] of [["train", "ILSVRC2012_img_train.tar"], ["val", "ILSVRC2012_img_val.tar"]] as const) {
    const s = index[split];
    const n = s?.names?.length;
    if (!Array.isArray(s?.names) || [s.offsets, s.sizes, s.labels].some((a) => !Array.isArray(a) || a.length !== n)) {
      return `${split}: arrays missing or of different lengths`;
    }
    const size = key[archive]?.size ?? 0;
    for (let i = 0; i < n; i++) {
      const [o, z, l] = [s.offsets[i], s.sizes[i], s.labels[i]];
      if (!(Number.isInteger(o) && Number.isInteger(z) && o >= 0 && z >= 0 && o + z <= size)) {
        return `${split} image ${i}: bytes ${o}+${z} outside ${archive}`;
      }
      if (!(Number.isInteger(l) && l >= 0 && l < index.wnids.length)) return `${split} image ${i}: label ${l}`;
    }
  }
  return null;
}

/**
 * Writes `index` (of archives `key`) to the first of `candidates` that can be written, atomically; returns its path,
 * or null when none could be (the index is then rebuilt next time).
 */
export async function writeIndexFile(
  candidates: string[],
  key: ArchiveKey,
  index: ArchiveIndex,
): Promise<string | null> {
  const payload = new TextEncoder().encode(JSON.stringify(index));
  const header = JSON.stringify({ format: FORMAT, key, digest: await sha256(payload), bytes: payload.length });
  for (const path of candidates) {
    try {
      await Deno.mkdir(join(path, ".."), { recursive: true });
      await atomicWriteFile(path, [new TextEncoder().encode(header + "\n"), payload]);
      return path;
    } catch {
      // read-only or missing folder: try the next place
    }
  }
  return null;
}
