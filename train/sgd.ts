/**
 * Stochastic gradient descent with momentum, Nesterov momentum and decoupled-from-BN weight decay, matching
 * `torch.optim.SGD(params, lr, momentum, dampening=0, nesterov, weight_decay)` update for update:
 *
 * ```text
 * d = g + weight_decay * p          (only for parameters the caller marks as decayed)
 * b = d                             (first step of a parameter)
 * b = momentum * b + d              (later steps)
 * d = d + momentum * b  if nesterov, else  d = b
 * p = p - lr * d
 * ```
 *
 * With momentum 0 there are no buffers and `p = p - lr * d`. The learning rate is an argument of
 * {@linkcode SGD.step} because schedules are pure functions of the global step (see `lr_schedule.ts`), so the
 * optimizer's only state is its momentum buffers.
 *
 * On tfjs's `webgpu` backend a step is one multi-tensor dispatch for all parameters (`kernels/multi_tensor_sgd.ts`;
 * on a software adapter with few storage bindings, one per five parameters), which updates the parameters and momentum
 * buffers in place, instead of the six to eight elementwise ops per parameter the formulas take as separate tfjs ops;
 * the learning rate, momentum and weight decay travel as uniforms, so a step uploads no scalar tensors. Other backends
 * (or `implementation: "ops"`) use plain tfjs ops with the same arithmetic, and `assign`.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { compareStateDict, type ExpectedShapes } from "../io/checkpoint.ts";
import type { StateDict } from "../io/host_tensor.ts";
import { fromTorchLayout, torchShape, toTorchLayout } from "../models/torch_layout.ts";
import { copyTensor } from "../kernels/copy_tensor.ts";
import { multiTensorSgd } from "../kernels/multi_tensor_sgd.ts";

/** Chooses which parameters get weight decay; called once per parameter when the optimizer is built. */
export type WeightDecayFilter = (name: string, p: tf.Variable) => boolean;

/**
 * torchvision's `--norm-weight-decay 0 --bias-weight-decay 0` convention: decay convolution and fully-connected
 * weights (rank >= 2), never BatchNorm weights/biases (rank 1) nor any bias.
 */
export function defaultWeightDecayFilter(name: string, p: tf.Variable): boolean {
  return p.rank >= 2 && !/(^|\.)bias$/.test(name);
}

/** Decays every parameter, BN and biases included (plain `torch.optim.SGD(model.parameters(), weight_decay=...)`). */
export function decayAllFilter(_name: string, _p: tf.Variable): boolean {
  return true;
}

/** The filter for a `--weight-decay-all` flag: {@linkcode decayAllFilter} when true, else the default. */
export function weightDecayFilter(decayAll: boolean): WeightDecayFilter {
  return decayAll ? decayAllFilter : defaultWeightDecayFilter;
}

/** Hyper-parameters of {@linkcode SGD} other than the learning rate. */
export interface SGDOptions {
  /** Momentum factor (0 = plain SGD, no buffers). */
  momentum: number;
  /** Nesterov momentum; requires momentum > 0, as in PyTorch. */
  nesterov: boolean;
  /** L2 penalty coefficient added to the gradient of decayed parameters. */
  weightDecay: number;
  /** Which parameters are decayed; e.g. {@linkcode defaultWeightDecayFilter}. */
  decay: WeightDecayFilter;
  /**
   * `"fused"`: the WGSL kernels (webgpu backend only); `"ops"`: plain tfjs ops; `"auto"` (default): fused on webgpu.
   */
  implementation?: "auto" | "fused" | "ops";
}

/** The optimizer fields of a training configuration (`TrainConfig`'s, by shape: sgd.ts sits below config.ts). */
export interface SGDConfig {
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  /** Decay BatchNorm parameters and biases too ({@linkcode weightDecayFilter}). */
  weightDecayAll: boolean;
}

/** The {@linkcode SGD} options a training configuration asks for: the one reading of its optimizer fields. */
export function sgdOptionsFor(config: SGDConfig): SGDOptions {
  return {
    momentum: config.momentum,
    nesterov: config.nesterov,
    weightDecay: config.weightDecay,
    decay: weightDecayFilter(config.weightDecayAll),
  };
}

/** SGD over named tfjs variables; see the module documentation for the exact update. */
export class SGD {
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  /** Names of the parameters that get weight decay, in parameter order. */
  readonly decayed: ReadonlySet<string>;
  readonly #params: Map<string, tf.Variable>;
  readonly #buffers = new Map<string, tf.Tensor>();
  readonly #fused: boolean;

