/**
 * The training loop behind `deno task train`: data, model, SGD and schedule from one {@linkcode TrainConfig};
 * per-epoch evaluation and logs; atomic safetensors checkpoints; exact resume from any checkpoint, mid-epoch
 * included. Library code: it reports through {@linkcode TrainHooks} and never prints.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { sumScalars } from "./sum_scalars.ts";
import { accumulateInPlace } from "../kernels/accumulate_in_place.ts";
import { createLoaders, type DataConfig, type Loaders } from "../data/loaders.ts";
import { initWebGPU, throwOnWebGPUErrors } from "../kernels/webgpu_backend.ts";
import { createResNet, type ResNet } from "../models/resnet.ts";
import { type ResNetSpec, resnetSpec } from "../models/resnet_spec.ts";
import { loadWeights } from "../io/checkpoint.ts";
import { CheckpointSaver } from "../io/checkpoint_saver.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";
import { learningRateAt, scheduleConfigFor } from "./lr_schedule.ts";
import { type EpochRecord, RunLog } from "./run_log.ts";

export type { EpochRecord };
import { SGD, sgdOptionsFor } from "./sgd.ts";
import { checkResumeConfig, ConfigError, resumeConflicts, type TrainConfig, trainConfigFromJSON } from "./config.ts";
import { FieldMessageError, literal } from "../io/config_error.ts";
import { acquireRunLock, type RunLock } from "../io/run_lock.ts";
import { checkRunFolder, makeRunFolder, removeEmptyRunFolder } from "./run_folder.ts";
import { makeDataParallelStep, makeTrainStep } from "./train_step.ts";
import { type Collective, LocalCollective } from "../dist/collective.ts";
import { checkSameConfig, DataParallel } from "./data_parallel.ts";
import { emaDecay, ModelEma } from "./model_ema.ts";
import { batchMixFor } from "../data/batch_mix.ts";

/** Progress inside an epoch, reported every `logEvery` steps (one GPU readback each). */
export interface ProgressEvent {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  globalStep: number;
  /** Mean training loss and top-1 of the epoch so far. */
  loss: number;
  acc: number;
  lr: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

/** Callbacks and test hooks of {@linkcode train}. */
export interface TrainHooks {
  /** Information and warnings for the user. */
  log?: (message: string) => void;
  /** How `log` names a configuration field (a command line passes its flags); default: the field's own name. */
  nameOf?: (field: string) => string;
  progress?: (event: ProgressEvent) => void;
  /** After each epoch: its record, and whether it improved on the best validation top-1 (it is then `best`). */
  epoch?: (record: EpochRecord, best: boolean) => void;
  /**
   * Where training stands, without a GPU readback: once when the loop starts (at the resumed position, if any) and
   * after each optimizer step. `epoch` counts from 1; `globalStep` is the number of steps done. For a message on
   * Ctrl-C, say.
   */
  position?: (at: { epoch: number; globalStep: number }) => void;
  /** Test hook: return right after this global step, as if the process were killed (nothing more is saved). */
  stopAfterStep?: number;
  /** Test hook: make the loss of this global step (1-based) NaN. */
  nanAtStep?: number;
  /** Data options that are not part of the run's config (e.g. a smaller synthetic set in tests). */
  data?: Partial<DataConfig>;
  /**
   * The processes of a data-parallel job (default: this one alone). Each rank trains on its share of every global
   * batch (`batchSize` per rank); gradients are averaged over the ranks, BN statistics stay per rank; rank 0 alone
   * evaluates, logs, saves and calls the hooks above.
   */
  collective?: Collective;
}

/** Outcome of {@linkcode train}. */
export interface TrainResult {
  epochs: EpochRecord[];
  globalStep: number;
  /** True when `stopAfterStep` ended the run early. */
  interrupted: boolean;
  /** Path of `last.safetensors`, if any checkpoint was written. */
  lastCheckpoint?: string;
  bestMetric: number | null;
}

/** Thrown when the training loss stops being finite; checkpoints written before are left untouched. */
export class NonFiniteLossError extends FieldMessageError {
  /** `what` went non-finite: the loss (read back every `logEvery` steps) or the parameters (checked before a save). */
  constructor(
    step: number,
    epoch: number,
    value: number,
    what: "training loss" | "sum of the parameters" = "training loss",
  ) {
    super(
      `The ${what} became ${value} at or before global step ${step} (epoch ${epoch}). The run was stopped; ` +
        "the last checkpoint is untouched. Lower {lr}, add {clipGradNorm}, or check the data.",
    );
    this.name = "NonFiniteLossError";
  }
}

/** The state that lets a run continue exactly where it stopped, stored in the checkpoint's `rng` field. */
interface ResumeExtras {
  /** All randomness is counter-based: (seed, epoch, sample index) → order, crops, flips, per-image augmentations. */
  seed: number;
  /** Running sums of the current epoch (over every rank), so a mid-epoch resume reports the same epoch metrics. */
  partial: { lossSum: number; correct: number; seen: number };
  /**
   * Training images (after the validation split) the run drew its batches from: another count reorders every epoch.
   * Absent in checkpoints written before it was recorded.
   */
  trainImages?: number;
  /** Processes of the job that wrote it (absent: 1); each rank's own running sums when more than one. */
  worldSize?: number;
  rankPartials?: { lossSum: number; correct: number; seen: number }[];
}

/** Fields that decide which images make up each batch: changing one moves every mid-epoch position. */
const ORDER_FIELDS: readonly (keyof TrainConfig)[] = [
  "dataset",
  "batchSize",
  "valSplit",
  "seed",
  "raSampler",
  "raReps",
];

/** Checks a checkpoint's `rng` record (older or foreign files may lack the epoch's partial sums). */
function checkResumeExtras(rng: unknown, source: string): asserts rng is ResumeExtras {
  const partial = (rng as Partial<ResumeExtras> | null)?.partial;
  const sums = [partial?.lossSum, partial?.correct, partial?.seen];
  if (!sums.every((x) => typeof x === "number" && Number.isFinite(x))) {
    throw new Error(
      `${source}: metadata "rng" lacks the epoch's partial sums ({ partial: { lossSum, correct, seen } }), so the ` +
        `run cannot continue exactly; got ${JSON.stringify(rng)}`,
    );
  }
}

/** Runs (or resumes) a training run as `config` describes; one process per run folder (see `io/run_lock.ts`). */
export async function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const collective = hooks.collective ?? new LocalCollective();
  // Rank 0 alone speaks, writes and holds the lock; the others train.
  const log = collective.rank === 0 ? hooks.log ?? (() => {}) : () => {};
  if (collective.rank !== 0) hooks = { ...hooks, log, progress: undefined, epoch: undefined, position: undefined };
  await checkSameConfig(collective, config);
  if (collective.rank !== 0) return await trainLocked(config, hooks, log, collective);
  // One process per run folder, taken before the data is loaded so that a second run stops at once.
  const created = await makeRunFolder(config.out);
  let lock: RunLock;
  try {
    lock = await acquireRunLock(config.out, (m) => log(`warning: ${m}`));
  } catch (e) {
    if (created) await removeEmptyRunFolder(config.out);
    throw e;
  }
  let result: TrainResult;
  try {
    // Under the lock, before anything is written: a folder that holds a run is continued (resume) or left alone.
    await checkRunFolder(config);
    result = await trainLocked(config, hooks, log, collective);
  } catch (e) {
    // The error that stopped the run is the one to tell: a lock that cannot be removed too (the same read-only or full
    // disk, most often) is a warning, and the next run takes the stale lock over.
    await lock.release().catch((r) =>
      log(`warning: ${lock.path} not removed (${r instanceof Error ? r.message : r}); the next run takes it over`)
    );
    // A failed start (no data, a bad split) leaves no empty folder behind for the dashboard to list.
    if (created) await removeEmptyRunFolder(config.out);
    throw e;
  }
  await lock.release();
  return result;
}

