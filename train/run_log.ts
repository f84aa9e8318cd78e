/**
 * The logs of a run folder: `config.json` (the resolved configuration), `metrics.jsonl` (one JSON object per
 * epoch) and `summary.csv` (the same, as a table with a header).
 *
 * Every write replaces its file atomically (`atomic_write.ts`: a temporary file in the same folder, fsync, rename,
 * fsync of the folder), so a crash leaves either the old or the new file, never a torn line. The logs are small (one
 * line per epoch), so rewriting them costs nothing.
 *
 * Resuming: call {@linkcode RunLog.truncateAfter} with the last epoch whose results the checkpoint includes; the
 * lines of later epochs (written by the interrupted run after that checkpoint) are dropped, so the resumed run
 * appends them again and its logs equal an uninterrupted run's. For that to hold, write an epoch's metrics *before*
 * its end-of-epoch checkpoint: a crash between the two then loses only lines that the resumed run rewrites.
 * @module
 */
import { atomicWriteFile } from "../io/atomic_write.ts";

/** One epoch's results, as stored in `metrics.jsonl` (snake_case keys, like timm's and torchvision's logs). */
export interface EpochRecord {
  /** The epoch that just ended (the trainer counts from 1; 0 is accepted, e.g. for an evaluation before training). */
  epoch: number;
  /** Global optimizer steps done at the end of the epoch. */
  step: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  train_loss: number;
  /** Fraction in [0, 1]. */
  train_top1: number;
  val_loss?: number;
  val_top1?: number;
  val_top5?: number;
  test_loss?: number;
  test_top1?: number;
  test_top5?: number;
  /** The same for the average of the weights (`--model-ema`). */
  ema_val_loss?: number;
  ema_val_top1?: number;
  ema_val_top5?: number;
  ema_test_loss?: number;
  ema_test_top1?: number;
  ema_test_top5?: number;
  /** Wall seconds of the epoch (training and evaluation). */
  time: number;
  /** Training throughput of the epoch. */
  images_per_second: number;
}

/** The `summary.csv` columns, in order; val/test columns appear only when some epoch has them. */
export const SUMMARY_COLUMNS: readonly (keyof EpochRecord)[] = [
  "epoch",
  "step",
  "lr",
  "train_loss",
  "train_top1",
  "val_loss",
  "val_top1",
  "val_top5",
  "test_loss",
  "test_top1",
  "test_top5",
  "ema_val_loss",
  "ema_val_top1",
  "ema_val_top5",
  "ema_test_loss",
  "ema_test_top1",
  "ema_test_top5",
  "time",
  "images_per_second",
];

const REQUIRED: readonly (keyof EpochRecord)[] = [
  "epoch",
  "step",
  "lr",
  "train_loss",
  "train_top1",
  "time",
  "images_per_second",
];

/** Reads and writes the log files of one run folder. */
export class RunLog {
  /** The run folder. */
  readonly dir: string;
  /** `<dir>/config.json`. */
  readonly configPath: string;
  /** `<dir>/metrics.jsonl`. */
  readonly metricsPath: string;
  /** `<dir>/summary.csv`. */
  readonly summaryPath: string;

  /** @param dir the run folder (`--out`); created on the first write. */
  constructor(dir: string) {
    this.dir = dir.replace(/\/+$/, "") || "/";
    this.configPath = `${this.dir}/config.json`;
    this.metricsPath = `${this.dir}/metrics.jsonl`;
    this.summaryPath = `${this.dir}/summary.csv`;
  }

