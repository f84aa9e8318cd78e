/**
 * The training and evaluation configurations and their command lines. A {@linkcode TrainConfig} is the resolved
 * recipe: every flag of `deno task train`, with the dataset-dependent defaults filled in, JSON-serialisable (it is
 * written to `runs/NAME/config.json` and into checkpoint metadata).
 *
 * Default recipes (flags override any field):
 * - `cifar10`, `cifar100`: the recipe of the reference measurements (ResNet-18, 90.1 % after 30 epochs): 30 epochs,
 *   batch 512, SGD Nesterov momentum 0.9, one-cycle LR peaking at 0.2 (15 % linear warm-up from 0.02, linear decay to
 *   0.0002), weight decay 5e-4 on conv and fc weights only, label smoothing 0.1, CIFAR stem.
 * - `folder` (an ImageNet-style folder of class subfolders): torchvision's reference recipe: 90 epochs, batch 256,
 *   SGD momentum 0.9, lr 0.1 divided by 10 every 30 epochs, weight decay 1e-4 (conv and fc weights), ImageNet stem.
 *   With `--transforms cifar` (small images used at their own size, such as the CIFAR-10 JPEG copy): the CIFAR recipe.
 * - `synthetic`: the CIFAR recipe shortened for smoke tests: 3 epochs, batch 32, width 4.
 * @module
 */
import { parseArgs, UsageError } from "../tasks/args.ts";

export { UsageError }; // the public API's usage error (mod.ts re-exports this module)
import type { ScheduleConfig, ScheduleKind } from "./lr_schedule.ts";
import { SCHEDULE_KINDS } from "./lr_schedule.ts";
import { ARCHITECTURES, type ArchName, type StemKind } from "../models/resnet_spec.ts";
import { DATA_TRANSFORMS, type DataTransforms } from "../data/transforms.ts";
import { IMAGE_DECODERS, type ImageDecoder } from "../data/decode_rgb.ts";

/** Architectures the model builder knows (torchvision's names, in ARCHITECTURES' order). */
export const ARCHS: readonly ArchName[] = Object.keys(ARCHITECTURES) as ArchName[];
/** A torchvision ResNet name. */
export type Arch = ArchName;

/** Datasets `--dataset` accepts: the two CIFARs, an ImageNet-style folder tree, and generated data for tests. */
export const DATASETS = ["cifar10", "cifar100", "folder", "synthetic"] as const;
/** A dataset name. */
export type DatasetName = typeof DATASETS[number];

/** The network stem: CIFAR's 3x3 stride-1 conv without max pool, or ImageNet's 7x7/2 conv and 3x3/2 max pool. */
export type Stem = StemKind;

/** Warm-up starts at this fraction of `--lr` (torchvision's `--lr-warmup-decay` default). */
export const WARMUP_START_FACTOR = 0.01;

/**
 * The resolved configuration of `deno task train` (defaults: see the module documentation): JSON-serialisable,
 * stored in `config.json` and in every checkpoint. The schedule's own parameters (milestones in epochs, gamma, stepSize, minLr, pctStart, divFactor,
 * finalDivFactor) are {@linkcode ScheduleConfig}'s.
 */
export interface TrainConfig
  extends
    Pick<ScheduleConfig, "milestones" | "gamma" | "stepSize" | "minLr" | "pctStart" | "divFactor" | "finalDivFactor"> {
  arch: Arch;
  dataset: DatasetName;
  /** Where the dataset lives ("" for synthetic). */
  dataDir: string;
  /** Channels of the first stage (64 for torchvision's ResNets; smaller for tests). */
  width: number;
  /** Derived from the dataset (cifar for cifar10/cifar100/synthetic, imagenet for folder) unless `--stem` is given. */
  stem: Stem;
  /** Training image side in pixels (32 for CIFAR, 224 for folder datasets). */
  imageSize: number;
  /** Augmentation family: `cifar` (pad-4 crop + flip at native size) or, for folder datasets, `imagenet`. */
  transforms: DataTransforms;
  /** Folder datasets' image decoder: `sharp`, or `js` (jpeg-js, no native addon, with `transforms: "cifar"`). */
  decoder: ImageDecoder;
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
}

