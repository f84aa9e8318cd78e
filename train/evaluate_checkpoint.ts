/**
 * The library side of `deno task eval`: resolves what to evaluate from a file and the command line, then runs the
 * model over a dataset split.
 *
 * - A training checkpoint (`__metadata__.format` = `resnet-webgpu-checkpoint/1`) carries the architecture, the class
 *   names, the input normalisation and the training configuration (dataset, data folder, validation split, seed,
 *   image size); `--dataset` and `--data-dir` may point it at other data. With the normalisation and class names
 *   recorded, a folder dataset's test split needs no train/ folder (`--split val`, held out of train/, does).
 * - A bare weights file (torchvision's `state_dict` saved with `safetensors.torch.save_file`, or `deno task export`
 *   output) carries tensors and at most `arch_spec`/`class_names` metadata: without `arch_spec` the architecture is
 *   inferred from the tensor names and shapes ({@linkcode inferResNetSpec}); `--dataset` is then required.
 *
 * `--arch/--width/--num-classes/--stem` must agree with what the file holds ({@linkcode checkSpecFlags}); the whole
 * state dict is checked against the resolved architecture before anything is loaded.
 * @module
 */
export { describeSpec, inferResNetSpec } from "../models/resnet_from_state.ts";
import { CIFAR100_CLASS_NAMES, CIFAR10_CLASS_NAMES } from "../data/class_names.ts";
import type { ImageDecoder } from "../data/decode_rgb.ts";
import { createLoaders, type DataConfig, type Loaders } from "../data/loaders.ts";
import { addMissingBatchCounters, expectedShapes, inferResNetSpec, specFromJSON } from "../models/resnet_from_state.ts";
import type { DataTransforms } from "../data/transforms.ts";
import { SYNTHETIC_CLASSES } from "../data/synthetic.ts";
import { initWebGPU } from "../kernels/webgpu_backend.ts";
import type { StateDict } from "../io/host_tensor.ts";
import { createResNet } from "../models/resnet.ts";
import { archName, type ResNetSpec } from "../models/resnet_spec.ts";
import {
  CHECKPOINT_FORMAT,
  checkpointFromContents,
  checkStateDictShapes,
  type InputNormalization,
  normalizationFromJSON,
  weightsFromContents,
} from "../io/checkpoint.ts";
import { decodeSafetensors } from "../io/safetensors.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";
import {
  type Arch,
  checkDecoderFits,
  checkImageSizeFits,
  type DatasetName,
  type EvalConfig,
  recipeFor,
  type TrainConfig,
  trainConfigFromJSON,
} from "./config.ts";
import { ConfigError, literal } from "../io/config_error.ts";
import { isFolderDataset } from "../data/folder_datasets.ts";
import { statIfExists } from "../io/stat_if_exists.ts";

/** Where the weights came from: a training checkpoint, or a bare weights file. */
export type ModelSource = "checkpoint" | "weights";

/** Options of {@linkcode evaluateCheckpoint} that are not part of the command line. */
export interface EvaluateCheckpointOptions {
  /** Non-fatal problems (class names that differ from the dataset's, skipped images, unusable metadata). */
  onWarning?: (message: string) => void;
  /** Dataset download progress. */
  onProgress?: (message: string) => void;
  /** After each batch: images evaluated so far, of `total` (an evaluation of 10,000 images takes minutes). */
  onImages?: (done: number, total: number) => void;
  /** How warnings name a configuration field (a command line passes its flags); default: the field's own name. */
  nameOf?: (field: string) => string;
}

