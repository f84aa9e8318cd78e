/**
 * In-epoch progress on disk: `progress.json` in the run folder, so that a reader such as the dashboard can show where
 * a running epoch stands (the per-epoch logs only grow at epoch ends). The train task writes it from its progress
 * hook (not the library trainer: the file is for watchers, and training must not depend on it); it is rewritten
 * atomically (io/atomic_write.ts), at most every few seconds, so it costs nothing next to a training step and a reader
 * never sees half of it.
 * @module
 */
import { atomicWriteFile } from "../io/atomic_write.ts";
import type { ProgressEvent } from "../train/trainer.ts";

/** The file's name inside the run folder. */
export const PROGRESS_FILE = "progress.json";

/** What `progress.json` holds: the trainer's last progress event and when it was written. */
export interface ProgressRecord extends ProgressEvent {
  /** ISO time of the write. */
  time: string;
}

/** Writes `progress.json` from progress events; see {@linkcode progressWriter}. */
export interface ProgressWriter {
  /** Records `event`; written when the last write is `minIntervalMs` old, or when the event ends an epoch. */
  update(event: ProgressEvent): void;
  /** Waits for a write in flight. */
  flush(): Promise<void>;
}

/**
 * A throttled, atomic writer of `dir/progress.json`. It never throws into the training loop: a failed write goes to
 * `onError` (and the next event tries again).
 */
export function progressWriter(
  dir: string,
  options: { minIntervalMs?: number; onError?: (error: Error) => void; now?: () => number } = {},
): ProgressWriter {
  const minInterval = options.minIntervalMs ?? 2000;
  const now = options.now ?? Date.now;
  let last = -Infinity;
  let inFlight: Promise<void> | null = null;
  let first = true;
  return {
    update(event) {
      const t = now();
      const epochEnd = event.batch === event.batches;
      // One write at a time; a skipped event is superseded by a later one anyway.
      if (inFlight || (t - last < minInterval && !epochEnd)) return;
      last = t;
      const record: ProgressRecord = { ...event, time: new Date(t).toISOString() };
      const bytes = new TextEncoder().encode(JSON.stringify(record) + "\n");
      // The first write (progress comes once the trainer holds the folder's lock) clears what a killed run's
      // interrupted write left.
      const clear = first ? removeStaleTemporaries(dir) : Promise.resolve();
      first = false;
      inFlight = clear.then(() => atomicWriteFile(`${dir}/${PROGRESS_FILE}`, bytes))
        .catch((e) => options.onError?.(e as Error))
        .finally(() => inFlight = null);
    },
    async flush() {
      await inFlight;
    },
  };
}

/** Removes `progress.json.tmp-*` files (the temporaries of atomic_write.ts) of an earlier, killed writer. */
async function removeStaleTemporaries(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.startsWith(`${PROGRESS_FILE}.tmp-`)) {
      await Deno.remove(`${dir}/${e.name}`).catch(() => {/* gone already */});
    }
  }
}

const NUMBER_FIELDS = ["epoch", "epochs", "batch", "batches", "globalStep", "loss", "acc", "lr", "imagesPerSecond"];

/**
 * Checks a parsed `progress.json`.
 * @throws {Error} naming `where` and the first field that is not as written by {@linkcode progressWriter}.
 */
export function progressRecordFromJSON(value: unknown, where: string): ProgressRecord {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${where}: expected a progress object, got ${JSON.stringify(value)}`);
  }
  const r = value as Record<string, unknown>;
  for (const key of NUMBER_FIELDS) {
    if (typeof r[key] !== "number") throw new Error(`${where}: field "${key}" must be a number, got ${r[key]}`);
  }
  if (typeof r.time !== "string") throw new Error(`${where}: field "time" must be an ISO time string`);
  return value as ProgressRecord;
}