/** The resolved configuration of `deno task eval`. */
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

type Recipe = Omit<TrainConfig, "arch" | "dataset" | "out" | "resume" | "init">;

const COMMON = {
  momentum: 0.9,
  weightDecayAll: false,
  warmupEpochs: 0,
  milestones: [] as number[],
  gamma: 0.1,
  stepSize: 30,
  minLr: 0,
  pctStart: 0.15,
  divFactor: 10,
  finalDivFactor: 100,
  clipGradNorm: 0,
  seed: 0,
  valSplit: 0,
  keep: 3,
  checkpointEvery: 0,
  zeroInitResidual: false,
  workers: 2,
};

const CIFAR_RECIPE: Recipe = {
  ...COMMON,
  dataDir: "",
  width: 64,
  stem: "cifar",
  imageSize: 32,
  transforms: "cifar",
  decoder: "sharp",
  epochs: 30,
  batchSize: 512,
  lr: 0.2,
  nesterov: true,
  weightDecay: 5e-4,
  schedule: "onecycle",
  labelSmoothing: 0.1,
  logEvery: 20,
};

/**
 * The defaults of each dataset, before flags; CIFAR archives live in `data` (where `deno task prepare` puts them).
 * A folder dataset with `transforms` "cifar" (small images such as the CIFAR-10 JPEG copy) gets the CIFAR recipe.
 */
export function recipeFor(dataset: DatasetName, transforms?: DataTransforms): Recipe {
  switch (dataset) {
    case "cifar10":
    case "cifar100":
      return { ...CIFAR_RECIPE, milestones: [], dataDir: "data" };
    case "synthetic":
      // Sized for the software adapter (~1.5 s per step): ~30 steps an epoch, well above chance after the first.
      return { ...CIFAR_RECIPE, milestones: [], epochs: 3, batchSize: 32, width: 4, logEvery: 5 };
    case "folder":
      if (transforms === "cifar") return { ...CIFAR_RECIPE, milestones: [] };
      return {
        ...COMMON,
        milestones: [],
        dataDir: "",
        width: 64,
        stem: "imagenet",
        imageSize: 224,
        transforms: "imagenet",
        decoder: "sharp",
        epochs: 90,
        batchSize: 256,
        lr: 0.1,
        nesterov: false,
        weightDecay: 1e-4,
        schedule: "step",
        labelSmoothing: 0,
        logEvery: 50,
        // An ImageNet epoch is ~5,000 steps at batch 256: checkpoint within it so a crash loses minutes, not hours.
        checkpointEvery: 1000,
      };
  }
}

type Kind = "string" | "int" | "number" | "boolean" | "list";
interface FlagSpec {
  flag: string;
  key: keyof TrainConfig | "help";
  kind: Kind;
  help: string;
  /** Values for a choice flag. */
  choices?: readonly string[];
  /** Inclusive/exclusive bounds for numbers: [min, max, minExclusive?, maxExclusive?]. */
  range?: [number, number, boolean?, boolean?];
  /** The default shown by --help when it is not taken from the recipes. */
  shownDefault?: string;
}

