/**
 * The training and evaluation configurations: their types, the dataset recipes, validation and the JSON round trip.
 * A {@linkcode TrainConfig} is the resolved recipe, JSON-serialisable (it is written to `runs/NAME/config.json` and
 * into checkpoint metadata). The command lines that produce these live in `tasks/train_flags.ts` and
 * `tasks/eval_flags.ts`; errors here name fields ({@linkcode ConfigError}), never flags.
 *
 * Defaults come from two places (any field can still be overridden):
 * - the dataset decides the data fields: where the data lives, the stem, the image size, the transforms family, the
 *   logging and mid-epoch checkpoint intervals (and, for `synthetic`, a short demo: width 4, and with the CIFAR
 *   recipe 3 epochs of batch 32);
 * - a recipe ({@linkcode RECIPE_SPECS}, `recipe`) decides the optimisation and augmentation fields:
 *   - `cifar`, the default of `cifar10`, `cifar100`, `synthetic` and folders with `transforms: "cifar"`: the recipe of
 *     the reference measurements (ResNet-18, 90.1 % after 30 epochs): 30 epochs, batch 512, SGD Nesterov momentum
 *     0.9, one-cycle LR peaking at 0.2 (15 % linear warm-up from 0.02, linear decay to 0.0002), weight decay 5e-4 on
 *     conv and fc weights only, label smoothing 0.1;
 *   - `classic`, the default of `folder`: torchvision's reference recipe: 90 epochs, batch 256, SGD momentum 0.9, lr
 *     0.1 divided by 10 every 30 epochs, weight decay 1e-4 (conv and fc weights);
 *   - `new`: torchvision's "new training recipe" (ResNet-50 80.86 %) as far as this toolkit's options go: 600
 *     epochs, batch 1024, lr 0.5 with 5 linear warm-up epochs then cosine, weight decay 2e-5, label smoothing 0.1,
 *     TrivialAugmentWide, RandomErasing 0.1, mixup 0.2, cutmix 1.0, repeated augmentation (4 repeats), an EMA of the
 *     weights (decay 0.99998 every 32 steps); what it lacks is listed in its `missing`.
 * @module
 */
import { SCHEDULE_KINDS, type ScheduleConfig, type ScheduleKind } from "./lr_schedule.ts";
import { ConfigError, literal } from "../io/config_error.ts";
import { ARCHITECTURES, type ArchName, type StemKind } from "../models/resnet_spec.ts";
import { DATA_TRANSFORMS, type DataTransforms } from "../data/transforms.ts";
import { IMAGE_DECODERS, type ImageDecoder } from "../data/decode_rgb.ts";
import { isFolderDataset } from "../data/folder_datasets.ts";
import { AUTO_AUGMENT_POLICIES, type AutoAugmentPolicy, MAGNITUDE_BINS } from "../data/auto_augment.ts";

export { ConfigError };

/** Architectures the model builder knows (torchvision's names, in ARCHITECTURES' order). */
export const ARCHS: readonly ArchName[] = Object.keys(ARCHITECTURES) as ArchName[];
/** A torchvision ResNet name. */
export type Arch = ArchName;

/**
 * Datasets a run accepts: the two CIFARs, an ImageNet-style folder tree, ImageNet itself (official archives,
 * extracted or Kaggle layout: `data/imagenet_dataset.ts`), and generated data for tests.
 */
export const DATASETS = ["cifar10", "cifar100", "folder", "imagenet", "synthetic"] as const;
/** A dataset name. */
export type DatasetName = typeof DATASETS[number];

/** The network stem: CIFAR's 3x3 stride-1 conv without max pool, or ImageNet's 7x7/2 conv and 3x3/2 max pool. */
export type Stem = StemKind;

/** The network stems, as a choice list. */
export const STEMS: readonly Stem[] = ["cifar", "imagenet"];

/** The recipes: named groups of defaults for the optimisation and augmentation fields ({@linkcode RECIPE_SPECS}). */
export const RECIPES = ["cifar", "classic", "new"] as const;
/** A recipe's name. */
export type RecipeName = typeof RECIPES[number];

/**
 * The resolved configuration of a training run (defaults: see the module documentation): JSON-serialisable,
 * stored in `config.json` and in every checkpoint. The schedule's own parameters (milestones in epochs, gamma,
 * stepSize, minLr, pctStart, divFactor, finalDivFactor) are {@linkcode ScheduleConfig}'s.
 */
