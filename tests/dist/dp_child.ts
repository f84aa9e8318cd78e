/**
 * Test child of `data_parallel_test.ts`, one process of `mpirun -np 2` (or alone for the reference):
 *
 *     deno run -A tests/dist/dp_child.ts train OUT [--stop-after N] [--resume auto] [--die-after "N hang|kill"] [--seed-by-rank]
 *     deno run -A tests/dist/dp_child.ts reference OUT STEPS
 *
 * `train` runs the trainer on a tiny ResNet (width 4) and 32 synthetic images, 4 per rank; `reference` computes, in
 * one process and without the trainer, what 2 ranks should: each step's global batch of 8 split into the two ranks'
 * halves (rows 0, 2, 4, 6 and 1, 3, 5, 7), the gradients of each half with BN in training mode on that half, their
 * mean applied by SGD; it writes the weights to OUT/reference.safetensors.
 * @module
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { registerFastKernels } from "../../kernels/register.ts";
import { resolveTrainConfig, type TrainConfig } from "../../train/config.ts";
import { train } from "../../train/trainer.ts";
import { openCollective } from "../../dist/open_collective.ts";
import { rankTaskOptions } from "../../tasks/train.ts";
import { runTask } from "../../tasks/args.ts";
import { type Collective, LocalCollective } from "../../dist/collective.ts";
import { createLoaders } from "../../data/loaders.ts";
import { resnetSpec } from "../../models/resnet_spec.ts";
import { type BatchStat, createResNet } from "../../models/resnet.ts";
import { SGD, sgdOptionsFor } from "../../train/sgd.ts";
import { lossAndTop1 } from "../../train/losses.ts";
import { learningRateAt, scheduleConfigFor } from "../../train/lr_schedule.ts";
import { writeSafetensors } from "../../io/safetensors.ts";

const { positionals, values } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    "stop-after": { type: "string" },
    "resume": { type: "string" },
    "die-after": { type: "string" },
    "timeout": { type: "string", default: "60" },
    "seed-by-rank": { type: "boolean" },
  },
});
const [mode, out, steps] = positionals;

/** The run both modes share: 32 images, 4 per rank (8 per global batch), 4 steps in the epoch. */
const DATA = { syntheticTrain: 32, syntheticTest: 8, workers: 0 };
function config(rank = 0): TrainConfig {
  return resolveTrainConfig({
    dataset: "synthetic",
    width: 4,
    epochs: 1,
    batchSize: mode === "reference" ? 8 : 4,
    lr: 0.2,
    logEvery: 1,
    checkpointEvery: 2,
    out,
    resume: values.resume ?? null,
    collectiveTimeout: Number(values.timeout),
    seed: values["seed-by-rank"] ? rank : 0,
  });
}

await initWebGPU();
registerFastKernels();
if (mode === "train") {
  // The task's error path: a failing rank prints its error, naming itself, and aborts the job.
  let collective: Collective = new LocalCollective();
  await runTask(async () => {
    collective = openCollective({ timeoutSeconds: Number(values.timeout) });
    const die = values["die-after"]?.split(" ");
    const stopAfter = die && collective.rank === 1 ? Number(die[0]) : values["stop-after"];
    const result = await train(config(collective.rank), {
      collective,
      data: DATA,
      stopAfterStep: stopAfter === undefined ? undefined : Number(stopAfter),
    });
    if (die && collective.rank === 1) {
      console.error(`rank 1: ${die[1]} after step ${result.globalStep}`);
      if (die[1] === "kill") Deno.kill(Deno.pid, "SIGKILL");
      await new Promise((r) => setTimeout(r, 600_000)); // hung: neither finishes nor leaves
    }
    console.log(`rank ${collective.rank}: done at step ${result.globalStep}`);
    collective.finalize();
  }, rankTaskOptions(() => collective));
} else if (mode === "reference") {
  await reference(config(), Number(steps));
} else {
  throw new Error(`mode must be train or reference, got ${mode}`);
}

async function reference(c: TrainConfig, steps: number): Promise<void> {
  // The trainer's data options (a TrainConfig's raReps counts only with raSampler).
  const loaders = await createLoaders({ ...c, dataDir: "data", raReps: c.raSampler ? c.raReps : 1, ...DATA });
  const spec = resnetSpec(c.arch, { stem: c.stem, width: c.width, numClasses: loaders.numClasses });
  const model = createResNet(spec, { seed: c.seed });
  const optimizer = new SGD(model.parameters(), sgdOptionsFor(c)); // the trainer's optimizer
  const schedule = scheduleConfigFor(c, loaders.train.batchesPerEpoch);
  const params = model.parameters();
  const nameOf = new Map([...params].map(([name, v]) => [v.name, name]));
  let step = 0;
  for await (const b of loaders.train.batches(0)) {
    if (step === steps) break;
    const px = b.height * b.width * 3;
    const halves: { grads: tf.NamedTensorMap; stats: BatchStat[] }[] = [];
    const half = async (r: number) => {
      const rows = [0, 1, 2, 3].map((j) => 2 * j + r); // rank r's samples: globalBatch[r::2]
      const images = new Float32Array(rows.length * px);
      rows.forEach((row, j) => images.set(b.images.subarray(row * px, (row + 1) * px), j * px));
      let stats: BatchStat[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const x = tf.tensor4d(images, [rows.length, b.height, b.width, 3]);
        const y = tf.tensor1d(rows.map((row) => b.labels[row]), "int32");
        const r = model.forward(x, { training: true });
        stats = r.batchStats;
        return lossAndTop1(r.logits, y, c.labelSmoothing, model.fusedKernels).loss;
      }, [...params.values()]);
      value.dispose();
      // Each half's gradients as a rank reads them back: summed into their own buffers. (Left as pending sums of
      // split-K partials, tfjs's add below would sum all their terms in one left-to-right chain: another rounding.)
      await Promise.all(Object.values(grads).map((g) => g.data()));
      return { grads, stats };
    };
    for (const r of [0, 1]) halves.push(await half(r));
    const mean = new Map(
      Object.keys(halves[0].grads).map((
        k,
      ) => [nameOf.get(k)!, tf.tidy(() => halves[0].grads[k].add(halves[1].grads[k]).div(2))]),
    );
    optimizer.step(mean, learningRateAt(step, schedule));
    model.updateRunningStats(halves[0].stats); // rank 0's statistics are the checkpoint's
    tf.dispose([...mean.values(), ...halves.flatMap((h) => Object.values(h.grads))]);
    halves[1].stats.forEach((s) => s.stats.dispose());
    step++;
  }
  await writeSafetensors(`${out}/reference.safetensors`, await model.exportState());
  optimizer.dispose();
  model.dispose();
  await Promise.all([loaders.train.close(), loaders.test.close()]);
}
