/**
 * The command line of `deno task train`: its flags (each sets one {@linkcode TrainConfig} field), their parsing into
 * a resolved configuration, and `--help`.
 * @module
 */
import { usageErrorFrom } from "./args.ts";
import { type FlagSpec, helpLines, parseFlagTable } from "./flag_table.ts";
import {
  ConfigError,
  DATASETS,
  RECIPE_SPECS,
  type RecipeField,
  recipeFor,
  RECIPES,
  resolveTrainConfig,
  TRAIN_FIELDS,
  type TrainConfig,
} from "../train/config.ts";
import { flagOf } from "./args.ts";
import { WARMUP_START_FACTOR } from "../train/lr_schedule.ts";

/** Every flag of `deno task train`, in `--help` order. */
export const TRAIN_FLAGS: readonly FlagSpec<keyof TrainConfig>[] = [
  { key: "arch", help: "network", shownDefault: "resnet18" },
  { key: "dataset", help: "dataset", shownDefault: "cifar10" },
  {
    key: "dataDir",
    help: "needed by folder (train/<class>/ + val/ or test/<class>/, or .tar/.tar.gz of them), imagenet",
    shownDefault: "data",
  },
  {
    key: "recipe",
    help: "group of defaults (see Recipes below)",
    shownDefault: "classic for folder/imagenet, else cifar",
  },
  { key: "epochs", help: "training epochs" },
  { key: "batchSize", help: "images per optimizer step" },
  { key: "lr", help: "peak learning rate (onecycle: max_lr)" },
  { key: "momentum", help: "SGD momentum" },
  { key: "nesterov", help: "Nesterov momentum (--no-nesterov to disable)" },
  {
    key: "weightDecay",
    help: "L2 weight decay (conv and fc weights only)",
  },
  {
    key: "weightDecayAll",
    help: "also decay BatchNorm parameters and biases",
  },
  { key: "schedule", help: "LR schedule (per step)" },
  {
    key: "warmupEpochs",
    help: `linear warm-up epochs from ${WARMUP_START_FACTOR} x lr (not with onecycle)`,
  },
  { key: "milestones", help: "multistep: comma-separated epochs, e.g. 30,60,80" },
  { key: "gamma", help: "step/multistep: LR decay factor" },
  { key: "stepSize", help: "step: epochs between LR decays" },
  { key: "minLr", help: "cosine: final learning rate" },
  {
    key: "pctStart",
    help: "onecycle: fraction of steps warming up",
  },
  { key: "divFactor", help: "onecycle: lr / initial LR" },
  {
    key: "finalDivFactor",
    help: "onecycle: initial LR / final LR",
  },
  {
    key: "labelSmoothing",
    help: "cross-entropy label smoothing",
  },
  { key: "clipGradNorm", help: "max gradient norm, 0 = off" },
  { key: "seed", help: "random seed (init, data order, aug)" },
  {
    key: "valSplit",
    help: "images of train held out for validation (and best)",
  },
  { key: "out", help: "run folder", shownDefault: "runs/<arch>-<dataset>" },
  { key: "width", help: "channels of the first stage" },
  { key: "stem", help: "network stem override" },
  { key: "imageSize", help: "training image side (pixels)" },
  {
    key: "transforms",
    help: "folder/imagenet: RandomResizedCrop or pad-4 crop",
  },
  {
    key: "decoder",
    help: "folder/imagenet: js needs no native addon (JPEG, --transforms cifar)",
  },
  {
    key: "autoAugment",
    help: "per-image augmentation: TrivialAugmentWide (ta_wide), RandAugment (ra), AutoAugment policy",
  },
  { key: "raNumOps", help: "--auto-augment ra: operations per image (N)" },
  { key: "raMagnitude", help: "--auto-augment ra: magnitude bin of 31 (M)" },
  { key: "randomErase", help: "RandomErasing probability (normalised image, value 0)" },
  {
    key: "mixupAlpha",
    help: "mixup Beta(a, a), 0 = off; with cutmix, one per batch; train top-1 counts the dominant label",
  },
  { key: "cutmixAlpha", help: "CutMix Beta(a, a), 0 = off (the box's area sets the label weights)" },
  { key: "raSampler", help: "repeated augmentation: each image of an epoch --ra-reps times, augmented apart" },
  { key: "raReps", help: "--ra-sampler: repetitions per image" },
  {
    key: "modelEma",
    help: "keep an exponential moving average of the weights, evaluated each epoch (ema_* metrics)",
  },
  {
    key: "modelEmaDecay",
    help: "--model-ema decay, adjusted (torchvision): 1 - (1 - decay) x ranks x batch x steps / epochs",
  },
  { key: "modelEmaSteps", help: "--model-ema: steps between updates (copies during warm-up epochs)" },
  {
    key: "resume",
    help: "auto (newest valid checkpoint in --out) or a checkpoint path",
    shownDefault: "none",
  },
  {
    key: "allowConfigChange",
    help: "with --resume: continue a checkpoint of another configuration (not an exact continuation)",
  },
  {
    key: "init",
    help: "initial weights only (safetensors, e.g. from torchvision)",
    shownDefault: "none",
  },
  { key: "keep", help: "newest checkpoints kept besides last and best" },
  {
    key: "checkpointEvery",
    help: "steps between mid-epoch checkpoints, 0 = at epoch ends only",
  },
  {
    key: "zeroInitResidual",
    help: "zero the last BN gamma of each residual block",
  },
  { key: "logEvery", help: "steps between loss readbacks" },
  { key: "workers", help: "data-loading workers" },
  {
    key: "collectiveTimeout",
    help: "mpirun/srun: seconds a rank waits for the others (rank 0 evaluating too)",
  },
  { key: "help", help: "show this help" },
];

