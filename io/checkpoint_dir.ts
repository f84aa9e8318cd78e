/**
 * The checkpoints of one run folder (`runs/NAME/`):
 * - `checkpoint-<global step, 9 digits>.safetensors`: one per save, the newest `keep` kept;
 * - `last.safetensors`: the latest save;
 * - `best.safetensors`: the save with the best validation metric so far.
 *
 * `last` and `best` are full copies, each written atomically, not links: symlinks and hard links behave differently
 * across file systems and operating systems (and a hard link would be destroyed by pruning its step file), whereas
 * a copy is a valid checkpoint on its own. Each file is fully written (temporary file, fsync, rename) before the
 * next, in the order step file, `last`, `best`, so a crash at any point leaves every name either old or new.
 * @module
 */
import { join } from "node:path";
import { atomicWriteFile } from "./atomic_write.ts";
import { type CheckpointState, encodeCheckpoint, loadCheckpoint } from "./checkpoint.ts";
import { statIfExists } from "./stat_if_exists.ts";

/** File name of the latest checkpoint. */
export const LAST_CHECKPOINT = "last.safetensors";
/** File name of the checkpoint with the best validation metric. */
export const BEST_CHECKPOINT = "best.safetensors";

const STEP_FILE = /^checkpoint-([0-9]{9,})\.safetensors$/;
const TEMP_FILE = /\.safetensors\.tmp-[0-9a-f]+$/;

/** A step checkpoint found in a run folder. */
export interface StepCheckpoint {
  /** Path of the file. */
  path: string;
  /** Global step parsed from its name. */
  globalStep: number;
}

/** A checkpoint file that could not be used, and why. */
export interface SkippedCheckpoint {
  /** Path of the file. */
  path: string;
  /** The validation error's message. */
  reason: string;
}

/** Result of {@linkcode findResumeCheckpoint}. */
export interface ResumeCheckpoint {
  /** The checkpoint to resume from. */
  path: string;
  /** Its decoded, validated contents. */
  state: CheckpointState;
  /** Newer files that failed to decode or validate (the caller should warn about each). */
  skipped: SkippedCheckpoint[];
}

/** What {@linkcode saveRunCheckpoint} wrote and removed. */
export interface SavedCheckpoint {
  /** Paths written, in order (step file, `last`, and `best` when asked). */
  written: string[];
  /** Step files removed by pruning. */
  pruned: string[];
}

/** `checkpoint-000001234.safetensors` for step 1234 (zero-padded to 9 digits so names sort by step). */
export function checkpointFileName(globalStep: number): string {
  if (!Number.isSafeInteger(globalStep) || globalStep < 0) {
    throw new Error(`checkpoint global step must be a non-negative integer, got ${globalStep}`);
  }
  return `checkpoint-${String(globalStep).padStart(9, "0")}.safetensors`;
}

/** Path of the step checkpoint for `globalStep` in the run folder `dir`. */
export function stepCheckpointPath(dir: string, globalStep: number): string {
  return join(dir, checkpointFileName(globalStep));
}

/** The global step in a step checkpoint's file name, or null for any other name. */
export function parseCheckpointFileName(name: string): number | null {
  const match = STEP_FILE.exec(name);
  return match ? Number(match[1]) : null;
}

/** Step checkpoints in `dir`, oldest first; empty when `dir` does not exist. */
export async function listStepCheckpoints(dir: string): Promise<StepCheckpoint[]> {
  const out: StepCheckpoint[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const globalStep = entry.isFile ? parseCheckpointFileName(entry.name) : null;
      if (globalStep !== null) out.push({ path: join(dir, entry.name), globalStep });
    }
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  return out.sort((a, b) => a.globalStep - b.globalStep);
}

/**
 * Saves `state` in `dir` (created if needed): the step file, `last`, and `best` when `isBest`; then keeps only the
 * newest `keep` step files (all of them when `keep` is undefined). The checkpoint is encoded once.
 */
export async function saveRunCheckpoint(
  dir: string,
  state: CheckpointState,
  options: { isBest?: boolean; keep?: number } = {},
): Promise<SavedCheckpoint> {
  const bytes = encodeCheckpoint(state);
  await Deno.mkdir(dir, { recursive: true });
  const written = [stepCheckpointPath(dir, state.globalStep), join(dir, LAST_CHECKPOINT)];
  if (options.isBest) written.push(join(dir, BEST_CHECKPOINT));
  for (const path of written) await atomicWriteFile(path, bytes);
  const pruned = options.keep === undefined ? [] : await pruneCheckpoints(dir, options.keep);
  return { written, pruned };
}

/**
 * Removes all but the newest `keep` step checkpoints of `dir` (never `last` or `best`); returns the removed paths.
 * `keep` = 0 removes every step file.
 */
export async function pruneCheckpoints(dir: string, keep: number): Promise<string[]> {
  if (!Number.isSafeInteger(keep) || keep < 0) {
    throw new Error(`number of checkpoints to keep must be a non-negative integer, got ${keep}`);
  }
  const steps = await listStepCheckpoints(dir);
  const doomed = steps.slice(0, Math.max(0, steps.length - keep)).map((s) => s.path);
  for (const path of doomed) await Deno.remove(path);
  return doomed;
}

/**
 * Removes temporary files that a crash during an atomic write left in `dir` (`*.safetensors.tmp-<hex>`); returns
 * their paths. Call it only when no other process writes into `dir`.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && TEMP_FILE.test(entry.name)) {
        const path = join(dir, entry.name);
        await Deno.remove(path);
        removed.push(path);
      }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return removed;
}

/**
 * The checkpoint `--resume auto` continues: the valid checkpoint with the highest global step among the step files
 * and `last` (`best` is not a resume point). Files that fail to decode or validate are skipped and reported in
 * `skipped`. Returns null when `dir` holds no checkpoint at all; throws, listing every reason, when it holds
 * checkpoints but none is valid (silently starting over would be wrong).
 */
export async function findResumeCheckpoint(dir: string): Promise<ResumeCheckpoint | null> {
  const candidates = (await listStepCheckpoints(dir)).reverse().map((s) => s.path);
  const last = join(dir, LAST_CHECKPOINT);
  if ((await statIfExists(last))?.isFile) candidates.push(last);
  if (candidates.length === 0) return null;
  const skipped: SkippedCheckpoint[] = [];
  let found: { path: string; state: CheckpointState } | null = null;
  for (const path of candidates) {
    const isLast = path === last;
    // Step files come newest first, so once one is valid only `last` can beat it (if a crash hit mid-rotation).
    if (found !== null && !isLast) continue;
    try {
      const state = await loadCheckpoint(path);
      if (found === null || state.globalStep > found.state.globalStep) found = { path, state };
    } catch (err) {
      skipped.push({ path, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  if (found === null) {
    throw new Error(
      `no valid checkpoint to resume from in ${dir}:\n${skipped.map((s) => `  ${s.reason}`).join("\n")}`,
    );
  }
  return { ...found, skipped };
}
