/**
 * Layer-by-layer shapes, parameter counts and MACs of a ResNet from pure shape arithmetic (no GPU, no tensors), as
 * printed by `deno task summary`.
 * @module
 */
import { numElements } from "../kernels/num_elements.ts";
import type { ConvDef, ResNetPlan } from "./resnet_plan.ts";
import { moduleOf, stateLayout } from "./state_layout.ts";

/** What a summary row describes. `stage` and `block` rows aggregate the rows under them. */
export type RowKind = "conv" | "bn" | "relu" | "maxpool" | "stage" | "block" | "avgpool" | "fc";

/** One row of the summary. */
export interface SummaryRow {
  /** torchvision module name ("layer2", "layer2.0", "layer2.0.conv1", ...). */
  name: string;
  kind: RowKind;
  /** 0 for torchvision's top-level children (conv1, bn1, relu, maxpool, layer1-4, avgpool, fc). */
  depth: number;
  /** Output without the batch: [C, H, W], or [C] after the global pool and the classifier. */
  outputShape: number[];
  /** Trainable parameters (for stage/block rows: of everything inside). */
  params: number;
  /** Multiply-accumulates for one image (conv and fc only; stage/block rows: sums). */
  macs: number;
}

/** A whole summary; `totals` count each leaf once. */
export interface Summary {
  input: [number, number, number];
  layers: SummaryRow[];
  totals: { params: number; macs: number };
}

/** Thrown when an input is too small for the network: some layer's output would have no pixels. */
export class InputTooSmallError extends RangeError {
  constructor(layer: string, input: [number, number]) {
    super(`Input ${input[0]}×${input[1]} is too small: the output of ${layer} would be empty`);
    this.name = "InputTooSmallError";
  }
}

/**
 * PyTorch's output size of a convolution or pooling window: floor((size + 2·padding − kernel) / stride) + 1, or 0
 * when the window does not fit even once.
 */
export function convOutputSize(size: number, kernel: number, stride: number, padding: number): number {
  return Math.max(0, Math.floor((size + 2 * padding - kernel) / stride) + 1);
}

/**
 * The summary of `plan` for an input of `height`×`width` RGB pixels.
 * @throws {InputTooSmallError} when a layer's output would be empty.
 */
export function resnetSummary(plan: ResNetPlan, height: number, width: number): Summary {
  const params = new Map<string, number>();
  for (const e of stateLayout(plan)) {
    if (!e.trainable) continue;
    const module = moduleOf(e.name);
    params.set(module, (params.get(module) ?? 0) + numElements(e.shape));
  }
  const rows: SummaryRow[] = [];
  let hw: [number, number] = [height, width];
  const input = hw;
  const conv = (c: ConvDef, depth: number, from: [number, number]): [number, number] => {
    const out: [number, number] = [
      convOutputSize(from[0], c.kernel, c.stride, c.padding),
      convOutputSize(from[1], c.kernel, c.stride, c.padding),
    ];
    if (out[0] < 1 || out[1] < 1) throw new InputTooSmallError(c.name, input);
    const macs = c.outChannels * out[0] * out[1] * c.inChannels * c.kernel * c.kernel;
    rows.push({ name: c.name, kind: "conv", depth, outputShape: [c.outChannels, ...out], params: p(c.name), macs });
    return out;
  };
  const p = (name: string) => params.get(name) ?? 0;
  const leaf = (name: string, kind: RowKind, depth: number, shape: number[]) =>
    rows.push({ name, kind, depth, outputShape: shape, params: p(name), macs: 0 });

  const { stem } = plan;
  hw = conv(stem.conv, 0, hw);
  leaf(stem.bn.name, "bn", 0, [stem.bn.channels, ...hw]);
  leaf("relu", "relu", 0, [stem.bn.channels, ...hw]);
  if (stem.maxPool) {
    hw = [convOutputSize(hw[0], 3, 2, 1), convOutputSize(hw[1], 3, 2, 1)];
    if (hw[0] < 1 || hw[1] < 1) throw new InputTooSmallError("maxpool", input);
    leaf("maxpool", "maxpool", 0, [stem.bn.channels, ...hw]);
  }
  plan.stages.forEach((blocks, s) => {
    const stageRow = rows.push({ name: `layer${s + 1}`, kind: "stage", depth: 0, outputShape: [], params: 0, macs: 0 });
    const stageStart = stageRow;
    for (const block of blocks) {
      const blockAt = rows.push({ name: block.name, kind: "block", depth: 1, outputShape: [], params: 0, macs: 0 });
      const from = hw;
      let cur = hw;
      block.convs.forEach((c, i) => {
        cur = conv(c, 2, cur);
        leaf(block.bns[i].name, "bn", 2, [block.bns[i].channels, ...cur]);
      });
      if (block.downsample) {
        conv(block.downsample.conv, 2, from);
        leaf(block.downsample.bn.name, "bn", 2, [block.downsample.bn.channels, ...cur]);
      }
      hw = cur;
      aggregate(rows, blockAt - 1, [block.outChannels, ...hw]);
    }
    aggregate(rows, stageStart - 1, [blocks[blocks.length - 1].outChannels, ...hw]);
  });
  const features = plan.fc.inFeatures;
  leaf("avgpool", "avgpool", 0, [features]);
  rows.push({
    name: "fc",
    kind: "fc",
    depth: 0,
    outputShape: [plan.fc.outFeatures],
    params: p("fc"),
    macs: plan.fc.inFeatures * plan.fc.outFeatures,
  });
  const leaves = rows.filter((r) => r.kind !== "stage" && r.kind !== "block");
  return {
    input: [3, height, width],
    layers: rows,
    totals: {
      params: leaves.reduce((a, r) => a + r.params, 0),
      macs: leaves.reduce((a, r) => a + r.macs, 0),
    },
  };
}

/** Fills the container row at `at` with the sums of the deeper rows after it and the given output shape. */
function aggregate(rows: SummaryRow[], at: number, outputShape: number[]): void {
  const row = rows[at];
  row.outputShape = outputShape;
  for (let i = at + 1; i < rows.length && rows[i].depth > row.depth; i++) {
    if (rows[i].kind === "stage" || rows[i].kind === "block") continue;
    row.params += rows[i].params;
    row.macs += rows[i].macs;
  }
}
