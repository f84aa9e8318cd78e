/**
 * Training checkpoints: one safetensors file that `safetensors.torch.load_file` reads, holding
 * - the model's state dict under torchvision's bare names and layouts (`conv1.weight`, `bn1.num_batches_tracked`...),
 * - the optimizer's momentum buffers as `optim.<parameter name>`, same shape and layout as the parameter,
 * - when the run keeps an exponential moving average of the weights (`--model-ema`), its state dict as
 *   `ema.<name>` (the model's names, shapes and layouts) and its update count as `ema.n_averaged` (int64 []); torch's
 *   `AveragedModel.state_dict()` holds the same tensors as `module.<name>` and `n_averaged`,
 * - in `__metadata__` (strings; JSON where structured): `format` = {@linkcode CHECKPOINT_FORMAT}, `epoch`,
 *   `global_step`, `data_position` (`{"epoch","batch"}`), `rng`, `config`, `best_metric` (number or `null`),
 *   `class_names` (array), `arch_spec` and `normalization` (`{"mean": [r, g, b], "std": [r, g, b]}`, in [0, 1] units:
 *   what the inputs were normalised with, torchvision's `Normalize(mean, std)`; absent from older checkpoints).
 *
 * A weights-only file (as exported from torchvision, or by `deno task export`) loads with {@linkcode loadWeights}.
 * Nothing here touches a model: callers check names and shapes with {@linkcode checkStateDictShapes} before applying
 * anything, so a model is never partially loaded.
 * @module
 */
import { FieldMessageError, literal } from "./config_error.ts";
import type { HostDType, StateDict } from "./host_tensor.ts";
import { atomicWriteFile } from "./atomic_write.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  isCount,
  METADATA_KEY,
  type SafetensorsContents,
} from "./safetensors.ts";

/** Value of `__metadata__.format` in every checkpoint this module writes. */
export const CHECKPOINT_FORMAT = "resnet-webgpu-checkpoint/1";

/** Prefix of optimizer-state tensor names inside a checkpoint. */
export const OPTIM_PREFIX = "optim.";

/** Prefix of the weight average's tensors inside a checkpoint (`ema.conv1.weight`, `ema.n_averaged`). */
export const EMA_PREFIX = "ema.";

/** The weight average's update count inside its state dict (torch's `AveragedModel.n_averaged`). */
export const EMA_COUNT = "n_averaged";

/** Where the data loader stands: the next batch to read is batch `batch` of epoch `epoch`. */
export interface DataPosition {
  /** Epoch of the data order (its shuffle). */
  epoch: number;
  /** Index of the next batch within that epoch. */
  batch: number;
}

/**
 * Per-channel mean and std, in [0, 1] units, that a model's input images were normalised with (torchvision's
 * `Normalize(mean, std)` after `ToTensor()`).
 */
export interface InputNormalization {
  mean: [number, number, number];
  std: [number, number, number];
}

/**
 * Checks a recorded normalisation (checkpoint or weights metadata, `config.json`): three finite means and three
 * positive finite stds.
 * @throws {Error} naming `where` and what it holds.
 */
export function normalizationFromJSON(value: unknown, where: string): InputNormalization {
  const triple = (x: unknown, positive: boolean) =>
    Array.isArray(x) && x.length === 3 && x.every((v) => Number.isFinite(v) && (!positive || v > 0));
  const v = value as Partial<InputNormalization> | null;
  if (typeof v !== "object" || v === null || !triple(v.mean, false) || !triple(v.std, true)) {
    throw new Error(
      `${where} must be {"mean": [r, g, b], "std": [r, g, b]} (stds > 0), got ${JSON.stringify(value)}`,
    );
  }
  return { mean: [...v.mean!] as InputNormalization["mean"], std: [...v.std!] as InputNormalization["std"] };
}

