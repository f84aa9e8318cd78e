/**
 * The data side's one entry point: {@linkcode createLoaders} turns a {@linkcode DataConfig} into train, optional
 * validation and test {@linkcode BatchLoader}s for CIFAR-10/100 (official binary files, downloaded on first use),
 * the offline synthetic dataset, an ImageNet-style class-folder tree (directory or tar archives), or ImageNet itself
 * (the official archives read in place, torchvision's extracted folders or Kaggle's layout: `imagenet_dataset.ts`).
 * @module
 */
import { FieldMessageError, literal } from "../io/config_error.ts";
import { type Shard, splitTrainVal } from "./batch_plan.ts";
import type { DecodeFailure, SourceSpec } from "./batch_source.ts";
import type { Batch, BatchLoader } from "./batch.ts";
import { PipelineLoader } from "./batch_loader.ts";
import { cifarLayout, readCifar } from "./cifar_binary.ts";
import { CIFAR100_CLASS_NAMES, CIFAR100_COARSE_CLASS_NAMES, CIFAR10_CLASS_NAMES } from "./class_names.ts";
import { locateCifar } from "./cifar_download.ts";
import { IMAGE_DECODERS, type ImageDecoder } from "./decode_rgb.ts";
import { decodeFolderSplit } from "./folder_arrays.ts";
import { indexFolderDataset } from "./folder_dataset.ts";
import { isFolderDataset } from "./folder_datasets.ts";
import { indexImageNet } from "./imagenet_dataset.ts";
import { loadSharp } from "./image_decode.ts";
import { identityOrder } from "./random.ts";
import { channelStats, generateSynthetic, SYNTHETIC_CLASS_NAMES, SYNTHETIC_SIZE } from "./synthetic.ts";
import { packStrings } from "./byte_blob.ts";
import { DATA_TRANSFORMS, type DataTransforms, type Normalization } from "./transforms.ts";
import { CIFAR100_NORMALIZATION, CIFAR10_NORMALIZATION, IMAGENET_NORMALIZATION } from "./normalizations.ts";
export { CIFAR100_NORMALIZATION, CIFAR10_NORMALIZATION, IMAGENET_NORMALIZATION };
import type { AutoAugmentPolicy } from "./auto_augment.ts";
import { type ImageAugmentation, imageAugmentationProblems, NO_IMAGE_AUGMENTATION } from "./image_augmentation.ts";
import { WorkerPool, workerScriptAvailable } from "./worker_pool.ts";