  /** Writes `config.json` (pretty-printed JSON, atomically). */
  async writeConfig(config: unknown): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true });
    await atomicWriteText(this.configPath, JSON.stringify(config, null, 2) + "\n");
  }

  /** The parsed `config.json`, or null when the run has none yet. */
  async readConfig(): Promise<unknown> {
    const text = await readIfExists(this.configPath);
    if (text === null) return null;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`${this.configPath}: not valid JSON (${(e as Error).message})`);
    }
  }

  /**
   * The records of `metrics.jsonl` in file order ([] when it does not exist).
   * @throws {Error} naming the file and line for a line that is not a valid record.
   */
  async readMetrics(): Promise<EpochRecord[]> {
    const text = await readIfExists(this.metricsPath);
    if (text === null) return [];
    return parseMetrics(text, this.metricsPath, (e) => {
      throw e;
    });
  }

  /**
   * The records of `metrics.jsonl` that can be read, and a message for each line that cannot (for readers of a run
   * that may be written right now, or was copied while it was: the dashboard shows what it can). Our own writes are
   * atomic, but a log appended to by another tool or copied mid-write can end in a half-written line; its message says
   * so.
   */
  async readMetricsLenient(): Promise<{ records: EpochRecord[]; skipped: string[] }> {
    const text = await readIfExists(this.metricsPath);
    const skipped: string[] = [];
    const records = text === null ? [] : parseMetrics(text, this.metricsPath, (e, unterminated) => {
      skipped.push(unterminated ? `${e.message}; an incomplete last line (still being written?)` : e.message);
    });
    return { records, skipped };
  }

  /**
   * Appends one epoch to `metrics.jsonl` and rewrites `summary.csv`.
   * @throws {Error} when the record lacks a required field, or its epoch is not after the last logged epoch (a
   *   resumed run must call {@linkcode truncateAfter} first; nothing is written then).
   */
  async appendEpoch(record: EpochRecord): Promise<void> {
    checkRecord(record, "RunLog.appendEpoch");
    const records = await this.readMetrics();
    const last = records.at(-1);
    if (last && record.epoch <= last.epoch) {
      throw new Error(
        `RunLog.appendEpoch: epoch ${record.epoch} is not after the last logged epoch ${last.epoch} in ` +
          `${this.metricsPath}; a resumed run must call truncateAfter(${record.epoch - 1}) first`,
      );
    }
    await this.#write([...records, record]);
  }

  /**
   * Drops the records of epochs after `epoch` from `metrics.jsonl` and `summary.csv` (for resuming from a
   * checkpoint taken at the end of `epoch`, or during epoch `epoch + 1`). Returns how many records were dropped.
   */
  async truncateAfter(epoch: number): Promise<number> {
    if (!Number.isInteger(epoch) || epoch < 0) {
      throw new RangeError(`RunLog.truncateAfter: epoch must be an integer >= 0, got ${epoch}`);
    }
    const records = await this.readMetrics();
    const kept = records.filter((r) => r.epoch <= epoch);
    if (kept.length !== records.length) await this.#write(kept);
    return records.length - kept.length;
  }

  async #write(records: EpochRecord[]) {
    await Deno.mkdir(this.dir, { recursive: true });
    await atomicWriteText(this.metricsPath, records.map((r) => JSON.stringify(r) + "\n").join(""));
    await atomicWriteText(this.summaryPath, summaryCsv(records));
  }
}

/** `summary.csv` for `records`: a header and one row per epoch; empty cells for absent values. */
export function summaryCsv(records: readonly EpochRecord[]): string {
  const columns = SUMMARY_COLUMNS.filter((c) => REQUIRED.includes(c) || records.some((r) => r[c] !== undefined));
  const cell = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? String(v) : "");
  return [columns.join(","), ...records.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}

/**
 * The records of a `metrics.jsonl` text; each line that is not a valid record goes to `onBadLine` (with whether it is
 * an unterminated last line) instead, which may throw.
 */
function parseMetrics(
  text: string,
  path: string,
  onBadLine: (error: Error, unterminated: boolean) => void,
): EpochRecord[] {
  const records: EpochRecord[] = [];
  const lines = text.split("\n");
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    const where = `${path}:${i + 1}`;
    try {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (e) {
        throw new Error(`${where}: not valid JSON (${(e as Error).message})`);
      }
      records.push(checkRecord(value, where));
    } catch (e) {
      onBadLine(e as Error, i === lines.length - 1);
    }
  });
  return records;
}

function checkRecord(value: unknown, where: string): EpochRecord {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${where}: expected an epoch record object, got ${JSON.stringify(value)}`);
  }
  const r = value as Record<string, unknown>;
  for (const key of REQUIRED) {
    if (typeof r[key] !== "number") {
      throw new Error(`${where}: field "${key}" must be a number, got ${JSON.stringify(r[key])}`);
    }
  }
  if (!Number.isInteger(r.epoch) || (r.epoch as number) < 0) {
    throw new Error(`${where}: field "epoch" must be an integer >= 0, got ${r.epoch}`);
  }
  return value as EpochRecord;
}

async function readIfExists(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** UTF-8 text through the shared crash-safe writer (temporary file, fsync, rename, fsync of the folder). */
function atomicWriteText(path: string, text: string): Promise<void> {
  return atomicWriteFile(path, new TextEncoder().encode(text));
}
