/**
 * Multi-tensor SGD (kernels/multi_tensor_sgd.ts) against a float64 reference of torch.optim.SGD's update (dampening
 * 0) over three steps: more parameters than one dispatch binds on a software adapter, parameters with and without
 * weight decay, plain, momentum and Nesterov momentum.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { multiTensorSgd, type SgdHyper } from "../multi_tensor_sgd.ts";
import { checkClose, checkNoDeviceErrors, type KernelCase } from "./kernel_case.ts";

/** One step of torch.optim.SGD on float64 copies; `buffers[i]` is null before parameter i's first step. */
export function referenceSgdStep(
  params: Float64Array[],
  grads: ArrayLike<number>[],
  buffers: (Float64Array | null)[],
  decay: boolean[],
  h: SgdHyper,
): void {
  params.forEach((p, i) => {
    const d = Float64Array.from(grads[i]);
    if (decay[i] && h.weightDecay !== 0) { for (let j = 0; j < d.length; j++) d[j] += h.weightDecay * p[j]; }
    if (h.momentum > 0) {
      const b = buffers[i];
      if (b === null) buffers[i] = Float64Array.from(d);
      else for (let j = 0; j < d.length; j++) b[j] = h.momentum * b[j] + d[j];
      const buf = buffers[i]!;
      for (let j = 0; j < d.length; j++) d[j] = h.nesterov ? d[j] + h.momentum * buf[j] : buf[j];
    }
    for (let j = 0; j < d.length; j++) p[j] -= h.lr * d[j];
  });
}

/** Parameter shapes: 7 of them (a software adapter binds 5 per dispatch), one of 300 elements. */
const SHAPES = [[3, 4], [5], [2, 3, 3, 2], [300], [1], [4, 4], [7, 2]];
const STEPS = 3;

const HYPERS: [string, SgdHyper][] = [
  ["plain", { lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0 }],
  ["momentum 0.9, weight decay", { lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 5e-4 }],
  ["Nesterov momentum 0.9, weight decay", { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-2 }],
];

/** One case per set of hyper-parameters. */
export const MULTI_TENSOR_SGD_CASES: readonly KernelCase[] = HYPERS.map(([what, h]): KernelCase => {
  const where = `multiTensorSgd ${what}, ${SHAPES.length} parameters, ${STEPS} steps`;
  return {
    name: `${where}: parameters and momentum buffers against torch.optim.SGD in float64`,
    run: async () => {
      const decay = SHAPES.map((_, i) => i % 3 !== 1);
      const params = SHAPES.map((s, i) => tf.randomNormal(s, 0, 1, "float32", 70 + i));
      const ref = await Promise.all(params.map(async (p) => Float64Array.from(await p.data())));
      const refBuffers: (Float64Array | null)[] = SHAPES.map(() => null);
      let buffers: (tf.Tensor | undefined)[] = SHAPES.map(() => undefined);
      try {
        for (let step = 0; step < STEPS; step++) {
          const grads = SHAPES.map((s, i) => tf.randomNormal(s, 0, 1, "float32", 100 * step + i));
          const created = multiTensorSgd(
            params.map((param, i) => ({ param, grad: grads[i], buffer: buffers[i], decay: decay[i] })),
            h,
          );
          buffers = buffers.map((b, i) => b ?? created[i]);
          referenceSgdStep(ref, await Promise.all(grads.map((g) => g.data())), refBuffers, decay, h);
          tf.dispose(grads);
        }
        for (let i = 0; i < SHAPES.length; i++) {
          const actual = await params[i].data();
          checkNoDeviceErrors(where);
          checkClose(actual, ref[i], 1e-5, `${where}: parameter ${i} [${SHAPES[i]}]`);
          if (h.momentum > 0) checkClose(await buffers[i]!.data(), refBuffers[i]!, 1e-5, `${where}: buffer ${i}`);
        }
      } finally {
        tf.dispose([...params, ...buffers.filter((b): b is tf.Tensor => b !== undefined)]);
      }
    },
  };
});