/** Which data to load; JSON-serialisable, stored in the run's config. */
export interface DataConfig {
  dataset: "cifar10" | "cifar100" | "synthetic" | "folder" | "imagenet";
  /**
   * cifar: where archives/dirs live (default "data"); folder: the root dir or a .tar/.tar.gz; imagenet: the folder
   * holding the official archives, the extracted train/ and val/, or Kaggle's layout. The "folder" options below
   * apply to imagenet too (its test split is the official validation set).
   */
  dataDir: string;
  /** Images held out of train for validation (0 = none), deterministic given seed. */
  valSplit: number;
  seed: number;
  batchSize: number;
  /** Folder datasets: train/eval crop size (default 224; 32 with `transforms: "cifar"`). */
  imageSize?: number;
  /**
   * Folder datasets: `imagenet` (default) decodes each image every epoch with RandomResizedCrop + flip for training,
   * Resize + CenterCrop for evaluation, and ImageNet's mean/std; `cifar` decodes every image once at its own size
   * (all must be `imageSize` square), then trains with RandomCrop(pad 4) + flip like CIFAR, normalised with the
   * training images' own channel mean/std. CIFAR and synthetic datasets always use `cifar`.
   */
  transforms?: DataTransforms;
  /** Folder datasets: `sharp` (default) or `js` (jpeg-js: JPEG only, no native addon; `transforms: "cifar"` only). */
  decoder?: ImageDecoder;
  /** CIFAR-100: train on the 20 coarse labels instead of the 100 fine ones. */
  coarseLabels?: boolean;
  /** Random augmentation of the training loader (default true): crop and flip, and the two below. */
  augment?: boolean;
  /**
   * Training: torchvision's automatic augmentation of each cropped and flipped image (default `none`): `ta_wide`
   * (TrivialAugmentWide), `ra` (RandAugment, see `raNumOps`, `raMagnitude`), or AutoAugment's `imagenet` or
   * `cifar10` policy; NEAREST interpolation, black fill, as torchvision's defaults.
   */
  autoAugment?: AutoAugmentPolicy;
  /** RandAugment: operations per image (default 2). */
  raNumOps?: number;
  /** RandAugment: magnitude bin 0..30 (default 9). */
  raMagnitude?: number;
  /** Training: probability of torchvision's RandomErasing on the normalised image, value 0 (default 0: off). */
  randomErase?: number;
  /**
   * Training: repeated augmentation (torchvision's `RASampler`), each sample of an epoch this many times in a row with
   * its own draws (default 1: off; see `repeatedAugmentationOrder`).
   */
  raReps?: number;
  /**
   * Data-parallel training: this process is rank `rank` of `size`, and its training loader serves its share of each
   * global batch of `batchSize * size` images (torch's DistributedSampler, see `shardSlice`); evaluation loaders
   * are whole. Not part of the stored config.
   */
  shard?: Shard;
  /** Background decode workers (default: cores; 0 builds batches inline). */
  workers?: number;
  /** Download CIFAR archives that are absent (default true). */
  download?: boolean;
  /** Batches built ahead of the consumer per loader (default 2 per worker). */
  prefetch?: number;
  /** Folder datasets: corrupt images tolerated before the run stops (default max(10, 0.1 % of train images)). */
  maxSkippedImages?: number;
  /** Folder datasets in `.tar.gz` archives: bytes of images held in memory at most (default a quarter of the
   *  machine's memory; packing them briefly needs twice that). A `.tar` or a directory is read in place instead. */
  maxInMemoryBytes?: number;
  /**
   * Evaluating a trained model (not part of the stored config), folder datasets with `transforms: "cifar"`: the
   * mean/std its run normalised with, used instead of the training images' own; those are then not decoded at all
   * unless `valSplit` holds images out of them (the train loader is empty).
   */
  normalization?: Normalization;
  /**
   * Evaluating a trained model (not part of the stored config), `folder` dataset: the classes its run recorded
   * (label i = classNames[i]), which give the labels when the folder has no train/ images, so that test/ or val/
   * alone is enough (the train split is then empty). With train/ images, their folders give the classes as always.
   */
  classNames?: readonly string[];
  /** Synthetic dataset: training images (default 1,024: a demo that learns within a minute on a software adapter). */
  syntheticTrain?: number;
  /** Synthetic dataset: test images (default 512). */
  syntheticTest?: number;
}

export type { Batch, BatchLoader };

/** Everything {@linkcode createLoaders} returns. */
export interface Loaders {
  train: BatchLoader;
  /** Present when `valSplit` > 0. */
  val?: BatchLoader;
  test: BatchLoader;
  /** Label i's name; save it with the run (the index mapping of class folders). */
  classNames: string[];
  numClasses: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Side of the images in every batch: 32 for cifar/synthetic. */
  imageSize: number;
  /** Corrupt images skipped so far (folder datasets). */
  stats: { skippedImages: number };
}

/** Options of {@linkcode createLoaders} that are not part of the stored config. */
export interface LoaderOptions {
  /** Skipped-image warnings. */
  onWarning?: (msg: string) => void;
  /**
   * How warnings name a configuration field, e.g. "decoder" (a command line passes its flags: `--decoder`); default:
   * the field's own name.
   */
  nameOf?: (field: string) => string;
  /** Download progress. */
  onProgress?: (msg: string) => void;
  /** Replaces `fetch` for downloads (tests). */
  fetch?: typeof fetch;
}