async function trainLocked(
  config: TrainConfig,
  hooks: TrainHooks,
  log: (m: string) => void,
  collective: Collective,
): Promise<TrainResult> {
  await initWebGPU();
  const dp = new DataParallel(collective);
  const open = () =>
    createLoaders({
      dataset: config.dataset,
      dataDir: config.dataDir || "data",
      valSplit: config.valSplit,
      seed: config.seed,
      batchSize: config.batchSize,
      imageSize: config.imageSize,
      transforms: config.transforms,
      decoder: config.decoder,
      autoAugment: config.autoAugment,
      raNumOps: config.raNumOps,
      raMagnitude: config.raMagnitude,
      randomErase: config.randomErase,
      raReps: config.raSampler ? config.raReps : 1,
      workers: config.workers,
      ...hooks.data,
      shard: collective.size > 1 ? { rank: collective.rank, size: collective.size } : undefined,
    }, { onWarning: log, onProgress: log, nameOf: hooks.nameOf });
  // Datasets that leave files for the others (ImageNet's archive index, a CIFAR download): rank 0 first, the others
  // wait as long as it takes (indexing ImageNet's archives from a cold disk can outlast any collective timeout).
  const leavesFiles = ["imagenet", "cifar10", "cifar100"].includes(config.dataset);
  if (leavesFiles && dp.size > 1) log(`rank 0 opens the data first; ranks 1-${dp.size - 1} wait for it`);
  const loaders = leavesFiles ? await dp.rootFirst("opening the data", open, Infinity) : await open();
  const spec = resnetSpec(config.arch, {
    stem: config.stem,
    width: config.width,
    numClasses: loaders.numClasses,
    zeroInitResidual: config.zeroInitResidual,
  });
  const model = createResNet(spec, { seed: config.seed });
  const optimizer = new SGD(model.parameters(), sgdOptionsFor(config));
  // torchvision's adjustment counts the images of a step on all ranks: world_size x the per-rank batch.
  const ema = config.modelEma ? new ModelEma(model, emaDecay(config, dp.size)) : undefined;
  try {
    return await runLoop(config, hooks, log, loaders, spec, model, optimizer, ema, dp);
  } finally {
    ema?.dispose();
    optimizer.dispose();
    model.dispose();
    await Promise.all([loaders.train, loaders.val, loaders.test].map((l) => l?.close()));
  }
}

