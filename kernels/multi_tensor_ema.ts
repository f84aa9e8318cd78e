/**
 * An exponential moving average of many tensors in one dispatch (as many per dispatch as the device's binding limits
 * allow, like `multi_tensor_sgd.ts`): torch's `AveragedModel.update_parameters` with torchvision's
 * `ExponentialMovingAverage` averaging function, `avg = decay * avg + (1 - decay) * value`, or a plain copy on the
 * first update (`n_averaged == 0`). On llvmpipe (16 storage buffers per stage) that is 8 tensors per dispatch; GPUs
 * bind them all in one.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { type DirectBinding, gridStride, runDirectProgram } from "./direct_program.ts";

/** One averaged tensor and the tensor it follows (float32, the same shape; different buffers). */
export interface EmaPair {
  /** Updated in place (every tensor sharing its buffer sees the new values). */
  average: tf.Tensor;
  value: tf.Tensor;
}

/**
 * Updates every `pairs[i].average` in place. `copy`: average = value (torch's first update). Else, in float32 as
 * PyTorch computes `decay * avg + (1 - decay) * value` with a Python float `decay` (each product rounded, then the
 * sum): average = f32(f32(decay) · average) + f32(f32(1 − decay) · value), `1 − decay` taken in double precision.
 * @throws {Error} off webgpu, or for a pair of other shapes or dtypes.
 */
export function multiTensorEma(pairs: EmaPair[], decay: number, copy: boolean): void {
  for (const { average, value } of pairs) {
    if (average.dtype !== "float32" || value.dtype !== "float32" || average.size !== value.size) {
      throw new Error(
        `multiTensorEma: expected float32 pairs of one size, got ${average.dtype} [${average.shape}] and ` +
          `${value.dtype} [${value.shape}]`,
      );
    }
  }
  const device = (tf.backend() as WebGPUBackend).device;
  const bindings = Math.min(device.limits.maxStorageBuffersPerShaderStage, device.limits.maxBindingsPerBindGroup - 1);
  const perDispatch = Math.max(1, Math.floor(bindings / 2));
  for (let start = 0; start < pairs.length; start += perDispatch) {
    const group = pairs.slice(start, start + perDispatch);
    const sizes = group.map((p) => p.average.size);
    runDirectProgram({
      // The copy is a uniform, not part of the shader: the update after the first must not compile a new pipeline.
      key: `ema_${sizes.join(",")}`,
      bindings: group.flatMap(({ average, value }, j): DirectBinding[] => [
        { name: `a${j}`, tensor: average, access: "read_write" },
        { name: `v${j}`, tensor: value, access: "read" },
      ]),
      uniforms: [
        { name: "decay", value: decay },
        { name: "rest", value: 1 - decay },
        { name: "copy", value: copy ? 1 : 0 },
      ],
      workgroups: gridStride(Math.max(...sizes)),
      code: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let stride = nwg.x * 256u;${sizes.map((n, j) => update(j, n)).join("")}
}`,
    });
  }
}

/** WGSL averaging pair j (n elements) with grid-stride index i. */
function update(j: number, n: number): string {
  return `
  for (var i = gid.x; i < ${n}u; i += stride) {
    if (u.copy != 0.0) {
      a${j}[i] = v${j}[i];
    } else {
      let kept = u.decay * a${j}[i];
      let added = u.rest * v${j}[i];
      a${j}[i] = kept + added;
    }
  }`;
}