const DATASETS = ["cifar10", "cifar100", "synthetic", "folder", "imagenet"];

function checkConfig(config: DataConfig): void {
  const bad = (field: string, expected: string, value: unknown) => {
    throw new Error(`DataConfig.${field}: expected ${expected}, received ${JSON.stringify(value)}`);
  };
  if (!DATASETS.includes(config.dataset)) bad("dataset", DATASETS.join(" | "), config.dataset);
  if (typeof config.dataDir !== "string" || config.dataDir === "") bad("dataDir", "a path", config.dataDir);
  if (!Number.isInteger(config.batchSize) || config.batchSize < 1) {
    bad("batchSize", "an integer >= 1", config.batchSize);
  }
  if (!Number.isSafeInteger(config.seed)) bad("seed", "an integer", config.seed);
  if (!Number.isInteger(config.valSplit) || config.valSplit < 0) bad("valSplit", "an integer >= 0", config.valSplit);
  for (
    const field of [
      "workers",
      "prefetch",
      "maxSkippedImages",
      "maxInMemoryBytes",
      "syntheticTrain",
      "syntheticTest",
    ] as const
  ) {
    const v = config[field];
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) bad(field, "an integer >= 0", v);
  }
  if (config.imageSize !== undefined && (!Number.isInteger(config.imageSize) || config.imageSize < 8)) {
    bad("imageSize", "an integer >= 8", config.imageSize);
  }
  if (config.transforms !== undefined && !DATA_TRANSFORMS.includes(config.transforms)) {
    bad("transforms", DATA_TRANSFORMS.join(" | "), config.transforms);
  }
  if (config.decoder !== undefined && !IMAGE_DECODERS.includes(config.decoder)) {
    bad("decoder", IMAGE_DECODERS.join(" | "), config.decoder);
  }
  if (!isFolderDataset(config.dataset) && config.transforms === "imagenet") {
    bad("transforms", `"cifar" (or nothing) for dataset ${config.dataset}`, config.transforms);
  }
  const n = config.normalization;
  const triple = (x: unknown, positive: boolean) =>
    Array.isArray(x) && x.length === 3 && x.every((v) => Number.isFinite(v) && (!positive || v > 0));
  if (n !== undefined && (!triple(n?.mean, false) || !triple(n?.std, true))) {
    bad("normalization", "{ mean: [r, g, b], std: [r, g, b] } (stds > 0)", n);
  }
  if (config.classNames !== undefined && !config.classNames.every((c) => typeof c === "string")) {
    bad("classNames", "an array of strings", config.classNames);
  }
  if (isFolderDataset(config.dataset) && config.decoder === "js" && config.transforms !== "cifar") {
    bad("decoder", `"sharp" with transforms "imagenet" (the js decoder does not resize; use transforms "cifar")`, "js");
  }
  const [problem] = imageAugmentationProblems(imageAugmentationOf(config));
  if (problem) throw new Error(`DataConfig.${problem}`);
}

/** The per-image augmentations `config` asks for, defaults filled in. */
function imageAugmentationOf(config: DataConfig): ImageAugmentation {
  return {
    autoAugment: config.autoAugment ?? NO_IMAGE_AUGMENTATION.autoAugment,
    raNumOps: config.raNumOps ?? NO_IMAGE_AUGMENTATION.raNumOps,
    raMagnitude: config.raMagnitude ?? NO_IMAGE_AUGMENTATION.raMagnitude,
    randomErase: config.randomErase ?? NO_IMAGE_AUGMENTATION.randomErase,
  };
}

/** The two sources (their labels give the image counts, their `norm` the normalisation), class names, image side. */
interface Prepared {
  train: SourceSpec;
  test: SourceSpec;
  classNames: string[];
  imageSize: number;
}