export interface TrainConfig
  extends
    Pick<ScheduleConfig, "milestones" | "gamma" | "stepSize" | "minLr" | "pctStart" | "divFactor" | "finalDivFactor"> {
  arch: Arch;
  dataset: DatasetName;
  /** Where the dataset lives ("" for synthetic). */
  dataDir: string;
  /** The recipe the optimisation and augmentation defaults came from (see {@linkcode RECIPE_SPECS}). */
  recipe: RecipeName;
  /** Channels of the first stage (64 for torchvision's ResNets; smaller for tests). */
  width: number;
  /** Derived from the dataset (cifar for cifar10/cifar100/synthetic, imagenet for folder) unless set. */
  stem: Stem;
  /** Training image side in pixels (32 for CIFAR, 224 for folder datasets). */
  imageSize: number;
  /** Augmentation family: `cifar` (pad-4 crop + flip at native size) or, for folder datasets, `imagenet`. */
  transforms: DataTransforms;
  /** Folder datasets' image decoder: `sharp`, or `js` (jpeg-js, no native addon, with `transforms: "cifar"`). */
  decoder: ImageDecoder;
  /**
   * Per-image automatic augmentation after the crop and flip: `none`, `ta_wide` (TrivialAugmentWide), `ra`
   * (RandAugment), or AutoAugment's `imagenet` or `cifar10` policy (torchvision's, NEAREST, black fill).
   */
  autoAugment: AutoAugmentPolicy;
  /** RandAugment: operations per image (torchvision's `num_ops`). */
  raNumOps: number;
  /** RandAugment: magnitude bin of 31 (torchvision's `magnitude`, `--ra-magnitude`). */
  raMagnitude: number;
  /** Probability of RandomErasing on the normalised image (torchvision's `--random-erase`); 0 = off. */
  randomErase: number;
  /**
   * Mixup's Beta(α, α) parameter (torchvision's `--mixup-alpha`); 0 = off. With {@linkcode TrainConfig.cutmixAlpha}
   * too, each batch takes one of the two with equal probability.
   */
  mixupAlpha: number;
  /** CutMix's Beta(α, α) parameter (torchvision's `--cutmix-alpha`); 0 = off. */
  cutmixAlpha: number;
  /** Repeated augmentation (torchvision's `--ra-sampler`): each image of an epoch `raReps` times, differently augmented. */
  raSampler: boolean;
  /** Repetitions of each image with {@linkcode TrainConfig.raSampler} (torchvision's `--ra-reps`). */
  raReps: number;
  /** Keep an exponential moving average of the weights, evaluated each epoch beside the model (`train/model_ema.ts`). */
  modelEma: boolean;
  /** The average's decay before torchvision's adjustment for batch size, update interval and epochs. */
  modelEmaDecay: number;
  /** Optimizer steps between updates of the average (at batches 0, N, 2N... of each epoch). */
  modelEmaSteps: number;
  epochs: number;
  /** Images per optimizer step. */
  batchSize: number;
  /** Peak learning rate (after warm-up; one-cycle's max_lr). */
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** Also decay BatchNorm parameters and biases (default: conv and fc weights only). */
  weightDecayAll: boolean;
  schedule: ScheduleKind;
  /** Epochs of linear warm-up (not for onecycle). */
  warmupEpochs: number;
  labelSmoothing: number;
  /** Maximum global gradient 2-norm; 0 = no clipping. */
  clipGradNorm: number;
  seed: number;
  /** Images of the training set held out for validation (and for choosing the best checkpoint); 0 = none. */
  valSplit: number;
  /** Run folder for checkpoints and logs. */
  out: string;
  /** null, "auto" (newest valid checkpoint in `out`, or a fresh start) or a checkpoint path. */
  resume: string | null;
  /** Weights-only initialisation from a safetensors file (e.g. exported from torchvision), or null. */
  init: string | null;
  /** Checkpoints kept besides `last` and `best`. */
  keep: number;
  /** Optimizer steps between mid-epoch checkpoints (0 = only at the end of each epoch). */
  checkpointEvery: number;
  /** Zero-initialise the last BN of each residual block (torchvision's `zero_init_residual`). */
  zeroInitResidual: boolean;
  /** Optimizer steps between loss readbacks (progress lines, non-finite checks). */
  logEvery: number;
  /** Data-loading workers. */
  workers: number;
  /**
   * Data-parallel jobs (under mpirun/srun): seconds a rank waits for the others in one collective (a gradient
   * all-reduce, or rank 0's evaluation at an epoch's end) before it aborts the job; unused by a single process.
   */
  collectiveTimeout: number;
  /** Resuming: continue from a checkpoint trained with another configuration (not an exact continuation). */
  allowConfigChange: boolean;
}

/** The resolved configuration of an evaluation (`deno task eval`). */
export interface EvalConfig {
  /** A checkpoint written by `train`, or a bare torchvision safetensors file. */
  checkpoint: string;
  /** null: the dataset recorded in the checkpoint. */
  dataset: DatasetName | null;
  /** null: the checkpoint's, else the dataset recipe's (`data` for CIFAR). */
  dataDir: string | null;
  split: "test" | "val";
  /** Where to write the float32 logits as a NumPy `.npy` file, in dataset order; null = do not. */
  saveLogits: string | null;
  /** Print one JSON object instead of a table. */
  json: boolean;
  /** Where to write the JSON object too (e.g. `runs/NAME/eval.json`, drawn by the run report); null = do not. */
  outJson: string | null;
  batchSize: number;
  /** For a bare weights file without metadata (null = from the checkpoint, else inferred). */
  arch: Arch | null;
  width: number | null;
  numClasses: number | null;
  stem: Stem | null;
  imageSize: number | null;
  /** null: the checkpoint's (for its own dataset), else the dataset recipe's. */
  transforms: DataTransforms | null;
  /** null: the checkpoint's, else sharp. */
  decoder: ImageDecoder | null;
}

