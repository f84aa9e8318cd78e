/**
 * The official CIFAR-10 and CIFAR-100 binary releases' layouts and the parser of their records (label byte(s), then
 * 3,072 bytes of planar CHW pixels), with no file system: data/cifar_binary.ts reads them from disk, and the browser
 * page (data/cifar_archive_bytes.ts) from an archive the user picks.
 * @module
 */

/** Everything that describes one official CIFAR binary release. */
export interface CifarLayout {
  dataset: "cifar10" | "cifar100";
  /** Name of the official archive, e.g. "cifar-10-binary.tar.gz". */
  archive: string;
  /** Official download URL of {@linkcode CifarLayout.archive}. */
  url: string;
  /** md5 of the official archive. */
  md5: string;
  /** Directory the archive unpacks to, e.g. "cifar-10-batches-bin". */
  directory: string;
  /** Files of each split, in order, with their record counts. */
  files: { train: CifarFileSpec[]; test: CifarFileSpec[] };
  /** Label bytes before the pixels: 1 (CIFAR-10: label) or 2 (CIFAR-100: coarse, fine). */
  labelBytes: 1 | 2;
  /** Number of (fine) classes. */
  numClasses: number;
  /** Number of coarse classes (CIFAR-100 only). */
  numCoarseClasses?: number;
}

/** One binary file of a split and the exact number of records it must hold. */
export interface CifarFileSpec {
  name: string;
  records: number;
}

/** Pixel bytes per record: 1,024 red, then 1,024 green, then 1,024 blue, each as 32 rows of 32. */
export const CIFAR_PIXEL_BYTES = 3072;

/** The official CIFAR-10 binary release. */
export const CIFAR10_LAYOUT: CifarLayout = {
  dataset: "cifar10",
  archive: "cifar-10-binary.tar.gz",
  url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
  md5: "c32a1d4ab5d03f1284b67883e8d87530",
  directory: "cifar-10-batches-bin",
  files: {
    train: [1, 2, 3, 4, 5].map((i) => ({ name: `data_batch_${i}.bin`, records: 10000 })),
    test: [{ name: "test_batch.bin", records: 10000 }],
  },
  labelBytes: 1,
  numClasses: 10,
};

/** The official CIFAR-100 binary release. */
export const CIFAR100_LAYOUT: CifarLayout = {
  dataset: "cifar100",
  archive: "cifar-100-binary.tar.gz",
  url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
  md5: "03b5dce01913d631647c71ecec9e9cb8",
  directory: "cifar-100-binary",
  files: { train: [{ name: "train.bin", records: 50000 }], test: [{ name: "test.bin", records: 10000 }] },
  labelBytes: 2,
  numClasses: 100,
  numCoarseClasses: 20,
};

/** The layout of `dataset`. */
export function cifarLayout(dataset: "cifar10" | "cifar100"): CifarLayout {
  return dataset === "cifar10" ? CIFAR10_LAYOUT : CIFAR100_LAYOUT;
}

/** One split of CIFAR in memory. */
export interface CifarSplit {
  /** [N, 32, 32, 3] bytes, HWC (converted from the files' planar CHW so crops read contiguous pixels). */
  images: Uint8Array;
  /** [N] labels: CIFAR-10's label, CIFAR-100's fine label. */
  labels: Uint8Array;
  /** [N] CIFAR-100 coarse labels (absent for CIFAR-10). */
  coarseLabels?: Uint8Array;
  count: number;
}

/**
 * Parses and validates one binary file whose bytes are `bytes` and whose name (used in errors) is `file`, appending
 * its records to `out` from record `first` on.
 * @throws {Error} naming the file and the record on a wrong size or an out-of-range label.
 */
export function parseCifarFile(
  bytes: Uint8Array,
  file: string,
  spec: CifarFileSpec,
  layout: CifarLayout,
  out: CifarSplit,
  first: number,
): void {
  const recordBytes = layout.labelBytes + CIFAR_PIXEL_BYTES;
  const expected = spec.records * recordBytes;
  if (bytes.length !== expected) {
    const whole = Math.floor(bytes.length / recordBytes), rest = bytes.length % recordBytes;
    const detail = bytes.length < expected
      ? `truncated: record ${whole} (0-based) ${rest ? `has only ${rest} of ${recordBytes} bytes` : "is missing"}`
      : `padded: ${bytes.length - expected} extra byte(s) after record ${spec.records - 1}`;
    throw new Error(
      `${file}: ${bytes.length} bytes, expected ${expected} (${spec.records} records of ${recordBytes} bytes); ${detail}`,
    );
  }
  const fineOffset = layout.labelBytes - 1;
  for (let r = 0; r < spec.records; r++) {
    const base = r * recordBytes;
    if (layout.labelBytes === 2) {
      const coarse = bytes[base];
      if (coarse >= layout.numCoarseClasses!) {
        throw new Error(
          `${file}: record ${r} (byte offset ${base}): coarse label ${coarse}, expected 0–${
            layout.numCoarseClasses! - 1
          }`,
        );
      }
      out.coarseLabels![first + r] = coarse;
    }
    const label = bytes[base + fineOffset];
    if (label >= layout.numClasses) {
      throw new Error(
        `${file}: record ${r} (byte offset ${base + fineOffset}): ${layout.labelBytes === 2 ? "fine " : ""}label ` +
          `${label}, expected 0–${layout.numClasses - 1}`,
      );
    }
    out.labels[first + r] = label;
    // Planar [3, 32, 32] -> interleaved [32, 32, 3].
    const px = base + layout.labelBytes;
    const dst = (first + r) * CIFAR_PIXEL_BYTES;
    for (let i = 0; i < 1024; i++) {
      out.images[dst + 3 * i] = bytes[px + i];
      out.images[dst + 3 * i + 1] = bytes[px + 1024 + i];
      out.images[dst + 3 * i + 2] = bytes[px + 2048 + i];
    }
  }
}