async function runLoop(
  config: TrainConfig,
  hooks: TrainHooks,
  log: (m: string) => void,
  loaders: Loaders,
  spec: ResNetSpec,
  model: ResNet,
  optimizer: SGD,
  ema: ModelEma | undefined,
  dp: DataParallel,
): Promise<TrainResult> {
  const stepsPerEpoch = loaders.train.batchesPerEpoch;
  if (stepsPerEpoch < 1) {
    throw new ConfigError(
      "batchSize",
      `{batchSize} ${config.batchSize} exceeds the ${loaders.train.numImages} training images` +
        (config.valSplit > 0 ? ` left after {valSplit} ${config.valSplit}` : "") +
        "; the training loader drops partial batches and would be empty",
    );
  }
  if (ema) {
    // Updates after batches 0, N, 2N, … of each epoch; a short run's average is little more than an early copy.
    const updates = Math.ceil(stepsPerEpoch / config.modelEmaSteps) * config.epochs;
    log(
      `model EMA: decay ${ema.decay.toPrecision(6)} (adjusted), an update every ${config.modelEmaSteps} steps, ` +
        `${updates} updates in ${config.epochs} epochs` +
        (updates < 10 ? "; warning: too few for a useful average (a shorter update interval suits short runs)" : ""),
    );
  }
  const schedule = scheduleConfigFor(config, stepsPerEpoch);
  const runLog = new RunLog(config.out);
  // The normalisation is recorded: a folder's under --transforms cifar is its training images' own (data/loaders.ts).
  const normalization = { mean: loaders.mean, std: loaders.std };
  const run = { config, classNames: loaders.classNames, archSpec: spec, normalization };
  const saver = new CheckpointSaver(config.out, { model, optimizer, ema, run, keep: config.keep, log });
  let position = { epoch: 0, batch: 0 };
  let globalStep = 0;
  let partial = { lossSum: 0, correct: 0, seen: 0 };

  let restartEpoch = false;
  // Rank 0 resumes first (under --resume auto it may complete an interrupted save), then the others read the file.
  const resumed = config.resume
    ? await dp.rootFirst("resuming", () =>
      saver.resume(config.resume!, (point) => {
        const saved = trainConfigFromJSON(point.config, `${point.path} metadata`);
        checkResumeConfig(saved, config, point.path);
        checkResumeExtras(point.rng, point.path);
        // The data folder may move, but not change its classes: labels would be permuted without a word.
        const [was, now] = [point.classNames.join(", "), loaders.classNames.join(", ")];
        const folder = literal(String(config.dataDir));
        if (was !== now && !config.allowConfigChange) {
          throw new ConfigError(
            "dataDir",
            `${literal(point.path)} was trained on the classes [${literal(was)}], but {dataDir} ${folder} holds ` +
              `[${literal(now)}]`,
          );
        }
        // Nor its images: another count draws other images into every batch, so the run would not continue exactly.
        const trainImages = (point.rng as Partial<ResumeExtras>).trainImages;
        const dataChanged = trainImages !== undefined && trainImages !== loaders.train.numImages;
        if (dataChanged && !config.allowConfigChange) {
          throw new ConfigError(
            "dataDir",
            `${literal(point.path)} was trained on ${trainImages} training images, but {dataDir} ${folder} gives ` +
              `${loaders.train.numImages} now (after {valSplit} ${config.valSplit}), so every batch would hold other ` +
              "images. Restore the data as it was, or set {allowConfigChange} to continue from the checkpoint's weights " +
              "with its epoch started again",
          );
        }
        if (dataChanged) {
          log(`warning: ${point.path} was trained on ${trainImages} training images, now ${loaders.train.numImages}`);
        }
        const changes = resumeConflicts(saved, config);
        if (changes.length > 0) {
          const list = changes.map((c) => `${c.field} ${JSON.stringify(c.saved)} -> ${JSON.stringify(c.now)}`);
          log(`warning: continuing ${point.path} under a changed configuration: ${list.join(", ")}`);
        }
        // Under another batch size, split, seed, image count or number of processes (allowConfigChange), a mid-epoch
        // position means other images.
        // (Checked first, so that its warning is said whatever else changed.)
        const worldChanged = dp.checkResumeWorld(
          (point.rng as ResumeExtras).worldSize ?? 1,
          point.path,
          config.allowConfigChange,
          (warning) => log(new FieldMessageError(warning).describe(hooks.nameOf ?? ((field) => field))),
        );
        restartEpoch = worldChanged || dataChanged || changes.some((c) => ORDER_FIELDS.includes(c.field));
      }))
    : null;
  if (resumed) {
    ({ dataPosition: position, globalStep } = resumed);
    partial = dp.ownPartial(resumed.rng as ResumeExtras);
    if (restartEpoch) {
      if (position.batch > 0) {
        log(`the data order changed: epoch ${position.epoch + 1} starts again at its first batch`);
      }
      position = { epoch: position.epoch, batch: 0 };
      const was = globalStep;
      globalStep = position.epoch * stepsPerEpoch; // the schedule is a function of the step: count it anew
      if (globalStep !== was) log(`step ${was} counts as step ${globalStep} at ${stepsPerEpoch} steps per epoch`);
      partial = { lossSum: 0, correct: 0, seen: 0 };
    }
    if (dp.isRoot) await runLog.truncateAfter(position.epoch);
  } else {
    // --resume auto without a checkpoint starts anew. Logged epochs there are those of a run killed between an epoch's
    // metrics and its checkpoint (metrics go first, run_log.ts): the new run writes them again.
    const dropped = config.resume === "auto" && dp.isRoot ? await runLog.truncateAfter(0) : 0;
    if (dropped > 0) {
      const epochs = `${dropped} logged epoch${dropped === 1 ? "" : "s"}`;
      log(`warning: ${runLog.metricsPath}: dropped ${epochs} that no checkpoint holds; this run logs them anew`);
    }
    if (config.init) await initFrom(config.init, model, log);
  }
  if (dp.isRoot) await runLog.writeConfig({ ...config, spec, classNames: loaders.classNames, normalization });

  const stepOptions = { labelSmoothing: config.labelSmoothing, clipGradNorm: config.clipGradNorm };
  const step = makeTrainStep(model, optimizer, stepOptions);
  const dpStep = dp.size > 1 ? makeDataParallelStep(model, optimizer, stepOptions, dp.collective) : undefined;
  // The test hook's diverging step (hooks.nanAtStep), made when needed and freed with the others.
  const nanOptions = { ...stepOptions, injectNaN: true };
  const oneOff: { dispose(): void }[] = [];
  const nanStep = <S extends { dispose(): void }>(make: () => S): S => {
    const s = make();
    oneOff.push(s);
    return s;
  };
  const records: EpochRecord[] = [];

  const checkpointResult = () => ({ lastCheckpoint: saver.lastCheckpoint, bestMetric: saver.bestMetric });
  // Never save diverged weights: the last good checkpoint stays the resume point. `metric`: the validation top-1.
  const save = async (
    dataPosition: { epoch: number; batch: number },
    epochPartial: typeof partial,
    metric?: number,
  ) => {
    // Every rank's own sums go into the file; rank 0 alone writes it.
    const rankPartials = dp.size > 1 ? await dp.gatherPartials(epochPartial, globalStep) : undefined;
    if (!dp.isRoot) return;
    await assertFiniteParameters(model, globalStep, dataPosition.epoch + 1);
    await saver.save({
      globalStep,
      dataPosition,
      rng: {
        seed: config.seed,
        partial: rankPartials ? dp.sumPartials(rankPartials) : epochPartial,
        trainImages: loaders.train.numImages,
        ...(rankPartials ? { worldSize: dp.size, rankPartials } : {}),
      } satisfies ResumeExtras,
    }, metric);
  };

  try {
    hooks.position?.({ epoch: Math.min(position.epoch + 1, config.epochs), globalStep });
    for (let epoch = position.epoch; epoch < config.epochs; epoch++) {
      const startBatch = epoch === position.epoch ? position.batch : 0;
      const sums = epoch === position.epoch ? partial : { lossSum: 0, correct: 0, seen: 0 };
      // Running sums stay on the GPU between readbacks: [loss·n, correct].
      let epochSums = tf.tensor1d([sums.lossSum, sums.correct]);
      let seen = sums.seen;
      const started = performance.now();
      let imagesThisSession = 0;
      let batch = startBatch;
      let lr = 0;
      // The sums change only with the step: progress, a mid-epoch save and the epoch's end share one readback per step.
      let lastRead: { step: number; sums: typeof partial } | undefined;
      const readSums = async () => {
        if (lastRead?.step === globalStep) return lastRead.sums;
        const [l, c] = await epochSums.data();
        // A failed GPU program leaves its output unwritten without a word from tfjs: never train on such numbers.
        throwOnWebGPUErrors(`during training (epoch ${epoch + 1}, by step ${globalStep})`);
        if (!Number.isFinite(l)) throw new NonFiniteLossError(globalStep, epoch + 1, l);
        lastRead = { step: globalStep, sums: { lossSum: l, correct: c, seen } };
        return lastRead.sums;
      };
      try {
        for await (const b of loaders.train.batches(epoch, startBatch)) {
          lr = learningRateAt(globalStep, schedule);
          const x = tf.tensor4d(b.images, [b.size, b.height, b.width, 3]);
          const y = tf.tensor1d(b.labels, "int32");
          // Mixup or cutmix (null when off): drawn from (seed, epoch, batch), so a resumed run mixes alike.
          const mix = batchMixFor(config.seed, epoch, b.index, config, b.height, b.width);
          const nan = hooks.nanAtStep === globalStep + 1;
          const out = dpStep
            ? await (nan ? nanStep(() => makeDataParallelStep(model, optimizer, nanOptions, dp.collective)) : dpStep)(
              x,
              y,
              lr,
              globalStep + 1,
              mix,
            )
            : (nan ? nanStep(() => makeTrainStep(model, optimizer, nanOptions)) : step)(x, y, lr, mix);
          epochSums = accumulateInPlace(epochSums, [out.loss, out.correct], [b.size, 1]); // one dispatch
          tf.dispose([x, y, out.loss, out.correct]);
          // torchvision: after the optimizer step of batches 0, N, 2N... of each epoch; copies during warm-up epochs.
          if (ema && b.index % config.modelEmaSteps === 0) {
            ema.update();
            if (epoch < config.warmupEpochs) ema.restart();
          }
          seen += b.size;
          imagesThisSession += b.size;
          globalStep++;
          hooks.position?.({ epoch: epoch + 1, globalStep });
          // The loader's slot, not a count: a batch none of whose images decode is skipped, and counting would drift.
          batch = b.index + 1;

          if (globalStep % config.logEvery === 0 || batch === stepsPerEpoch) {
            const s = await dp.sumOverRanks(await readSums(), `the metrics of step ${globalStep}`);
            const elapsed = (performance.now() - started) / 1000;
            const ips = imagesThisSession * dp.size / Math.max(elapsed, 1e-9);
            const remaining = (stepsPerEpoch - batch + (config.epochs - epoch - 1) * stepsPerEpoch) * config.batchSize *
              dp.size;
            hooks.progress?.({
              epoch: epoch + 1,
              epochs: config.epochs,
              batch,
              batches: stepsPerEpoch,
              globalStep,
              loss: s.lossSum / s.seen,
              acc: s.correct / s.seen,
              lr,
              imagesPerSecond: ips,
              etaSeconds: remaining / Math.max(ips, 1e-9),
            });
          }
          if (config.checkpointEvery > 0 && globalStep % config.checkpointEvery === 0 && batch < stepsPerEpoch) {
            await save({ epoch, batch }, await readSums());
          }
          if (hooks.stopAfterStep === globalStep) {
            return { epochs: records, globalStep, interrupted: true, ...checkpointResult() };
          }
        }
        const totals = await dp.sumOverRanks(await readSums(), `the metrics of epoch ${epoch + 1}`);
        const elapsed = (performance.now() - started) / 1000;
        // Rank 0 evaluates the whole sets with its BN running statistics (those its checkpoint holds: DDP's
        // broadcast_buffers makes rank 0's the model's too); the others wait for its record.
        const record = await dp.fromRoot(`the evaluation of epoch ${epoch + 1}`, async () => {
          const val = loaders.val ? await evaluate(model, loaders.val, loaders.numClasses) : undefined;
          const test = await evaluate(model, loaders.test, loaders.numClasses);
          // The average beside the model, on the same splits (best stays chosen on the model's validation top-1).
          const emaVal = ema && loaders.val ? await evaluate(ema.model, loaders.val, loaders.numClasses) : undefined;
          const emaTest = ema ? await evaluate(ema.model, loaders.test, loaders.numClasses) : undefined;
          const images = imagesThisSession * dp.size;
          return {
            ...epochRecord(epoch + 1, globalStep, lr, totals, val?.result, test.result, elapsed, images),
            ...(emaVal ? { ema_val_loss: emaVal.result.loss, ema_val_top1: emaVal.result.top1 } : {}),
            ...(emaVal ? { ema_val_top5: emaVal.result.top5 } : {}),
            ...(emaTest ? { ema_test_loss: emaTest.result.loss, ema_test_top1: emaTest.result.top1 } : {}),
            ...(emaTest ? { ema_test_top5: emaTest.result.top5 } : {}),
          };
        });
        records.push(record);
        // best is chosen on the validation split only, never on the test set.
        const metric = record.val_top1;
        if (dp.isRoot) await runLog.appendEpoch(record);
        hooks.epoch?.(record, saver.improves(metric));
        await save({ epoch: epoch + 1, batch: 0 }, { lossSum: 0, correct: 0, seen: 0 }, metric);
      } finally {
        epochSums.dispose();
      }
    }
    return { epochs: records, globalStep, interrupted: false, ...checkpointResult() };
  } finally {
    for (const s of [step, dpStep, ...oneOff]) s?.dispose();
  }
}