/** Every default of a run: what {@linkcode recipeFor} returns (the rest is named or derived). */
type Recipe = Omit<TrainConfig, "arch" | "dataset" | "out" | "resume" | "init">;

/** The fields a recipe sets; the others follow the dataset ({@linkcode recipeFor}) or are the same for all runs. */
export type RecipeField =
  | "epochs"
  | "batchSize"
  | "lr"
  | "momentum"
  | "nesterov"
  | "weightDecay"
  | "weightDecayAll"
  | "schedule"
  | "warmupEpochs"
  | "milestones"
  | "gamma"
  | "stepSize"
  | "minLr"
  | "pctStart"
  | "divFactor"
  | "finalDivFactor"
  | "labelSmoothing"
  | "clipGradNorm"
  | "autoAugment"
  | "raNumOps"
  | "raMagnitude"
  | "randomErase"
  | "mixupAlpha"
  | "cutmixAlpha"
  | "raSampler"
  | "raReps"
  | "modelEma"
  | "modelEmaDecay"
  | "modelEmaSteps";

/** A recipe as data: what it is, every field it sets, and what of its source this toolkit cannot yet do. */
export interface RecipeSpec {
  /** One line for `--help`. */
  summary: string;
  fields: Readonly<Pick<TrainConfig, RecipeField>>;
  /** Parts of the published recipe that have no field here yet ("" when none). */
  missing: string;
}

/** The schedule parameters a recipe does not use, at PyTorch's defaults (OneCycleLR's, StepLR's of the reference). */
const UNUSED_SCHEDULE = {
  warmupEpochs: 0,
  milestones: [] as number[],
  gamma: 0.1,
  stepSize: 30,
  minLr: 0,
  pctStart: 0.15,
  divFactor: 10,
  finalDivFactor: 100,
};

/**
 * No augmentation beyond the crop and flip, no batch mixing, no repeated augmentation and no weight average (the
 * fields of RandAugment, the repeats and the average at torchvision's defaults: N 2, M 9; 3 repeats; decay 0.99998
 * every 32 steps).
 */
const NO_AUGMENTATION = {
  autoAugment: "none",
  raNumOps: 2,
  raMagnitude: 9,
  randomErase: 0,
  mixupAlpha: 0,
  cutmixAlpha: 0,
  raSampler: false,
  raReps: 3,
  modelEma: false,
  modelEmaDecay: 0.99998,
  modelEmaSteps: 32,
} as const;

/** Every recipe; `--help` prints them. */
export const RECIPE_SPECS: Readonly<Record<RecipeName, RecipeSpec>> = {
  cifar: {
    summary: "the CIFAR reference recipe (90.1 % for ResNet-18 after 30 epochs): one-cycle LR, Nesterov, smoothing",
    fields: {
      ...UNUSED_SCHEDULE,
      ...NO_AUGMENTATION,
      epochs: 30,
      batchSize: 512,
      lr: 0.2,
      momentum: 0.9,
      nesterov: true,
      weightDecay: 5e-4,
      weightDecayAll: false,
      schedule: "onecycle",
      labelSmoothing: 0.1,
      clipGradNorm: 0,
    },
    missing: "",
  },
  classic: {
    summary: "torchvision's reference ImageNet recipe (ResNet-50 76.13 %): step LR /10 every 30 epochs",
    fields: {
      ...UNUSED_SCHEDULE,
      ...NO_AUGMENTATION,
      epochs: 90,
      batchSize: 256,
      lr: 0.1,
      momentum: 0.9,
      nesterov: false,
      weightDecay: 1e-4,
      weightDecayAll: false,
      schedule: "step",
      stepSize: 30,
      gamma: 0.1,
      labelSmoothing: 0,
      clipGradNorm: 0,
    },
    missing: "",
  },
  new: {
    summary: "torchvision's new ImageNet recipe (ResNet-50 80.86 %), without what is missing below",
    fields: {
      ...UNUSED_SCHEDULE,
      epochs: 600,
      // torchvision: 8 GPUs x 128; with less memory lower batchSize and scale lr with it.
      batchSize: 1024,
      lr: 0.5,
      momentum: 0.9,
      nesterov: false,
      weightDecay: 2e-5,
      weightDecayAll: false,
      schedule: "cosine",
      warmupEpochs: 5,
      minLr: 0,
      labelSmoothing: 0.1,
      clipGradNorm: 0,
      autoAugment: "ta_wide",
      raNumOps: 2,
      raMagnitude: 9,
      randomErase: 0.1,
      mixupAlpha: 0.2,
      cutmixAlpha: 1.0,
      raSampler: true,
      raReps: 4,
      modelEma: true,
      modelEmaDecay: 0.99998,
      modelEmaSteps: 32,
    },
    missing: "training at 176 and evaluating at Resize 232 + CenterCrop 224 (one imageSize serves both here: 224), " +
      "weight decay on biases but not on norm layers (biases are not decayed here)",
  },
};