/** What {@linkcode evaluateCheckpoint} measured, and on what. */
export interface CheckpointEvaluation {
  /** Loss, top-1, top-5, per-class accuracy and confusion matrix (class names: the dataset's). */
  result: EvalResult;
  /** With `saveLogits`: [numImages, numClasses] float32, row-major, in dataset order. */
  logits?: Float32Array;
  /** Images evaluated. */
  numImages: number;
  /** Classes of the model and of the dataset (they must agree). */
  numClasses: number;
  /** The architecture the weights were loaded into. */
  spec: ResNetSpec;
  /** torchvision's name of the architecture, or null for a block layout none of them has. */
  arch: Arch | null;
  /** The dataset evaluated on: `--dataset`, else the checkpoint's. */
  dataset: DatasetName;
  /** The split evaluated: the test set, or the images the checkpoint's run held out of its training set. */
  split: "test" | "val";
  /** A training checkpoint or a bare weights file. */
  source: ModelSource;
  /** Completed training epochs, for a checkpoint. */
  epoch?: number;
}

/** Flags that describe a model; each must agree with the file. */
export type SpecFlags = Pick<EvalConfig, "arch" | "width" | "numClasses" | "stem">;

/**
 * Loads `config.checkpoint` (a training checkpoint or a bare weights file), builds the model it describes, and
 * evaluates it on `config.split` of the dataset, on the tfjs `webgpu` backend (`initWebGPU()` runs if it has not;
 * call `registerFastKernels()` before for our kernels).
 * @throws {ConfigError} naming the field: a bare file without `dataset`, `split: "val"` without a validation split,
 *   fields that contradict the file, a dataset of another class count given by `dataset`.
 * @throws {Error} naming the file: unreadable, corrupt, not a ResNet state dict, tensors of the wrong shape.
 */
export async function evaluateCheckpoint(
  config: EvalConfig,
  options: EvaluateCheckpointOptions = {},
): Promise<CheckpointEvaluation> {
  const path = config.checkpoint;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
    throw new Error(`${path}: cannot read the checkpoint: ${why}`);
  }
  const resolved = resolveModel(bytes, path, config, options.onWarning);
  const spec = checkSpecFlags(resolved.spec, config, path);
  const expected = expectedShapes(spec);
  if (resolved.source === "weights") addMissingBatchCounters(resolved.model, expected);
  // Everything is checked (names, shapes, dtypes) before a model is built, so errors name the file.
  const state = checkStateDictShapes(resolved.model, expected, path);
  const data = resolveData(config, resolved.train, resolved.input, path);
  if (isFolderDataset(data.dataset) && config.dataDir === null && !(await statIfExists(data.dataDir))) {
    // Only a recorded folder can be missing here: without one, resolveData asked for dataDir.
    throw new ConfigError(
      "dataDir",
      `${literal(data.dataDir)}, the data folder recorded in ${literal(path)}, is not found (moved or deleted?): ` +
        `pass {dataDir} with where the ${data.dataset} data is now`,
    );
  }
  // Fixed-size datasets are checked before any data is read (or downloaded); folders once they are indexed.
  checkClassCount(spec.numClasses, data.dataset, KNOWN_CLASS_COUNTS[data.dataset], config, path);

  const loaders = await createLoaders({
    dataset: data.dataset,
    dataDir: data.dataDir,
    valSplit: data.valSplit,
    seed: data.seed,
    batchSize: config.batchSize,
    imageSize: data.imageSize,
    transforms: data.transforms,
    decoder: data.decoder,
    augment: false,
    // What the model's run recorded replaces what its training images would give (normalisation, classes), so
    // that the split evaluated is all the data needed; an older file without them reads the training images.
    ...recordedData(data, config, resolved),
  }, { onWarning: options.onWarning, onProgress: options.onProgress, nameOf: options.nameOf });
  try {
    const loader = config.split === "val" ? loaders.val : loaders.test;
    if (!loader) {
      // resolveData only asks for val with valSplit > 0, and createLoaders builds it then.
      throw new Error(`${path}: the ${data.dataset} loaders have no ${config.split} split`);
    }
    checkClassCount(spec.numClasses, data.dataset, loaders.numClasses, config, path);
    warnOnClassNames(resolved.classNames, loaders, path, options.onWarning);
    await initWebGPU(); // idempotent; never let tfjs fall back to its CPU backend
    const model = createResNet(spec);
    try {
      model.importState(state);
      const { result, logits } = await evaluate(model, loader, loaders.numClasses, {
        classNames: loaders.classNames,
        keepLogits: config.saveLogits !== null,
        onImages: options.onImages,
      });
      return {
        result,
        logits,
        numImages: loader.numImages,
        numClasses: loaders.numClasses,
        spec,
        arch: archName(spec),
        dataset: data.dataset,
        split: config.split,
        source: resolved.source,
        ...(resolved.epoch !== undefined ? { epoch: resolved.epoch } : {}),
      };
    } finally {
      model.dispose();
    }
  } finally {
    await Promise.all([loaders.train, loaders.val, loaders.test].map((l) => l?.close()));
  }
}