  /**
   * @param params the parameters by name (torchvision `state_dict` names); the optimizer updates them in place with
   *   `assign`, and never disposes them.
   * @throws {RangeError} for a negative or non-finite momentum or weight decay, or Nesterov without momentum.
   */
  constructor(params: Map<string, tf.Variable>, options: SGDOptions) {
    const { momentum, nesterov, weightDecay } = options;
    if (!Number.isFinite(momentum) || momentum < 0) {
      throw new RangeError(`SGD: momentum must be a finite number >= 0, got ${momentum}`);
    }
    if (!Number.isFinite(weightDecay) || weightDecay < 0) {
      throw new RangeError(`SGD: weightDecay must be a finite number >= 0, got ${weightDecay}`);
    }
    if (nesterov && momentum <= 0) throw new RangeError("SGD: Nesterov momentum requires momentum > 0, got 0");
    this.momentum = momentum;
    this.nesterov = nesterov;
    this.weightDecay = weightDecay;
    this.#params = new Map(params);
    const decayed = new Set<string>();
    for (const [name, p] of this.#params) {
      if (p.dtype !== "float32") throw new TypeError(`SGD: parameter "${name}" must be float32, got ${p.dtype}`);
      if (weightDecay > 0 && options.decay(name, p)) decayed.add(name);
    }
    this.decayed = decayed;
    const impl = options.implementation ?? "auto";
    const onWebGPU = tf.getBackend() === "webgpu";
    if (impl === "fused" && !onWebGPU) {
      throw new Error(`SGD: implementation "fused" needs the webgpu backend, the active backend is ${tf.getBackend()}`);
    }
    this.#fused = impl === "fused" || (impl === "auto" && onWebGPU);
  }

  /**
   * One update of every parameter that has a gradient (parameters without one are left untouched, buffers
   * included, like PyTorch's `grad is None`). The gradients are not disposed (the caller owns them). With the fused
   * implementation the parameters' buffers are updated in place (a tensor sharing a parameter's buffer, such as its
   * `tf.clone`, changes with it; take copies with `data()` or an op); with the ops one they are `assign`ed new
   * tensors and the old momentum buffers disposed.
   * @throws {Error} for a gradient whose name is not a parameter or whose shape differs from the parameter's.
   */
  step(grads: Map<string, tf.Tensor> | Record<string, tf.Tensor>, lr: number): void {
    if (!Number.isFinite(lr) || lr < 0) throw new RangeError(`SGD.step: lr must be a finite number >= 0, got ${lr}`);
    const entries = grads instanceof Map ? [...grads] : Object.entries(grads);
    for (const [name, g] of entries) {
      const p = this.#params.get(name);
      if (!p) throw new Error(`SGD.step: gradient for unknown parameter "${name}"`);
      if (!tf.util.arraysEqual(g.shape, p.shape)) {
        throw new Error(`SGD.step: gradient of "${name}" has shape [${g.shape}], the parameter has [${p.shape}]`);
      }
    }
    if (this.#fused) {
      const tensors = entries.map(([name, grad]) => ({
        param: this.#params.get(name)!,
        grad,
        buffer: this.#buffers.get(name),
        decay: this.decayed.has(name),
      }));
      const { momentum, nesterov, weightDecay } = this;
      const created = multiTensorSgd(tensors, { lr, momentum, nesterov, weightDecay });
      // keep: a first step's buffers must outlive any tidy the caller wraps step() in.
      created.forEach((b, i) => b && this.#buffers.set(entries[i][0], tf.keep(b)));
      return;
    }
    for (const [name, g] of entries) {
      const p = this.#params.get(name)!;
      const wd = this.decayed.has(name) ? this.weightDecay : 0;
      const old = this.#buffers.get(name);
      const buffer = tf.tidy(() => {
        const [newP, newB] = this.#opsUpdate(p, g, old, lr, wd);
        p.assign(newP);
        // keep: the buffer must outlive any tidy the caller wraps step() in. Undefined with momentum 0.
        return newB ? tf.keep(newB) : undefined;
      });
      if (buffer) {
        old?.dispose();
        this.#buffers.set(name, buffer);
      }
    }
  }

  /** The arithmetic as tfjs ops, in PyTorch's order of operations. Returns [new parameter, new buffer]. */
  #opsUpdate(
    p: tf.Variable,
    g: tf.Tensor,
    b: tf.Tensor | undefined,
    lr: number,
    wd: number,
  ): [tf.Tensor, tf.Tensor | undefined] {
    let d = wd > 0 ? tf.add(g, tf.mul(p, wd)) : g;
    let newB: tf.Tensor | undefined;
    if (this.momentum > 0) {
      newB = b ? tf.add(tf.mul(b, this.momentum), d) : tf.clone(d);
      d = this.nesterov ? tf.add(d, tf.mul(newB, this.momentum)) : newB;
    }
    return [tf.sub(p, tf.mul(d, lr)), newB];
  }

