/**
 * Interop with PyTorch itself: torchvision loads our exported weights with `strict=True` and computes the same
 * logits (evaluation and training mode) and the same running statistics after a training-mode pass. Runs where a
 * Python with torch and torchvision is found (Debian: `apt-get install python3-torchvision`; or set $TORCH_PYTHON);
 * skipped elsewhere, CI included.
 */
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { assert } from "./assert.ts";
import { registerFastKernels } from "../kernels/register.ts";
import { initWebGPU } from "../kernels/webgpu_backend.ts";
import { maxRelativeError } from "../kernels/op_bench.ts";
import { createResNet } from "../models/resnet.ts";
import { resnetSpec } from "../models/resnet_spec.ts";
import { keyedRandom } from "../data/random.ts";
import { encodeWeights } from "../train/checkpoint.ts";
import { decodeNpy, encodeNpy } from "../train/npy.ts";

const SCRIPT = new URL("./fixtures/torchvision_forward.py", import.meta.url).pathname;

/** The first Python that has torch and torchvision ($TORCH_PYTHON, else the one on PATH, else Debian's), or null. */
const PYTHON = (() => {
  for (const python of [Deno.env.get("TORCH_PYTHON"), "python3", "/usr/bin/python3"]) {
    if (!python) continue;
    try {
      const probe = new Deno.Command(python, { args: ["-c", "import torch, torchvision, numpy"], stderr: "null" });
      if (probe.outputSync().success) return python;
    } catch {
      // not installed
    }
  }
  return null;
})();

const CASES = [
  { arch: "resnet18", stem: "cifar", size: 16 }, // basic blocks, 3x3 stem, strided downsample
  { arch: "resnet50", stem: "imagenet", size: 64 }, // bottlenecks, 7x7/2 stem, max pool
] as const;

for (const c of CASES) {
  Deno.test({
    name: `torchvision ${c.arch} (${c.stem} stem) loads our weights strictly and computes our logits and statistics`,
    ignore: PYTHON === null,
    async fn() {
      await initWebGPU();
      registerFastKernels();
      const dir = await Deno.makeTempDir();
      const model = createResNet(resnetSpec(c.arch, { stem: c.stem, numClasses: 10 }), { seed: 3 });
      try {
        // Non-trivial batch-norm parameters and statistics, so that a swapped mean/var or gamma/beta shows.
        const state = await model.exportState();
        const random = keyedRandom(7);
        for (const [name, t] of state) {
          if (t.dtype !== "F32" || !/(bn\d|downsample\.1)\./.test(name)) continue;
          const positive = /running_var|weight$/.test(name);
          for (let i = 0; i < t.data.length; i++) t.data[i] = positive ? 0.5 + random() : 0.4 * random() - 0.2;
        }
        model.importState(state);
        const n = 4, s = c.size;
        const xNCHW = new Float32Array(n * 3 * s * s).map(() => 2 * random() - 1);
        await Deno.writeFile(join(dir, "w.safetensors"), encodeWeights(state));
        await Deno.writeFile(join(dir, "x.npy"), encodeNpy(xNCHW, [n, 3, s, s]));
        const python = new Deno.Command(PYTHON!, {
          args: [SCRIPT, c.arch, c.stem, "10", join(dir, "w.safetensors"), join(dir, "x.npy"), join(dir, "out")],
        }).output();

        const x = tf.tidy(() => tf.tensor4d(xNCHW, [n, 3, s, s]).transpose([0, 2, 3, 1]) as tf.Tensor4D);
        const evalLogits = tf.tidy(() => model.forward(x, { training: false }).logits);
        const train = model.forward(x, { training: true });
        model.updateRunningStats(train.batchStats);
        const ours = {
          eval: (await evalLogits.data()) as Float32Array,
          train: (await train.logits.data()) as Float32Array,
        };
        tf.dispose([x, evalLogits, train.logits]);
        const after = await model.exportState();
        const stats = [...after].filter(([k]) => /running_(mean|var)$/.test(k)).map(([, t]) => t.data as Float32Array);
        const oursStats = new Float32Array(stats.reduce((a, t) => a + t.length, 0));
        stats.reduce((offset, t) => (oursStats.set(t, offset), offset + t.length), 0);

        const result = await python;
        assert(result.success, new TextDecoder().decode(result.stderr));
        const read = async (kind: string) => decodeNpy(await Deno.readFile(join(dir, `out.${kind}.npy`))).data;
        for (const [kind, mine] of [["eval", ours.eval], ["train", ours.train], ["stats", oursStats]] as const) {
          const theirs = (await read(kind)) as Float32Array;
          const err = maxRelativeError(mine, theirs);
          assert(err < 1e-4, `${kind}: relative error ${err.toExponential(2)} against torchvision`);
        }
      } finally {
        model.dispose();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