/** The fields every run shares unless set. */
const COMMON = {
  seed: 0,
  valSplit: 0,
  keep: 3,
  zeroInitResidual: false,
  workers: 2,
  collectiveTimeout: 600,
  allowConfigChange: false,
};

/** The recipe a dataset uses unless `recipe` is set: `classic` for ImageNet-style folders, `cifar` otherwise. */
export function defaultRecipe(dataset: DatasetName, transforms?: DataTransforms): RecipeName {
  return isFolderDataset(dataset) && transforms !== "cifar" ? "classic" : "cifar";
}

/** The fields that follow the dataset (and a folder's transforms), whatever the recipe. */
function datasetDefaults(dataset: DatasetName, transforms?: DataTransforms) {
  const cifarLike = {
    dataDir: "",
    width: 64,
    stem: "cifar" as Stem,
    imageSize: 32,
    transforms: "cifar" as DataTransforms,
    decoder: "sharp" as ImageDecoder,
    logEvery: 20,
    checkpointEvery: 0,
  };
  switch (dataset) {
    case "cifar10":
    case "cifar100":
      return { ...cifarLike, dataDir: "data" }; // where `deno task prepare` puts the archives
    case "synthetic":
      // Sized for the software adapter (~1.5 s per step): ~30 steps an epoch, well above chance after the first.
      return { ...cifarLike, width: 4, logEvery: 5 };
    case "folder":
    case "imagenet":
      if (transforms === "cifar") return cifarLike;
      return {
        ...cifarLike,
        stem: "imagenet" as Stem,
        imageSize: 224,
        transforms: "imagenet" as DataTransforms,
        logEvery: 50,
        // An ImageNet epoch is ~5,000 steps at batch 256: checkpoint within it so a crash loses minutes, not hours.
        checkpointEvery: 1000,
      };
  }
}

/**
 * The defaults of a run on `dataset` (a folder with `transforms`), before flags: the dataset's data fields, the
 * fields of `recipe` (default {@linkcode defaultRecipe}), and for `synthetic` with the `cifar` recipe a short demo
 * (3 epochs of batch 32).
 */
export function recipeFor(dataset: DatasetName, transforms?: DataTransforms, recipe?: RecipeName): Recipe {
  const name = recipe ?? defaultRecipe(dataset, transforms);
  const fields = RECIPE_SPECS[name].fields;
  return {
    ...COMMON,
    ...datasetDefaults(dataset, transforms),
    recipe: name,
    ...fields,
    milestones: [...fields.milestones],
    // The synthetic demo shortens the CIFAR recipe; another recipe named for it is that recipe as published.
    ...(dataset === "synthetic" && name === "cifar" ? { epochs: 3, batchSize: 32 } : {}),
  };
}

/** The shape of a field's value, for validation, the command lines and `--help`. */
export type FieldKind = "string" | "int" | "number" | "boolean" | "list";

/** What a field accepts. */
export interface FieldRule {
  kind: FieldKind;
  /** The values a string field accepts. */
  choices?: readonly string[];
  /** Bounds of a number: [min, max, minExclusive?, maxExclusive?]. */
  range?: [number, number, boolean?, boolean?];
  /** null is a valid value ("not set"). */
  nullable?: boolean;
  /** "" is a valid value. */
  emptyAllowed?: boolean;
}

