/**
 * Many encoded files packed into one SharedArrayBuffer with offsets: how archive images live in memory, so decode
 * workers read them without a copy per worker.
 * @module
 */

/** Files packed end to end: file i is `bytes[offsets[i] .. offsets[i+1])`. */
export interface ByteBlob {
  /** SharedArrayBuffer-backed. */
  bytes: Uint8Array;
  /** N+1 running offsets (float64: archives may exceed 4 GiB). */
  offsets: Float64Array;
}

/** Packs `files` in order into one shared {@linkcode ByteBlob}. */
export function packBlob(files: readonly Uint8Array[]): ByteBlob {
  const offsets = new Float64Array(files.length + 1);
  files.forEach((f, i) => offsets[i + 1] = offsets[i] + f.length);
  const bytes = new Uint8Array(new SharedArrayBuffer(offsets[files.length]));
  files.forEach((f, i) => bytes.set(f, offsets[i]));
  return { bytes, offsets };
}

/**
 * Packs `strings` as UTF-8 into one shared {@linkcode ByteBlob}: a string table that decode workers share instead of
 * each receiving its own copy of a million file names.
 */
export function packStrings(strings: readonly string[]): ByteBlob {
  const encoder = new TextEncoder();
  return packBlob(strings.map((s) => encoder.encode(s)));
}

const decoder = new TextDecoder();

/** String `i` of a table made by {@linkcode packStrings}. */
export function stringAt(blob: ByteBlob, i: number): string {
  return decoder.decode(blobFile(blob, i).slice()); // a copy: TextDecoder does not read shared memory
}

/** File `i` of `blob` (a view, not a copy). */
export function blobFile(blob: ByteBlob, i: number): Uint8Array {
  return blob.bytes.subarray(blob.offsets[i], blob.offsets[i + 1]);
}
