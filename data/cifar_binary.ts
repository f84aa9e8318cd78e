/**
 * Readers for the official CIFAR-10 and CIFAR-100 binary files, from the extracted directory or straight from the
 * `.tar.gz`. Validation is strict: a file of the wrong size, a label out of range or a missing file is an error that
 * names the file and the record, never a silently shorter dataset.
 * @module
 */
import { join } from "node:path";
import { readTarFiles } from "./tar_entries.ts";
import {
  CIFAR100_LAYOUT,
  CIFAR10_LAYOUT,
  CIFAR_PIXEL_BYTES,
  type CifarFileSpec,
  type CifarLayout,
  cifarLayout,
  type CifarSplit,
  parseCifarFile,
} from "./cifar_records.ts";

export { CIFAR100_LAYOUT, CIFAR10_LAYOUT, CIFAR_PIXEL_BYTES, cifarLayout, parseCifarFile };
export type { CifarFileSpec, CifarLayout, CifarSplit };

function emptySplit(layout: CifarLayout, count: number): CifarSplit {
  return {
    // Shared so decode workers read it without a copy.
    images: new Uint8Array(new SharedArrayBuffer(count * CIFAR_PIXEL_BYTES)),
    labels: new Uint8Array(count),
    coarseLabels: layout.labelBytes === 2 ? new Uint8Array(count) : undefined,
    count,
  };
}

/** Where a CIFAR release was found: its extracted directory or its archive. */
export type CifarSource = { kind: "directory"; path: string } | { kind: "archive"; path: string };

/**
 * Reads the `train` and `test` splits from `source`. The archive is streamed once and both splits are filled from it.
 * @throws {Error} naming the file (and record) that is missing, truncated, padded or holds a bad label.
 */
export async function readCifar(
  layout: CifarLayout,
  source: CifarSource,
): Promise<{ train: CifarSplit; test: CifarSplit }> {
  const splits = {
    train: emptySplit(layout, layout.files.train.reduce((n, f) => n + f.records, 0)),
    test: emptySplit(layout, layout.files.test.reduce((n, f) => n + f.records, 0)),
  };
  // Where each file's records start in its split.
  const placement = new Map<string, { split: CifarSplit; spec: CifarFileSpec; first: number }>();
  for (const key of ["train", "test"] as const) {
    let first = 0;
    for (const spec of layout.files[key]) {
      placement.set(spec.name, { split: splits[key], spec, first });
      first += spec.records;
    }
  }
  if (source.kind === "directory") {
    for (const [name, { split, spec, first }] of placement) {
      const path = join(source.path, name);
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          throw new Error(`${path}: missing; ${layout.directory}/ must hold ${[...placement.keys()].join(", ")}`);
        }
        throw e;
      }
      parseCifarFile(bytes, path, spec, layout, split, first);
    }
    return splits;
  }
  const seen = new Set<string>();
  const prefix = `${layout.directory}/`;
  await readTarFiles(source.path, (member, bytes) => {
    const name = member.slice(prefix.length);
    const place = placement.get(name)!; // `want` below lets only placed members through
    if (seen.has(name)) throw new Error(`${source.path}: holds ${member} twice`);
    seen.add(name);
    parseCifarFile(bytes, `${source.path}:${member}`, place.spec, layout, place.split, place.first);
  }, (name) => name.startsWith(prefix) && placement.has(name.slice(prefix.length)));
  const missing = [...placement.keys()].filter((n) => !seen.has(n));
  if (missing.length > 0) {
    throw new Error(`${source.path}: ${missing.map((n) => prefix + n).join(", ")} missing from the archive`);
  }
  return splits;
}