async function prepare(
  config: DataConfig,
  options: LoaderOptions,
  threads: number,
  failures: { report: (key: string, name: string, why: string) => void; indexed: (trainImages: number) => void },
): Promise<Prepared> {
  const array = (
    split: { images: Uint8Array; labels: Uint8Array | Int32Array },
    norm: Normalization,
    size = 32,
  ): SourceSpec => ({
    kind: "array",
    images: split.images,
    labels: split.labels,
    height: size,
    width: size,
    pad: 4,
    norm,
    seed: config.seed,
    augmentation: imageAugmentationOf(config),
  });
  if (config.dataset === "synthetic") {
    // The data itself does not depend on the run's seed: every run trains on the same images.
    const train = generateSynthetic(config.syntheticTrain ?? 1024, 0, 1);
    const test = generateSynthetic(config.syntheticTest ?? 512, 0, 2);
    const norm = channelStats(train.images);
    return {
      train: array(train, norm),
      test: array(test, norm),
      classNames: SYNTHETIC_CLASS_NAMES,
      imageSize: SYNTHETIC_SIZE,
    };
  }
  if (config.dataset === "cifar10" || config.dataset === "cifar100") {
    const layout = cifarLayout(config.dataset);
    const source = await locateCifar(layout, config.dataDir, {
      download: config.download ?? true,
      fetch: options.fetch,
      onProgress: options.onProgress,
    });
    const { train, test } = await readCifar(layout, source);
    const coarse = config.dataset === "cifar100" && config.coarseLabels === true;
    const pick = (s: typeof train) => ({ images: s.images, labels: coarse ? s.coarseLabels! : s.labels });
    const norm = config.dataset === "cifar10" ? CIFAR10_NORMALIZATION : CIFAR100_NORMALIZATION;
    return {
      train: array(pick(train), norm),
      test: array(pick(test), norm),
      classNames: config.dataset === "cifar10"
        ? CIFAR10_CLASS_NAMES
        : coarse
        ? CIFAR100_COARSE_CLASS_NAMES
        : CIFAR100_CLASS_NAMES,
      imageSize: 32,
    };
  }
  let index;
  if (config.dataset === "imagenet") {
    index = await indexImageNet(config.dataDir);
    for (const note of index.notes) options.onWarning?.(note);
  } else {
    index = await indexFolderDataset(config.dataDir, {
      maxInMemoryBytes: config.maxInMemoryBytes,
      onWarning: options.onWarning,
      classNames: config.classNames,
    });
  }
  failures.indexed(index.train.labels.length);
  const decoder = config.decoder ?? "sharp";
  // A decoder that cannot load is one error now, not a warning per image later (e.g. sharp in a bundle).
  if (decoder === "sharp") await loadSharp(threads);
  const report = failures.report;
  if (config.transforms === "cifar") {
    const size = config.imageSize ?? 32;
    const recorded = config.normalization;
    // A recorded normalisation is all an evaluation of the test split needs of the training images.
    const train = recorded && config.valSplit === 0
      ? { images: new Uint8Array(0), labels: new Int32Array(0) }
      : await decodeFolderSplit(index.train, size, decoder, (n, m) => report(`train:${n}`, n, m));
    if (!recorded && train.labels.length === 0) {
      throw new Error(
        `${config.dataDir}: no training images to take the mean/std of transforms "cifar" from ` +
          "(DataConfig.normalization gives them instead)",
      );
    }
    const test = await decodeFolderSplit(index.test, size, decoder, (n, m) => report(`test:${n}`, n, m));
    // Normalised with the training images' own statistics, as CIFAR's published mean/std are CIFAR's.
    const norm = recorded ?? channelStats(train.images);
    return {
      train: array(train, norm, size),
      test: array(test, norm, size),
      classNames: index.classNames,
      imageSize: size,
    };
  }
  const size = config.imageSize ?? 224;
  // Workers get the file names as shared string tables: structured cloning would copy ImageNet's 1.28 million paths
  // (~100 MB) into every worker.
  const folder = ({ paths, names, ...split }: typeof index.train): SourceSpec => {
    const nameTable = packStrings(names);
    // Directory datasets name each image by its path: one table serves both.
    const pathTable = paths && (paths === names ? nameTable : packStrings(paths));
    return {
      kind: "folder",
      ...split,
      ...(pathTable ? { pathTable } : {}),
      nameTable,
      size,
      norm: IMAGENET_NORMALIZATION,
      seed: config.seed,
      augmentation: imageAugmentationOf(config),
      threads,
    };
  };
  return {
    train: folder(index.train),
    test: folder(index.test),
    classNames: index.classNames,
    imageSize: size,
  };
}

