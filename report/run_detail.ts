/**
 * Everything the charts of one run are drawn from (`/api/runs/NAME` and the report page): its summary, configuration,
 * epoch records, the learning rate per step, in-epoch progress and evaluation reports.
 * @module
 */
import { learningRateAt, scheduleConfigFor } from "../train/lr_schedule.ts";
import type { TrainConfig } from "../train/config.ts";
import type { EpochRecord } from "../train/run_log.ts";
import type { EvalFile, RunSnapshot } from "./run_snapshot.ts";
import type { ProgressRecord } from "./run_progress.ts";
import { type RunSummary, summarizeRun } from "./run_summary.ts";

/** The learning rate along the run, x in epochs (step `t` ends at `(t + 1) / stepsPerEpoch`). */
export interface LrCurve {
  epoch: number[];
  lr: number[];
}

/** One run, in full. */
export interface RunDetail extends RunSummary {
  /** `config.json` as parsed, valid or not (the report shows it). */
  config: Record<string, unknown> | null;
  metrics: EpochRecord[];
  /** The learning rate per step from the configuration's schedule; null when it or the steps per epoch are unknown. */
  lrSteps: LrCurve | null;
  progress: ProgressRecord | null;
  evals: EvalFile[];
}

/** Points of a per-step learning-rate curve at most: more than a chart's width, and the payload stays small. */
export const MAX_LR_POINTS = 2000;

/**
 * The learning rate of every step of the run (of every `ceil(steps / maxPoints)`-th step on a long run), from the
 * schedule the trainer uses: the LR is a pure function of the step, so this is the LR the run used, or will use.
 */
export function lrPerStep(config: TrainConfig, stepsPerEpoch: number, maxPoints = MAX_LR_POINTS): LrCurve {
  const schedule = scheduleConfigFor(config, stepsPerEpoch);
  const stride = Math.max(1, Math.ceil(schedule.totalSteps / maxPoints));
  const curve: LrCurve = { epoch: [], lr: [] };
  for (let t = 0; t < schedule.totalSteps; t += stride) {
    curve.epoch.push((t + 1) / stepsPerEpoch);
    curve.lr.push(learningRateAt(t, schedule));
  }
  const lastStep = schedule.totalSteps - 1;
  if ((lastStep % stride) !== 0) {
    curve.epoch.push(config.epochs);
    curve.lr.push(learningRateAt(lastStep, schedule));
  }
  return curve;
}

/** Optimizer steps per epoch, from the first epoch record (exact: steps only advance by whole epochs between records)
 * or from the in-epoch progress; null when neither tells. */
function stepsPerEpochOf(s: RunSnapshot): number | null {
  const first = s.metrics.find((m) => m.epoch > 0);
  if (first && Number.isInteger(first.step / first.epoch) && first.step > 0) return first.step / first.epoch;
  return s.progress && s.progress.batches > 0 ? s.progress.batches : null;
}

/** The {@linkcode RunDetail} of a snapshot. */
export function runDetail(s: RunSnapshot): RunDetail {
  const steps = stepsPerEpochOf(s);
  const skipped = [...s.skipped]; // snapshots are cached and shared: never change one
  let lrSteps: LrCurve | null = null;
  if (s.config && steps !== null) {
    try {
      lrSteps = lrPerStep(s.config, steps);
    } catch (e) {
      skipped.push(`learning rate per step: ${(e as Error).message}`);
    }
  }
  return {
    ...summarizeRun({ ...s, skipped }),
    config: s.rawConfig,
    metrics: s.metrics,
    lrSteps,
    progress: s.progress,
    evals: s.evals,
  };
}