const TRAIN_FLAGS: FlagSpec[] = [
  { flag: "arch", key: "arch", kind: "string", choices: ARCHS, help: "network", shownDefault: "resnet18" },
  { flag: "dataset", key: "dataset", kind: "string", choices: DATASETS, help: "dataset", shownDefault: "cifar10" },
  {
    flag: "data-dir",
    key: "dataDir",
    kind: "string",
    help: "dataset folder (required for folder)",
    shownDefault: "data",
  },
  { flag: "epochs", key: "epochs", kind: "int", range: [1, 1e6], help: "training epochs" },
  { flag: "batch-size", key: "batchSize", kind: "int", range: [1, 1e6], help: "images per optimizer step" },
  { flag: "lr", key: "lr", kind: "number", range: [0, 1e3, true], help: "peak learning rate (onecycle: max_lr)" },
  { flag: "momentum", key: "momentum", kind: "number", range: [0, 1, false, true], help: "SGD momentum" },
  { flag: "nesterov", key: "nesterov", kind: "boolean", help: "Nesterov momentum (--no-nesterov to disable)" },
  {
    flag: "weight-decay",
    key: "weightDecay",
    kind: "number",
    range: [0, 1],
    help: "L2 weight decay (conv and fc weights only)",
  },
  {
    flag: "weight-decay-all",
    key: "weightDecayAll",
    kind: "boolean",
    help: "also decay BatchNorm parameters and biases",
  },
  { flag: "schedule", key: "schedule", kind: "string", choices: SCHEDULE_KINDS, help: "LR schedule (per step)" },
  {
    flag: "warmup-epochs",
    key: "warmupEpochs",
    kind: "int",
    range: [0, 1e6],
    help: `linear warm-up epochs from ${WARMUP_START_FACTOR} x lr (not with onecycle)`,
  },
  { flag: "milestones", key: "milestones", kind: "list", help: "multistep: comma-separated epochs, e.g. 30,60,80" },
  { flag: "gamma", key: "gamma", kind: "number", range: [0, 1, true], help: "step/multistep: LR decay factor" },
  { flag: "step-size", key: "stepSize", kind: "int", range: [1, 1e6], help: "step: epochs between LR decays" },
  { flag: "min-lr", key: "minLr", kind: "number", range: [0, 1e3], help: "cosine: final learning rate" },
  {
    flag: "pct-start",
    key: "pctStart",
    kind: "number",
    range: [0, 1, true, true],
    help: "onecycle: fraction of steps warming up",
  },
  { flag: "div-factor", key: "divFactor", kind: "number", range: [0, 1e9, true], help: "onecycle: lr / initial LR" },
  {
    flag: "final-div-factor",
    key: "finalDivFactor",
    kind: "number",
    range: [0, 1e12, true],
    help: "onecycle: initial LR / final LR",
  },
  {
    flag: "label-smoothing",
    key: "labelSmoothing",
    kind: "number",
    range: [0, 1, false, true],
    help: "cross-entropy label smoothing",
  },
  { flag: "clip-grad-norm", key: "clipGradNorm", kind: "number", range: [0, 1e12], help: "max gradient norm, 0 = off" },
  { flag: "seed", key: "seed", kind: "int", range: [0, 2 ** 32 - 1], help: "random seed (init, data order, aug)" },
  {
    flag: "val-split",
    key: "valSplit",
    kind: "int",
    range: [0, 2 ** 31],
    help: "images of train held out for validation (and best)",
  },
  { flag: "out", key: "out", kind: "string", help: "run folder", shownDefault: "runs/<arch>-<dataset>" },
  { flag: "width", key: "width", kind: "int", range: [1, 4096], help: "channels of the first stage" },
  { flag: "stem", key: "stem", kind: "string", choices: ["cifar", "imagenet"], help: "network stem override" },
  { flag: "image-size", key: "imageSize", kind: "int", range: [8, 4096], help: "training image side (pixels)" },
  {
    flag: "transforms",
    key: "transforms",
    kind: "string",
    choices: DATA_TRANSFORMS,
    help: "folder: imagenet (RandomResizedCrop), cifar (pad-4 crop, CIFAR recipe)",
  },
  {
    flag: "decoder",
    key: "decoder",
    kind: "string",
    choices: IMAGE_DECODERS,
    help: "folder: js needs no native addon (JPEG, --transforms cifar)",
  },
  {
    flag: "resume",
    key: "resume",
    kind: "string",
    help: "auto (newest valid checkpoint in --out) or a checkpoint path",
    shownDefault: "none",
  },
  {
    flag: "init",
    key: "init",
    kind: "string",
    help: "initial weights only (safetensors, e.g. from torchvision)",
    shownDefault: "none",
  },
  { flag: "keep", key: "keep", kind: "int", range: [1, 1e6], help: "newest checkpoints kept besides last and best" },
  {
    flag: "checkpoint-every",
    key: "checkpointEvery",
    kind: "int",
    range: [0, 1e9],
    help: "steps between mid-epoch checkpoints, 0 = at epoch ends only",
  },
  {
    flag: "zero-init-residual",
    key: "zeroInitResidual",
    kind: "boolean",
    help: "zero the last BN gamma of each residual block",
  },
  { flag: "log-every", key: "logEvery", kind: "int", range: [1, 1e9], help: "steps between loss readbacks" },
  { flag: "workers", key: "workers", kind: "int", range: [0, 1024], help: "data-loading workers" },
  { flag: "help", key: "help", kind: "boolean", help: "show this help" },
];

