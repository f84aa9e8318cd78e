import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { mixBatch } from "../../kernels/mix_batch.ts";
import { fusedCrossEntropy } from "../../kernels/fused_cross_entropy.ts";
import { lossAndTop1 } from "../../train/losses.ts";
import { type BatchMix, cutmixBox } from "../../data/batch_mix.ts";
import { keyedRandom } from "../../data/random.ts";
import { decodeNpy, encodeNpy } from "../../io/npy.ts";
import { relativeError } from "../../kernels/selftest/relative_error.ts";
import { TORCH_PYTHON } from "../torch_python.ts";

await initWebGPU();
tf.env().set("WEBGPU_CPU_FORWARD", false); // every op a GPU shader, as in training

const SCRIPT = new URL("../fixtures/torch_mix.py", import.meta.url).pathname;
const [N, H, W, C, K] = [5, 12, 16, 3, 7];

/** The fixed cases: mixup at two λ, cutmix inside and at a corner (the box clamped), with and without smoothing. */
const CASES = [
  { kind: "mixup", lambda: 0.3, rx: 0, ry: 0, eps: 0.1 },
  { kind: "mixup", lambda: 0.8125, rx: 0, ry: 0, eps: 0 },
  { kind: "cutmix", lambda: 0.55, rx: 3, ry: 10, eps: 0.1 },
  { kind: "cutmix", lambda: 0.2, rx: 0, ry: 0, eps: 0.1 },
] as const;

function draws(c: typeof CASES[number]): BatchMix {
  return c.kind === "mixup" ? { kind: "mixup", lambda: c.lambda, box: null } : cutmixBox(c.lambda, c.rx, c.ry, H, W);
}

/** Top-1 hits against each sample's dominant label (its own when λ ≥ 0.5, else the previous sample's). */
function dominantHits(logits: Float32Array, labels: number[], lambda: number): number {
  let hits = 0;
  for (let i = 0; i < N; i++) {
    const row = logits.subarray(i * K, (i + 1) * K);
    const top = row.indexOf(Math.max(...row)); // ties: the lower class
    if (top === (lambda >= 0.5 ? labels[i] : labels[(i + N - 1) % N])) hits++;
  }
  return hits;
}

Deno.test("cutmixBox: torchvision's box (half-sides int(r·W), int(r·H), clamped) and λ from its area", () => {
  // λ 0.55: r = 0.5·√0.45 = 0.3354; half-sides int(5.37) = 5, int(4.02) = 4; centre (3, 10) → x 0..8, y 6..12.
  assertEquals(cutmixBox(0.55, 3, 10, 12, 16), {
    kind: "cutmix",
    lambda: 1 - (8 * 6) / (16 * 12),
    box: { x1: 0, y1: 6, x2: 8, y2: 12 },
  });
  // λ 1: an empty box, nothing pasted, λ stays 1.
  assertEquals(cutmixBox(1, 7, 7, 12, 16).lambda, 1);
});

Deno.test("mixBatch: mixup and cutmix of a batch with its roll by one, and tfjs ops computing the same", async () => {
  const random = keyedRandom(9);
  const x = tf.tensor4d(new Float32Array(N * H * W * C).map(() => random() * 4 - 2), [N, H, W, C]);
  const host = (await x.data()) as Float32Array;
  const f = Math.fround;
  const before = tf.memory().numTensors;
  const gpu: Float32Array[] = [];
  for (const c of CASES) {
    const mix = draws(c);
    const out = mixBatch(x, mix);
    const got = (await out.data()) as Float32Array;
    gpu.push(got);
    out.dispose();
    const image = H * W * C;
    for (let e = 0; e < got.length; e += 13) {
      const [i, p] = [Math.floor(e / image), e % image];
      const prev = ((i + N - 1) % N) * image + p;
      const [row, col] = [Math.floor(p / (W * C)), Math.floor(p / C) % W];
      const b = mix.box;
      const want = b
        ? (row >= b.y1 && row < b.y2 && col >= b.x1 && col < b.x2 ? host[prev] : host[e])
        : f(f(f(mix.lambda) * host[e]) + f(f(1 - mix.lambda) * host[prev])); // torch: a float32 λ, each product rounded
      assertEquals(got[e], want, `${c.kind} λ ${c.lambda}: element ${e}`);
    }
  }
  assertEquals(tf.memory().numTensors, before, "the caller owns only the result");
  x.dispose();
  // Off webgpu, tfjs ops compute the same values.
  await tf.setBackend("cpu");
  try {
    const onCpu = tf.tensor4d(host, [N, H, W, C]);
    for (const [k, c] of CASES.entries()) {
      const out = mixBatch(onCpu, draws(c));
      assertEquals((await out.data()) as Float32Array, gpu[k], `${c.kind} λ ${c.lambda}: tfjs ops`);
      out.dispose();
    }
    onCpu.dispose();
  } finally {
    await tf.setBackend("webgpu");
  }
});

