/**
 * What a reader sees of one run folder right now, read leniently: a run may be written while it is read (a
 * `metrics.jsonl` growing, a `config.json` not there yet) or be broken (corrupt JSON); {@linkcode readRunSnapshot}
 * keeps what it can read and lists what it skipped, and never throws for the folder's contents.
 * @module
 */
import { join } from "node:path";
import { LOCK_FILE, readLockHolder } from "../io/run_lock.ts";
import { statIfExists } from "../io/stat_if_exists.ts";
import { type EpochRecord, RunLog } from "../train/run_log.ts";
import { type TrainConfig, trainConfigFromJSON } from "../train/config.ts";
import { type EvalReport, evalReportFromJSON } from "../train/eval_report.ts";
import { PROGRESS_FILE, type ProgressRecord, progressRecordFromJSON } from "./run_progress.ts";

/** `running`: its lock's owner still runs; `finished`: every planned epoch is logged; `stopped`: neither. */
export type RunState = "running" | "finished" | "stopped";

/** Evaluation reports are `eval.json` or `eval-<anything>.json` (e.g. one per split), written by `eval --out-json`. */
export const EVAL_FILE = /^eval(-[A-Za-z0-9_.+-]+)?\.json$/;

/** One evaluation report found in the run folder. */
export interface EvalFile {
  file: string;
  report: EvalReport;
}

/** A run folder as read now. */
export interface RunSnapshot {
  /** The folder's name under the runs folder. */
  name: string;
  state: RunState;
  /** The lock owner's host, when the run is live on another machine (its process cannot be checked from here). */
  host: string | null;
  /** `config.json` as parsed (shown even when invalid), or null. */
  rawConfig: Record<string, unknown> | null;
  /** The checked configuration, or null when `config.json` is missing or invalid. */
  config: TrainConfig | null;
  /** The readable epoch records, in file order. */
  metrics: EpochRecord[];
  /** In-epoch progress (`progress.json`) while the run is running, else null. */
  progress: ProgressRecord | null;
  evals: EvalFile[];
  /** What could not be read, one message each (file and reason). */
  skipped: string[];
  /** Changes whenever a file the snapshot is made of changes (see {@linkcode runVersion}). */
  version: string;
  /** ISO time of the newest of those files. */
  updated: string | null;
}

/** The files a snapshot reads, besides the evaluation reports. */
const WATCHED = ["config.json", "metrics.jsonl", PROGRESS_FILE, LOCK_FILE];

/**
 * A cheap fingerprint of run folder `dir` (names, sizes and modification times of the files a snapshot reads, and
 * whether the lock's owner still runs): equal fingerprints mean an equal snapshot, so watchers re-read a run only
 * when it changed.
 */
export async function runVersion(dir: string): Promise<{ version: string; updated: string | null; empty: boolean }> {
  const parts: string[] = [];
  let newest = 0;
  const names = [...WATCHED, ...(await evalFiles(dir))];
  let found = 0;
  for (const name of names) {
    const info = await statIfExists(join(dir, name)).catch(() => undefined);
    if (!info?.isFile) continue;
    found++;
    const mtime = info.mtime?.getTime() ?? 0;
    newest = Math.max(newest, mtime);
    parts.push(`${name}:${info.size}:${mtime}`);
  }
  const lock = await readLockHolder(dir).catch(() => null);
  parts.push(`alive:${lock?.alive ?? "-"}`);
  return { version: parts.join("|"), updated: newest > 0 ? new Date(newest).toISOString() : null, empty: found === 0 };
}

/** The evaluation report files of `dir`, sorted ([] when it cannot be listed). */
async function evalFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile && EVAL_FILE.test(e.name)) names.push(e.name);
  } catch { /* a folder removed while listed: no reports */ }
  return names.sort();
}

/** Reads run folder `dir` (named `name`) leniently; see the module documentation. */
export async function readRunSnapshot(dir: string, name: string): Promise<RunSnapshot> {
  const { version, updated } = await runVersion(dir);
  const skipped: string[] = [];
  const note = (e: unknown) => skipped.push(e instanceof Error ? e.message : String(e));
  const log = new RunLog(dir);

  let rawConfig: Record<string, unknown> | null = null;
  let config: TrainConfig | null = null;
  try {
    const value = await log.readConfig();
    if (value === null) skipped.push(`${log.configPath}: missing (architecture, dataset and planned epochs unknown)`);
    else if (typeof value !== "object" || Array.isArray(value)) {
      skipped.push(`${log.configPath}: not a configuration object`);
    } else {
      rawConfig = value as Record<string, unknown>;
      // The trainer writes the TrainConfig plus the model's spec, the class names and the input normalisation
      // (train/trainer.ts).
      const { spec: _spec, classNames: _classNames, normalization: _normalization, ...train } = rawConfig;
      config = trainConfigFromJSON(train, log.configPath);
    }
  } catch (e) {
    note(e);
  }

  let metrics: EpochRecord[] = [];
  try {
    const read = await log.readMetricsLenient();
    metrics = read.records;
    skipped.push(...read.skipped);
  } catch (e) {
    note(e);
  }

  const lock = await readLockHolder(dir).catch((e) => (note(e), null));
  const running = lock !== null && lock.alive !== false;
  const planned = config?.epochs ?? (typeof rawConfig?.epochs === "number" ? rawConfig.epochs : null);
  const done = metrics.at(-1)?.epoch ?? 0;
  const state: RunState = running ? "running" : planned !== null && done >= planned ? "finished" : "stopped";

  let progress: ProgressRecord | null = null;
  if (running) {
    const path = join(dir, PROGRESS_FILE);
    try {
      const text = await Deno.readTextFile(path);
      progress = progressRecordFromJSON(JSON.parse(text), path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) note(e instanceof SyntaxError ? `${path}: not valid JSON` : e);
    }
  }

  const evals: EvalFile[] = [];
  for (const file of await evalFiles(dir)) {
    const path = join(dir, file);
    try {
      evals.push({ file, report: evalReportFromJSON(JSON.parse(await Deno.readTextFile(path)), path) });
    } catch (e) {
      note(e instanceof SyntaxError ? `${path}: not valid JSON (${e.message})` : e);
    }
  }

  return {
    name,
    state,
    host: running && lock?.alive === null && lock.owner ? lock.owner.host : null,
    rawConfig,
    config,
    metrics,
    progress,
    evals,
    skipped,
    version,
    updated,
  };
}