/**
 * Builds the loaders `config` describes: reads (downloading CIFAR on first use) or indexes the data, holds
 * `valSplit` training images out for validation, and starts the shared decode workers.
 * @throws {Error} on a bad config field (named), missing or corrupt data (file and record named), or more
 * undecodable images than `maxSkippedImages`.
 */
export async function createLoaders(config: DataConfig, options: LoaderOptions = {}): Promise<Loaders> {
  checkConfig(config);
  let workers = config.workers ?? navigator.hardwareConcurrency;
  if (workers > 0 && !workerScriptAvailable()) workers = 0; // single-file bundle: build batches inline

  const stats = { skippedImages: 0 };
  const skipped = new Set<string>();
  let trainImages = 0; // known once the data is indexed (folders) or read
  // `why` is a template (a decoder's advice names fields): the error keeps it, so a command line names its flags.
  const report = (key: string, name: string, why: string) => {
    if (skipped.has(key)) return;
    const limit = config.maxSkippedImages ?? Math.max(10, Math.ceil(trainImages / 1000));
    skipped.add(key);
    stats.skippedImages++;
    const warning = `skipped ${literal(name)}: ${why} (${stats.skippedImages} skipped so far, limit ${limit})`;
    options.onWarning?.(new FieldMessageError(warning).describe(options.nameOf ?? ((field) => field)));
    if (stats.skippedImages > limit) {
      throw new FieldMessageError(
        `${stats.skippedImages} images failed to decode, more than DataConfig.maxSkippedImages (${limit}); ` +
          `the last was ${literal(name)}: ${why}`,
      );
    }
  };
  const failures = { report, indexed: (n: number) => trainImages = n };
  const data = await prepare(config, options, workers > 0 ? 1 : navigator.hardwareConcurrency, failures);
  // A training split smaller than one batch gives a loader with no batches (drop_last): the trainer says so, and
  // evaluation, which needs only the test or validation loader, still works.
  const split = splitTrainVal(data.train.labels.length, config.valSplit, config.seed);
  const onFailures = (source: number) => (failures: DecodeFailure[]) => {
    for (const f of failures) report(`${source}:${f.index}`, f.name, f.message);
  };

  const pool = workers > 0 ? new WorkerPool([data.train, data.test], workers) : undefined;
  let open = 0;
  const onClose = () => {
    if (--open === 0) pool?.close();
  };
  const loader = (source: number, indices: Uint32Array, train: boolean) => {
    open++;
    return new PipelineLoader({
      spec: source === 0 ? data.train : data.test,
      source,
      indices,
      batchSize: config.batchSize,
      shard: train ? config.shard : undefined,
      train,
      augment: config.augment ?? true,
      repeats: train ? config.raReps : 1,
      seed: config.seed,
      pool,
      prefetch: config.prefetch,
      onFailures: onFailures(source),
      onClose,
    });
  };
  return {
    train: loader(0, split.train, true),
    val: split.val.length > 0 ? loader(0, split.val, false) : undefined,
    test: loader(1, identityOrder(data.test.labels.length), false),
    classNames: data.classNames,
    numClasses: data.classNames.length,
    mean: data.train.norm.mean,
    std: data.train.norm.std,
    imageSize: data.imageSize,
    stats,
  };
}