/** Every TrainConfig field once, in the order config.json lists them (a missing or extra field is a compile error). */
export const TRAIN_FIELDS: Readonly<Record<keyof TrainConfig, FieldRule>> = {
  arch: { kind: "string", choices: ARCHS },
  dataset: { kind: "string", choices: DATASETS },
  dataDir: { kind: "string", emptyAllowed: true },
  recipe: { kind: "string", choices: RECIPES },
  width: { kind: "int", range: [1, 4096] },
  stem: { kind: "string", choices: STEMS },
  imageSize: { kind: "int", range: [8, 4096] },
  transforms: { kind: "string", choices: DATA_TRANSFORMS },
  decoder: { kind: "string", choices: IMAGE_DECODERS },
  autoAugment: { kind: "string", choices: AUTO_AUGMENT_POLICIES },
  raNumOps: { kind: "int", range: [0, 100] },
  raMagnitude: { kind: "int", range: [0, MAGNITUDE_BINS - 1] },
  randomErase: { kind: "number", range: [0, 1] },
  mixupAlpha: { kind: "number", range: [0, 1e3] },
  cutmixAlpha: { kind: "number", range: [0, 1e3] },
  raSampler: { kind: "boolean" },
  raReps: { kind: "int", range: [1, 1e3] },
  modelEma: { kind: "boolean" },
  modelEmaDecay: { kind: "number", range: [0, 1, false, true] },
  modelEmaSteps: { kind: "int", range: [1, 1e9] },
  epochs: { kind: "int", range: [1, 1e6] },
  batchSize: { kind: "int", range: [1, 1e6] },
  lr: { kind: "number", range: [0, 1e3, true] },
  momentum: { kind: "number", range: [0, 1, false, true] },
  nesterov: { kind: "boolean" },
  weightDecay: { kind: "number", range: [0, 1] },
  weightDecayAll: { kind: "boolean" },
  schedule: { kind: "string", choices: SCHEDULE_KINDS },
  warmupEpochs: { kind: "int", range: [0, 1e6] },
  milestones: { kind: "list" },
  gamma: { kind: "number", range: [0, 1, true] },
  stepSize: { kind: "int", range: [1, 1e6] },
  minLr: { kind: "number", range: [0, 1e3] },
  pctStart: { kind: "number", range: [0, 1, true, true] },
  divFactor: { kind: "number", range: [0, 1e9, true] },
  finalDivFactor: { kind: "number", range: [0, 1e12, true] },
  labelSmoothing: { kind: "number", range: [0, 1, false, true] },
  clipGradNorm: { kind: "number", range: [0, 1e12] },
  seed: { kind: "int", range: [0, 2 ** 32 - 1] },
  valSplit: { kind: "int", range: [0, 2 ** 31] },
  out: { kind: "string" },
  resume: { kind: "string", nullable: true },
  init: { kind: "string", nullable: true },
  keep: { kind: "int", range: [1, 1e6] },
  checkpointEvery: { kind: "int", range: [0, 1e9] },
  zeroInitResidual: { kind: "boolean" },
  logEvery: { kind: "int", range: [1, 1e9] },
  workers: { kind: "int", range: [0, 1024] },
  collectiveTimeout: { kind: "number", range: [0, 1e6, true] },
  allowConfigChange: { kind: "boolean" },
};

/** Every EvalConfig field once, in declaration order. */
export const EVAL_FIELDS: Readonly<Record<keyof EvalConfig, FieldRule>> = {
  checkpoint: { kind: "string" },
  dataset: { kind: "string", choices: DATASETS, nullable: true },
  dataDir: { kind: "string", nullable: true },
  split: { kind: "string", choices: ["test", "val"] },
  saveLogits: { kind: "string", nullable: true },
  json: { kind: "boolean" },
  outJson: { kind: "string", nullable: true },
  batchSize: { kind: "int", range: [1, 1e6] },
  arch: { kind: "string", choices: ARCHS, nullable: true },
  width: { kind: "int", range: [1, 4096], nullable: true },
  numClasses: { kind: "int", range: [1, 1e6], nullable: true },
  stem: { kind: "string", choices: STEMS, nullable: true },
  imageSize: { kind: "int", range: [8, 4096], nullable: true },
  transforms: { kind: "string", choices: DATA_TRANSFORMS, nullable: true },
  decoder: { kind: "string", choices: IMAGE_DECODERS, nullable: true },
};

/** The defaults of an evaluation: what {@linkcode EvalConfig} holds when only the checkpoint is named. */
export function defaultEvalConfig(checkpoint: string): EvalConfig {
  return {
    checkpoint,
    dataset: null,
    dataDir: null,
    split: "test",
    saveLogits: null,
    json: false,
    outJson: null,
    batchSize: 256,
    arch: null,
    width: null,
    numClasses: null,
    stem: null,
    imageSize: null,
    transforms: null,
    decoder: null,
  };
}

/** A value as error messages quote it: `"0.1"`, `"10,20"` (escaped for a ConfigError template). */
function quoted(value: unknown): string {
  return literal(`"${Array.isArray(value) ? value.join(",") : String(value)}"`);
}

/**
 * Checks a value of the right JavaScript type against its field's rule (choices, integer, range, non-empty,
 * increasing epochs).
 * @throws {ConfigError} naming `field`, the value and the rule.
 */
export function checkFieldValue(field: string, rule: FieldRule, value: unknown): void {
  if (value === null && rule.nullable) return;
  const bad = (rest: string): never => {
    throw new ConfigError(field, `{${field}} ${rest}`);
  };
  if (rule.kind === "string") {
    const text = value as string;
    if (rule.choices && !rule.choices.includes(text)) {
      bad(`must be one of ${rule.choices.join(", ")}; got ${quoted(text)}`);
    }
    if (text === "" && !rule.emptyAllowed) bad("needs a non-empty value");
  } else if (rule.kind === "list") {
    const epochs = value as number[];
    if (epochs.some((n) => !Number.isInteger(n) || n < 1)) {
      bad(`must be positive integers (epochs), got ${quoted(epochs)}`);
    }
    if (epochs.some((n, i) => i > 0 && n <= epochs[i - 1])) bad(`must be strictly increasing, got ${quoted(epochs)}`);
  } else if (rule.kind === "int" || rule.kind === "number") {
    const n = value as number;
    if (rule.kind === "int" && !Number.isInteger(n)) bad(`expects an integer, got ${quoted(n)}`);
    if (rule.range) {
      const [min, max, minEx, maxEx] = rule.range;
      if ((minEx ? n <= min : n < min) || (maxEx ? n >= max : n > max)) {
        bad(`must be in ${minEx ? "(" : "["}${min}, ${max}${maxEx ? ")" : "]"}, got ${quoted(n)}`);
      }
    }
  }
}

