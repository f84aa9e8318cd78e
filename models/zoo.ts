/**
 * torchvision's named ResNets, each a one-line wrapper over {@linkcode createResNet}.
 * @module
 */
import { type CreateOptions, createResNet, type ResNet } from "./resnet.ts";
import { type ResNetOptions, resnetSpec } from "./resnet_spec.ts";

/** Options of the named constructors: the spec's free fields plus createResNet's (seed, fused batch norm). */
export type ZooOptions = ResNetOptions & CreateOptions;

const build = (arch: string, o: ZooOptions): ResNet => createResNet(resnetSpec(arch, o), o);

/** ResNet-18: basic blocks [2, 2, 2, 2]. */
export const resnet18 = (options: ZooOptions = {}): ResNet => build("resnet18", options);
/** ResNet-34: basic blocks [3, 4, 6, 3]. */
export const resnet34 = (options: ZooOptions = {}): ResNet => build("resnet34", options);
/** ResNet-50: bottleneck blocks [3, 4, 6, 3]. */
export const resnet50 = (options: ZooOptions = {}): ResNet => build("resnet50", options);
/** ResNet-101: bottleneck blocks [3, 4, 23, 3]. */
export const resnet101 = (options: ZooOptions = {}): ResNet => build("resnet101", options);
/** ResNet-152: bottleneck blocks [3, 8, 36, 3]. */
export const resnet152 = (options: ZooOptions = {}): ResNet => build("resnet152", options);
