/**
 * The module tree of a ResNet, derived from its spec: every conv, batch norm and the classifier with torchvision's
 * module names and hyper-parameters. Pure data; the tfjs model, the parameter list and the summary all walk it.
 * @module
 */
import { blockExpansion, type ResNetSpec, validateSpec } from "./resnet_spec.ts";

/** A bias-free convolution, PyTorch semantics (symmetric zero padding). */
export interface ConvDef {
  /** torchvision module name, e.g. "layer2.0.downsample.0". */
  name: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
}

/** A 2-D batch norm (eps 1e-5, momentum 0.1, affine, running statistics). */
export interface BatchNormDef {
  name: string;
  channels: number;
  /** Gamma starts at zero (last BN of a residual branch with `zeroInitResidual`). */
  zeroInit: boolean;
}

/** One residual block: main branch `convs[i]` → `bns[i]` (ReLU between), plus an optional projection shortcut. */
export interface BlockDef {
  /** e.g. "layer3.1" */
  name: string;
  inChannels: number;
  outChannels: number;
  stride: number;
  convs: ConvDef[];
  bns: BatchNormDef[];
  downsample?: { conv: ConvDef; bn: BatchNormDef };
}

/** The whole network. */
export interface ResNetPlan {
  spec: ResNetSpec;
  stem: { conv: ConvDef; bn: BatchNormDef; maxPool: boolean };
  /** layer1..layer4, each a list of blocks. */
  stages: BlockDef[][];
  fc: { name: "fc"; inFeatures: number; outFeatures: number };
}

/** Builds the module tree of `spec`, mirroring torchvision's `ResNet.__init__` and `_make_layer`. */
export function resnetPlan(spec: ResNetSpec): ResNetPlan {
  validateSpec(spec);
  const imagenet = spec.stem === "imagenet";
  const stem = {
    conv: conv("conv1", 3, spec.width, imagenet ? 7 : 3, imagenet ? 2 : 1),
    bn: { name: "bn1", channels: spec.width, zeroInit: false },
    maxPool: imagenet,
  };
  const expansion = blockExpansion(spec.block);
  let inChannels = spec.width;
  const stages = spec.layers.map((count, s) => {
    const planes = spec.width * 2 ** s;
    const blocks: BlockDef[] = [];
    for (let i = 0; i < count; i++) {
      const stride = i === 0 && s > 0 ? 2 : 1;
      const name = `layer${s + 1}.${i}`;
      const outChannels = planes * expansion;
      const convs = spec.block === "basic"
        ? [conv(`${name}.conv1`, inChannels, planes, 3, stride), conv(`${name}.conv2`, planes, planes, 3, 1)]
        : [
          conv(`${name}.conv1`, inChannels, planes, 1, 1),
          // torchvision v1.5: the stride sits on the 3×3 conv.
          conv(`${name}.conv2`, planes, planes, 3, stride),
          conv(`${name}.conv3`, planes, outChannels, 1, 1),
        ];
      const bns = convs.map((c, j) => ({
        name: `${name}.bn${j + 1}`,
        channels: c.outChannels,
        zeroInit: spec.zeroInitResidual && j === convs.length - 1,
      }));
      const downsample = stride !== 1 || inChannels !== outChannels
        ? {
          conv: conv(`${name}.downsample.0`, inChannels, outChannels, 1, stride),
          bn: { name: `${name}.downsample.1`, channels: outChannels, zeroInit: false },
        }
        : undefined;
      blocks.push({ name, inChannels, outChannels, stride, convs, bns, downsample });
      inChannels = outChannels;
    }
    return blocks;
  });
  return { spec, stem, stages, fc: { name: "fc", inFeatures: inChannels, outFeatures: spec.numClasses } };
}

function conv(name: string, inChannels: number, outChannels: number, kernel: number, stride: number): ConvDef {
  // PyTorch's ResNet pads k//2 on every side: 7×7 → 3, 3×3 → 1, 1×1 → 0.
  return { name, inChannels, outChannels, kernel, stride, padding: Math.floor(kernel / 2) };
}
