/**
 * The ResNet family as a tfjs model: variables named with torchvision's `state_dict` keys, activations NHWC, and
 * PyTorch's symmetric padding, so the same weights give the same outputs as torchvision.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { BN_STATS_ROWS } from "../kernels/batch_norm_programs.ts";
import { pooledLinear } from "../kernels/pooled_linear.ts";
import { batchNormLayer, statsRows } from "./batch_norm_layer.ts";
import type { StateDict } from "../io/host_tensor.ts";
import { numElements } from "../kernels/num_elements.ts";
import { type BatchNormDef, type ConvDef, type ResNetPlan, resnetPlan } from "./resnet_plan.ts";
import type { ResNetSpec } from "./resnet_spec.ts";
import { moduleOf, type StateEntry, stateLayout } from "./state_layout.ts";
import { fromTorchLayout, tfjsShape, toTorchLayout } from "./torch_layout.ts";

/** What one BN layer's training forward pass computed, to commit as its running statistics afterwards. */
export interface BatchStat {
  /** BN module name, e.g. "layer1.0.bn2". */
  name: string;
  /**
   * [4, C] (rows of `BN_STATS_ROWS`): the batch mean and biased variance (divided by `count`, as used for
   * normalisation), then running_mean and running_var moved toward them (PyTorch: momentum 0.1, unbiased variance).
   */
  stats: tf.Tensor2D;
  /** Values per channel: N·H·W. */
  count: number;
  /** The layer's statistics the pass started from (opaque): committing on top of others would lose an update. */
  basis: object;
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
   * Our fused WebGPU kernels (see {@linkcode ResNet.fusedKernels}): batch norm (+ residual + ReLU) through
   * `kernels/batch_norm_train.ts` and `batch_norm_eval.ts` (2-6 dispatches forward and backward, running statistics
   * included, instead of about 30 for the composite tfjs ops), the pooled classifier through `pooled_linear.ts`, and in
   * `makeTrainStep` the loss. Default true; ignored off webgpu; false gives the composite tfjs ops (the stock
   * baseline).
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
  /** Per BN module, its running_mean and running_var (and last batch statistics): [4, C], rows of `BN_STATS_ROWS`. */
  readonly #bnStats = new Map<string, tf.Variable<tf.Rank.R2>>();
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
        if (!e.trainable) {
          // running_mean, then running_var: one [4, C] tensor per module, rows (batch mean 0, batch variance 1,
          // running_mean 0, running_var 1) until a training pass.
          const module = moduleOf(e.name);
          if (!this.#bnStats.has(module)) {
            const init = tf.tile(tf.tensor2d([0, 1, 0, 1], [4, 1]), [1, e.shape[0]]) as tf.Tensor2D;
            this.#bnStats.set(module, tf.variable(init, false, `${module}.stats#${uniqueSuffix()}`));
          }
          return;
        }
        // Never 0: tfjs's randomNormal treats a falsy seed as "use Math.random()".
        const init = initialValue(e, seed * 7919 + i + 1, zeroGamma.has(e.name), this.plan.fc.inFeatures);
        this.#params.set(e.name, tf.variable(init, true, `${e.name}#${uniqueSuffix()}`));
      });
    });
  }

  /** Whether forward passes (and `makeTrainStep`'s loss) use our fused WebGPU kernels: the option, on webgpu. */
  get fusedKernels(): boolean {
    return this.#fusedBatchNorm && tf.getBackend() === "webgpu";
  }

  /** Trainable parameters in torchvision's `named_parameters()` order (tfjs layouts). */
  parameters(): Map<string, tf.Variable> {
    return new Map(this.#params);
  }

  /**
   * Copies of the running statistics (`running_mean`, `running_var`, [C] each) by torchvision name; the caller owns
   * them. (The model keeps each BN layer's in one [4, C] tensor; see `BN_STATS_ROWS`.)
   */
  buffers(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    for (const [module, stats] of this.#bnStats) {
      const [mean, variance] = tf.tidy(() => statsRows(stats, BN_STATS_ROWS.runningMean));
      out.set(`${module}.running_mean`, mean).set(`${module}.running_var`, variance);
    }
    return out;
  }

  /**
   * Every float32 tensor of the state, the variables themselves (not copies): the parameters in `parameters()` order,
   * then each BN layer's [4, C] statistics (running mean and variance, and the scratch rows of the last batch). For
   * updates of the whole state in place (the weight average of `train/model_ema.ts`): two models of one spec list
   * matching tensors in the same order.
   */
  stateVariables(): tf.Variable[] {
    return [...this.#params.values(), ...this.#bnStats.values()];
  }

  /** `num_batches_tracked` of each BN layer, by module name (`layer1.0.bn1`), in state order. */
  batchesTracked(): Map<string, number> {
    return new Map(this.#batchesTracked);
  }

  /**
   * Sets `num_batches_tracked` of the BN layers named in `counts` (non-negative integers).
   * @throws {Error} naming the first unknown layer or invalid count; nothing is set then.
   */
  setBatchesTracked(counts: Map<string, number>): void {
    for (const [module, n] of counts) {
      if (!this.#batchesTracked.has(module)) throw new Error(`setBatchesTracked: no batch norm named "${module}"`);
      if (!Number.isInteger(n) || n < 0) throw new Error(`setBatchesTracked: "${module}" count must be >= 0, got ${n}`);
    }
    for (const [module, n] of counts) this.#batchesTracked.set(module, n);
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
    const fused = this.fusedKernels;
    /** Batch norm (+ residual), then ReLU when `relu`. */
    const bn = (input: tf.Tensor4D, b: BatchNormDef, relu: boolean, residual?: tf.Tensor4D): tf.Tensor4D => {
      const gamma = this.#params.get(`${b.name}.weight`) as tf.Tensor1D;
      const beta = this.#params.get(`${b.name}.bias`) as tf.Tensor1D;
      const state = this.#bnStats.get(b.name)!;
      const { training } = options;
      const r = batchNormLayer(input, { gamma, beta, stats: state }, { training, fused, relu, residual });
      if (r.stats) {
        const [n, h, w] = input.shape;
        stats.push({ name: b.name, stats: tf.keep(r.stats), count: n * h * w, basis: state.dataId });
      }
      return r.y;
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
        const shortcut = block.downsample ? bn(conv(h, block.downsample.conv), block.downsample.bn, false) : h;
        const last = block.convs.length - 1;
        let out = h;
        block.convs.forEach((c, i) => {
          // ReLU after every BN of the branch; the last one adds the shortcut first (fused: relu(bn(x) + shortcut)).
          out = bn(conv(out, c), block.bns[i], true, i === last ? shortcut : undefined);
        });
        h = out; // [N, H', W', outChannels]
      }
      stages?.set(`layer${s + 1}`, h);
    });
    const fcW = this.#params.get("fc.weight") as tf.Tensor2D; // [in, out]
    const fcB = this.#params.get("fc.bias") as tf.Tensor1D; // [out]
    let pooled: tf.Tensor2D, logits: tf.Tensor2D; // [N, C], [N, numClasses]
    if (fused) {
      ({ pooled, logits } = pooledLinear(h, fcW, fcB));
    } else {
      pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
      logits = tf.add(tf.matMul(pooled, fcW), fcB) as tf.Tensor2D;
    }
    stages?.set("avgpool", pooled);
    stages?.set("fc", logits);
    return { logits, batchStats: stats, stages };
  }

  /**
   * Commits the running statistics a training forward pass computed (PyTorch's update: momentum 0.1, unbiased
   * variance; they are rows 2-3 of each `stats`, so this runs no GPU work) and counts the batch in
   * `num_batches_tracked`. Disposes the stats' tensors. Commit each training pass before the next one's (each pass
   * starts from the committed statistics).
   * @throws {Error} naming the layer when `stats` name an unknown layer or were computed from statistics that have
   *   changed since (another pass committed, a load); nothing is committed then.
   */
  updateRunningStats(stats: BatchStat[]): void {
    for (const s of stats) {
      const current = this.#bnStats.get(s.name);
      if (!current) throw new Error(`updateRunningStats: no batch norm named "${s.name}"`);
      if (current.dataId !== s.basis) {
        throw new Error(
          `updateRunningStats: the statistics of "${s.name}" changed after the forward pass that computed these ` +
            "(commit each training pass before the next)",
        );
      }
    }
    for (const s of stats) {
      this.#bnStats.get(s.name)!.assign(s.stats);
      this.#batchesTracked.set(s.name, (this.#batchesTracked.get(s.name) ?? 0) + 1);
      s.stats.dispose();
    }
  }

  /** The whole state in torchvision's names, order and layouts (reads back from the GPU). */
  async exportState(): Promise<StateDict> {
    const hostData = await toTorchLayout(this.#params);
    for (const [module, stats] of this.#bnStats) {
      const data = (await stats.data()) as Float32Array; // [4, C]
      const c = stats.shape[1];
      const rows = [[BN_STATS_ROWS.runningMean, "running_mean"], [BN_STATS_ROWS.runningVar, "running_var"]] as const;
      for (const [row, key] of rows) {
        hostData.set(`${module}.${key}`, { dtype: "F32", shape: [c], data: data.slice(row * c, (row + 1) * c) });
      }
    }
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
      const running = new Map<string, tf.Tensor[]>(); // BN module → its [4, C] rows, the loaded ones replaced
      for (const e of expected) {
        const host = state.get(e.name)!;
        const module = moduleOf(e.name);
        if (e.dtype === "I64") {
          this.#batchesTracked.set(module, Number((host.data as BigInt64Array)[0]));
        } else if (e.trainable) {
          this.#params.get(e.name)!.assign(fromTorchLayout(host, e.name));
        } else {
          const stats = this.#bnStats.get(module)!;
          const c = stats.shape[1];
          if (!running.has(module)) running.set(module, tf.split(stats, 4, 0));
          const row = e.name.endsWith(".running_mean") ? BN_STATS_ROWS.runningMean : BN_STATS_ROWS.runningVar;
          running.get(module)![row] = tf.tensor2d(host.data as Float32Array, [1, c]);
        }
      }
      for (const [module, rows] of running) this.#bnStats.get(module)!.assign(tf.concat(rows, 0) as tf.Tensor2D);
    });
  }

  /** Frees every variable. */
  dispose(): void {
    tf.dispose([...this.#params.values(), ...this.#bnStats.values()]);
    this.#params.clear();
    this.#bnStats.clear();
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
  return tf.zeros(shape); // BN beta
}