/**
 * Parses `deno task train` flags into a resolved {@linkcode TrainConfig} (dataset defaults applied), or "help" for
 * `--help`/`-h`.
 * @throws {UsageError} for an unknown flag, a bad value (naming the flag and the value) or contradictory flags.
 */
export function parseTrainArgs(argv: string[]): TrainConfig | "help" {
  const given = parseFlagTable(argv, TRAIN_FLAGS, TRAIN_FIELDS, "train");
  if (given === "help") return "help";
  try {
    return resolveTrainConfig(given as Partial<TrainConfig>);
  } catch (e) {
    throw e instanceof ConfigError ? usageErrorFrom(e) : e;
  }
}

function formatDefault(v: unknown): string {
  if (Array.isArray(v)) return v.length ? v.join(",") : "none";
  if (v === "") return "none";
  return String(v);
}

/** `deno task train --help`: every flag with its default (per dataset where the recipes differ). */
export function trainHelp(): string {
  const recipes = DATASETS.map((d) => [d, recipeFor(d)] as const);
  const defaultOf = (s: FlagSpec<keyof TrainConfig>): string => {
    if (s.shownDefault !== undefined) return s.shownDefault;
    const key = s.key as keyof ReturnType<typeof recipeFor>;
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
    "classic ImageNet recipe; --recipe picks another group of defaults (see Recipes below). Logs and checkpoints",
    "go to --out (metrics.jsonl, summary.csv, config.json, *.safetensors).",
    "",
    "Flags:",
    ...helpLines(TRAIN_FLAGS, TRAIN_FIELDS, defaultOf),
    "",
    ...recipeHelpLines(),
    "",
    "Data parallel: under mpirun -np N or srun (Open MPI; MPICH untested; loaded through FFI only then), each of N",
    "processes is one rank with its own WebGPU device; --batch-size is per rank, so the global batch is N x",
    "--batch-size (scale --lr yourself). Rank r trains on samples r, r+N, ... of every global batch (torch's",
    "DistributedSampler), so the images of a step and their augmentation do not depend on N. Gradients are averaged",
    "over the ranks by an MPI all-reduce; batch-norm statistics stay per rank (DDP without SyncBN), and rank 0's",
    "running statistics are the checkpoint's. Rank 0 alone evaluates (the whole validation and test sets), logs and",
    "writes checkpoints; --resume needs the same N (another N: refused, or with --allow-config-change the epoch",
    "restarts). See the README for GPU pinning and costs.",
    "",
    "Boolean flags take no value; prefix them with --no- to turn them off (e.g. --no-nesterov).",
    "Exit status 2: unknown or contradictory flags.",
  ].join("\n");
}

/** A field's value as a flag: `--nesterov`, `--no-nesterov`, `--lr 0.5`, `--milestones none`. */
function flagText(field: RecipeField, value: unknown): string {
  if (typeof value === "boolean") return value ? flagOf(field) : `--no-${flagOf(field).slice(2)}`;
  return `${flagOf(field)} ${formatDefault(value)}`;
}

/**
 * The "Recipes:" section of `--help`: each recipe's summary and the fields in which the recipes differ, as flags,
 * wrapped to 118 columns; the fields they share on one line; what `new` lacks.
 */
function recipeHelpLines(): string[] {
  // In --help's order.
  const fields = TRAIN_FLAGS.map((f) => f.key).filter((k) => k in RECIPE_SPECS.cifar.fields) as RecipeField[];
  const same = (f: RecipeField) =>
    RECIPES.every((r) => JSON.stringify(RECIPE_SPECS[r].fields[f]) === JSON.stringify(RECIPE_SPECS.cifar.fields[f]));
  const wrap = (words: string[], indent: string): string[] => {
    const lines: string[] = [];
    let line = indent;
    for (const w of words) {
      if (line.length + w.length + 1 > 118 && line.trim() !== "") lines.push(line.trimEnd()), line = indent;
      line += w + " ";
    }
    return [...lines, line.trimEnd()];
  };
  const lines = [
    "Recipes (--recipe NAME sets these defaults; each flag still overrides them; --dataset synthetic shortens",
    "the cifar recipe to 3 epochs of batch 32):",
  ];
  for (const r of RECIPES) {
    const spec = RECIPE_SPECS[r];
    lines.push(`  ${r.padEnd(8)} ${spec.summary}`);
    lines.push(...wrap(fields.filter((f) => !same(f)).map((f) => flagText(f, spec.fields[f])), "             "));
    if (spec.missing) lines.push(...wrap(`missing: ${spec.missing}`.split(" "), "             "));
  }
  lines.push("  all      the same in every recipe:");
  lines.push(...wrap(fields.filter(same).map((f) => flagText(f, RECIPE_SPECS.cifar.fields[f])), "             "));
  return lines;
}