/**
 * The decoder/transforms rule training and evaluation share: jpeg-js does not resize, so it only serves images used
 * at their own size.
 * @throws {ConfigError} naming `decoder`.
 */
export function checkDecoderFits(
  decoder: ImageDecoder | null | undefined,
  transforms: DataTransforms | null | undefined,
): void {
  if (decoder === "js" && transforms !== "cifar") {
    throw new ConfigError(
      "decoder",
      "{decoder} js does not resize images, so it needs {transforms} cifar (images used at their own size)",
    );
  }
}

/**
 * The image-size rule training and evaluation share: only folder datasets (folder, imagenet) are decoded at a chosen
 * size; CIFAR and synthetic images are 32x32 whatever {imageSize} says.
 * @throws {ConfigError} naming `imageSize`.
 */
export function checkImageSizeFits(dataset: DatasetName, imageSize: number | null | undefined): void {
  if (!isFolderDataset(dataset) && imageSize !== null && imageSize !== undefined && imageSize !== 32) {
    throw new ConfigError(
      "imageSize",
      `{imageSize} ${imageSize} applies to {dataset} folder and imagenet only (${dataset} images are always 32x32)`,
    );
  }
}

/**
 * The rules between fields of a resolved TrainConfig. `given` holds the fields set explicitly (the rest come from
 * the recipe): a recipe's default never contradicts, an explicitly set field that has no effect does.
 * @throws {ConfigError} naming the field at fault.
 */
export function checkTrainConfig(c: TrainConfig, given: ReadonlySet<keyof TrainConfig> = new Set()): void {
  const fail = (field: keyof TrainConfig, template: string): never => {
    throw new ConfigError(field, template);
  };
  if (isFolderDataset(c.dataset) && !c.dataDir) {
    const what = c.dataset === "folder"
      ? "a folder holding train/<class>/ and val/<class>/ or test/<class>/ images, or .tar/.tar.gz archives of that tree"
      : "the folder holding the ILSVRC-2012 archives or train/ and val/";
    fail("dataDir", `{dataset} ${c.dataset} needs {dataDir} (${what})`);
  }
  if (c.dataset === "synthetic" && given.has("dataDir")) {
    fail("dataDir", "{dataDir} does not apply to {dataset} synthetic");
  }
  for (const key of ["transforms", "decoder"] as const) {
    if (!isFolderDataset(c.dataset) && (given.has(key) || c.transforms !== "cifar")) {
      fail(key, `{${key}} applies to {dataset} folder and imagenet only (${c.dataset} is always cifar-style)`);
    }
  }
  checkDecoderFits(c.decoder, c.transforms);
  // Only when set: configurations recorded before this rule may hold another size, which never had an effect.
  if (given.has("imageSize")) checkImageSizeFits(c.dataset, c.imageSize);
  if (given.has("milestones") && c.schedule !== "multistep") {
    fail("milestones", `{milestones} only applies to {schedule} multistep, not ${c.schedule}`);
  }
  if (c.schedule === "multistep" && c.milestones.length === 0) {
    fail("milestones", "{schedule} multistep needs {milestones}, e.g. {milestones} 30,60,80");
  }
  if (c.schedule === "multistep") {
    const last = c.milestones[c.milestones.length - 1];
    if (last >= c.epochs - c.warmupEpochs) {
      fail(
        "milestones",
        `{milestones} ${c.milestones.join(",")}: milestone ${last} (counted after ${c.warmupEpochs} warm-up ` +
          `epochs) is not reached within {epochs} ${c.epochs}`,
      );
    }
  }
  for (const key of ["raNumOps", "raMagnitude"] as const) {
    if (given.has(key) && c.autoAugment !== "ra") {
      fail(key, `{${key}} only applies to {autoAugment} ra (RandAugment), not ${c.autoAugment}`);
    }
  }
  if (given.has("raReps") && !c.raSampler) fail("raReps", "{raReps} only applies with {raSampler}");
  for (const key of ["modelEmaDecay", "modelEmaSteps"] as const) {
    if (given.has(key) && !c.modelEma) fail(key, `{${key}} only applies with {modelEma}`);
  }
  if (given.has("stepSize") && c.schedule !== "step") {
    fail("stepSize", `{stepSize} only applies to {schedule} step, not ${c.schedule}`);
  }
  if (given.has("gamma") && c.schedule !== "step" && c.schedule !== "multistep") {
    fail("gamma", `{gamma} only applies to {schedule} step or multistep, not ${c.schedule}`);
  }
  if (given.has("minLr") && c.schedule !== "cosine") {
    fail("minLr", `{minLr} only applies to {schedule} cosine, not ${c.schedule}`);
  }
  for (const key of ["pctStart", "divFactor", "finalDivFactor"] as const) {
    if (given.has(key) && c.schedule !== "onecycle") {
      fail(key, `{${key}} only applies to {schedule} onecycle, not ${c.schedule}`);
    }
  }
  if (c.schedule === "onecycle" && c.warmupEpochs > 0) {
    fail(
      "warmupEpochs",
      "{warmupEpochs} cannot be combined with {schedule} onecycle, which warms up by itself (see {pctStart})",
    );
  }
  if (c.warmupEpochs >= c.epochs && c.warmupEpochs > 0) {
    const whose = given.has("warmupEpochs") ? "" : " (the recipe's default: set {warmupEpochs} for a shorter run)";
    fail("warmupEpochs", `{warmupEpochs} ${c.warmupEpochs} must be less than {epochs} ${c.epochs}${whose}`);
  }
  if (c.resume !== null && c.init !== null) {
    fail(
      "resume",
      "{resume} and {init} contradict each other: {resume} continues a run (weights, optimizer, position), " +
        "{init} starts a new one from weights",
    );
  }
  if (given.has("allowConfigChange") && c.allowConfigChange && c.resume === null) {
    fail("allowConfigChange", "{allowConfigChange} only applies when resuming ({resume})");
  }
  if (c.nesterov && c.momentum === 0) fail("nesterov", "{nesterov} needs {momentum} > 0 (or turn {nesterov} off)");
  if (given.has("weightDecayAll") && c.weightDecayAll && c.weightDecay === 0) {
    fail("weightDecayAll", "{weightDecayAll} has no effect with {weightDecay} 0");
  }
}