function parseOptions(specs: FlagSpec[]) {
  return Object.fromEntries(
    specs.map((s) => [s.flag, { type: s.kind === "boolean" ? "boolean" as const : "string" as const }]),
  );
}

/** The shared parseArgs (its errors are UsageErrors naming the flag), with the task named in them. */
function parseStrict(argv: string[], specs: FlagSpec[], task: string) {
  try {
    return parseArgs(
      {
        args: argv,
        options: { ...parseOptions(specs), help: { type: "boolean", short: "h" } },
        strict: true,
        allowPositionals: false,
        allowNegative: true,
      } as Parameters<typeof parseArgs>[0],
    ).values as Record<string, string | boolean | undefined>;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    throw new UsageError(`deno task ${task}: ${e.message}`, e.flag); // runTask adds "(see --help)"
  }
}

/** Converts one flag's text to its typed value, or throws a UsageError naming the flag, the value and the rule. */
function convert(spec: FlagSpec, raw: string | boolean): unknown {
  const name = `--${spec.flag}`;
  if (spec.kind === "boolean") {
    if (typeof raw !== "boolean") throw new UsageError(`${name} takes no value, got "${raw}"`, name);
    return raw;
  }
  const text = String(raw);
  if (spec.kind === "string") {
    if (spec.choices && !spec.choices.includes(text)) {
      throw new UsageError(`${name} must be one of ${spec.choices.join(", ")}; got "${text}"`, name);
    }
    if (text === "") throw new UsageError(`${name} needs a non-empty value`, name);
    return text;
  }
  if (spec.kind === "list") {
    const parts = text.split(",").map((s) => s.trim());
    const nums = parts.map(Number);
    if (parts.some((p) => p === "") || nums.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new UsageError(`${name} must be comma-separated positive integers (epochs), got "${text}"`, name);
    }
    if (nums.some((n, i) => i > 0 && n <= nums[i - 1])) {
      throw new UsageError(`${name} must be strictly increasing, got "${text}"`, name);
    }
    return nums;
  }
  const value = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(value)) throw new UsageError(`${name} expects a number, got "${text}"`, name);
  if (spec.kind === "int" && !Number.isInteger(value)) {
    throw new UsageError(`${name} expects an integer, got "${text}"`, name);
  }
  if (spec.range) {
    const [min, max, minEx, maxEx] = spec.range;
    if ((minEx ? value <= min : value < min) || (maxEx ? value >= max : value > max)) {
      const interval = `${minEx ? "(" : "["}${min}, ${max}${maxEx ? ")" : "]"}`;
      throw new UsageError(`${name} must be in ${interval}, got "${text}"`, name);
    }
  }
  return value;
}

/**
 * Parses `deno task train` flags into a resolved {@linkcode TrainConfig} (dataset defaults applied), or "help" for
 * `--help`/`-h`.
 * @throws {UsageError} for an unknown flag, a bad value (naming the flag and the value) or contradictory flags.
 */
export function parseTrainArgs(argv: string[]): TrainConfig | "help" {
  const raw = parseStrict(argv, TRAIN_FLAGS, "train");
  if (raw.help) return "help";
  const given: Partial<Record<keyof TrainConfig, unknown>> = {};
  for (const spec of TRAIN_FLAGS) {
    const v = raw[spec.flag];
    if (v !== undefined && spec.key !== "help") given[spec.key] = convert(spec, v);
  }
  const dataset = (given.dataset ?? "cifar10") as DatasetName;
  const arch = (given.arch ?? "resnet18") as Arch;
  const merged: TrainConfig = {
    arch,
    dataset,
    ...recipeFor(dataset, given.transforms as DataTransforms | undefined),
    out: `runs/${arch}-${dataset}`,
    resume: null,
    init: null,
    ...given,
  } as TrainConfig;
  checkContradictions(merged, given);
  // Fields in declaration order, so config.json reads like the interface.
  return Object.fromEntries(
    Object.keys(KEY_ORDER).map((k) => [k, merged[k as keyof TrainConfig]]),
  ) as unknown as TrainConfig;
}

