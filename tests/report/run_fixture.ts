/**
 * Run folders as the trainer and `eval --out-json` write them, made without training: the dashboard and report tests
 * read these.
 * @module
 */
import { parseTrainArgs } from "../../tasks/train_flags.ts";
import type { TrainConfig } from "../../train/config.ts";
import { learningRateAt, scheduleConfigFor } from "../../train/lr_schedule.ts";
import { type EpochRecord, RunLog } from "../../train/run_log.ts";
import type { EvalReport } from "../../train/eval_report.ts";
import { LOCK_FILE } from "../../io/run_lock.ts";
import { PROGRESS_FILE, type ProgressRecord } from "../../report/run_progress.ts";
import { hostname } from "node:os";

/** Steps per epoch of the fixture runs. */
export const STEPS = 32;

/** The synthetic recipe, 3 epochs, as config.json holds it. */
export function fixtureConfig(out: string, ...flags: string[]): TrainConfig {
  const c = parseTrainArgs(["--arch", "resnet18", "--dataset", "synthetic", "--epochs", "3", "--out", out, ...flags]);
  if (c === "help") throw new Error("unreachable");
  return c;
}

/** Epoch `epoch`'s record, its learning rate from the schedule as the trainer logs it (the epoch's last step). */
export function fixtureRecord(config: TrainConfig, epoch: number, testTop1: number): EpochRecord {
  return {
    epoch,
    step: epoch * STEPS,
    lr: learningRateAt(epoch * STEPS - 1, scheduleConfigFor(config, STEPS)),
    // Losses follow the accuracy, so that two runs' curves differ (and one cannot hide the other on a chart).
    train_loss: 3 * (1.05 - testTop1),
    train_top1: testTop1 - 0.05,
    test_loss: 3 * (1 - testTop1),
    test_top1: testTop1,
    test_top5: 1,
    time: 40,
    images_per_second: 100 + epoch + 100 * testTop1,
  };
}

/** A 3-class evaluation report. */
export const FIXTURE_EVAL: EvalReport = {
  checkpoint: "runs/x/last.safetensors",
  source: "checkpoint",
  spec: { block: "basic", layers: [2, 2, 2, 2], stem: "cifar", width: 4, numClasses: 3, zeroInitResidual: false },
  dataset: "synthetic",
  split: "test",
  numImages: 30,
  loss: 0.5,
  top1: 0.7,
  top5: 1,
  perClass: [
    { name: "airplane", count: 10, accuracy: 0.9 },
    { name: "bird", count: 10, accuracy: 0.5 },
    { name: "cat", count: 10, accuracy: 0.7 },
  ],
  confusion: [[9, 1, 0], [3, 5, 2], [1, 2, 7]],
};

/**
 * Writes run folder `dir` with `top1s.length` epochs (test top-1 of each), config.json as the trainer writes it (with
 * spec and class names, the synthetic recipe changed by `flags`), and optionally eval.json and a live run's lock and
 * progress.
 */
export async function writeFixtureRun(
  dir: string,
  top1s: number[],
  options: { eval?: boolean; running?: boolean; flags?: string[] } = {},
): Promise<TrainConfig> {
  const config = fixtureConfig(dir, ...(options.flags ?? []));
  const log = new RunLog(dir);
  await log.writeConfig({
    ...config,
    spec: FIXTURE_EVAL.spec,
    classNames: ["a", "b", "c"],
    normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] }, // as train/trainer.ts writes it
  });
  for (let e = 1; e <= top1s.length; e++) await log.appendEpoch(fixtureRecord(config, e, top1s[e - 1]));
  if (options.eval) await Deno.writeTextFile(`${dir}/eval.json`, JSON.stringify(FIXTURE_EVAL));
  if (options.running) {
    const owner = { pid: Deno.pid, host: hostname(), since: new Date().toISOString() };
    await Deno.writeTextFile(`${dir}/${LOCK_FILE}`, JSON.stringify(owner));
    const progress: ProgressRecord = {
      epoch: top1s.length + 1,
      epochs: 3,
      batch: 12,
      batches: STEPS,
      globalStep: top1s.length * STEPS + 12,
      loss: 0.8765,
      acc: 0.6543,
      lr: 0.1234,
      imagesPerSecond: 99,
      etaSeconds: 60,
      time: new Date().toISOString(),
    };
    await Deno.writeTextFile(`${dir}/${PROGRESS_FILE}`, JSON.stringify(progress));
  }
  return config;
}

/** Appends epoch `epoch`'s line to metrics.jsonl the way a live run grows it. */
export async function appendFixtureEpoch(dir: string, epoch: number, top1: number): Promise<void> {
  const line = JSON.stringify(fixtureRecord(fixtureConfig(dir), epoch, top1)) + "\n";
  await Deno.writeTextFile(`${dir}/metrics.jsonl`, line, { append: true });
}