/**
 * Fields a resumed run may change without changing what it computes: where logs and checkpoints go and how often,
 * how data is read, what only a fresh start uses (initial weights, zero-init), and the recipe's name. Every other difference breaks the
 * bit-exact continuation (the batch order, the schedule, the model or the update would differ).
 */
export const RESUME_SAFE_FIELDS: ReadonlySet<keyof TrainConfig> = new Set<keyof TrainConfig>([
  "dataDir",
  "recipe", // only names where defaults came from: the fields it set are compared one by one
  "out",
  "resume",
  "init",
  "keep",
  "checkpointEvery",
  "zeroInitResidual",
  "logEvery",
  "workers",
  "collectiveTimeout",
  "allowConfigChange",
]);

/** One field that differs between a checkpoint's configuration and a new one. */
export interface ConfigChange {
  field: keyof TrainConfig;
  saved: unknown;
  now: unknown;
}

/** The fields outside {@linkcode RESUME_SAFE_FIELDS} in which `now` differs from `saved`, in declaration order. */
export function resumeConflicts(saved: TrainConfig, now: TrainConfig): ConfigChange[] {
  const matters = (f: keyof TrainConfig) => !(f in ACTIVE_WHEN) || ACTIVE_WHEN[f]!(saved) || ACTIVE_WHEN[f]!(now);
  return (Object.keys(TRAIN_FIELDS) as (keyof TrainConfig)[])
    .filter((f) => !RESUME_SAFE_FIELDS.has(f) && JSON.stringify(saved[f]) !== JSON.stringify(now[f]) && matters(f))
    .map((field) => ({ field, saved: saved[field], now: now[field] }));
}

/**
 * Fields that change nothing unless another field turns them on: a difference in one counts for resuming only where
 * the saved or the new configuration uses it (e.g. --ra-reps, whose default differs between recipes, with
 * --ra-sampler off on both sides).
 */
const ACTIVE_WHEN: Partial<Record<keyof TrainConfig, (c: TrainConfig) => boolean>> = {
  raReps: (c) => c.raSampler,
  modelEmaDecay: (c) => c.modelEma,
  modelEmaSteps: (c) => c.modelEma,
  raNumOps: (c) => c.autoAugment === "ra",
  raMagnitude: (c) => c.autoAugment === "ra",
  milestones: (c) => c.schedule === "multistep",
  stepSize: (c) => c.schedule === "step",
  gamma: (c) => c.schedule === "step" || c.schedule === "multistep",
  minLr: (c) => c.schedule === "cosine",
  pctStart: (c) => c.schedule === "onecycle",
  divFactor: (c) => c.schedule === "onecycle",
  finalDivFactor: (c) => c.schedule === "onecycle",
};

/**
 * Refuses to resume `source` (a checkpoint trained with `saved`) under `now` when a field that breaks exactness
 * differs, unless `now.allowConfigChange`.
 * @throws {ConfigError} naming the first such field and listing each (saved value, new value).
 */
