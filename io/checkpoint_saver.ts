/**
 * One object that owns a run folder's checkpoints, after timm's `CheckpointSaver`: it knows what a training
 * checkpoint holds (the model's and the optimizer's state, where training stands, what the run is), writes the step
 * file, `last` and `best` atomically (see `checkpoint_dir.ts`), keeps the newest N step files, tracks the best
 * validation metric, clears temporary files a crash left behind, and finds and loads the checkpoint to resume from.
 *
 * It sees the model and the optimizer only as {@linkcode Stateful}: objects that export and import torchvision-layout
 * host state dicts. So it lives here, beside the files it manages, and needs neither the tfjs model nor the SGD
 * class (`io/` imports nothing from `models/` or `train/`).
 * @module
 */
import type { StateDict } from "./host_tensor.ts";
import { type CheckpointState, type DataPosition, type InputNormalization, loadCheckpoint } from "./checkpoint.ts";
import { join } from "node:path";
import { atomicWriteFile } from "./atomic_write.ts";
import {
  BEST_CHECKPOINT,
  findResumeCheckpoint,
  LAST_CHECKPOINT,
  removeStaleTempFiles,
  type SavedCheckpoint,
  saveRunCheckpoint,
} from "./checkpoint_dir.ts";

/** Whatever converts its whole state to and from a host state dict: the model and the optimizer. */
export interface Stateful {
  /** The state in torchvision's names and layouts (may read back from the GPU). */
  exportState(): Promise<StateDict>;
  /** Replaces the state; throws, changing nothing, when `state` does not fit. */
  importState(state: StateDict): void;
}

/** What every checkpoint of a run records besides tensors and progress (the same for every save). */
export interface RunIdentity {
  /** The resolved run configuration, JSON-serialisable. */
  config: unknown;
  /** Class names, index = label. */
  classNames: string[];
  /** Architecture description, JSON-serialisable (enough to rebuild the model). */
  archSpec: unknown;
  /** What the inputs are normalised with (recorded so that evaluation and other frameworks can do the same). */
  normalization?: InputNormalization;
}

/** Where training stands at a save. */
export interface TrainingProgress {
  /** Completed optimizer steps since the start of training. */
  globalStep: number;
  /** The next batch to read; its `epoch` is also the number of completed epochs. */
  dataPosition: DataPosition;
  /** Whatever else an exact resume needs (random state, partial sums), JSON-serialisable, opaque here. */
  rng: unknown;
}

/** Options of {@linkcode CheckpointSaver}. */
export interface CheckpointSaverOptions {
  /** The model: its state is stored under torchvision's bare names. */
  model: Stateful;
  /** The optimizer: its state is stored as `optim.<parameter name>`. */
  optimizer: Stateful;
  /** The weight average, if the run keeps one: its state is stored as `ema.<name>` (see `checkpoint.ts`). */
  ema?: Stateful;
  /** Recorded in every checkpoint. */
  run: RunIdentity;
  /** Newest step files kept besides `last` and `best` (all of them when undefined). */
  keep?: number;
  /** Information and warnings for the user (skipped checkpoints, where a run resumed). */
  log?: (message: string) => void;
}

/** What {@linkcode CheckpointSaver.save} wrote and removed. */
export interface SaveResult extends SavedCheckpoint {
  /** Whether this save improved on the best metric and was written as `best`. */
  isBest: boolean;
}

/** The checkpoint a run resumed from: its path and everything but the tensors (already loaded into the objects). */
export type ResumePoint = Omit<CheckpointState, "model" | "optimizer" | "ema"> & { path: string };

/** The checkpoints of one run folder; see the module documentation. */
export class CheckpointSaver {
  /** The run folder. */
  readonly dir: string;
  readonly #options: CheckpointSaverOptions;
  readonly #log: (message: string) => void;
  #bestMetric: number | null = null;
  #lastCheckpoint: string | undefined;
  #tempFilesCleared = false;

  constructor(dir: string, options: CheckpointSaverOptions) {
    this.dir = dir;
    this.#options = options;
    this.#log = options.log ?? (() => {});
  }

  /** The best validation metric saved so far (higher is better), or null before the first. */
  get bestMetric(): number | null {
    return this.#bestMetric;
  }

  /** Path of `last.safetensors` once this saver has written a checkpoint. */
  get lastCheckpoint(): string | undefined {
    return this.#lastCheckpoint;
  }