/** Everything a run needs to continue exactly where it stopped. */
export interface CheckpointState {
  /** The model's state dict, torchvision names and layouts, torchvision order. */
  model: StateDict;
  /** Optimizer state keyed by parameter name (SGD: the momentum buffer, shaped like the parameter). */
  optimizer: StateDict;
  /**
   * The weight average: a state dict of the model's names and shapes plus {@linkcode EMA_COUNT}; absent or empty
   * when the run keeps none.
   */
  ema?: StateDict;
  /** Completed epochs. */
  epoch: number;
  /** Completed optimizer steps since the start of training (drives the LR schedule). */
  globalStep: number;
  /** The data order position to resume from. */
  dataPosition: DataPosition;
  /** Random generator state, JSON-serialisable, opaque here. */
  rng: unknown;
  /** The resolved run configuration, JSON-serialisable. */
  config: unknown;
  /** Best validation metric so far, or null before the first evaluation. */
  bestMetric: number | null;
  /** Class names, index = label. */
  classNames: string[];
  /** Architecture description, JSON-serialisable (enough to rebuild the model). */
  archSpec: unknown;
  /** What the inputs were normalised with; absent in checkpoints written before it was recorded. */
  normalization?: InputNormalization;
}

/** A weights-only view of a file: the model tensors and whatever metadata the file carries. */
export interface WeightsFile {
  /**
   * Model tensors (no `optim.` or `ema.` entries; with the `ema` option the weight average's instead), in file (data
   * offset) order: look them up by name.
   */
  model: StateDict;
  /** The file's `__metadata__` (empty for a plain torchvision export). */
  metadata: Record<string, string>;
  /** Names of the tensors left out (a checkpoint's `optim.*` and `ema.*`; empty for a plain weights file). */
  dropped: string[];
}

/** Options of {@linkcode decodeWeights} and {@linkcode loadWeights}. */
export interface WeightsOptions {
  /** Read the checkpoint's weight average (`ema.*`, without its update count) instead of its model. */
  ema?: boolean;
}

/** Expected name -> shape and dtype of a model's state dict, e.g. built from `stateLayout()`. */
export type ExpectedShapes = Map<string, { shape: number[]; dtype: HostDType }>;

/**
 * Serialises a checkpoint. Throws if the state is inconsistent (an `optim.` model name, optimizer state for a name
 * the model lacks or of another shape, non-integer counters, a non-finite best metric, a value that is not JSON).
 */
export function encodeCheckpoint(state: CheckpointState): Uint8Array {
  const bad = (what: string): never => {
    throw new Error(`cannot encode checkpoint: ${what}`);
  };
  for (const name of state.model.keys()) {
    if (name.startsWith(OPTIM_PREFIX)) bad(`model tensor "${name}" uses the reserved prefix "${OPTIM_PREFIX}"`);
  }
  checkOptimizerMatchesModel(state.model, state.optimizer, (what) => bad(what));
  checkEmaMatchesModel(state.model, state.ema ?? new Map(), (what) => bad(what));
  for (const [key, value] of [["epoch", state.epoch], ["globalStep", state.globalStep]] as const) {
    if (!isCount(value)) bad(`${key} must be a non-negative integer, got ${value}`);
  }
  if (!isCount(state.dataPosition?.epoch) || !isCount(state.dataPosition?.batch)) {
    bad(`dataPosition must be {epoch, batch} of non-negative integers, got ${JSON.stringify(state.dataPosition)}`);
  }
  if (state.bestMetric !== null && !Number.isFinite(state.bestMetric)) {
    bad(`bestMetric must be a finite number or null, got ${state.bestMetric}`);
  }
  if (!Array.isArray(state.classNames) || !state.classNames.every((c) => typeof c === "string")) {
    bad(`classNames must be an array of strings, got ${JSON.stringify(state.classNames)}`);
  }
  const json = (key: string, value: unknown): string => {
    try {
      // undefined (e.g. no RNG state) is stored as null: JSON has no undefined.
      return JSON.stringify(value) ?? "null";
    } catch (err) {
      return bad(`${key} is not JSON-serialisable: ${(err as Error).message}`);
    }
  };
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    epoch: String(state.epoch),
    global_step: String(state.globalStep),
    data_position: JSON.stringify({ epoch: state.dataPosition.epoch, batch: state.dataPosition.batch }),
    rng: json("rng", state.rng),
    config: json("config", state.config),
    best_metric: JSON.stringify(state.bestMetric),
    class_names: JSON.stringify(state.classNames),
    arch_spec: json("archSpec", state.archSpec),
  };
  if (state.normalization !== undefined) {
    try {
      metadata.normalization = JSON.stringify(normalizationFromJSON(state.normalization, "normalization"));
    } catch (err) {
      bad((err as Error).message);
    }
  }
  const tensors: StateDict = new Map(state.model);
  for (const [name, tensor] of state.optimizer) tensors.set(OPTIM_PREFIX + name, tensor);
  for (const [name, tensor] of state.ema ?? []) tensors.set(EMA_PREFIX + name, tensor);
  return encodeSafetensors(tensors, metadata);
}

