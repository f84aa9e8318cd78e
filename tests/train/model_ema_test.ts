import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { resnet18 } from "../../models/zoo.ts";
import type { ResNet } from "../../models/resnet.ts";
import type { HostTensor, StateDict } from "../../io/host_tensor.ts";
import { decodeNpy, encodeNpy } from "../../io/npy.ts";
import { keyedRandom } from "../../data/random.ts";
import { emaDecay, ModelEma } from "../../train/model_ema.ts";
import { TORCH_PYTHON } from "../torch_python.ts";

await initWebGPU();

const SCRIPT = new URL("../fixtures/torch_ema.py", import.meta.url).pathname;

/** A small ResNet-18 (width 2, CIFAR stem). */
const small = () => resnet18({ width: 2, numClasses: 10, stem: "cifar" });

/** A state dict of `model`'s layout with random floats in [-2, 2) and random counts in [0, 1000). */
function randomState(model: ResNet, key: number): StateDict {
  const random = keyedRandom(key);
  return new Map(
    model.stateLayout().map((e): [string, HostTensor] => {
      if (e.dtype === "I64") {
        return [e.name, { dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(Math.floor(random() * 1000))) }];
      }
      const n = e.shape.reduce((a, b) => a * b, 1);
      return [e.name, { dtype: "F32", shape: e.shape, data: new Float32Array(n).map(() => random() * 4 - 2) }];
    }),
  );
}

/** The float32 entries of a state dict concatenated in order, and its int64 entries as numbers. */
function flatten(state: StateDict): { floats: Float32Array; ints: number[] } {
  const parts = [...state.values()].filter((t) => t.dtype === "F32").map((t) => t.data as Float32Array);
  const floats = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) floats.set(p, at), at += p.length;
  const ints = [...state.values()].filter((t) => t.dtype === "I64").map((t) => Number((t.data as BigInt64Array)[0]));
  return { floats, ints };
}

Deno.test("emaDecay: torchvision's adjustment, 1 - min(1, (1 - decay) x batch x steps / epochs)", () => {
  // The new recipe: 1 - 2e-5 x 1024 x 32 / 600.
  assert(
    Math.abs(
      emaDecay({ modelEmaDecay: 0.99998, batchSize: 1024, modelEmaSteps: 32, epochs: 600 }) -
        (1 - 2e-5 * 1024 * 32 / 600),
    ) < 1e-12,
  );
  assertEquals(emaDecay({ modelEmaDecay: 0.9, batchSize: 64, modelEmaSteps: 1, epochs: 1 }), 0, "alpha capped at 1");
  // Data-parallel: world_size x per-rank batch, as torchvision's train.py (8 ranks of 128 = one process of 1024).
  const c = { modelEmaDecay: 0.99998, batchSize: 128, modelEmaSteps: 32, epochs: 600 };
  assertEquals(emaDecay(c, 8), emaDecay({ ...c, batchSize: 1024 }));
  assert(emaDecay(c, 8) < emaDecay(c), "more ranks: a shorter-lived average per update");
});

Deno.test("ModelEma: starts as a copy, the first update copies, later ones average, restart copies again", async () => {
  const before = tf.memory().numTensors;
  const model = small();
  const ema = new ModelEma(model, 0.75);
  const first = flatten(await model.exportState());
  assertEquals(flatten(await ema.exportState()).floats, first.floats, "a copy at construction");
  const [s1, s2, s3] = [1, 2, 3].map((k) => randomState(model, k));
  model.importState(s1);
  ema.update();
  assertEquals(ema.count, 1);
  const afterCopy = await ema.exportState();
  assertEquals(flatten(afterCopy).floats, flatten(s1).floats, "n_averaged 0: a copy");
  model.importState(s2);
  ema.update();
  const averaged = flatten(await ema.exportState());
  const [a, b] = [flatten(s1).floats, flatten(s2).floats];
  for (let i = 0; i < a.length; i += 97) {
    const want = Math.fround(Math.fround(0.75 * a[i]) + Math.fround(0.25 * b[i]));
    assertEquals(averaged.floats[i], want, `element ${i}`);
  }
  ema.restart();
  model.importState(s3);
  ema.update();
  assertEquals(flatten(await ema.exportState()).floats, flatten(s3).floats, "after restart: a copy");
  // The saved state round-trips, count included; a state without the count is refused.
  const saved = await ema.exportState();
  const other = new ModelEma(model, 0.75);
  other.importState(saved);
  assertEquals(other.count, ema.count);
  assertEquals(flatten(await other.exportState()), flatten(saved));
  throws(() => other.importState(s1), Error, "n_averaged");
  other.dispose();
  ema.dispose();
  model.dispose();
  assertEquals(tf.memory().numTensors, before);
});

Deno.test({
  name: "ModelEma equals torch's AveragedModel(use_buffers=True) with torchvision's EMA function and decay adjustment",
  ignore: TORCH_PYTHON === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "model_ema_" });
    const model = small();
    try {
      // epochs 6 makes the adjusted decay 1 - 2e-5 x 1024 x 32 / 6 ≈ 0.891: the average moves visibly.
      const args = { modelEmaDecay: 0.99998, batchSize: 1024, modelEmaSteps: 32, epochs: 6 };
      const states = [0, 1, 2, 3, 4, 5, 6].map((k) => randomState(model, 100 + k));
      const restartAfter = new Set([2]); // a warm-up epoch's reset: the next update copies
      model.importState(states[0]);
      const ema = new ModelEma(model, emaDecay(args));
      for (const [k, s] of states.entries()) {
        await Deno.writeFile(join(dir, `state_${k}.npy`), encodeNpy(flatten(s).floats, [flatten(s).floats.length]));
        if (k === 0) continue;
        model.importState(s);
        ema.update();
        if (restartAfter.has(k)) ema.restart();
      }
      const entries = model.stateLayout().map((e) => ({ shape: e.shape, param: e.trainable, int: e.dtype === "I64" }));
      await Deno.writeTextFile(
        join(dir, "request.json"),
        JSON.stringify({
          entries,
          decayArgs: {
            model_ema_decay: args.modelEmaDecay,
            batch_size: args.batchSize,
            model_ema_steps: args.modelEmaSteps,
            epochs: args.epochs,
          },
          steps: states.map((s, k) => ({
            file: `state_${k}.npy`,
            ints: flatten(s).ints,
            restart: restartAfter.has(k),
          })),
        }),
      );
      const result = await new Deno.Command(TORCH_PYTHON!, { args: [SCRIPT, dir] }).output();
      assert(result.success, new TextDecoder().decode(result.stderr));
      const theirs = JSON.parse(await Deno.readTextFile(join(dir, "average.json")));
      assertEquals(ema.decay, theirs.decay, "the adjusted decay");
      const ours = await ema.exportState();
      assertEquals(Number((ours.get("n_averaged")!.data as BigInt64Array)[0]), theirs.n_averaged);
      ours.delete("n_averaged");
      const { floats, ints } = flatten(ours);
      assertEquals(ints, theirs.ints, "num_batches_tracked, averaged in float32 and truncated as torch does");
      const expected = decodeNpy(await Deno.readFile(join(dir, "average.npy"))).data as Float32Array;
      assertEquals(floats.length, expected.length);
      let differing = 0;
      for (let i = 0; i < floats.length; i++) if (floats[i] !== expected[i]) differing++;
      assertEquals(differing, 0, `elements differing from torch's (of ${floats.length})`);
      ema.dispose();
    } finally {
      model.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
