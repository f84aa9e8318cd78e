/**
 * The names, shapes and dtypes of a ResNet's `state_dict`, in torchvision's order: the contract checkpoints and
 * interop rest on.
 * @module
 */
import type { HostDType } from "../io/host_tensor.ts";
import type { BatchNormDef, ConvDef, ResNetPlan } from "./resnet_plan.ts";

/** One entry of the state dict. */
export interface StateEntry {
  /** torchvision's key, e.g. "layer1.0.bn1.running_mean". */
  name: string;
  /** PyTorch layout: conv [out, in, kh, kw], fc [out, in], vectors [C], num_batches_tracked []. */
  shape: number[];
  dtype: HostDType;
  /** Trainable parameter (in `named_parameters()`) or buffer (running statistics, batch counter). */
  trainable: boolean;
}

/** Every state dict entry of `plan`, in the order of torchvision's `model.state_dict()`. */
export function stateLayout(plan: ResNetPlan): StateEntry[] {
  const out: StateEntry[] = [];
  const conv = (c: ConvDef) =>
    out.push({
      name: `${c.name}.weight`,
      shape: [c.outChannels, c.inChannels, c.kernel, c.kernel],
      dtype: "F32",
      trainable: true,
    });
  const bn = (b: BatchNormDef) => {
    const c = [b.channels];
    out.push({ name: `${b.name}.weight`, shape: c, dtype: "F32", trainable: true });
    out.push({ name: `${b.name}.bias`, shape: c, dtype: "F32", trainable: true });
    out.push({ name: `${b.name}.running_mean`, shape: c, dtype: "F32", trainable: false });
    out.push({ name: `${b.name}.running_var`, shape: c, dtype: "F32", trainable: false });
    out.push({ name: `${b.name}.num_batches_tracked`, shape: [], dtype: "I64", trainable: false });
  };
  conv(plan.stem.conv);
  bn(plan.stem.bn);
  for (const block of plan.stages.flat()) {
    block.convs.forEach((c, i) => {
      conv(c);
      bn(block.bns[i]);
    });
    if (block.downsample) {
      conv(block.downsample.conv);
      bn(block.downsample.bn);
    }
  }
  out.push({ name: "fc.weight", shape: [plan.fc.outFeatures, plan.fc.inFeatures], dtype: "F32", trainable: true });
  out.push({ name: "fc.bias", shape: [plan.fc.outFeatures], dtype: "F32", trainable: true });
  return out;
}

/** The module a state-dict entry belongs to: "layer1.0.bn1.running_mean" → "layer1.0.bn1". */
export function moduleOf(name: string): string {
  return name.slice(0, name.lastIndexOf("."));
}