/** Every TrainConfig field once, in declaration order (the type makes a missing or extra field a compile error). */
const KEY_ORDER: Record<keyof TrainConfig, true> = {
  arch: true,
  dataset: true,
  dataDir: true,
  width: true,
  stem: true,
  imageSize: true,
  transforms: true,
  decoder: true,
  epochs: true,
  batchSize: true,
  lr: true,
  momentum: true,
  nesterov: true,
  weightDecay: true,
  weightDecayAll: true,
  schedule: true,
  warmupEpochs: true,
  milestones: true,
  gamma: true,
  stepSize: true,
  minLr: true,
  pctStart: true,
  divFactor: true,
  finalDivFactor: true,
  labelSmoothing: true,
  clipGradNorm: true,
  seed: true,
  valSplit: true,
  out: true,
  resume: true,
  init: true,
  keep: true,
  checkpointEvery: true,
  zeroInitResidual: true,
  logEvery: true,
  workers: true,
};

/**
 * The `--decoder`/`--transforms` rule `train` and `eval` share: jpeg-js does not resize, so it only serves images used
 * at their own size.
 * @throws {UsageError} naming `--decoder`.
 */
export function checkDecoderFits(decoder: ImageDecoder | undefined, transforms: DataTransforms | undefined): void {
  if (decoder === "js" && transforms !== "cifar") {
    throw new UsageError(
      "--decoder js does not resize images, so it needs --transforms cifar (images used at their own size)",
      "--decoder",
    );
  }
}

function checkContradictions(c: TrainConfig, given: Partial<Record<keyof TrainConfig, unknown>>) {
  const has = (k: keyof TrainConfig) => given[k] !== undefined;
  if (c.dataset === "folder" && !c.dataDir) {
    throw new UsageError("--dataset folder needs --data-dir (a folder with one subfolder per class)", "--data-dir");
  }
  if (c.dataset === "synthetic" && has("dataDir")) {
    throw new UsageError("--data-dir does not apply to --dataset synthetic", "--data-dir");
  }
  for (const key of ["transforms", "decoder"] as const) {
    if (c.dataset !== "folder" && (has(key) || c.transforms !== "cifar")) {
      throw new UsageError(
        `--${key} applies to --dataset folder only (${c.dataset} is always cifar-style)`,
        `--${key}`,
      );
    }
  }
  checkDecoderFits(c.decoder, c.transforms);
  if (has("milestones") && c.schedule !== "multistep") {
    throw new UsageError(`--milestones only applies to --schedule multistep, not ${c.schedule}`, "--milestones");
  }
  if (c.schedule === "multistep" && c.milestones.length === 0) {
    throw new UsageError("--schedule multistep needs --milestones, e.g. --milestones 30,60,80", "--milestones");
  }
  if (c.schedule === "multistep") {
    const last = c.milestones[c.milestones.length - 1];
    if (last >= c.epochs - c.warmupEpochs) {
      throw new UsageError(
        `--milestones ${c.milestones.join(",")}: milestone ${last} (counted after ${c.warmupEpochs} warm-up ` +
          `epochs) is not reached within --epochs ${c.epochs}`,
        "--milestones",
      );
    }
  }
  if (has("stepSize") && c.schedule !== "step") {
    throw new UsageError(`--step-size only applies to --schedule step, not ${c.schedule}`, "--step-size");
  }
  if (has("gamma") && c.schedule !== "step" && c.schedule !== "multistep") {
    throw new UsageError(`--gamma only applies to --schedule step or multistep, not ${c.schedule}`, "--gamma");
  }
  if (has("minLr") && c.schedule !== "cosine") {
    throw new UsageError(`--min-lr only applies to --schedule cosine, not ${c.schedule}`, "--min-lr");
  }
  for (
    const [key, flag] of [["pctStart", "--pct-start"], ["divFactor", "--div-factor"], [
      "finalDivFactor",
      "--final-div-factor",
    ]] as const
  ) {
    if (has(key) && c.schedule !== "onecycle") {
      throw new UsageError(`${flag} only applies to --schedule onecycle, not ${c.schedule}`, flag);
    }
  }
  if (c.schedule === "onecycle" && c.warmupEpochs > 0) {
    throw new UsageError(
      "--warmup-epochs cannot be combined with --schedule onecycle, which warms up by itself (see --pct-start)",
      "--warmup-epochs",
    );
  }
  if (c.warmupEpochs >= c.epochs && c.warmupEpochs > 0) {
    throw new UsageError(`--warmup-epochs ${c.warmupEpochs} must be less than --epochs ${c.epochs}`, "--warmup-epochs");
  }
  if (c.resume !== null && c.init !== null) {
    throw new UsageError(
      "--resume and --init contradict each other: --resume continues a run (weights, optimizer, position), " +
        "--init starts a new one from weights",
      "--resume",
    );
  }
  if (c.nesterov && c.momentum === 0) {
    throw new UsageError("--nesterov needs --momentum > 0 (or pass --no-nesterov)", "--nesterov");
  }
  if (has("weightDecayAll") && c.weightDecayAll && c.weightDecay === 0) {
    throw new UsageError("--weight-decay-all has no effect with --weight-decay 0", "--weight-decay-all");
  }
}

