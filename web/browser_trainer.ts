/**
 * Training in the page: a ResNet on the synthetic set (data/synthetic.ts: the same 1,024 training and 512 test
 * images, the same normalisation as `deno task train --dataset synthetic`) or on CIFAR-10 read from the official
 * archive the user picks (data/cifar10_archive.ts, CIFAR-10's normalisation), with the trainer's step
 * (train/train_step.ts), optimizer, learning-rate schedule and pad-4 crop + flip augmentation (keyed by the seed, the
 * epoch and the image), evaluation on the test split, and its checkpoint in the format `deno task train` writes
 * (io/checkpoint.ts), so that `deno task eval` and torchvision load it. The page's own small data path: no workers,
 * no file system.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { channelStats, generateSynthetic, SYNTHETIC_CLASS_NAMES, SYNTHETIC_SIZE } from "../data/synthetic.ts";
import type { Cifar10Archive } from "../data/cifar10_archive.ts";
import type { CifarSplit } from "../data/cifar_records.ts";
import { CIFAR10_NORMALIZATION } from "../data/normalizations.ts";
import { type Normalization, normalizeCoefficients, samplePadCropFlip, writeCropFlip } from "../data/transforms.ts";
import { keyedRandom, permutation } from "../data/random.ts";
import { encodeCheckpoint } from "../io/checkpoint.ts";
import { createResNet, type ResNet } from "../models/resnet.ts";
import { type ResNetSpec, resnetSpec } from "../models/resnet_spec.ts";
import { resolveTrainConfig, type TrainConfig } from "../train/config.ts";
import { learningRateAt, scheduleConfigFor } from "../train/lr_schedule.ts";
import { SGD, sgdOptionsFor } from "../train/sgd.ts";
import { makeTrainStep, type StepOutput, type TrainStep } from "../train/train_step.ts";

/** The images a {@linkcode BrowserTrainer} learns from: 32×32 HWC bytes, 10 classes. */
export interface BrowserDataset {
  /** The run's `dataset` (recorded in the checkpoint's config). */
  name: "synthetic" | "cifar10";
  train: CifarSplit;
  test: CifarSplit;
  classNames: string[];
  normalization: Normalization;
}

/** The synthetic set as `deno task train --dataset synthetic` builds it (data/loaders.ts). */
export function syntheticDataset(): BrowserDataset {
  const train = generateSynthetic(1024, 0, 1);
  const test = generateSynthetic(512, 0, 2);
  return {
    name: "synthetic",
    train,
    test,
    classNames: SYNTHETIC_CLASS_NAMES,
    normalization: channelStats(train.images),
  };
}

/** CIFAR-10 from its archive (data/cifar10_archive.ts), with CIFAR-10's normalisation. */
export function cifar10Dataset(archive: Cifar10Archive): BrowserDataset {
  return { name: "cifar10", ...archive, normalization: CIFAR10_NORMALIZATION };
}

/** Test-split accuracy and mean loss. */
export interface EvalRecord {
  /** Optimizer steps done when it was measured. */
  step: number;
  images: number;
  loss: number;
  accuracy: number;
}

/** What the page lets one choose. */
export interface BrowserTrainOptions {
  /** Channels of the first stage (64 is torchvision's ResNet-18). */
  width: number;
  batchSize: number;
  epochs: number;
  /** Peak learning rate. */
  lr: number;
  seed?: number;
  /** The synthetic set by default. */
  data?: BrowserDataset;
}

/** One step's outcome. */
export interface StepRecord {
  /** Optimizer steps done, this one included. */
  step: number;
  /** Epoch (from 0) and batch within it of this step. */
  epoch: number;
  batch: number;
  loss: number;
  /** Top-1 accuracy of the batch, before the update. */
  accuracy: number;
  lr: number;
}

/** A ResNet-18 training on the synthetic set or CIFAR-10, one step at a time (the page drives it, so it can pause). */
export class BrowserTrainer {
  readonly config: TrainConfig;
  readonly spec: ResNetSpec;
  readonly model: ResNet;
  readonly optimizer: SGD;
  readonly stepsPerEpoch: number;
  readonly data: BrowserDataset;
  #images: Uint8Array;
  #labels: Uint8Array;
  #count: number;
  #coefficients: ReturnType<typeof normalizeCoefficients>;
  #step: TrainStep;
  #order: Uint32Array | null = null;
  #globalStep = 0;
  #partial = { lossSum: 0, correct: 0, seen: 0 };

