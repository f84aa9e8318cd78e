/**
 * A small archive in the official `cifar-10-binary.tar.gz` layout (cifar-10-batches-bin/data_batch_1..5.bin,
 * test_batch.bin, batches.meta.txt), written with tar-stream and node:zlib, for the readers' tests.
 * @module
 */
import { Buffer } from "node:buffer";
import { gzipSync } from "node:zlib";
import tarStream from "tar-stream";
import { CIFAR10_CLASS_NAMES } from "../../data/class_names.ts";

/** The label of record `r` of file `f` (0-based: data_batch_1..5, then test_batch). */
export function fixtureLabel(f: number, r: number): number {
  return (3 * r + f) % 10;
}

/** The planar pixel byte `i` (0..3071: channel-major) of record `r` of file `f`. */
export function fixturePixel(f: number, r: number, i: number): number {
  return (i * 7 + r * 13 + f * 29) & 255;
}

/** Options of {@linkcode cifar10Archive}. */
export interface FixtureOptions {
  /** Records in each .bin file. */
  records: number;
  /** Member names (inside cifar-10-batches-bin/) to leave out. */
  omit?: string[];
  /** Bytes dropped from the end of data_batch_1.bin. */
  truncate?: number;
  /** batches.meta.txt's content (the official ten names by default). */
  meta?: string;
}

/** The `.tar.gz` bytes. */
export async function cifar10Archive(options: FixtureOptions): Promise<Uint8Array> {
  const files = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`).concat("test_batch.bin");
  const pack = tarStream.pack();
  const chunks: Uint8Array[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c);
  })();
  const add = (name: string, bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) =>
      pack.entry(
        { name: `cifar-10-batches-bin/${name}`, size: bytes.length },
        Buffer.from(bytes),
        (e?: Error | null) => e ? reject(e) : resolve(),
      )
    );
  for (const [f, name] of files.entries()) {
    if (options.omit?.includes(name)) continue;
    const bytes = new Uint8Array(options.records * 3073);
    for (let r = 0; r < options.records; r++) {
      bytes[r * 3073] = fixtureLabel(f, r);
      for (let i = 0; i < 3072; i++) bytes[r * 3073 + 1 + i] = fixturePixel(f, r, i);
    }
    await add(name, f === 0 && options.truncate ? bytes.subarray(0, bytes.length - options.truncate) : bytes);
  }
  if (!options.omit?.includes("batches.meta.txt")) {
    await add("batches.meta.txt", new TextEncoder().encode(options.meta ?? CIFAR10_CLASS_NAMES.join("\n") + "\n\n"));
  }
  pack.finalize();
  await done;
  return new Uint8Array(gzipSync(Buffer.concat(chunks)));
}
