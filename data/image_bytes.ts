/**
 * Where the encoded images of a class-folder split live, and the one function that reads image i from there: files
 * on disk (directory datasets), bytes in shared memory (`.tar.gz` archives, which cannot be read in place), or byte
 * ranges of uncompressed `.tar` archives (read in place with positioned reads, so an ImageNet-size archive costs no
 * memory).
 * @module
 */
import { blobFile, type ByteBlob, stringAt } from "./byte_blob.ts";
import { readRange } from "./tar_index.ts";

/** Images stored in place inside uncompressed tar archives. */
export interface TarLocations {
  /** Archive paths. */
  archives: string[];
  /** [N] index into `archives`. */
  archive: Int32Array;
  /** [N] byte offset of each image's data. */
  offsets: Float64Array;
  /** [N] byte size of each image. */
  sizes: Float64Array;
}

/** One of the stores (exactly one is set). */
export interface ImageStore {
  /** File paths (directory datasets). */
  paths?: string[];
  /** The same as a shared string table (what decode workers receive: one copy for all of them). */
  pathTable?: ByteBlob;
  /** File bytes packed in shared memory (`.tar.gz` archives). */
  blob?: ByteBlob;
  /** Byte ranges of uncompressed `.tar` archives. */
  tar?: TarLocations;
}

/** The encoded bytes of image `i`, in memory of their own (sharp may not take views of shared memory). */
export async function readImageBytes(store: ImageStore, i: number): Promise<Uint8Array> {
  if (store.blob) return blobFile(store.blob, i).slice();
  if (store.tar) {
    const t = store.tar;
    return await readRange(t.archives[t.archive[i]], t.offsets[i], t.sizes[i]);
  }
  return await Deno.readFile(store.pathTable ? stringAt(store.pathTable, i) : store.paths![i]);
}