function epochRecord(
  epoch: number,
  step: number,
  lr: number,
  totals: { lossSum: number; correct: number; seen: number },
  val: EvalResult | undefined,
  test: EvalResult,
  time: number,
  images: number,
): EpochRecord {
  return {
    epoch,
    step,
    lr,
    train_loss: totals.lossSum / totals.seen,
    train_top1: totals.correct / totals.seen,
    ...(val ? { val_loss: val.loss, val_top1: val.top1, val_top5: val.top5 } : {}),
    test_loss: test.loss,
    test_top1: test.top1,
    test_top5: test.top5,
    time,
    images_per_second: images / Math.max(time, 1e-9),
  };
}

/** `--init`: weights only (e.g. exported from torchvision); a classifier of another class count is re-initialised. */
async function initFrom(path: string, model: ResNet, log: (m: string) => void): Promise<void> {
  const { model: weights } = await loadWeights(path);
  const fc = model.stateLayout().filter((e) => e.name.startsWith("fc."));
  const fits = fc.every((e) => weights.get(e.name)?.shape.join() === e.shape.join());
  const skip = fits ? [] : fc.map((e) => e.name);
  if (!fits) {
    log(
      `warning: ${path} has a classifier of shape [${weights.get("fc.weight")?.shape}], this model needs ` +
        `[${fc[0].shape}]; fc.weight and fc.bias keep their fresh initialisation`,
    );
  }
  model.importState(weights, { skip });
  log(`initialised weights from ${path}`);
}

async function assertFiniteParameters(model: ResNet, step: number, epoch: number): Promise<void> {
  const total = tf.tidy(() => sumScalars([...model.parameters().values()].map((p) => p.sum())));
  const [v] = await total.data();
  total.dispose();
  if (!Number.isFinite(v)) throw new NonFiniteLossError(step, epoch, v, "sum of the parameters");
}
