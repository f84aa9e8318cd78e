/**
 * CIFAR-10 from the bytes of its official binary archive, `cifar-10-binary.tar.gz`, with web APIs only
 * (`DecompressionStream`), for the browser page a user hands the file to: gunzip, walk the tar (data/tar_blocks.ts),
 * parse `data_batch_1..5.bin` (train) and `test_batch.bin` (test) with the same record parser and checks as
 * `deno task train` (data/cifar_records.ts), and read the class names from `batches.meta.txt`.
 * @module
 */
import { CIFAR10_CLASS_NAMES } from "./class_names.ts";
import {
  CIFAR10_LAYOUT,
  CIFAR_PIXEL_BYTES,
  type CifarFileSpec,
  type CifarSplit,
  parseCifarFile,
} from "./cifar_records.ts";
import { tarMembers } from "./tar_blocks.ts";

/** CIFAR-10 read from its archive. */
export interface Cifar10Archive {
  /** The records of data_batch_1..5.bin, in order. */
  train: CifarSplit;
  /** The records of test_batch.bin. */
  test: CifarSplit;
  /** Label 0..9's names, from batches.meta.txt (the official order when the file is absent). */
  classNames: string[];
}

const EXPECTED = "the CIFAR-10 binary archive (cifar-10-binary.tar.gz, holding cifar-10-batches-bin/data_batch_1.bin " +
  "… data_batch_5.bin and test_batch.bin)";

/**
 * Reads CIFAR-10 from `bytes`, the content of the file named `source` (used in every error). Each `.bin` may hold any
 * whole number of records (the official files hold 10,000), so smaller archives in the same layout work too.
 * @throws {Error} naming `source` and what was expected: for a file that is not gzip, not a tar, lacks a batch file,
 * holds a file that is not whole records or a label above 9, or a `batches.meta.txt` without 10 names.
 */
export async function readCifar10Archive(bytes: Uint8Array, source: string): Promise<Cifar10Archive> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    const head = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Error(
      `${source}: not ${EXPECTED}: expected a gzip file (starting 1f 8b), got bytes ${head || "(empty)"}`,
    );
  }
  let tar: Uint8Array;
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
    tar = new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new Error(`${source}: not a readable gzip stream (${(e as Error).message}); expected ${EXPECTED}`);
  }
  let members;
  try {
    members = tarMembers(tar, source);
  } catch (e) {
    throw new Error(`${(e as Error).message}; expected ${EXPECTED}`);
  }
  const prefix = `${CIFAR10_LAYOUT.directory}/`;
  const files = new Map(members.filter((m) => m.name.startsWith(prefix)).map((m) => [m.name.slice(prefix.length), m]));
  const wanted = [...CIFAR10_LAYOUT.files.train, ...CIFAR10_LAYOUT.files.test].map((f) => f.name);
  const missing = wanted.filter((n) => !files.has(n));
  if (missing.length > 0) {
    const held = members.slice(0, 5).map((m) => m.name).join(", ") + (members.length > 5 ? ", …" : "");
    throw new Error(
      `${source}: not ${EXPECTED}: ${missing.map((n) => prefix + n).join(", ")} missing; it holds ` +
        `${members.length} file(s)${members.length ? `: ${held}` : ""}`,
    );
  }
  const split = (specs: CifarFileSpec[]): CifarSplit => {
    const recordBytes = CIFAR10_LAYOUT.labelBytes + CIFAR_PIXEL_BYTES;
    // Rounded up, so a file that is not whole records gets the parser's "truncated: record R has only B bytes".
    const counts = specs.map((s) => Math.ceil(files.get(s.name)!.bytes.length / recordBytes));
    const count = counts.reduce((a, b) => a + b, 0);
    const out: CifarSplit = { images: new Uint8Array(count * CIFAR_PIXEL_BYTES), labels: new Uint8Array(count), count };
    let first = 0;
    specs.forEach((s, i) => {
      if (counts[i] === 0) {
        throw new Error(`${source}:${prefix}${s.name}: empty, expected records of ${recordBytes} bytes`);
      }
      const spec = { name: s.name, records: counts[i] };
      parseCifarFile(files.get(s.name)!.bytes, `${source}:${prefix}${s.name}`, spec, CIFAR10_LAYOUT, out, first);
      first += counts[i];
    });
    return out;
  };
  const train = split(CIFAR10_LAYOUT.files.train), test = split(CIFAR10_LAYOUT.files.test);
  let classNames = CIFAR10_CLASS_NAMES;
  const meta = files.get("batches.meta.txt");
  if (meta) {
    classNames = new TextDecoder().decode(meta.bytes).split("\n").map((l) => l.trim()).filter((l) => l !== "");
    if (classNames.length !== CIFAR10_LAYOUT.numClasses) {
      throw new Error(
        `${source}:${prefix}batches.meta.txt: ${classNames.length} class name(s), expected ${CIFAR10_LAYOUT.numClasses} ` +
          "(one a line)",
      );
    }
  }
  return { train, test, classNames };
}