export function checkResumeConfig(saved: TrainConfig, now: TrainConfig, source: string): void {
  const changes = resumeConflicts(saved, now);
  if (changes.length === 0 || now.allowConfigChange) return;
  const show = (v: unknown) => literal(Array.isArray(v) ? v.join(",") || "none" : String(v));
  const list = changes.map((c) => `{${c.field}} ${show(c.saved)} in the checkpoint, ${show(c.now)} now`).join("; ");
  const file = literal(source);
  throw new ConfigError(
    changes[0].field,
    `${file} was trained with another configuration, so resuming would not continue that run exactly: ${list}. ` +
      "Resume with the checkpoint's values, or set {allowConfigChange} to continue from its weights and optimizer " +
      "state under the new configuration",
  );
}

/** `config` with its fields in declaration order, so config.json reads like the interface. */
function ordered(config: TrainConfig): TrainConfig {
  return Object.fromEntries(
    Object.keys(TRAIN_FIELDS).map((k) => [k, config[k as keyof TrainConfig]]),
  ) as unknown as TrainConfig;
}

/**
 * A run's configuration from the fields set explicitly: the dataset's recipe (default cifar10, resnet18) overridden
 * by `given`, every field and rule checked.
 * @throws {ConfigError} naming the field at fault.
 */
export function resolveTrainConfig(given: Partial<TrainConfig>): TrainConfig {
  for (const [key, value] of Object.entries(given)) {
    if (value !== undefined) checkFieldValue(key, TRAIN_FIELDS[key as keyof TrainConfig], value);
  }
  const dataset = given.dataset ?? "cifar10";
  const arch = given.arch ?? "resnet18";
  const merged: TrainConfig = {
    arch,
    dataset,
    ...recipeFor(dataset, given.transforms, given.recipe),
    out: `runs/${arch}-${dataset}`,
    resume: null,
    init: null,
    ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
  };
  const set = new Set(Object.keys(given).filter((k) => given[k as keyof TrainConfig] !== undefined)) as Set<
    keyof TrainConfig
  >;
  // One-cycle warms up by itself: a recipe's linear warm-up (the new recipe's 5 epochs) gives way to a one-cycle
  // schedule chosen on top of it, as any recipe default gives way to a flag; only an explicit warm-up contradicts it.
  if (merged.schedule === "onecycle" && !set.has("warmupEpochs")) merged.warmupEpochs = 0;
  checkTrainConfig(merged, set);
  return ordered(merged);
}

/**
 * Checks a TrainConfig read back from JSON (`config.json`, checkpoint metadata) with the same rules as a new run,
 * and returns it with its fields in declaration order.
 * @param where names the source in error messages, e.g. "runs/x/last.safetensors metadata".
 * @throws {Error} naming the source and the field: missing, unknown, mistyped or out-of-range fields, and the
 *   contradictions {@linkcode checkTrainConfig} rejects.
 */
export function trainConfigFromJSON(value: unknown, where: string): TrainConfig {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${where}: expected a training configuration object, got ${JSON.stringify(value)}`);
  }
  // Fields added after the first checkpoints were written take the value those runs had.
  const old = value as Record<string, unknown>;
  const folderLike = isFolderDataset(old.dataset);
  const transforms = old.transforms ?? (folderLike ? "imagenet" : "cifar");
  const v: Record<string, unknown> = {
    transforms,
    decoder: "sharp",
    allowConfigChange: false,
    collectiveTimeout: 600,
    recipe: folderLike && transforms === "imagenet" ? "classic" : "cifar",
    ...NO_AUGMENTATION,
    ...old,
  };
  const unknown = Object.keys(v).filter((k) => !(k in TRAIN_FIELDS));
  if (unknown.length > 0) throw new Error(`${where}: unknown configuration field(s) ${unknown.join(", ")}`);
  for (const [key, rule] of Object.entries(TRAIN_FIELDS) as [keyof TrainConfig, FieldRule][]) {
    const x = v[key];
    const fail = (expected: string): never => {
      throw new Error(`${where}: field "${key}" must be ${expected}, got ${JSON.stringify(x)}`);
    };
    if (!(key in v)) fail("present");
    if (x === null && rule.nullable) continue;
    if (rule.kind === "boolean" && typeof x !== "boolean") fail("a boolean");
    if (rule.kind === "list" && (!Array.isArray(x) || x.some((n) => typeof n !== "number"))) fail("an array of epochs");
    if (rule.kind === "string" && typeof x !== "string") fail("a string");
    if ((rule.kind === "int" || rule.kind === "number") && typeof x !== "number") fail("a number");
  }
  const config = ordered(v as unknown as TrainConfig);
  try {
    for (const [key, rule] of Object.entries(TRAIN_FIELDS)) checkFieldValue(key, rule, v[key]);
    checkTrainConfig(config);
  } catch (e) {
    if (e instanceof ConfigError) throw new Error(`${where}: ${e.message}`);
    throw e;
  }
  return config;
}
