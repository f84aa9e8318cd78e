/**
 * SGD with momentum, Nesterov momentum and weight decay (torch.optim.SGD's update, dampening 0) for many parameters
 * in one dispatch: a multi-tensor apply whose program binds every parameter, gradient and momentum buffer (as many
 * per dispatch as the device's binding limits allow) and updates parameters and buffers in place. On llvmpipe (16
 * storage buffers per stage) that is 5 parameters per dispatch; GPUs bind them all in one. A gradient whose split-K
 * sum is still pending (a convolution's weight gradient, `kernels/deferred_split_k.ts`) is read as its partial sums
 * by `runDirectProgram`, which saves the reduction's dispatch.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { allocateTensor, type DirectBinding, gridStride, runDirectProgram } from "./direct_program.ts";

/** One parameter of a {@linkcode multiTensorSgd} step. */
export interface SgdTensor {
  /** float32, updated in place (every tensor sharing its buffer sees the new values). */
  param: tf.Tensor;
  /** float32, the parameter's shape. */
  grad: tf.Tensor;
  /** The momentum buffer, updated in place; undefined for the parameter's first step (the buffer is created). */
  buffer?: tf.Tensor;
  /** Whether weight decay applies to this parameter. */
  decay: boolean;
}

/** Hyper-parameters of a step. */
export interface SgdHyper {
  lr: number;
  /** 0: no momentum buffers. */
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
}

/**
 * Updates every `tensors[i].param` in place, PyTorch's order of operations in float32:
 * d = g + wd·p (decayed parameters); b = d on a first step, else b = momentum·b + d; d = d + momentum·b with Nesterov,
 * else d = b; p = p + (−lr)·d. Without momentum, p = p + (−lr)·d and no buffers.
 * @returns per tensor, the momentum buffer created for a first step (the caller owns it), else undefined.
 */
export function multiTensorSgd(tensors: SgdTensor[], h: SgdHyper): (tf.Tensor | undefined)[] {
  const withMomentum = h.momentum > 0;
  const created = tensors.map((t) => withMomentum && !t.buffer ? allocateTensor(t.param.shape) : undefined);
  const device = (tf.backend() as WebGPUBackend).device;
  const perTensor = withMomentum ? 3 : 2;
  const bindings = Math.min(device.limits.maxStorageBuffersPerShaderStage, device.limits.maxBindingsPerBindGroup - 1);
  const perDispatch = Math.max(1, Math.floor(bindings / perTensor));
  for (let start = 0; start < tensors.length; start += perDispatch) {
    const group = tensors.slice(start, start + perDispatch).map((t, j) => ({
      ...t,
      buffer: t.buffer ?? created[start + j],
      first: !t.buffer,
      n: t.param.size,
    }));
    const decays = h.weightDecay > 0;
    // First steps are a uniform, not part of the shader: the step after the first must not compile new pipelines.
    const key = `sgd_${withMomentum}_${h.nesterov}_${decays}_` +
      group.map((t) => `${t.n}${t.decay ? "d" : ""}`).join(",");
    runDirectProgram({
      key,
      bindings: group.flatMap((t, j): DirectBinding[] => [
        { name: `p${j}`, tensor: t.param, access: "read_write" },
        { name: `g${j}`, tensor: t.grad, access: "read" },
        ...(withMomentum ? [{ name: `b${j}`, tensor: t.buffer!, access: "read_write" as const }] : []),
      ]),
      uniforms: [
        { name: "lr", value: h.lr },
        { name: "momentum", value: h.momentum },
        { name: "wd", value: h.weightDecay },
        ...(withMomentum ? group.map((t, j) => ({ name: `first${j}`, value: t.first ? 1 : 0 })) : []),
      ],
      workgroups: gridStride(Math.max(...group.map((t) => t.n))),
      code: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * 256u;${group.map((t, j) => update(j, t.n, decays && t.decay, withMomentum, h.nesterov)).join("")}
}`,
    });
  }
  return created;
}

/** WGSL updating parameter j (n elements) with grid-stride index i; `u.first{j}` is 1 on its first step. */
function update(j: number, n: number, decay: boolean, momentum: boolean, nesterov: boolean): string {
  const buffer = !momentum ? "" : `
    var b = d;
    if (u.first${j} == 0.0) {
      b = u.momentum * b${j}[i] + d;
    }
    b${j}[i] = b;
    d = ${nesterov ? "d + u.momentum * b" : "b"};`;
  return `
  for (var i = gid.x; i < ${n}u; i += stride) {
    var d = g${j}[i];${
    decay
      ? `
    d = d + u.wd * p${j}[i];`
      : ""
  }${buffer}
    p${j}[i] = p${j}[i] + (-u.lr) * d;
  }`;
}