/**
 * Parses and validates a checkpoint: the safetensors checks, then the metadata (each key present and well-formed),
 * then the optimizer state against the model. Errors name `source` and the offending key or tensor.
 */
export function decodeCheckpoint(bytes: Uint8Array, source = "<memory>"): CheckpointState {
  return checkpointFromContents(decodeSafetensors(bytes, source), source);
}

/** {@linkcode decodeCheckpoint} for a file already decoded by `decodeSafetensors` (checked the same way). */
export function checkpointFromContents({ tensors, metadata }: SafetensorsContents, source: string): CheckpointState {
  const bad = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new FieldMessageError(
      `${literal(source)}: not a training checkpoint: ${METADATA_KEY}.format is ` +
        `${literal(JSON.stringify(metadata.format ?? null))}, expected "${CHECKPOINT_FORMAT}" (a weights-only file ` +
        "can be used with {init}, not {resume})",
    );
  }
  const field = (key: string): string => {
    const value = metadata[key];
    return value === undefined ? bad(`checkpoint metadata lacks "${key}"`) : value;
  };
  const parsed = (key: string): unknown => {
    try {
      return JSON.parse(field(key));
    } catch (err) {
      return bad(`checkpoint metadata "${key}" is not valid JSON: ${(err as Error).message}`);
    }
  };
  const count = (key: string): number => {
    const text = field(key);
    const value = /^(0|[1-9][0-9]*)$/.test(text) ? Number(text) : NaN;
    return isCount(value) ? value : bad(`checkpoint metadata "${key}" must be a non-negative integer, got "${text}"`);
  };
  const position = parsed("data_position") as Partial<DataPosition> | null;
  if (!isCount(position?.epoch) || !isCount(position?.batch)) {
    bad(`checkpoint metadata "data_position" must be {"epoch": int, "batch": int}, got ${field("data_position")}`);
  }
  const bestMetric = parsed("best_metric");
  if (bestMetric !== null && typeof bestMetric !== "number") {
    bad(`checkpoint metadata "best_metric" must be a number or null, got ${field("best_metric")}`);
  }
  const classNames = parsed("class_names");
  if (!Array.isArray(classNames) || !classNames.every((c) => typeof c === "string")) {
    bad(`checkpoint metadata "class_names" must be an array of strings, got ${field("class_names")}`);
  }
  const normalization = metadata.normalization === undefined
    ? undefined
    : normalizationFromJSON(parsed("normalization"), `${source}: checkpoint metadata "normalization"`);
  const { model, optimizer, ema } = splitOptimizerState(tensors);
  checkOptimizerMatchesModel(model, optimizer, (what) => bad(what));
  checkEmaMatchesModel(model, ema, (what) => bad(what));
  return {
    model,
    optimizer,
    ...(ema.size > 0 ? { ema } : {}),
    epoch: count("epoch"),
    globalStep: count("global_step"),
    dataPosition: { epoch: position!.epoch!, batch: position!.batch! },
    rng: parsed("rng"),
    config: parsed("config"),
    bestMetric: bestMetric as number | null,
    classNames: classNames as string[],
    archSpec: parsed("arch_spec"),
    ...(normalization ? { normalization } : {}),
  };
}

/** Writes a checkpoint to `path` atomically: a crash leaves the previous file or the new one, never a partial one. */
export async function saveCheckpoint(path: string, state: CheckpointState): Promise<void> {
  await atomicWriteFile(path, encodeCheckpoint(state));
}

/** Reads and validates a checkpoint file (see {@linkcode decodeCheckpoint}); errors name `path`. */
export async function loadCheckpoint(path: string): Promise<CheckpointState> {
  return decodeCheckpoint(await Deno.readFile(path), path);
}