Deno.test({
  name: "mixBatch and the soft-target loss equal torchvision's mixup/cutmix and PyTorch's smoothed cross-entropy",
  ignore: TORCH_PYTHON === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "mix_batch_" });
    try {
      const random = keyedRandom(11);
      const images = new Float32Array(N * H * W * C).map(() => random() * 4 - 2);
      const logits = new Float32Array(N * K).map(() => random() * 6 - 3);
      const labels = [2, 2, 5, 0, 6]; // samples 0 and 1 share a label: their mixed target is one class
      await Deno.writeFile(join(dir, "x.npy"), encodeNpy(images, [N, H, W, C]));
      await Deno.writeFile(join(dir, "logits.npy"), encodeNpy(logits, [N, K]));
      await Deno.writeTextFile(join(dir, "labels.json"), JSON.stringify(labels));
      await Deno.writeTextFile(join(dir, "request.json"), JSON.stringify({ cases: CASES }));
      const result = await new Deno.Command(TORCH_PYTHON!, { args: [SCRIPT, dir] }).output();
      assert(result.success, new TextDecoder().decode(result.stderr));
      const theirs = JSON.parse(await Deno.readTextFile(join(dir, "result.json"))).cases;
      const x = tf.tensor4d(images, [N, H, W, C]);
      const y = tf.tensor1d(labels, "int32");
      const z = tf.tensor2d(logits, [N, K]);
      for (const [i, c] of CASES.entries()) {
        const what = `${c.kind} λ ${c.lambda} eps ${c.eps}`;
        const mix = draws(c);
        assertEquals(mix.lambda, theirs[i].lambda, `${what}: λ`);
        assertEquals(mix.box, theirs[i].box, `${what}: box`);
        const out = mixBatch(x, mix);
        const expected = decodeNpy(await Deno.readFile(join(dir, `mixed_${i}.npy`))).data as Float32Array;
        assertEquals((await out.data()) as Float32Array, expected, `${what}: mixed batch, byte for byte`);
        out.dispose();
        const gradWant = decodeNpy(await Deno.readFile(join(dir, `grad_${i}.npy`))).data as Float32Array;
        for (const fused of [true, false]) {
          const { loss, correct } = lossAndTop1(z, y, c.eps, fused, { lambda: mix.lambda });
          const l = (await loss.data())[0];
          assert(Math.abs(l - theirs[i].loss) <= 2e-6 * (1 + Math.abs(theirs[i].loss)), `${what}: loss ${l}`);
          assertEquals((await correct.data())[0], dominantHits(logits, labels, mix.lambda), `${what}: top-1`);
          tf.dispose([loss, correct]);
          const g = tf.grad((t: tf.Tensor) => lossAndTop1(t as tf.Tensor2D, y, c.eps, fused, mix).loss)(z);
          const err = relativeError(await g.data(), gradWant);
          assert(err <= 1e-5, `${what} fused ${fused}: gradient relative error ${err}`);
          g.dispose();
        }
      }
      tf.dispose([x, y, z]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("fusedCrossEntropy: λ 1 (or a batch whose labels all agree) is the plain loss; λ out of range is refused", async () => {
  const random = keyedRandom(3);
  const z = tf.tensor2d(new Float32Array(N * K).map(() => random() * 4 - 2), [N, K]);
  const y = tf.tensor1d([1, 4, 4, 0, 3], "int32");
  const plain = fusedCrossEntropy(z, y, 0.1);
  const one = fusedCrossEntropy(z, y, 0.1, { lambda: 1 });
  const half = fusedCrossEntropy(z, y, 0.1, { lambda: 0.5 });
  const [p, o, h] = await Promise.all([plain.loss.data(), one.loss.data(), half.loss.data()]);
  assert(Math.abs(p[0] - o[0]) <= 1e-6, `λ 1: ${o[0]} vs ${p[0]}`);
  assert(Math.abs(p[0] - h[0]) > 1e-3, "λ 0.5 mixes in the previous labels");
  let threw = false;
  try {
    fusedCrossEntropy(z, y, 0.1, { lambda: 1.5 });
  } catch (e) {
    threw = e instanceof RangeError && /lambda must be in \[0, 1\], got 1.5/.test(e.message);
  }
  assert(threw, "λ 1.5 refused");
  tf.dispose([z, y, plain.loss, plain.correct, one.loss, one.correct, half.loss, half.correct]);
});
