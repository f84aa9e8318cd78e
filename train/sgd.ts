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
 * On tfjs's `webgpu` backend each parameter costs at most two dispatches of a fused WGSL kernel (one writing the new
 * momentum buffer, one writing the new parameter), instead of the six to eight elementwise ops the formulas take as
 * separate tfjs ops; the learning rate, momentum and weight decay travel as uniforms, so a step uploads no scalar
 * tensors. Other backends (or `implementation: "ops"`) use plain tfjs ops with the same arithmetic.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { webgpu_util, type WebGPUBackend, type WebGPUProgram } from "@tensorflow/tfjs-backend-webgpu";
import { compareStateDict, type ExpectedShapes } from "../io/checkpoint.ts";
import type { StateDict } from "../io/host_tensor.ts";
import { fromTorchLayout, torchShape, toTorchLayout } from "../models/torch_layout.ts";

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
   * included, like PyTorch's `grad is None`). Runs inside `tf.tidy`; the gradients are not disposed (the caller
   * owns them). The old momentum buffers are disposed.
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
    for (const [name, g] of entries) {
      const p = this.#params.get(name)!;
      const wd = this.decayed.has(name) ? this.weightDecay : 0;
      const old = this.#buffers.get(name);
      const buffer = tf.tidy(() => {
        const [newP, newB] = this.#fused ? this.#fusedUpdate(p, g, old, lr, wd) : this.#opsUpdate(p, g, old, lr, wd);
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

  /** The arithmetic as at most two fused WGSL dispatches. Returns [new parameter, new buffer]. */
  #fusedUpdate(
    p: tf.Variable,
    g: tf.Tensor,
    b: tf.Tensor | undefined,
    lr: number,
    wd: number,
  ): [tf.Tensor, tf.Tensor | undefined] {
    const backend = tf.backend() as WebGPUBackend;
    const n = p.size;
    // Flat views share the parameter's buffer (reshape is free) and make every parameter use the same pipelines.
    const [pf, gf] = [tf.reshape(p, [n]), tf.reshape(g, [n])];
    const uniforms = [
      { type: "float32", data: [lr] },
      { type: "float32", data: [this.momentum] },
      { type: "float32", data: [wd] },
    ];
    const run = (kind: FusedKind, inputs: tf.Tensor[]) =>
      tf.engine().makeTensorFromTensorInfo(
        backend.runWebGPUProgram(new SgdProgram(kind, n), inputs, "float32", uniforms),
      );
    let newB: tf.Tensor | undefined;
    let newP: tf.Tensor;
    if (this.momentum === 0) {
      newP = run("plain", [pf, gf]);
    } else {
      newB = b ? run("buffer", [pf, gf, tf.reshape(b, [n])]) : run("firstBuffer", [pf, gf]);
      newP = this.nesterov ? run("nesterov", [pf, gf, newB]) : run("momentum", [pf, newB]);
      newB = tf.reshape(newB, p.shape);
    }
    return [tf.reshape(newP, p.shape), newB];
  }

  /**
   * Copies of the momentum buffers by parameter name (parameters that have had at least one step), for
   * checkpoints. The caller owns and must dispose the returned tensors. Empty when momentum is 0.
   */
  momentumBuffers(): Map<string, tf.Tensor> {
    return new Map([...this.#buffers].map(([name, b]) => [name, tf.clone(b)]));
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
    for (const [name, b] of buffers) this.#buffers.set(name, tf.keep(tf.clone(b)));
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

/** Which fused kernel: the buffer update (first or later step) or the parameter update (plain/momentum/nesterov). */
type FusedKind = "firstBuffer" | "buffer" | "plain" | "momentum" | "nesterov";

// WGSL bodies. `d` is the decayed gradient; `uniforms.wd` is 0 for parameters without weight decay. Expressions
// follow PyTorch's order: d = g + wd*p; b = momentum*b + d; d = d + momentum*b; p = p + (-lr)*d.
const DECAYED_GRAD = `var d = getGByOutputIndex(index);
          if (uniforms.wd != 0.0) { d = d + uniforms.wd * getPByOutputIndex(index); }`;
const FUSED_BODIES: Record<FusedKind, { inputs: string[]; body: string }> = {
  firstBuffer: { inputs: ["P", "G"], body: `${DECAYED_GRAD} setOutputAtIndex(index, d);` },
  buffer: {
    inputs: ["P", "G", "B"],
    body: `${DECAYED_GRAD} setOutputAtIndex(index, uniforms.momentum * getBByOutputIndex(index) + d);`,
  },
  plain: {
    inputs: ["P", "G"],
    body: `${DECAYED_GRAD} setOutputAtIndex(index, getPByOutputIndex(index) + (-uniforms.lr) * d);`,
  },
  momentum: {
    inputs: ["P", "B"],
    body: `setOutputAtIndex(index, getPByOutputIndex(index) + (-uniforms.lr) * getBByOutputIndex(index));`,
  },
  nesterov: {
    inputs: ["P", "G", "B"],
    body: `${DECAYED_GRAD} d = d + uniforms.momentum * getBByOutputIndex(index);
          setOutputAtIndex(index, getPByOutputIndex(index) + (-uniforms.lr) * d);`,
  },
};

/** A flat elementwise tfjs-webgpu program over 1-D float32 inputs of equal length. */
class SgdProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  variableNames: string[];
  uniforms = "lr : f32, momentum : f32, wd : f32,";
  workgroupSize: [number, number, number] = [64, 1, 1];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  size = true;
  #body: string;

  constructor(kind: FusedKind, n: number) {
    this.outputShape = [n];
    this.variableNames = FUSED_BODIES[kind].inputs;
    this.#body = FUSED_BODIES[kind].body;
    this.shaderKey = `sgd_${kind}`;
    this.dispatchLayout = webgpu_util.flatDispatchLayout(this.outputShape);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, this.outputShape, this.workgroupSize);
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${this.#body}
        }
      }`;
  }
}