/** Classes of the datasets whose class count is fixed (CIFAR-100: the fine labels, as training uses them). */
const KNOWN_CLASS_COUNTS: Record<DatasetName, number | undefined> = {
  cifar10: CIFAR10_CLASS_NAMES.length,
  cifar100: CIFAR100_CLASS_NAMES.length,
  synthetic: SYNTHETIC_CLASSES,
  folder: undefined,
  imagenet: undefined, // a miniature or a partial download has fewer than 1,000 classes: checked once indexed
};

function checkClassCount(
  modelClasses: number,
  dataset: DatasetName,
  dataClasses: number | undefined,
  config: EvalConfig,
  path: string,
): void {
  if (dataClasses === undefined || dataClasses === modelClasses) return;
  const message = `${path} has a classifier for ${modelClasses} classes (fc.weight [${modelClasses}, ...]) but ` +
    `dataset ${dataset} has ${dataClasses} classes`;
  if (config.dataset !== null) {
    throw new ConfigError("dataset", `{dataset} ${config.dataset}: ${literal(message)}`);
  }
  throw new Error(message);
}

/** What a file says about the model and its training. */
interface ResolvedModel {
  source: ModelSource;
  model: StateDict;
  spec: ResNetSpec;
  /** The training configuration (checkpoints only). */
  train: TrainConfig | null;
  /** Class names recorded with the weights, if any. */
  classNames: string[] | null;
  /** The input normalisation recorded with the weights (checkpoints and exports since it is recorded), if any. */
  normalization: InputNormalization | null;
  /** How the training images were prepared: a checkpoint's config, or an export's "input" metadata; null if neither. */
  input: RecordedInput | null;
  epoch?: number;
}

/** The data pipeline a model was trained with, as far as evaluating it elsewhere needs (an export's "input"). */
export interface RecordedInput {
  dataset: DatasetName;
  imageSize: number;
  transforms?: DataTransforms | null;
  decoder?: ImageDecoder | null;
}

/** An export's "input" metadata, or null (with a warning) when absent or unusable. */
function recordedInput(json: string | undefined, path: string, onWarning?: (m: string) => void): RecordedInput | null {
  if (json === undefined) return null;
  try {
    const v = JSON.parse(json);
    if (typeof v?.dataset !== "string" || !Number.isInteger(v.imageSize)) throw new Error(`got ${json}`);
    return v as RecordedInput;
  } catch (e) {
    onWarning?.(`${path}: ignoring metadata "input": ${(e as Error).message}`);
    return null;
  }
}