  /** Needs the webgpu backend started (web/start_webgpu.ts). */
  constructor(options: BrowserTrainOptions) {
    this.data = options.data ?? syntheticDataset();
    this.config = resolveTrainConfig({
      dataset: this.data.name,
      arch: "resnet18",
      width: options.width,
      batchSize: options.batchSize,
      epochs: options.epochs,
      lr: options.lr,
      seed: options.seed ?? 0,
      out: "runs/browser",
    });
    const c = this.config;
    const train = this.data.train;
    this.#images = train.images;
    this.#labels = train.labels;
    this.#count = train.count;
    this.#coefficients = normalizeCoefficients(this.data.normalization);
    this.stepsPerEpoch = Math.floor(this.#count / c.batchSize); // partial batches are dropped, as the trainer does
    if (this.stepsPerEpoch < 1) throw new RangeError(`batch size ${c.batchSize} exceeds the ${this.#count} images`);
    this.spec = resnetSpec(c.arch, {
      stem: c.stem,
      width: c.width,
      numClasses: this.data.classNames.length,
      zeroInitResidual: c.zeroInitResidual,
    });
    this.model = createResNet(this.spec, { seed: c.seed });
    this.optimizer = new SGD(this.model.parameters(), sgdOptionsFor(c));
    this.#step = makeTrainStep(this.model, this.optimizer, {
      labelSmoothing: c.labelSmoothing,
      clipGradNorm: c.clipGradNorm,
    });
  }

  /** Optimizer steps done. */
  get globalStep(): number {
    return this.#globalStep;
  }

  /** Whether every epoch of the configuration has run. */
  get done(): boolean {
    return this.#globalStep >= this.config.epochs * this.stepsPerEpoch;
  }

  /** Runs one optimizer step on the next batch (shuffled per epoch, pad-4 crop and flip) and reads its loss back. */
  async step(): Promise<StepRecord> {
    const c = this.config;
    const epoch = Math.floor(this.#globalStep / this.stepsPerEpoch);
    const batch = this.#globalStep % this.stepsPerEpoch;
    if (batch === 0 || this.#order === null) {
      this.#order = permutation(this.#count, keyedRandom(c.seed, 0x0d7a, epoch));
      this.#partial = { lossSum: 0, correct: 0, seen: 0 };
    }
    const S = SYNTHETIC_SIZE, per = S * S * 3;
    const x = new Float32Array(c.batchSize * per);
    const labels = new Int32Array(c.batchSize);
    for (let i = 0; i < c.batchSize; i++) {
      const index = this.#order[batch * c.batchSize + i];
      const random = keyedRandom(c.seed, 0xa09, epoch, index);
      const crop = samplePadCropFlip(random, S, S, S, 4);
      writeCropFlip(this.#images, index * per, S, S, 4, crop, S, this.#coefficients, x, i * per);
      labels[i] = this.#labels[index];
    }
    const lr = learningRateAt(this.#globalStep, scheduleConfigFor(c, this.stepsPerEpoch));
    const xs = tf.tensor4d(x, [c.batchSize, S, S, 3]);
    const ys = tf.tensor1d(labels, "int32");
    let out: StepOutput | undefined;
    try {
      out = this.#step(xs, ys, lr);
      const [loss, correct] = [(await out.loss.data())[0], (await out.correct.data())[0]];
      if (!Number.isFinite(loss)) {
        throw new Error(`the loss is ${loss} at step ${this.#globalStep + 1}: lower the learning rate`);
      }
      this.#globalStep++;
      this.#partial.lossSum += loss * c.batchSize;
      this.#partial.correct += correct;
      this.#partial.seen += c.batchSize;
      return { step: this.#globalStep, epoch, batch, loss, accuracy: correct / c.batchSize, lr };
    } finally {
      tf.dispose([xs, ys, out?.loss, out?.correct].filter((t) => t !== undefined));
    }
  }

  /**
   * Accuracy and mean cross-entropy of the model (running batch-norm statistics) on the test split, unaugmented,
   * in batches of the training batch size (the same shapes, so no new shaders), the last one smaller.
   */
  async evaluate(): Promise<EvalRecord> {
    const test = this.data.test, S = SYNTHETIC_SIZE, per = S * S * 3, size = this.config.batchSize;
    const identity = { top: 4, left: 4, flip: false }; // the crop at the padding's offset: the image itself
    let lossSum = 0, correct = 0;
    for (let start = 0; start < test.count; start += size) {
      const n = Math.min(size, test.count - start);
      const x = new Float32Array(n * per);
      for (let i = 0; i < n; i++) {
        writeCropFlip(test.images, (start + i) * per, S, S, 4, identity, S, this.#coefficients, x, i * per);
      }
      const labels = tf.tensor1d(Int32Array.from(test.labels.subarray(start, start + n)), "int32");
      const [loss, hits] = tf.tidy(() => {
        const logits = this.model.forward(tf.tensor4d(x, [n, S, S, 3]), { training: false }).logits;
        const onehot = tf.oneHot(labels, logits.shape[1]);
        const l = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits))));
        return [l, tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), "int32"))];
      });
      try {
        lossSum += (await loss.data())[0];
        correct += (await hits.data())[0];
      } finally {
        tf.dispose([labels, loss, hits]);
      }
    }
    return { step: this.#globalStep, images: test.count, loss: lossSum / test.count, accuracy: correct / test.count };
  }

  /** The checkpoint `deno task train` would write at this point (model, momentum buffers, position, config). */
  async checkpoint(): Promise<Uint8Array> {
    const epoch = Math.floor(this.#globalStep / this.stepsPerEpoch);
    const batch = this.#globalStep % this.stepsPerEpoch;
    return encodeCheckpoint({
      model: await this.model.exportState(),
      optimizer: await this.optimizer.exportState(),
      epoch,
      globalStep: this.#globalStep,
      dataPosition: { epoch, batch },
      rng: { seed: this.config.seed, partial: this.#partial },
      config: this.config,
      bestMetric: null,
      classNames: this.data.classNames,
      archSpec: this.spec,
      normalization: this.data.normalization,
    });
  }

  /** Frees the model and the optimizer's buffers. */
  dispose(): void {
    this.#step.dispose();
    this.optimizer.dispose();
    this.model.dispose();
  }
}
