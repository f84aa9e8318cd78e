/**
 * The ILSVRC-2012 devkit (`ILSVRC2012_devkit_t12.tar.gz`): the synsets of `data/meta.mat` and the validation labels
 * of `data/ILSVRC2012_validation_ground_truth.txt`, parsed as torchvision 0.14's `parse_devkit_archive` does: the
 * classes are the synsets with `num_children == 0` (the 1,000 leaves), ordered by WNID; a class's name is its
 * `words` ("tench, Tinca tinca", torchvision's `ImageNet.classes[i]` joined by ", "); the ground truth is one 1-based
 * ILSVRC2012_ID per line, in validation file order.
 * @module
 */
import { type MatStruct, type MatValue, readMat5 } from "./mat5.ts";
import { readTarFiles } from "./tar_entries.ts";

/** One leaf synset of `meta.mat`. */
export interface ImageNetSynset {
  /** ILSVRC2012_ID (1..1000 for the leaves): the value the validation ground truth uses. */
  id: number;
  /** WordNet ID, e.g. "n01440764". */
  wnid: string;
  /** Comma-separated names, e.g. "tench, Tinca tinca". */
  words: string;
}

/** What the devkit holds. */
export interface ImageNetDevkit {
  /** The leaf synsets in meta.mat order. */
  synsets: ImageNetSynset[];
  /** [50,000 for the real devkit] the ILSVRC2012_ID of validation image i+1, or null when the file is absent. */
  groundTruth: Int32Array | null;
  /** Where each piece came from, for errors: "archive:member". */
  metaName: string;
  groundTruthName: string;
}

/** The devkit archive's file name, and the two members read from it. */
export const DEVKIT_ARCHIVE = "ILSVRC2012_devkit_t12.tar.gz";
export const META_MAT = "ILSVRC2012_devkit_t12/data/meta.mat";
export const GROUND_TRUTH = "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt";

/** A struct field as a scalar number, or an error naming the element. */
function scalar(v: MatValue | undefined, where: string): number {
  if (v?.kind !== "numeric" || v.data.length !== 1) {
    throw new Error(`${where}: expected a number, found ${describe(v)}`);
  }
  return v.data[0];
}

/** A struct field as a one-row string, or an error naming the element. */
function text(v: MatValue | undefined, where: string): string {
  if (v?.kind !== "char" || v.rows.length !== 1) throw new Error(`${where}: expected a string, found ${describe(v)}`);
  return v.rows[0];
}

function describe(v: MatValue | undefined): string {
  if (v === undefined) return "nothing";
  if (v.kind === "numeric") return `a [${v.dims.join("x")}] ${v.class} array`;
  return `a [${v.dims.join("x")}] ${v.kind} array`;
}

/**
 * The leaf synsets (`num_children == 0`) of a devkit `meta.mat`, in file order.
 * @throws {Error} naming `path` when it is not a MAT-file, has no `synsets` struct array, or an element lacks a field.
 */
export function parseMetaMat(bytes: Uint8Array, path: string): ImageNetSynset[] {
  const synsets = readMat5(bytes, path).get("synsets");
  if (synsets?.kind !== "struct") {
    throw new Error(
      `${path}: expected a struct array "synsets" (the ImageNet devkit's meta.mat), found ${describe(synsets)}`,
    );
  }
  const s = synsets as MatStruct;
  for (const field of ["ILSVRC2012_ID", "WNID", "words", "num_children"]) {
    if (!s.fields.includes(field)) {
      throw new Error(`${path}: "synsets" has no field ${field} (fields: ${s.fields.join(", ")})`);
    }
  }
  const leaves: ImageNetSynset[] = [];
  s.elements.forEach((e, i) => {
    const where = `${path}: synsets(${i + 1})`;
    if (scalar(e.num_children, `${where}.num_children`) !== 0) return;
    leaves.push({
      id: scalar(e.ILSVRC2012_ID, `${where}.ILSVRC2012_ID`),
      wnid: text(e.WNID, `${where}.WNID`),
      words: text(e.words, `${where}.words`),
    });
  });
  if (leaves.length === 0) throw new Error(`${path}: "synsets" has no leaf synsets (num_children 0)`);
  const seen = new Set<string>();
  for (const l of leaves) {
    if (seen.has(l.wnid)) throw new Error(`${path}: WNID ${l.wnid} appears twice among the leaf synsets`);
    seen.add(l.wnid);
  }
  return leaves;
}

/**
 * The validation ground truth: one positive integer per line (ILSVRC2012_IDs).
 * @throws {Error} naming `path` and the line that is not one.
 */
export function parseGroundTruth(content: string, path: string): Int32Array {
  const lines = content.split(/\r?\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  return Int32Array.from(lines, (line, i) => {
    if (!/^\s*\d+\s*$/.test(line)) {
      throw new Error(
        `${path}: line ${i + 1} is ${JSON.stringify(line)}, expected an ILSVRC2012_ID (a positive integer)`,
      );
    }
    return parseInt(line, 10);
  });
}

/**
 * Reads the devkit archive at `path` (meta.mat required, the ground truth optional: see `groundTruth`).
 * @throws {Error} naming the archive when it is unreadable or holds no meta.mat, or meta.mat when it is malformed.
 */
export async function readDevkit(path: string): Promise<ImageNetDevkit> {
  let meta: { name: string; bytes: Uint8Array } | undefined;
  let truth: { name: string; bytes: Uint8Array } | undefined;
  await readTarFiles(path, (name, bytes) => {
    if (name.endsWith(META_MAT)) meta = { name, bytes };
    else truth = { name, bytes };
  }, (name) => name.endsWith(META_MAT) || name.endsWith(GROUND_TRUTH));
  if (!meta) throw new Error(`${path}: holds no ${META_MAT} (is this the ILSVRC-2012 devkit?)`);
  const metaName = `${path}:${meta.name}`;
  const groundTruthName = `${path}:${truth?.name ?? GROUND_TRUTH}`;
  return {
    synsets: parseMetaMat(meta.bytes, metaName),
    groundTruth: truth ? parseGroundTruth(new TextDecoder().decode(truth.bytes), groundTruthName) : null,
    metaName,
    groundTruthName,
  };
}