function resolveModel(
  bytes: Uint8Array,
  path: string,
  config: EvalConfig,
  onWarning?: (message: string) => void,
): ResolvedModel {
  // Decoded once: the format decides how the same tensors and metadata are read.
  const contents = decodeSafetensors(bytes, path);
  if (contents.metadata.format === CHECKPOINT_FORMAT) {
    const state = checkpointFromContents(contents, path);
    const train = trainConfigFromJSON(state.config, `${path} metadata "config"`);
    const spec = specFromJSON(state.archSpec, `${path} metadata "arch_spec"`);
    return {
      source: "checkpoint",
      model: state.model,
      spec,
      train,
      classNames: state.classNames,
      normalization: state.normalization ?? null,
      input: train,
      epoch: state.epoch,
    };
  }
  // A bare weights file: metadata is optional and advisory; the tensors decide.
  const weights = weightsFromContents(contents);
  let spec: ResNetSpec | null = null;
  if (weights.metadata.arch_spec !== undefined) {
    try {
      spec = specFromJSON(JSON.parse(weights.metadata.arch_spec), `${path} metadata "arch_spec"`);
    } catch (e) {
      onWarning?.(`ignoring unusable metadata, inferring the architecture from the tensors: ${(e as Error).message}`);
    }
  }
  let classNames: string[] | null = null;
  if (weights.metadata.class_names !== undefined) {
    try {
      const names = JSON.parse(weights.metadata.class_names);
      if (Array.isArray(names) && names.every((n) => typeof n === "string")) classNames = names;
      else throw new Error(`expected an array of strings, got ${weights.metadata.class_names}`);
    } catch (e) {
      onWarning?.(`${path}: ignoring metadata "class_names": ${(e as Error).message}`);
    }
  }
  let normalization: InputNormalization | null = null;
  if (weights.metadata.normalization !== undefined) {
    try {
      normalization = normalizationFromJSON(JSON.parse(weights.metadata.normalization), `metadata "normalization"`);
    } catch (e) {
      onWarning?.(`${path}: ignoring ${(e as Error).message}`);
    }
  }
  if (config.dataset === null) {
    throw new ConfigError(
      "dataset",
      `${path} is a bare weights file (no training configuration): pass {dataset} (and {dataDir} where needed)`,
    );
  }
  return {
    source: "weights",
    model: weights.model,
    spec: spec ?? inferResNetSpec(weights.model, path),
    train: null,
    classNames,
    normalization,
    input: recordedInput(weights.metadata.input, path, onWarning),
  };
}

/** The data to evaluate on: the checkpoint's, with `--dataset/--data-dir/--image-size` applied. */
interface ResolvedData {
  dataset: DatasetName;
  dataDir: string;
  valSplit: number;
  seed: number;
  imageSize?: number;
  transforms?: DataTransforms;
  decoder?: ImageDecoder;
}

function resolveData(
  config: EvalConfig,
  train: TrainConfig | null,
  input: RecordedInput | null,
  path: string,
): ResolvedData {
  // resolveModel has made sure that a bare file comes with --dataset.
  const dataset = (config.dataset ?? train!.dataset) as DatasetName;
  const sameData = train !== null && train.dataset === dataset;
  if (dataset === "synthetic" && config.dataDir !== null) {
    throw new ConfigError("dataDir", "{dataDir} does not apply to {dataset} synthetic");
  }
  const dataDir = config.dataDir ?? (sameData ? train.dataDir : recipeFor(dataset).dataDir);
  if (isFolderDataset(dataset) && !dataDir) {
    throw new ConfigError("dataDir", `{dataset} ${dataset} needs {dataDir} (the folder that holds its images)`);
  }
  for (const key of ["transforms", "decoder"] as const) {
    if (!isFolderDataset(dataset) && config[key] !== null) {
      throw new ConfigError(key, `{${key}} applies to {dataset} folder and imagenet only`);
    }
  }
  checkImageSizeFits(dataset, config.imageSize);
  const folder = isFolderDataset(dataset);
  // Images prepared as in training unless told otherwise: a model trained on 32x32 CIFAR-style images (cifar10,
  // cifar100, synthetic, or a folder with transforms cifar) gets a class folder's images that way too, not at 224.
  const trainedAs = input ? isFolderDataset(input.dataset) ? input.transforms ?? "imagenet" : "cifar" : "imagenet";
  const transforms = folder ? config.transforms ?? trainedAs : undefined;
  const decoder = folder ? config.decoder ?? (input?.decoder ?? "sharp") : undefined;
  checkDecoderFits(decoder, transforms);
  if (config.split === "val") {
    if (train === null) {
      throw new ConfigError(
        "split",
        `{split} val needs a training checkpoint: ${path} is a bare weights file with no record of which images ` +
          "were held out for validation; use {split} test",
      );
    }
    if (train.valSplit === 0) {
      throw new ConfigError(
        "split",
        `{split} val: ${path} was trained without a validation split (valSplit 0), so every training image was ` +
          "trained on; use {split} test",
      );
    }
    if (!sameData) {
      throw new ConfigError(
        "split",
        `{split} val: the validation split is held out of ${train.dataset}'s training set, not of {dataset} ` +
          `${dataset}; use {split} test`,
      );
    }
  }
  return {
    dataset,
    // createLoaders needs a non-empty folder; synthetic data ignores it (the trainer passes "data" too).
    dataDir: dataDir || "data",
    // The same (train size, valSplit, seed) reproduces the held-out images; the test split needs none of them.
    valSplit: config.split === "val" ? train!.valSplit : 0,
    seed: train?.seed ?? 0,
    imageSize: config.imageSize ??
      (sameData || (input && transforms === trainedAs) ? input!.imageSize : recipeFor(dataset, transforms).imageSize),
    transforms,
    decoder,
  };
}