/**
 * Reads the model weights of a safetensors file: a checkpoint of this toolkit (its `optim.` tensors are dropped) or
 * any plain weights file, e.g. `safetensors.torch.save_file(model.state_dict(), path)` from torchvision.
 */
export function decodeWeights(bytes: Uint8Array, source = "<memory>", options: WeightsOptions = {}): WeightsFile {
  return weightsFromContents(decodeSafetensors(bytes, source), source, options);
}

/**
 * {@linkcode decodeWeights} for a file already decoded by `decodeSafetensors`.
 * @throws {Error} naming `source` when `options.ema` asks for a weight average the file does not hold.
 */
export function weightsFromContents(
  { tensors, metadata }: SafetensorsContents,
  source = "<memory>",
  options: WeightsOptions = {},
): WeightsFile {
  const isCheckpoint = metadata.format === CHECKPOINT_FORMAT;
  const { model, optimizer, ema } = isCheckpoint
    ? splitOptimizerState(tensors)
    : { model: tensors, optimizer: new Map(), ema: new Map() };
  if (options.ema && ema.size === 0) {
    throw new FieldMessageError(
      `${literal(source)}: holds no average of the weights (no "${EMA_PREFIX}" tensors): ` +
        (isCheckpoint ? "its run was trained without {modelEma}" : "it is a weights file, not a training checkpoint"),
    );
  }
  const dropped = [
    ...[...optimizer.keys()].map((name) => OPTIM_PREFIX + name),
    ...[...(options.ema ? model.keys() : ema.keys())].map((name) => options.ema ? name : EMA_PREFIX + name),
  ];
  if (!options.ema) return { model, metadata, dropped };
  const averaged = new Map([...ema].filter(([name]) => name !== EMA_COUNT));
  return { model: averaged, metadata, dropped: [...dropped, EMA_PREFIX + EMA_COUNT] };
}

/**
 * A checkpoint's tensors split into the model's, the optimizer's (`optim.` prefix removed) and the weight average's
 * (`ema.` prefix removed), in file order.
 */
function splitOptimizerState(tensors: StateDict): { model: StateDict; optimizer: StateDict; ema: StateDict } {
  const model: StateDict = new Map();
  const optimizer: StateDict = new Map();
  const ema: StateDict = new Map();
  for (const [name, tensor] of tensors) {
    if (name.startsWith(OPTIM_PREFIX)) optimizer.set(name.slice(OPTIM_PREFIX.length), tensor);
    else if (name.startsWith(EMA_PREFIX)) ema.set(name.slice(EMA_PREFIX.length), tensor);
    else model.set(name, tensor);
  }
  return { model, optimizer, ema };
}

/** Reads the model weights of a checkpoint or plain weights file (see {@linkcode decodeWeights}). */
export async function loadWeights(path: string, options: WeightsOptions = {}): Promise<WeightsFile> {
  return decodeWeights(await Deno.readFile(path), path, options);
}

/**
 * Encodes weights alone, as torchvision's `load_state_dict(strict=True)` expects: exactly the model's tensors and
 * `__metadata__` `{format: "pt"}` (what `safetensors.torch.save_file` writes), plus any `extra` strings.
 */
export function encodeWeights(model: StateDict, extra: Record<string, string> = {}): Uint8Array {
  for (const name of model.keys()) {
    if (name.startsWith(OPTIM_PREFIX)) {
      throw new Error(`cannot encode weights: "${name}" is optimizer state, not a model tensor`);
    }
  }
  return encodeSafetensors(model, { format: "pt", ...extra });
}

/** Number of entries listed per category in a {@linkcode checkStateDictShapes} error. */
const LISTED = 5;

/** How a state dict differs from what a model expects (all empty when they agree). */
export interface StateDictDiff {
  /** Expected names the state dict lacks, in the model's order. */
  missing: string[];
  /** Names the model does not have, in the state dict's order. */
  unexpected: string[];
  /** Names present in both with another shape or dtype. */
  mismatched: {
    name: string;
    found: { shape: number[]; dtype: HostDType };
    expected: { shape: number[]; dtype: HostDType };
  }[];
}

/**
 * Compares a state dict with what a model expects, without throwing: for callers that tolerate some differences,
 * e.g. `--init` re-initialising a classifier head of another class count (`fc.weight`, `fc.bias` mismatched).
 */
