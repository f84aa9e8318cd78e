/**
 * A classifier from the bytes of a `.safetensors` file, for the browser page: a training checkpoint (`deno task
 * train`) or exported weights (`deno task export`, or torchvision's `state_dict` saved with safetensors), its
 * architecture from the `arch_spec` metadata or inferred from the tensors, every tensor checked before a model is
 * built; and the input pipeline of `deno task eval` for its dataset (normalisation chosen by the class names).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { decodeSafetensors } from "../io/safetensors.ts";
import {
  CHECKPOINT_FORMAT,
  checkpointFromContents,
  checkStateDictShapes,
  weightsFromContents,
} from "../io/checkpoint.ts";
import type { StateDict } from "../io/host_tensor.ts";
import {
  addMissingBatchCounters,
  describeSpec,
  expectedShapes,
  inferResNetSpec,
  specFromJSON,
} from "../models/resnet_from_state.ts";
import type { ResNetSpec } from "../models/resnet_spec.ts";
import { createResNet, type ResNet } from "../models/resnet.ts";
import { CIFAR100_CLASS_NAMES, CIFAR10_CLASS_NAMES } from "../data/class_names.ts";
import { CIFAR100_NORMALIZATION, CIFAR10_NORMALIZATION, IMAGENET_NORMALIZATION } from "../data/normalizations.ts";
import { channelStats, generateSynthetic, SYNTHETIC_CLASS_NAMES } from "../data/synthetic.ts";
import { type Normalization, normalizeCoefficients, writeCropFlip } from "../data/transforms.ts";

/** A model ready to classify, and what it was read from. */
export interface Classifier {
  model: ResNet;
  spec: ResNetSpec;
  /** One name per class: the file's `class_names`, else "class 0", "class 1", ... */
  classNames: string[];
  /** The side of the model's input images: 32 for the CIFAR stem, 224 for the ImageNet one. */
  imageSize: number;
  /** The normalisation applied to the images, and which dataset's it is. */
  norm: Normalization;
  normName: string;
  /** A one-line description, e.g. "resnet18 (basic [2,2,2,2], cifar stem, width 2, 10 classes)". */
  description: string;
}

/** A file the page cannot classify with: not safetensors, not a ResNet, or inconsistent; the message says which. */
export class NotAClassifierError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotAClassifierError";
  }
}

const sameNames = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((n, i) => n === b[i]);

let syntheticNorm: Normalization | undefined;

/** The normalisation `deno task eval` applies for a model with these class names (its dataset's). */
export function normalizationFor(classNames: readonly string[] | null): { norm: Normalization; name: string } {
  if (classNames && sameNames(classNames, SYNTHETIC_CLASS_NAMES)) {
    // The synthetic set is normalised with its 1,024 training images' own statistics (data/loaders.ts).
    syntheticNorm ??= channelStats(generateSynthetic(1024, 0, 1).images);
    return { norm: syntheticNorm, name: "synthetic" };
  }
  if (classNames && sameNames(classNames, CIFAR10_CLASS_NAMES)) {
    return { norm: CIFAR10_NORMALIZATION, name: "CIFAR-10" };
  }
  if (classNames && sameNames(classNames, CIFAR100_CLASS_NAMES)) {
    return { norm: CIFAR100_NORMALIZATION, name: "CIFAR-100" };
  }
  return { norm: IMAGENET_NORMALIZATION, name: "ImageNet" };
}

/**
 * Reads `bytes` (named `source` in errors) and builds its model on the active tfjs backend.
 * @throws {NotAClassifierError} naming `source`: not a safetensors file, not a ResNet state dict, wrong shapes.
 */
export function loadClassifier(bytes: Uint8Array, source: string): Classifier {
  let spec: ResNetSpec, state: StateDict, classNames: string[] | null = null;
  let contents;
  try {
    contents = decodeSafetensors(bytes, source);
  } catch (e) {
    throw new NotAClassifierError(`not a checkpoint: ${(e as Error).message}`);
  }
  try {
    if (contents.metadata.format === CHECKPOINT_FORMAT) {
      const checkpoint = checkpointFromContents(contents, source);
      spec = specFromJSON(checkpoint.archSpec, `${source} metadata "arch_spec"`);
      state = checkpoint.model;
      classNames = checkpoint.classNames;
    } else {
      const weights = weightsFromContents(contents);
      state = weights.model;
      spec = weights.metadata.arch_spec !== undefined
        ? specFromJSON(parseJSON(weights.metadata.arch_spec, `${source} metadata "arch_spec"`), `${source} "arch_spec"`)
        : inferResNetSpec(state, source);
      if (weights.metadata.class_names !== undefined) {
        const names = parseJSON(weights.metadata.class_names, `${source} metadata "class_names"`);
        if (Array.isArray(names) && names.every((n) => typeof n === "string")) classNames = names;
      }
    }
    const expected = expectedShapes(spec);
    addMissingBatchCounters(state, expected);
    state = checkStateDictShapes(state, expected, source);
  } catch (e) {
    const why = (e as Error).message;
    throw new NotAClassifierError(
      /not a torchvision ResNet/.test(why)
        ? `${why}. This page runs torchvision ResNets (resnet18, 34, 50, 101, 152 and narrower variants) only.`
        : why,
    );
  }
  if (classNames !== null && classNames.length !== spec.numClasses) classNames = null;
  const names = classNames ?? Array.from({ length: spec.numClasses }, (_, i) => `class ${i}`);
  const { norm, name } = normalizationFor(classNames);
  const model = createResNet(spec);
  model.importState(state);
  return {
    model,
    spec,
    classNames: names,
    imageSize: spec.stem === "cifar" ? 32 : 224,
    norm,
    normName: name,
    description: describeSpec(spec),
  };
}

function parseJSON(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not JSON (${(e as Error).message})`);
  }
}

/**
 * The logits of `count` HWC byte images of side `classifier.imageSize` ([count, size, size, 3] in `pixels`),
 * normalised as `deno task eval` does: [count, numClasses], row-major.
 */
export async function classifyPixels(classifier: Classifier, pixels: Uint8Array, count: number): Promise<Float32Array> {
  const size = classifier.imageSize;
  const per = size * size * 3;
  if (pixels.length !== count * per) {
    throw new RangeError(`classifyPixels: expected ${count} × ${size}×${size}×3 bytes, got ${pixels.length}`);
  }
  const input = new Float32Array(pixels.length);
  const coefficients = normalizeCoefficients(classifier.norm);
  const crop = { top: 0, left: 0, flip: false };
  for (let i = 0; i < count; i++) {
    writeCropFlip(pixels, i * per, size, size, 0, crop, size, coefficients, input, i * per);
  }
  const logits = tf.tidy(() => {
    const x = tf.tensor4d(input, [count, size, size, 3]);
    return classifier.model.forward(x, { training: false }).logits;
  });
  try {
    return await logits.data() as Float32Array;
  } finally {
    logits.dispose();
  }
}
