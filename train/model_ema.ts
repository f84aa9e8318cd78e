/**
 * The exponential moving average of a model's weights (`--model-ema`), as torchvision's reference script keeps it:
 * `utils.ExponentialMovingAverage`, a torch `AveragedModel` with `use_buffers=True` (parameters and BN buffers are
 * averaged alike) and `avg = decay * avg + (1 - decay) * value`, the first update (and every update of a warm-up
 * epoch) a copy. The average is a second {@linkcode ResNet} on the GPU, updated in place by one fused program
 * (`kernels/multi_tensor_ema.ts`); it is evaluated, saved and exported like the model.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { StateDict } from "../io/host_tensor.ts";
import { EMA_COUNT } from "../io/checkpoint.ts";
import type { Stateful } from "../io/checkpoint_saver.ts";
import { multiTensorEma } from "../kernels/multi_tensor_ema.ts";
import { createResNet, type ResNet } from "../models/resnet.ts";
import type { TrainConfig } from "./config.ts";

/**
 * The decay each update uses: torchvision's adjustment of `--model-ema-decay`, which keeps the average's horizon
 * independent of the batch size, update interval and epoch count:
 * `adjust = worldSize * batchSize * modelEmaSteps / epochs`, `alpha = min(1, (1 - modelEmaDecay) * adjust)`, decay
 * `1 - alpha`.
 * @param worldSize processes of a data-parallel job (`batchSize` is per process, as torchvision's `--batch-size`).
 */
export function emaDecay(
  c: Pick<TrainConfig, "modelEmaDecay" | "modelEmaSteps" | "batchSize" | "epochs">,
  worldSize = 1,
): number {
  const adjust = worldSize * c.batchSize * c.modelEmaSteps / c.epochs;
  const alpha = Math.min(1, (1 - c.modelEmaDecay) * adjust);
  return 1 - alpha;
}

/** The average of a model's weights; see the module documentation. Owns its averaged model (see `dispose`). */
export class ModelEma implements Stateful {
  /** The averaged weights, as a model to evaluate (eval mode uses its averaged running statistics). */
  readonly model: ResNet;
  /** The decay of an update (after {@linkcode emaDecay}'s adjustment). */
  readonly decay: number;
  readonly #source: ResNet;
  /** torch's `n_averaged`: updates since the last reset; the next update copies when 0. */
  #count = 0;

  /** An average of `source` with `decay`, starting as a copy of it (torch deep-copies the model). */
  constructor(source: ResNet, decay: number) {
    if (!(decay >= 0 && decay <= 1)) throw new RangeError(`ModelEma: decay must be in [0, 1], got ${decay}`);
    this.#source = source;
    this.decay = decay;
    this.model = createResNet(source.spec, { fusedBatchNorm: source.fusedKernels });
    this.#average(true);
  }

  /** torch's `n_averaged`: the number of updates since the start or the last {@linkcode ModelEma.restart}. */
  get count(): number {
    return this.#count;
  }

  /** `update_parameters(model)`: averages in the source's current weights and BN buffers (a copy when count is 0). */
  update(): void {
    this.#average(this.#count === 0);
    this.#count++;
  }

  /** `n_averaged.fill_(0)`: the next update copies (torchvision does this after each update of a warm-up epoch). */
  restart(): void {
    this.#count = 0;
  }

  #average(copy: boolean): void {
    const averages = this.model.stateVariables();
    const values = this.#source.stateVariables();
    const pairs = averages.map((average, i) => ({ average, value: values[i] as tf.Tensor }));
    if (tf.getBackend() === "webgpu") {
      multiTensorEma(pairs, this.decay, copy);
    } else {
      // The same float32 operations as tfjs ops (CPU tests).
      tf.tidy(() => {
        for (const { average, value } of pairs) {
          (average as tf.Variable).assign(
            copy ? value : tf.add(tf.mul(average, this.decay), tf.mul(value, 1 - this.decay)),
          );
        }
      });
    }
    // num_batches_tracked (int64) is a buffer too: torch averages it in float32 and truncates it when storing.
    const f = Math.fround;
    const mine = this.model.batchesTracked();
    const counts = new Map([...this.#source.batchesTracked()].map(([module, n]) => {
      const kept = f(f(this.decay) * f(mine.get(module) ?? 0));
      return [module, copy ? n : Math.trunc(f(kept + f(f(1 - this.decay) * f(n))))];
    }));
    this.model.setBatchesTracked(counts);
  }

  /** The averaged model's state dict and {@linkcode EMA_COUNT} (int64 []), the tensors of torch's `AveragedModel.state_dict()` (`module.<name>` there). */
  async exportState(): Promise<StateDict> {
    const state = await this.model.exportState();
    state.set(EMA_COUNT, { dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(this.#count)) });
    return state;
  }

  /**
   * Replaces the average and its count with a saved one.
   * @throws {Error} when `state` lacks the count or does not fit the model; nothing changes then.
   */
  importState(state: StateDict): void {
    const count = state.get(EMA_COUNT);
    if (count?.dtype !== "I64" || count.shape.length !== 0) {
      throw new Error(`ModelEma.importState: "${EMA_COUNT}" must be an I64 [] tensor, got ${count?.dtype}`);
    }
    const n = Number((count.data as BigInt64Array)[0]);
    if (!(n >= 0)) throw new Error(`ModelEma.importState: "${EMA_COUNT}" must be >= 0, got ${n}`);
    this.model.importState(new Map([...state].filter(([name]) => name !== EMA_COUNT)));
    this.#count = n;
  }

  /** Frees the averaged model. */
  dispose(): void {
    this.model.dispose();
  }
}