export function compareStateDict(found: StateDict, expected: ExpectedShapes): StateDictDiff {
  const diff: StateDictDiff = {
    missing: [...expected.keys()].filter((name) => !found.has(name)),
    unexpected: [...found.keys()].filter((name) => !expected.has(name)),
    mismatched: [],
  };
  for (const [name, tensor] of found) {
    const want = expected.get(name);
    if (want && (want.dtype !== tensor.dtype || !sameShape(want.shape, tensor.shape))) {
      diff.mismatched.push({ name, found: { shape: tensor.shape, dtype: tensor.dtype }, expected: want });
    }
  }
  return diff;
}

/**
 * Checks a loaded state dict against what the model expects, before anything is applied. Throws one error naming
 * `source` that lists the missing names, the unexpected names and the shape/dtype mismatches (the first few of each,
 * with counts). When names, shapes and dtypes all agree, returns the same tensors in `expected`'s order (files keep
 * their own order: `safetensors.torch.save_file` sorts int64 tensors first, then by name).
 */
export function checkStateDictShapes(found: StateDict, expected: ExpectedShapes, source: string): StateDict {
  const { missing, unexpected, mismatched } = compareStateDict(found, expected);
  if (missing.length + unexpected.length + mismatched.length === 0) {
    return new Map([...expected.keys()].map((name) => [name, found.get(name)!]));
  }
  const list = (title: string, items: string[]) =>
    items.length === 0 ? [] : [
      `  ${items.length} ${title}: ${items.slice(0, LISTED).join(", ")}${
        items.length > LISTED ? `, ... and ${items.length - LISTED} more` : ""
      }`,
    ];
  const describe = (m: StateDictDiff["mismatched"][number]) =>
    `${m.name}: file has ${m.found.dtype} ${JSON.stringify(m.found.shape)}, model expects ${m.expected.dtype} ` +
    JSON.stringify(m.expected.shape);
  throw new Error(
    [
      `${source}: state dict does not match the model (nothing was loaded):`,
      ...list("missing", missing),
      ...list("unexpected", unexpected),
      ...list("with another shape or dtype", mismatched.map(describe)),
    ].join("\n"),
  );
}

function checkOptimizerMatchesModel(model: StateDict, optimizer: StateDict, bad: (what: string) => never): void {
  for (const [name, tensor] of optimizer) {
    const param = model.get(name);
    if (param === undefined) bad(`optimizer state "${OPTIM_PREFIX}${name}" has no model tensor "${name}"`);
    else if (param.dtype !== tensor.dtype || !sameShape(param.shape, tensor.shape)) {
      bad(
        `optimizer state "${OPTIM_PREFIX}${name}" is ${tensor.dtype} ${JSON.stringify(tensor.shape)} but the ` +
          `parameter is ${param.dtype} ${JSON.stringify(param.shape)}`,
      );
    }
  }
}

/** The weight average holds exactly the model's tensors (names, shapes, dtypes) and its int64 [] update count. */
function checkEmaMatchesModel(model: StateDict, ema: StateDict, bad: (what: string) => never): void {
  if (ema.size === 0) return;
  const count = ema.get(EMA_COUNT);
  if (count?.dtype !== "I64" || count.shape.length !== 0) {
    bad(
      `weight average "${EMA_PREFIX}${EMA_COUNT}" must be an I64 [] tensor, got ${count?.dtype} ${
        JSON.stringify(count?.shape)
      }`,
    );
  }
  for (const [name, tensor] of ema) {
    if (name === EMA_COUNT) continue;
    const param = model.get(name);
    if (param === undefined) bad(`weight average "${EMA_PREFIX}${name}" has no model tensor "${name}"`);
    else if (param.dtype !== tensor.dtype || !sameShape(param.shape, tensor.shape)) {
      bad(
        `weight average "${EMA_PREFIX}${name}" is ${tensor.dtype} ${JSON.stringify(tensor.shape)} but the model ` +
          `tensor is ${param.dtype} ${JSON.stringify(param.shape)}`,
      );
    }
  }
  const missing = [...model.keys()].filter((name) => !ema.has(name));
  if (missing.length > 0) {
    bad(`weight average lacks ${missing.length} model tensor(s): ${missing.slice(0, 5).join(", ")}`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
