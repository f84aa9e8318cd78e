/**
 * A ResNet is data: a {@linkcode ResNetSpec} says which block, how many blocks per stage, which stem, how wide and
 * how many classes. Everything else (parameters, shapes, FLOPs, the tfjs model) is derived from it.
 * @module
 */

/** Residual block type: two 3×3 convs (ResNet-18/34) or 1×1, 3×3, 1×1 with 4× expansion (ResNet-50/101/152). */
export type BlockKind = "basic" | "bottleneck";

/** Stem: `imagenet` = 7×7/2 conv, BN, ReLU, 3×3/2 max pool; `cifar` = 3×3/1 conv, BN, ReLU, no pool. */
export type StemKind = "imagenet" | "cifar";

/** The complete, JSON-serialisable description of a ResNet. */
export interface ResNetSpec {
  block: BlockKind;
  /** Blocks in layer1..layer4. */
  layers: [number, number, number, number];
  stem: StemKind;
  /** Stem channels and layer1's inner width; stages use width·[1, 2, 4, 8]. torchvision: 64. */
  width: number;
  numClasses: number;
  /** Zero-initialise the last BN gamma of each residual branch (torchvision's `zero_init_residual`). */
  zeroInitResidual: boolean;
}

/** The named architectures, torchvision's table. */
export const ARCHITECTURES = {
  resnet18: { block: "basic", layers: [2, 2, 2, 2] },
  resnet34: { block: "basic", layers: [3, 4, 6, 3] },
  resnet50: { block: "bottleneck", layers: [3, 4, 6, 3] },
  resnet101: { block: "bottleneck", layers: [3, 4, 23, 3] },
  resnet152: { block: "bottleneck", layers: [3, 8, 36, 3] },
} as const satisfies Record<string, Pick<ResNetSpec, "block" | "layers">>;

/** Name of a torchvision architecture. */
export type ArchName = keyof typeof ARCHITECTURES;

/** Options of a named architecture; every field defaults to torchvision's ImageNet model. */
export type ResNetOptions = Partial<Omit<ResNetSpec, "block" | "layers">>;

/** The torchvision name of a spec's block layout, or null for a layout no torchvision ResNet has. */
export function archName(spec: Pick<ResNetSpec, "block" | "layers">): ArchName | null {
  for (const [name, a] of Object.entries(ARCHITECTURES)) {
    if (a.block === spec.block && a.layers.every((n, i) => n === spec.layers[i])) return name as ArchName;
  }
  return null;
}

/** True when `name` is one of {@linkcode ARCHITECTURES}. */
export function isArchName(name: string): name is ArchName {
  return Object.hasOwn(ARCHITECTURES, name);
}

/**
 * The spec of a named architecture with options applied and validated.
 * @throws {RangeError} for an unknown name or an invalid option.
 */
export function resnetSpec(arch: string, options: ResNetOptions = {}): ResNetSpec {
  if (!isArchName(arch)) {
    throw new RangeError(`Unknown architecture "${arch}"; expected one of ${Object.keys(ARCHITECTURES).join(", ")}`);
  }
  const base = ARCHITECTURES[arch];
  const spec: ResNetSpec = {
    block: base.block,
    layers: [...base.layers],
    stem: options.stem ?? "imagenet",
    width: options.width ?? 64,
    numClasses: options.numClasses ?? 1000,
    zeroInitResidual: options.zeroInitResidual ?? false,
  };
  validateSpec(spec);
  return spec;
}

/** Channel expansion of the block's output over its inner width: 1 (basic) or 4 (bottleneck). */
export function blockExpansion(block: BlockKind): number {
  return block === "basic" ? 1 : 4;
}

/**
 * Checks a spec (e.g. one read from a checkpoint) and throws a RangeError naming the first bad field.
 */
export function validateSpec(spec: ResNetSpec): void {
  const positiveInt = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 1;
  if (spec.block !== "basic" && spec.block !== "bottleneck") {
    throw new RangeError(`spec.block must be "basic" or "bottleneck", got ${JSON.stringify(spec.block)}`);
  }
  if (!Array.isArray(spec.layers) || spec.layers.length !== 4 || !spec.layers.every(positiveInt)) {
    throw new RangeError(`spec.layers must be 4 positive integers, got ${JSON.stringify(spec.layers)}`);
  }
  if (spec.stem !== "imagenet" && spec.stem !== "cifar") {
    throw new RangeError(`spec.stem must be "imagenet" or "cifar", got ${JSON.stringify(spec.stem)}`);
  }
  if (!positiveInt(spec.width)) throw new RangeError(`spec.width must be a positive integer, got ${spec.width}`);
  if (!positiveInt(spec.numClasses)) {
    throw new RangeError(`spec.numClasses must be a positive integer, got ${spec.numClasses}`);
  }
  if (typeof spec.zeroInitResidual !== "boolean") {
    throw new RangeError(`spec.zeroInitResidual must be a boolean, got ${JSON.stringify(spec.zeroInitResidual)}`);
  }
}
