/**
 * The ResNet family as a tfjs model: variables named with torchvision's `state_dict` keys, activations NHWC, and
 * PyTorch's symmetric padding, so the same weights give the same outputs as torchvision.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { batchNormTrain } from "../kernels/batch_norm_train.ts";
import type { StateDict } from "../io/host_tensor.ts";
import { numElements } from "../kernels/num_elements.ts";
import { type BatchNormDef, type ConvDef, type ResNetPlan, resnetPlan } from "./resnet_plan.ts";
import type { ResNetSpec } from "./resnet_spec.ts";
import { moduleOf, type StateEntry, stateLayout } from "./state_layout.ts";
import { fromTorchLayout, tfjsShape, toTorchLayout } from "./torch_layout.ts";

/** PyTorch's BatchNorm2d defaults. */
const BN_EPS = 1e-5;
const BN_MOMENTUM = 0.1;

/** Batch statistics of one BN layer in a training forward pass, to update its running statistics afterwards. */
export interface BatchStat {
  /** BN module name, e.g. "layer1.0.bn2". */
  name: string;
  /** [C] */
  mean: tf.Tensor1D;
  /** [C] biased (divided by `count`), as used for normalisation. */
  variance: tf.Tensor1D;
  /** Values per channel: N·H·W. */
  count: number;
}

/** Output of {@linkcode ResNet.forward}. */
export interface ForwardResult {
  /** [N, numClasses] */
  logits: tf.Tensor2D;
  /**
   * One entry per BN layer in training mode, empty in evaluation mode. These tensors are kept (they survive the
   * enclosing `tf.tidy` or gradient scope): pass them to {@linkcode ResNet.updateRunningStats}, which disposes them.
   */
  batchStats: BatchStat[];
  /** With `stages: true`: outputs of conv1, maxpool, layer1..4, avgpool, fc ([N, H, W, C] or [N, C]). */
  stages?: Map<string, tf.Tensor>;
}

/** Options of {@linkcode ResNet.forward}. */
export interface ForwardOptions {
  /** Batch statistics (and their return for running-stat updates) instead of running statistics. */
  training: boolean;
  /** Also return the output of every top-level stage (for tests and inspection). */
  stages?: boolean;
}

/** Options of {@linkcode createResNet}. */
export interface CreateOptions {
  /** Seed of the deterministic initialisation. Default 0. */
  seed?: number;
  /**
   * Training-mode batch norm (+ ReLU) through the fused WebGPU kernels of `kernels/batch_norm_train.ts` (6 dispatches
   * forward and backward instead of about 22 for the composite tfjs ops). Default true; ignored off webgpu.
   */
  fusedBatchNorm?: boolean;
}

/**
 * A ResNet on tfjs variables. Parameters live in tfjs layouts (conv [kh, kw, in, out], fc [in, out]) under
 * torchvision's names; {@linkcode ResNet.exportState} and {@linkcode ResNet.importState} convert to and from
 * torchvision's layouts.
 */
export class ResNet {
  /** The architecture. */
  readonly spec: ResNetSpec;
  /** Its module tree. */
  readonly plan: ResNetPlan;
  readonly #layout: StateEntry[];
  readonly #params = new Map<string, tf.Variable>();
  readonly #buffers = new Map<string, tf.Variable>();
  readonly #batchesTracked = new Map<string, number>();
  readonly #fusedBatchNorm: boolean;

