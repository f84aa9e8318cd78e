/**
 * The run folder (`out`) at the start and the failed end of a run: whether it already holds a run that a new one would
 * mix its logs and checkpoints into, creating it with an error that names the field, and removing it again when a run
 * that created it failed before writing anything.
 * @module
 */
import { basename, join } from "node:path";
import { ConfigError, literal } from "../io/config_error.ts";
import { BEST_CHECKPOINT, LAST_CHECKPOINT, listStepCheckpoints } from "../io/checkpoint_dir.ts";
import { statIfExists } from "../io/stat_if_exists.ts";
import { RunLog } from "./run_log.ts";
import type { TrainConfig } from "./config.ts";

/** What a run folder holds of an earlier run. */
export interface HeldRun {
  /** The last epoch logged in `metrics.jsonl` (0: none). */
  epochs: number;
  /** The file name of its newest checkpoint (`last`, else the newest step file, else `best`), if any. */
  checkpoint?: string;
}

/** What run folder `out` holds of a run: logged epochs or a checkpoint; null when neither (absent, empty, new). */
export async function heldRun(out: string): Promise<HeldRun | null> {
  // Lenient: a damaged log still holds a run, and this is no place to fail on it.
  const { records } = await new RunLog(out).readMetricsLenient();
  const epochs = records.at(-1)?.epoch ?? 0;
  const steps = await listStepCheckpoints(out);
  const names = [LAST_CHECKPOINT, ...steps.reverse().map((s) => basename(s.path))];
  let checkpoint: string | undefined;
  for (const name of [...names, BEST_CHECKPOINT]) {
    if ((await statIfExists(join(out, name)))?.isFile) {
      checkpoint = name;
      break;
    }
  }
  return epochs > 0 || checkpoint !== undefined ? { epochs, ...(checkpoint && { checkpoint }) } : null;
}

/**
 * Refuses a run folder that already holds a run when `resume` is not set: a new run would log its epoch 1 after the
 * old epochs and rewrite `config.json` beside the old checkpoints. Checks only; call it before anything in the folder
 * is written. (`resume` "auto" in a folder without a checkpoint starts anew, rewriting any logged epochs.)
 * @throws {ConfigError} on field `out`.
 */
export async function checkRunFolder(config: Pick<TrainConfig, "out" | "resume">): Promise<void> {
  if (config.resume !== null) return;
  const held = await heldRun(config.out);
  if (held === null) return;
  const epochs = held.epochs === 0 ? "no epoch finished" : `${held.epochs} epoch${held.epochs === 1 ? "" : "s"}`;
  throw new ConfigError(
    "out",
    `{out} ${literal(config.out)} already holds a run (${epochs}, ${held.checkpoint ?? "no checkpoint"}); ` +
      `${held.checkpoint ? "continue it" : "start it anew"} with {resume} auto, or choose another {out}`,
  );
}

/**
 * Creates run folder `out` (and its parents) unless it exists; returns whether it did, so that a run that fails before
 * writing anything can remove it again ({@linkcode removeEmptyRunFolder}).
 * @throws {ConfigError} on field `out` when it cannot be created (a read-only file system, no permission).
 */
export async function makeRunFolder(out: string): Promise<boolean> {
  if (await statIfExists(out)) return false;
  try {
    await Deno.mkdir(out, { recursive: true });
  } catch (e) {
    // Deno says "Read-only file system (os error 30): mkdir '/x/run'": the reason without the number and the call.
    const message = e instanceof Error ? e.message : String(e);
    const reason = /^(.*?) \(os error \d+\)/.exec(message)?.[1] ?? message;
    throw new ConfigError("out", `{out} ${literal(out)}: cannot create the run folder (${literal(reason)})`);
  }
  return true;
}

/** Removes run folder `out` if it is empty (a failed start that wrote nothing), leaving anything else as it is. */
export async function removeEmptyRunFolder(out: string): Promise<void> {
  try {
    await Deno.remove(out); // not recursive: fails on a folder that holds anything
  } catch { /* not empty, or gone: nothing to undo */ }
}