  /** Whether a save with this validation metric would be the new `best` (undefined: a save without evaluation). */
  improves(metric: number | undefined): boolean {
    return metric !== undefined && (this.#bestMetric === null || metric > this.#bestMetric);
  }

  /**
   * Saves the model, the optimizer and `progress`: the step file, `last`, and `best` when `metric` (the validation
   * metric, higher is better) improves on every earlier one; then prunes to the newest `keep` step files. The
   * first save also removes temporary files a crashed writer left in the folder (nothing else writes there).
   */
  async save(progress: TrainingProgress, metric?: number): Promise<SaveResult> {
    const isBest = this.improves(metric);
    const state: CheckpointState = {
      model: await this.#options.model.exportState(),
      optimizer: await this.#options.optimizer.exportState(),
      ...(this.#options.ema ? { ema: await this.#options.ema.exportState() } : {}),
      epoch: progress.dataPosition.epoch,
      globalStep: progress.globalStep,
      dataPosition: progress.dataPosition,
      rng: progress.rng,
      config: this.#options.run.config,
      bestMetric: isBest ? metric! : this.#bestMetric,
      classNames: this.#options.run.classNames,
      archSpec: this.#options.run.archSpec,
      ...(this.#options.run.normalization ? { normalization: this.#options.run.normalization } : {}),
    };
    if (!this.#tempFilesCleared) {
      await removeStaleTempFiles(this.dir);
      this.#tempFilesCleared = true;
    }
    const saved = await saveRunCheckpoint(this.dir, state, { isBest, keep: this.#options.keep });
    // Only once the files are written: a failed save changes neither the best metric nor `last`.
    this.#bestMetric = state.bestMetric;
    this.#lastCheckpoint = saved.written[1];
    return { ...saved, isBest };
  }

  /**
   * A kill between the files of one save (step file, then `last`, then `best`) leaves `last`, and `best` when that
   * save improved it, older than the step file resumed from; a run resumed at its very end would then finish with
   * them stale. They are written again from the resumed file's bytes, as the interrupted save would have.
   */
  async #completeInterruptedSave(path: string, state: CheckpointState): Promise<void> {
    const older = async (file: string, isCurrent: (s: CheckpointState) => boolean) => {
      if (file === path) return false;
      try {
        return !isCurrent(await loadCheckpoint(file));
      } catch {
        return true; // missing or unreadable
      }
    };
    const last = join(this.dir, LAST_CHECKPOINT), best = join(this.dir, BEST_CHECKPOINT);
    const stale = [];
    if (await older(last, (s) => s.globalStep >= state.globalStep)) stale.push(last);
    // The best metric changes only in a save that writes `best`: when `best` is from an earlier step and holds another
    // metric, the save resumed from set it and lost that write. A missing or unreadable `best` proves nothing (the
    // improving save may be an earlier one whose file was damaged since), so it is left alone.
    if (state.bestMetric !== null) {
      let found: CheckpointState | undefined;
      try {
        found = await loadCheckpoint(best);
      } catch { /* missing or unreadable: left alone */ }
      if (found && found.globalStep < state.globalStep && found.bestMetric !== state.bestMetric) stale.push(best);
    }
    if (stale.length === 0) return;
    const bytes = await Deno.readFile(path);
    for (const file of stale) await atomicWriteFile(file, bytes);
    this.#log(`completed the save interrupted at step ${state.globalStep}: ${stale.join(", ")} rewritten from ${path}`);
  }

  /**
   * Loads a checkpoint into the model and the optimizer and takes over its best metric. `from` is a checkpoint's
   * path, or `"auto"`: the newest valid checkpoint of the folder (unusable newer files are skipped with a warning),
   * or null, with a message, when the folder holds none, so the run starts fresh.
   * @param accept sees what the checkpoint says (its configuration, position, random state) before anything is
   *   loaded, and throws to refuse it.
   * @throws {Error} when the checkpoint is unreadable or does not fit the model or the optimizer (`"auto"`: when the
   *   folder holds checkpoints but none is valid), or what `accept` throws.
   */
  async resume(from: string, accept?: (point: ResumePoint) => void): Promise<ResumePoint | null> {
    let path = from, state: CheckpointState;
    if (from === "auto") {
      const found = await findResumeCheckpoint(this.dir);
      for (const s of found?.skipped ?? []) this.#log(`warning: skipping unusable checkpoint ${s.path}: ${s.reason}`);
      if (!found) {
        this.#log(`no checkpoint in ${this.dir} to resume from; starting a new run`);
        return null;
      }
      ({ path, state } = found);
    } else {
      state = await loadCheckpoint(from);
    }
    const { model, optimizer, ema, ...rest } = state;
    accept?.({ ...rest, path });
    this.#options.model.importState(model);
    this.#options.optimizer.importState(optimizer);
    if (this.#options.ema && ema) this.#options.ema.importState(ema);
    else if (this.#options.ema) this.#log(`warning: ${path} holds no average of the weights; the average starts anew`);
    this.#bestMetric = rest.bestMetric;
    const { epoch, batch } = rest.dataPosition;
    this.#log(`resumed from ${path}: epoch ${epoch + 1}, batch ${batch}, step ${rest.globalStep}`);
    // Only for the newest checkpoint of this folder: an explicitly chosen older one is no interrupted save.
    if (from === "auto") await this.#completeInterruptedSave(path, state);
    return { ...rest, path };
  }
}