  /** Builds the model with torchvision's initialisation (see {@linkcode createResNet}). */
  constructor(spec: ResNetSpec, options: CreateOptions = {}) {
    this.spec = structuredClone(spec);
    this.plan = resnetPlan(this.spec);
    this.#layout = stateLayout(this.plan);
    const seed = options.seed ?? 0;
    this.#fusedBatchNorm = options.fusedBatchNorm ?? true;
    const zeroGamma = new Set(
      this.plan.stages.flat().flatMap((b) => b.bns.filter((bn) => bn.zeroInit).map((bn) => `${bn.name}.weight`)),
    );
    tf.tidy(() => {
      this.#layout.forEach((e, i) => {
        if (e.dtype === "I64") {
          this.#batchesTracked.set(moduleOf(e.name), 0);
          return;
        }
        // Never 0: tfjs's randomNormal treats a falsy seed as "use Math.random()".
        const init = initialValue(e, seed * 7919 + i + 1, zeroGamma.has(e.name), this.plan.fc.inFeatures);
        const v = tf.variable(init, e.trainable, `${e.name}#${uniqueSuffix()}`);
        (e.trainable ? this.#params : this.#buffers).set(e.name, v);
      });
    });
  }

  /** Trainable parameters in torchvision's `named_parameters()` order (tfjs layouts). */
  parameters(): Map<string, tf.Variable> {
    return new Map(this.#params);
  }

  /** Running statistics (`running_mean`, `running_var`) by torchvision name. */
  buffers(): Map<string, tf.Variable> {
    return new Map(this.#buffers);
  }

  /** The state dict contract: every torchvision key with its PyTorch shape and dtype, in order. */
  stateLayout(): StateEntry[] {
    return this.#layout.map((e) => ({ ...e, shape: [...e.shape] }));
  }

  /**
   * Runs the network on `x` ([N, H, W, 3], normalised). Tensors it creates belong to the caller's scope (call it
   * inside `tf.tidy` or a gradient function), except `batchStats`, which are kept.
   */
  forward(x: tf.Tensor4D, options: ForwardOptions): ForwardResult {
    const stats: BatchStat[] = [];
    const stages = options.stages ? new Map<string, tf.Tensor>() : undefined;
    const conv = (input: tf.Tensor4D, c: ConvDef) =>
      // A numeric pad is symmetric in tfjs, like PyTorch (tfjs "same" pads stride-2 layers asymmetrically).
      tf.conv2d(input, this.#params.get(`${c.name}.weight`) as tf.Tensor4D, c.stride, c.padding);
    const fused = options.training && this.#fusedBatchNorm && tf.getBackend() === "webgpu";
    /** Batch norm, then ReLU when `relu`. */
    const bn = (input: tf.Tensor4D, b: BatchNormDef, relu: boolean): tf.Tensor4D => {
      const gamma = this.#params.get(`${b.name}.weight`) as tf.Tensor1D;
      const beta = this.#params.get(`${b.name}.bias`) as tf.Tensor1D;
      if (!options.training) {
        const mean = this.#buffers.get(`${b.name}.running_mean`) as tf.Tensor1D;
        const variance = this.#buffers.get(`${b.name}.running_var`) as tf.Tensor1D;
        const y = tf.batchNorm(input, mean, variance, beta, gamma, BN_EPS);
        return relu ? tf.relu(y) : y;
      }
      const [n, h, w] = input.shape;
      let y: tf.Tensor4D, mean: tf.Tensor, variance: tf.Tensor;
      if (fused) {
        ({ y, mean, variance } = batchNormTrain(input, gamma, beta, { eps: BN_EPS, relu }));
      } else {
        ({ mean, variance } = tf.moments(input, [0, 1, 2])); // [C], biased
        y = tf.batchNorm(input, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, BN_EPS);
        if (relu) y = tf.relu(y);
      }
      stats.push({
        name: b.name,
        mean: tf.keep(mean) as tf.Tensor1D,
        variance: tf.keep(variance) as tf.Tensor1D,
        count: n * h * w,
      });
      return y;
    };

    const { stem } = this.plan;
    let h = bn(conv(x, stem.conv), stem.bn, true); // [N, H/2, W/2, width] (imagenet) or [N, H, W, width]
    stages?.set("conv1", h);
    if (stem.maxPool) {
      h = tf.maxPool(h, 3, 2, 1); // [N, H/4, W/4, width]
      stages?.set("maxpool", h);
    }
    this.plan.stages.forEach((blocks, s) => {
      for (const block of blocks) {
        let out = h;
        block.convs.forEach((c, i) => {
          // ReLU after every BN of the branch but the last, which comes after the residual addition.
          out = bn(conv(out, c), block.bns[i], i < block.convs.length - 1);
        });
        const shortcut = block.downsample ? bn(conv(h, block.downsample.conv), block.downsample.bn, false) : h;
        h = tf.relu(tf.add(out, shortcut)); // [N, H', W', outChannels]
      }
      stages?.set(`layer${s + 1}`, h);
    });
    const pooled = tf.mean(h, [1, 2]) as tf.Tensor2D; // [N, C]
    stages?.set("avgpool", pooled);
    const fcW = this.#params.get("fc.weight") as tf.Tensor2D; // [in, out]
    const fcB = this.#params.get("fc.bias") as tf.Tensor1D; // [out]
    const logits = tf.add(tf.matMul(pooled, fcW), fcB) as tf.Tensor2D; // [N, numClasses]
    stages?.set("fc", logits);
    return { logits, batchStats: stats, stages };
  }

  /**
   * Moves running statistics toward `stats` as PyTorch does (momentum 0.1, unbiased variance) and counts the batch
   * in `num_batches_tracked`. Disposes the stats' tensors.
   */
  updateRunningStats(stats: BatchStat[]): void {
    tf.tidy(() => {
      for (const s of stats) {
        const rm = this.#buffers.get(`${s.name}.running_mean`);
        const rv = this.#buffers.get(`${s.name}.running_var`);
        if (!rm || !rv) throw new Error(`updateRunningStats: no batch norm named "${s.name}"`);
        const unbiased = s.variance.mul(s.count / Math.max(s.count - 1, 1));
        rm.assign(rm.mul(1 - BN_MOMENTUM).add(s.mean.mul(BN_MOMENTUM)));
        rv.assign(rv.mul(1 - BN_MOMENTUM).add(unbiased.mul(BN_MOMENTUM)));
        this.#batchesTracked.set(s.name, (this.#batchesTracked.get(s.name) ?? 0) + 1);
      }
    });
    for (const s of stats) tf.dispose([s.mean, s.variance]);
  }

  /** The whole state in torchvision's names, order and layouts (reads back from the GPU). */
  async exportState(): Promise<StateDict> {
    const tensors = new Map<string, tf.Tensor>([...this.#params, ...this.#buffers]);
    const hostData = await toTorchLayout(tensors);
    const out: StateDict = new Map();
    for (const e of this.#layout) {
      if (e.dtype === "I64") {
        out.set(e.name, {
          dtype: "I64",
          shape: [],
          data: BigInt64Array.of(BigInt(this.#batchesTracked.get(moduleOf(e.name)) ?? 0)),
        });
      } else {
        out.set(e.name, hostData.get(e.name)!);
      }
    }
    return out;
  }

  /**
   * Loads a state dict in torchvision's layouts. Everything is checked before anything is assigned, so a failed
   * load leaves the model as it was.
   * @param options.skip names to leave untouched (e.g. a classifier of another class count).
   * @throws {Error} listing missing, unexpected and mismatched entries.
   */
  importState(state: StateDict, options: { skip?: Iterable<string> } = {}): void {
    const skip = new Set(options.skip ?? []);
    const expected = this.#layout.filter((e) => !skip.has(e.name));
    checkState(new Map([...state].filter(([name]) => !skip.has(name))), expected);
    tf.tidy(() => {
      for (const e of expected) {
        const host = state.get(e.name)!;
        if (e.dtype === "I64") {
          this.#batchesTracked.set(moduleOf(e.name), Number((host.data as BigInt64Array)[0]));
          continue;
        }
        const target = this.#params.get(e.name) ?? this.#buffers.get(e.name)!;
        target.assign(fromTorchLayout(host, e.name));
      }
    });
  }

  /** Frees every variable. */
  dispose(): void {
    tf.dispose([...this.#params.values(), ...this.#buffers.values()]);
    this.#params.clear();
    this.#buffers.clear();
  }
}

/** Builds a model from a spec with torchvision's initialisation, deterministic for a given seed. */
export function createResNet(spec: ResNetSpec, options: CreateOptions = {}): ResNet {
  return new ResNet(spec, options);
}

/** Throws one error describing every missing, unexpected or mismatched entry of `state` against `expected`. */
function checkState(state: StateDict, expected: StateEntry[]): void {
  const problems: string[] = [];
  const names = new Set(expected.map((e) => e.name));
  const missing = expected.filter((e) => !state.has(e.name)).map((e) => e.name);
  const unexpected = [...state.keys()].filter((n) => !names.has(n));
  if (missing.length) problems.push(`missing ${missing.length}: ${preview(missing)}`);
  if (unexpected.length) problems.push(`unexpected ${unexpected.length}: ${preview(unexpected)}`);
  const mismatched: string[] = [];
  for (const e of expected) {
    const t = state.get(e.name);
    if (!t) continue;
    if (t.dtype !== e.dtype || t.shape.join() !== e.shape.join() || t.data.length !== numElements(e.shape)) {
      mismatched.push(`${e.name} expected ${e.dtype}[${e.shape}] got ${t.dtype}[${t.shape}]`);
    }
  }
  if (mismatched.length) problems.push(`mismatched ${mismatched.length}: ${preview(mismatched)}`);
  if (problems.length) {
    throw new Error(`State dict does not fit the model (nothing was loaded): ${problems.join("; ")}`);
  }
}

function preview(items: string[]): string {
  return items.slice(0, 5).join(", ") + (items.length > 5 ? `, ... (${items.length - 5} more)` : "");
}

let counter = 0;
function uniqueSuffix(): number {
  return counter++;
}

/** torchvision's initialisation of one entry, in tfjs layout. */
function initialValue(e: StateEntry, seed: number, zero: boolean, fcInFeatures: number): tf.Tensor {
  const param = e.name.slice(e.name.lastIndexOf(".") + 1);
  const shape = tfjsShape(e.shape);
  if (e.name.startsWith("fc.")) {
    // nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
    const bound = 1 / Math.sqrt(fcInFeatures);
    return tf.randomUniform(shape, -bound, bound, "float32", seed);
  }
  if (e.shape.length === 4) {
    // kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = sqrt(2 / (out · kh · kw)).
    const fanOut = e.shape[0] * e.shape[2] * e.shape[3];
    return tf.randomNormal(shape, 0, Math.sqrt(2 / fanOut), "float32", seed);
  }
  if (param === "weight") return zero ? tf.zeros(shape) : tf.ones(shape); // BN gamma
  if (param === "running_var") return tf.ones(shape);
  return tf.zeros(shape); // BN beta, running_mean
}