/**
 * What the data loaders take from the model's record: a folder dataset with transforms "cifar" is normalised with
 * the recorded mean/std (what the model was trained on) instead of the training images'; the test split of a
 * `folder` dataset without train/ images is labelled by the recorded classes, when nothing else needs train/.
 */
function recordedData(
  data: ResolvedData,
  config: EvalConfig,
  resolved: ResolvedModel,
): Pick<DataConfig, "normalization" | "classNames"> {
  if (!isFolderDataset(data.dataset)) return {};
  const normalization = data.transforms === "cifar" && resolved.normalization ? resolved.normalization : undefined;
  // The imagenet transforms normalise with ImageNet's constants: only "cifar" needs train/ for its statistics.
  const trainNotNeeded = config.split === "test" && (data.transforms !== "cifar" || normalization !== undefined);
  const classNames = data.dataset === "folder" && trainNotNeeded && resolved.classNames
    ? resolved.classNames
    : undefined;
  return { ...(normalization ? { normalization } : {}), ...(classNames ? { classNames } : {}) };
}

function warnOnClassNames(
  names: string[] | null,
  loaders: Loaders,
  path: string,
  onWarning?: (message: string) => void,
): void {
  if (names === null) return;
  const at = names.findIndex((n, i) => n !== loaders.classNames[i]);
  if (at >= 0 || names.length !== loaders.classNames.length) {
    const i = at >= 0 ? at : Math.min(names.length, loaders.classNames.length);
    onWarning?.(
      `${path} was trained with other class names than the dataset's: class ${i} is ` +
        `${JSON.stringify(names[i] ?? null)} there and ${JSON.stringify(loaders.classNames[i] ?? null)} in the ` +
        "dataset; the report uses the dataset's names (its labels decide what counts as correct)",
    );
  }
}

/**
 * Checks the model flags against the spec a file gives (recorded or inferred) and returns it.
 * @throws {ConfigError} naming the first field that contradicts the file, with what the file holds.
 */
export function checkSpecFlags(spec: ResNetSpec, flags: SpecFlags, source: string): ResNetSpec {
  const contradiction = (field: keyof SpecFlags, given: unknown, found: string): never => {
    throw new ConfigError(field, `{${field}} ${literal(`${given} contradicts ${source}, which holds ${found}`)}`);
  };
  if (flags.arch !== null && archName(spec) !== flags.arch) {
    contradiction("arch", flags.arch, `${archName(spec) ?? "a ResNet"} (${spec.block} blocks [${spec.layers}])`);
  }
  if (flags.width !== null && flags.width !== spec.width) {
    contradiction("width", flags.width, `width ${spec.width} (conv1.weight has ${spec.width} output channels)`);
  }
  if (flags.numClasses !== null && flags.numClasses !== spec.numClasses) {
    contradiction("numClasses", flags.numClasses, `a classifier for ${spec.numClasses} classes (fc.weight)`);
  }
  if (flags.stem !== null && flags.stem !== spec.stem) {
    contradiction("stem", flags.stem, `the ${spec.stem} stem (conv1 ${spec.stem === "imagenet" ? "7x7" : "3x3"})`);
  }
  return spec;
}
