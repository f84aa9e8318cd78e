/**
 * The machine-readable result of an evaluation (`deno task eval --json`, and the file `--out-json` writes, e.g.
 * `runs/NAME/eval.json`): its type, how it is built from an evaluation, and how a reader (the dashboard and the run
 * report) checks a file of it before drawing it. Library code, so the report pages below `tasks/` can read it.
 * @module
 */
import type { CheckpointEvaluation } from "./evaluate_checkpoint.ts";

/** The machine-readable report of one evaluation. */
export interface EvalReport {
  /** The evaluated file, as given. */
  checkpoint: string;
  /** "checkpoint" (a training checkpoint) or "weights" (a bare weights file). */
  source: CheckpointEvaluation["source"];
  /** The architecture the weights were loaded into. */
  spec: CheckpointEvaluation["spec"];
  dataset: string;
  split: "test" | "val";
  numImages: number;
  /** Mean cross-entropy per image. */
  loss: number;
  top1: number;
  top5: number;
  /** Per true class: images and the fraction classified correctly (null for a class without images). */
  perClass: { name: string; count: number; accuracy: number | null }[];
  /** `confusion[true][predicted]`: image counts. */
  confusion: number[][];
}

/** Builds the report of an evaluation of `checkpoint`. */
export function evalReport(checkpoint: string, e: CheckpointEvaluation): EvalReport {
  const r = e.result;
  return {
    checkpoint,
    source: e.source,
    spec: e.spec,
    dataset: e.dataset,
    split: e.split,
    numImages: e.numImages,
    loss: r.loss,
    top1: r.top1,
    top5: r.top5,
    perClass: r.perClassCount.map((count, c) => ({
      name: r.classNames?.[c] ?? String(c),
      count,
      accuracy: r.perClassAccuracy[c],
    })),
    confusion: r.confusion,
  };
}

/**
 * Checks a parsed report file: the fields a picture is drawn from (per-class names, counts and accuracies, a square
 * confusion matrix of counts with one row per class) must be there and agree.
 * @throws {Error} naming `where` and the first field that does not fit.
 */
export function evalReportFromJSON(value: unknown, where: string): EvalReport {
  const fail = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail("expected an evaluation report object");
  const r = value as Record<string, unknown>;
  for (const key of ["loss", "top1", "top5", "numImages"]) {
    if (typeof r[key] !== "number") fail(`field "${key}" must be a number, got ${JSON.stringify(r[key])}`);
  }
  for (const key of ["checkpoint", "dataset", "split"]) {
    if (typeof r[key] !== "string") fail(`field "${key}" must be a string, got ${JSON.stringify(r[key])}`);
  }
  const perClass = r.perClass;
  if (!Array.isArray(perClass) || perClass.length === 0) fail('field "perClass" must be a non-empty array');
  (perClass as unknown[]).forEach((c, i) => {
    const k = c as Record<string, unknown> | null;
    const ok = typeof k === "object" && k !== null && typeof k.name === "string" && typeof k.count === "number" &&
      (k.accuracy === null || typeof k.accuracy === "number");
    if (!ok) fail(`perClass[${i}] must be { name, count, accuracy }, got ${JSON.stringify(c)}`);
  });
  const n = (perClass as unknown[]).length;
  const confusion = r.confusion;
  const square = Array.isArray(confusion) && confusion.length === n &&
    confusion.every((row) => Array.isArray(row) && row.length === n && row.every((x) => typeof x === "number"));
  if (!square) fail(`field "confusion" must be a ${n}x${n} matrix of counts (one row and column per class)`);
  return value as EvalReport;
}