  /**
   * Copies of the momentum buffers by parameter name (parameters that have had at least one step), for
   * checkpoints. The caller owns and must dispose the returned tensors. Empty when momentum is 0.
   */
  momentumBuffers(): Map<string, tf.Tensor> {
    // Real copies: the fused step updates the buffers in place, and tf.clone would share them.
    return new Map([...this.#buffers].map(([name, b]) => [name, copyTensor(b)]));
  }

  /**
   * Replaces the momentum buffers (resume). Validates everything before changing anything: each name must be a
   * parameter, each shape the parameter's, each dtype float32. Parameters absent from `buffers` start without a
   * buffer (their next step is a first step, as in PyTorch). The tensors are copied; the caller keeps ownership.
   * @throws {Error} naming the offending buffer and what was expected; the optimizer is unchanged then.
   */
  loadMomentumBuffers(buffers: Map<string, tf.Tensor>): void {
    if (this.momentum === 0 && buffers.size > 0) {
      throw new Error(`SGD.loadMomentumBuffers: momentum is 0 but ${buffers.size} momentum buffer(s) were given`);
    }
    for (const [name, b] of buffers) {
      const p = this.#params.get(name);
      if (!p) throw new Error(`SGD.loadMomentumBuffers: momentum buffer "${name}" is not a parameter of the model`);
      if (!tf.util.arraysEqual(b.shape, p.shape)) {
        throw new Error(
          `SGD.loadMomentumBuffers: momentum buffer "${name}" has shape [${b.shape}], expected [${p.shape}]`,
        );
      }
      if (b.dtype !== "float32") {
        throw new Error(`SGD.loadMomentumBuffers: momentum buffer "${name}" has dtype ${b.dtype}, expected float32`);
      }
    }
    this.#disposeBuffers();
    for (const [name, b] of buffers) this.#buffers.set(name, tf.keep(copyTensor(b)));
  }

  /**
   * The optimizer's state as `torch.optim.SGD.state_dict()` holds it: the `momentum_buffer` of every parameter that
   * has had a step, keyed by the parameter's torchvision name, in PyTorch layout (a checkpoint stores each as
   * `optim.<name>`). Empty when momentum is 0. Reads back from the GPU and leaves no tensor behind.
   */
  async exportState(): Promise<StateDict> {
    const buffers = this.momentumBuffers(); // copies, ours to dispose
    try {
      return await toTorchLayout(buffers);
    } finally {
      tf.dispose([...buffers.values()]);
    }
  }

  /**
   * Loads what {@linkcode SGD.exportState} returns (or a checkpoint's `optim.` tensors). Every name, dtype and shape
   * is checked before anything is assigned, so a refused state leaves the optimizer as it was; parameters absent
   * from `state` start without a buffer (their next step is a first step, as in PyTorch). The host data is copied.
   * @throws {Error} listing every entry that is not a parameter or not shaped like one.
   */
  importState(state: StateDict): void {
    const expected: ExpectedShapes = new Map(
      [...this.#params].map(([name, p]) => [name, { shape: torchShape(p.shape), dtype: "F32" }]),
    );
    // Missing names are fine (no step yet), so only unexpected and mismatched entries are errors.
    const { unexpected, mismatched } = compareStateDict(state, expected);
    const problems = [
      ...unexpected.map((name) => `"${name}" is not a parameter`),
      ...mismatched.map((m) =>
        `"${m.name}" is ${m.found.dtype} [${m.found.shape}], expected ${m.expected.dtype} [${m.expected.shape}]`
      ),
    ];
    if (problems.length > 0) {
      throw new Error(
        `SGD.importState: state does not fit the parameters (nothing was loaded): ${problems.join("; ")}`,
      );
    }
    const buffers = new Map<string, tf.Tensor>();
    try {
      for (const [name, host] of state) buffers.set(name, fromTorchLayout(host, name));
      this.loadMomentumBuffers(buffers); // copies them
    } finally {
      tf.dispose([...buffers.values()]);
    }
  }

  /** Disposes the momentum buffers (not the parameters). */
  dispose(): void {
    this.#disposeBuffers();
  }

  #disposeBuffers() {
    for (const b of this.#buffers.values()) b.dispose();
    this.#buffers.clear();
  }
}