/**
 * Checks a TrainConfig read back from JSON (`config.json`, checkpoint metadata) with the same rules as the command
 * line, and returns it with its fields in declaration order.
 * @param where names the source in error messages, e.g. "runs/x/last.safetensors metadata".
 * @throws {Error} naming the source and the field: missing, unknown, mistyped or out-of-range fields, and the
 *   contradictions {@linkcode parseTrainArgs} rejects.
 */
export function trainConfigFromJSON(value: unknown, where: string): TrainConfig {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${where}: expected a training configuration object, got ${JSON.stringify(value)}`);
  }
  // Fields added after the first checkpoints were written take the value those runs had.
  const old = value as Record<string, unknown>;
  const v: Record<string, unknown> = {
    transforms: old.dataset === "folder" ? "imagenet" : "cifar",
    decoder: "sharp",
    ...old,
  };
  const unknown = Object.keys(v).filter((k) => !(k in KEY_ORDER));
  if (unknown.length > 0) throw new Error(`${where}: unknown configuration field(s) ${unknown.join(", ")}`);
  const specs = new Map(TRAIN_FLAGS.map((s) => [s.key, s]));
  for (const key of Object.keys(KEY_ORDER) as (keyof TrainConfig)[]) {
    const x = v[key];
    const fail = (expected: string): never => {
      throw new Error(`${where}: field "${key}" must be ${expected}, got ${JSON.stringify(x)}`);
    };
    if (!(key in v)) fail("present");
    const spec = specs.get(key)!;
    if ((key === "resume" || key === "init") && x === null) continue;
    if (key === "dataDir" && x === "") continue;
    if (spec.kind === "boolean") {
      if (typeof x !== "boolean") fail("a boolean");
      continue;
    }
    if (spec.kind === "list") {
      if (!Array.isArray(x)) fail("an array of epochs");
      if ((x as unknown[]).length === 0) continue;
    } else if ((spec.kind === "string") !== (typeof x === "string")) {
      fail(spec.kind === "string" ? "a string" : "a number");
    }
    try {
      convert(spec, Array.isArray(x) ? x.join(",") : String(x));
    } catch (e) {
      throw new Error(`${where}: field "${key}": ${(e as Error).message}`);
    }
  }
  const config = Object.fromEntries(Object.keys(KEY_ORDER).map((k) => [k, v[k]])) as unknown as TrainConfig;
  try {
    checkContradictions(config, {});
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  return config;
}

/** The schedule of a run with `stepsPerEpoch` optimizer steps per epoch (known once the dataset is loaded). */
export function scheduleConfigFor(config: TrainConfig, stepsPerEpoch: number): ScheduleConfig {
  if (!Number.isInteger(stepsPerEpoch) || stepsPerEpoch < 1) {
    throw new RangeError(`scheduleConfigFor: stepsPerEpoch must be an integer >= 1, got ${stepsPerEpoch}`);
  }
  return {
    kind: config.schedule,
    baseLr: config.lr,
    totalSteps: config.epochs * stepsPerEpoch,
    stepsPerEpoch,
    warmupSteps: config.warmupEpochs * stepsPerEpoch,
    warmupStartFactor: WARMUP_START_FACTOR,
    milestones: [...config.milestones],
    gamma: config.gamma,
    stepSize: config.stepSize,
    minLr: config.minLr,
    pctStart: config.pctStart,
    divFactor: config.divFactor,
    finalDivFactor: config.finalDivFactor,
  };
}

function formatDefault(v: unknown): string {
  if (Array.isArray(v)) return v.length ? v.join(",") : "none";
  if (v === "") return "none";
  return String(v);
}

function helpLines(specs: FlagSpec[], defaultOf: (s: FlagSpec) => string): string[] {
  const meta = (s: FlagSpec) => {
    if (s.kind === "boolean") return "";
    if (s.choices) return " NAME";
    if (s.kind === "int") return " N";
    if (s.kind === "number") return " X";
    if (s.kind === "list") return " E1,E2,...";
    return " PATH";
  };
  const width = Math.max(...specs.map((s) => s.flag.length + meta(s).length)) + 6;
  const lines: string[] = [];
  for (const s of specs) {
    const left = `  --${s.flag}${meta(s)}`.padEnd(width);
    const choices = s.choices ? `; one of ${s.choices.join(", ")}` : "";
    const text = `${s.help}${choices}`;
    const dflt = s.key === "help" ? "" : ` (default: ${defaultOf(s)})`;
    if (left.length + text.length + dflt.length <= 118) lines.push(left + text + dflt);
    else lines.push(left + text, " ".repeat(width + 2) + dflt.trim());
  }
  return lines;
}

/** `deno task train --help`: every flag with its default (per dataset where the recipes differ). */
export function trainHelp(): string {
  const recipes = DATASETS.map((d) => [d, recipeFor(d)] as const);
  const defaultOf = (s: FlagSpec): string => {
    if (s.shownDefault !== undefined) return s.shownDefault;
    const key = s.key as keyof Recipe;
    const values = recipes.map(([d, r]) => [d, formatDefault(r[key])] as const);
    if (values.every(([, v]) => v === values[0][1])) return values[0][1];
    // Group datasets sharing a default: "0.2 for cifar10/cifar100/synthetic, 0.1 for folder".
    const groups = new Map<string, string[]>();
    for (const [d, v] of values) groups.set(v, [...(groups.get(v) ?? []), d]);
    return [...groups].map(([v, ds]) => `${v} for ${ds.join("/")}`).join(", ");
  };
  return [
    "Usage: deno task train [--arch resnet18] [--dataset cifar10] [flags]",
    "",
    "Trains a torchvision-style ResNet with SGD on the GPU (WebGPU). With no flags: ResNet-18 on CIFAR-10 with the",
    "reference recipe (one-cycle LR, Nesterov SGD, label smoothing). Folder datasets default to torchvision's",
    "ImageNet recipe. Logs and checkpoints go to --out (metrics.jsonl, summary.csv, config.json, *.safetensors).",
    "",
    "Flags:",
    ...helpLines(TRAIN_FLAGS, defaultOf),
    "",
    "Boolean flags take no value; prefix them with --no- to turn them off (e.g. --no-nesterov).",
    "Exit status 2: unknown or contradictory flags.",
  ].join("\n");
}

const EVAL_FLAGS: FlagSpec[] = [
  {
    flag: "checkpoint",
    key: "checkpoint" as never,
    kind: "string",
    help: "checkpoint or weights file",
    shownDefault: "required",
  },
  {
    flag: "dataset",
    key: "dataset",
    kind: "string",
    choices: DATASETS,
    help: "dataset",
    shownDefault: "the checkpoint's",
  },
  { flag: "data-dir", key: "dataDir", kind: "string", help: "dataset folder", shownDefault: "the checkpoint's" },
  {
    flag: "split",
    key: "split" as never,
    kind: "string",
    choices: ["test", "val"],
    help: "split",
    shownDefault: "test",
  },
  {
    flag: "save-logits",
    key: "saveLogits" as never,
    kind: "string",
    help: "write float32 logits (.npy), dataset order",
    shownDefault: "none",
  },
  { flag: "json", key: "json" as never, kind: "boolean", help: "print one JSON object", shownDefault: "false" },
  { flag: "batch-size", key: "batchSize", kind: "int", range: [1, 1e6], help: "images per batch", shownDefault: "256" },
  {
    flag: "arch",
    key: "arch",
    kind: "string",
    choices: ARCHS,
    help: "bare weights: network",
    shownDefault: "inferred",
  },
  { flag: "width", key: "width", kind: "int", range: [1, 4096], help: "bare weights: width", shownDefault: "inferred" },
  {
    flag: "num-classes",
    key: "numClasses" as never,
    kind: "int",
    range: [1, 1e6],
    help: "bare weights: classes",
    shownDefault: "inferred",
  },
  {
    flag: "stem",
    key: "stem",
    kind: "string",
    choices: ["cifar", "imagenet"],
    help: "bare weights: stem",
    shownDefault: "inferred",
  },
  {
    flag: "image-size",
    key: "imageSize",
    kind: "int",
    range: [8, 4096],
    help: "bare weights: image side",
    shownDefault: "32 (cifar) / 224",
  },
  {
    flag: "transforms",
    key: "transforms",
    kind: "string",
    choices: DATA_TRANSFORMS,
    help: "folder: imagenet (resize + center crop) or cifar (as is)",
    shownDefault: "the checkpoint's",
  },
  {
    flag: "decoder",
    key: "decoder",
    kind: "string",
    choices: IMAGE_DECODERS,
    help: "folder: image decoder (js: no native addon, --transforms cifar)",
    shownDefault: "the checkpoint's",
  },
  { flag: "help", key: "help", kind: "boolean", help: "show this help" },
];

/**
 * Parses `deno task eval` flags, or returns "help".
 * @throws {UsageError} for an unknown flag, a bad value, or a missing `--checkpoint`.
 */
export function parseEvalArgs(argv: string[]): EvalConfig | "help" {
  const raw = parseStrict(argv, EVAL_FLAGS, "eval");
  if (raw.help) return "help";
  const v: Record<string, unknown> = {};
  for (const spec of EVAL_FLAGS) {
    if (raw[spec.flag] !== undefined && spec.flag !== "help") v[spec.key] = convert(spec, raw[spec.flag]!);
  }
  if (v.checkpoint === undefined) throw new UsageError("deno task eval: --checkpoint PATH is required", "--checkpoint");
  return {
    checkpoint: v.checkpoint as string,
    dataset: (v.dataset ?? null) as DatasetName | null,
    dataDir: (v.dataDir ?? null) as string | null,
    split: (v.split ?? "test") as "test" | "val",
    saveLogits: (v.saveLogits ?? null) as string | null,
    json: (v.json ?? false) as boolean,
    batchSize: (v.batchSize ?? 256) as number,
    arch: (v.arch ?? null) as Arch | null,
    width: (v.width ?? null) as number | null,
    numClasses: (v.numClasses ?? null) as number | null,
    stem: (v.stem ?? null) as Stem | null,
    imageSize: (v.imageSize ?? null) as number | null,
    transforms: (v.transforms ?? null) as DataTransforms | null,
    decoder: (v.decoder ?? null) as ImageDecoder | null,
  };
}

/** `deno task eval --help`. */
export function evalHelp(): string {
  return [
    "Usage: deno task eval --checkpoint PATH [--dataset ...] [--split test|val] [--save-logits out.npy] [--json]",
    "",
    "Evaluates a checkpoint (or a bare torchvision safetensors file): loss, top-1, top-5, per-class accuracy and a",
    "confusion matrix. The --arch/--width/--num-classes/--stem/--image-size flags describe a bare weights file that",
    "carries no metadata.",
    "",
    "Flags:",
    ...helpLines(EVAL_FLAGS, (s) => s.shownDefault ?? ""),
  ].join("\n");
}
