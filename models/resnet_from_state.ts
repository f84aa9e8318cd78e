/**
 * A ResNet from a state dict: its spec recorded as JSON (`arch_spec` metadata) or inferred from torchvision's tensor
 * names and shapes, and the expected layout to check a state dict against before anything is loaded. Shared by
 * `deno task eval` (train/evaluate_checkpoint.ts) and the browser page (web/classifier.ts).
 * @module
 */
import type { StateDict } from "../io/host_tensor.ts";
import type { ExpectedShapes } from "../io/checkpoint.ts";
import { resnetPlan } from "./resnet_plan.ts";
import { archName, type ResNetSpec, validateSpec } from "./resnet_spec.ts";
import { stateLayout } from "./state_layout.ts";

/** A ResNet spec recorded as JSON (`arch_spec` metadata), validated; `where` names it in errors. */
export function specFromJSON(value: unknown, where: string): ResNetSpec {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${where}: expected a ResNet spec object, got ${JSON.stringify(value)}`);
  }
  const spec = { zeroInitResidual: false, ...(value as Partial<ResNetSpec>) } as ResNetSpec;
  try {
    validateSpec(spec);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  return {
    block: spec.block,
    layers: [...spec.layers],
    stem: spec.stem,
    width: spec.width,
    numClasses: spec.numClasses,
    zeroInitResidual: spec.zeroInitResidual,
  };
}

/**
 * Adds `num_batches_tracked` = 0 where a weights file lacks it, as PyTorch's BatchNorm does when it loads a state dict
 * without version metadata (what `safetensors.torch.load_file` returns). Evaluation never reads the counter.
 */
export function addMissingBatchCounters(model: StateDict, expected: ExpectedShapes): void {
  for (const [name, e] of expected) {
    if (name.endsWith(".num_batches_tracked") && !model.has(name)) {
      model.set(name, { dtype: e.dtype, shape: [...e.shape], data: new BigInt64Array(1) });
    }
  }
}

/** Expected names, shapes and dtypes of `spec`'s state dict. */
export function expectedShapes(spec: ResNetSpec): ExpectedShapes {
  return new Map(stateLayout(resnetPlan(spec)).map((e) => [e.name, { shape: e.shape, dtype: e.dtype }]));
}

const STAGE_KEY = /^layer(\d+)\.(\d+)\./;

/**
 * Infers a ResNet's spec from the names and shapes of its state dict (torchvision's keys and layouts): blocks per
 * stage from the `layerN.i.` keys, bottleneck blocks when `layer1.0.conv3.weight` exists, width from `conv1.weight`
 * [out, 3, k, k], the stem from its kernel (7: ImageNet, 3: CIFAR), the class count from `fc.weight` [classes, in].
 * Only these keys are read: check the whole dict against the result with `checkStateDictShapes`.
 * @param source names the file in errors.
 * @throws {Error} naming `source` and the key when the dict is not a ResNet state dict.
 */
export function inferResNetSpec(state: Map<string, { shape: readonly number[] }>, source: string): ResNetSpec {
  const fail = (what: string): never => {
    throw new Error(`${source}: not a torchvision ResNet state dict: ${what}`);
  };
  const shapeOf = (name: string, rank: number): readonly number[] => {
    const t = state.get(name);
    if (t === undefined) return fail(`it has no "${name}" tensor (${describeKeys(state)})`);
    if (t.shape.length !== rank) {
      fail(`"${name}" has shape ${JSON.stringify(t.shape)}, expected ${rank} dimensions`);
    }
    return t.shape;
  };
  const conv1 = shapeOf("conv1.weight", 4); // [width, 3, k, k]
  const [width, inChannels, kh, kw] = conv1;
  if (inChannels !== 3 || kh !== kw || (kh !== 7 && kh !== 3)) {
    fail(`"conv1.weight" has shape ${JSON.stringify(conv1)}, expected [width, 3, 7, 7] or [width, 3, 3, 3]`);
  }
  const fc = shapeOf("fc.weight", 2); // [numClasses, features]
  const blocks: Set<number>[] = [new Set(), new Set(), new Set(), new Set()];
  for (const name of state.keys()) {
    const m = STAGE_KEY.exec(name);
    if (!m) continue;
    const stage = Number(m[1]);
    if (stage < 1 || stage > 4) fail(`"${name}" names stage layer${stage}; a ResNet has layer1 to layer4`);
    blocks[stage - 1].add(Number(m[2]));
  }
  const layers = blocks.map((set, s) => {
    if (set.size === 0) fail(`it has no "layer${s + 1}.0." tensors`);
    const max = Math.max(...set);
    if (max !== set.size - 1) {
      const gap = [...Array(max + 1).keys()].find((i) => !set.has(i));
      fail(`layer${s + 1} has block ${max} but no block ${gap}`);
    }
    return set.size;
  }) as [number, number, number, number];
  return {
    block: state.has("layer1.0.conv3.weight") ? "bottleneck" : "basic",
    layers,
    stem: kh === 7 ? "imagenet" : "cifar",
    width,
    numClasses: fc[0],
    zeroInitResidual: false,
  };
}

function describeKeys(state: Map<string, unknown>): string {
  const names = [...state.keys()];
  if (names.length === 0) return "the file holds no tensors";
  return `the file holds ${names.length} tensors: ${names.slice(0, 3).join(", ")}${names.length > 3 ? ", ..." : ""}`;
}

/** A one-line description: "resnet18 (basic [2,2,2,2], cifar stem, width 4, 10 classes)". */
export function describeSpec(spec: ResNetSpec): string {
  return `${archName(spec) ?? "custom ResNet"} (${spec.block} [${spec.layers.join(",")}], ${spec.stem} stem, ` +
    `width ${spec.width}, ${spec.numClasses} classes)`;
}
