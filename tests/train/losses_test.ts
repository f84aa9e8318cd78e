import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { clipGradNorm, lossAndTop1, softmaxCrossEntropy } from "../../train/losses.ts";
import { topKCorrect } from "../../train/metrics.ts";
import { fusedCrossEntropy } from "../../kernels/fused_cross_entropy.ts";
import { relativeError } from "../../kernels/selftest/relative_error.ts";

await initWebGPU();
// Run every op as a GPU shader: by default tfjs-webgpu computes ops on tiny CPU-resident tensors (like these test
// tensors) on the CPU, which would leave the shaders that real training uses untested.
tf.env().set("WEBGPU_CPU_FORWARD", false);

function close(a: number, b: number, rel: number, what: string) {
  assert(Math.abs(a - b) <= rel * (1 + Math.abs(b)), `${what}: got ${a}, expected ${b}`);
}

/**
 * torch.nn.functional.cross_entropy(x, y, label_smoothing=eps) in float64, from its definition:
 * loss = (1 - eps) * nll + eps * mean_k(-log_softmax(x)), averaged over the batch. Also returns d loss / d x =
 * (softmax(x) - target) / N with target = (1 - eps) * onehot + eps / K.
 */
function torchCrossEntropy(x: number[][], y: number[], eps: number): { loss: number; grad: number[][] } {
  const n = x.length;
  let loss = 0;
  const grad = x.map((row, i) => {
    const k = row.length;
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    const logp = row.map((v) => v - lse);
    const nll = -logp[y[i]];
    const smooth = -logp.reduce((s, v) => s + v, 0) / k;
    loss += (1 - eps) * nll + eps * smooth;
    return logp.map((lp, j) => (Math.exp(lp) - ((j === y[i] ? 1 - eps : 0) + eps / k)) / n);
  });
  return { loss: loss / n, grad };
}

Deno.test("softmaxCrossEntropy matches PyTorch's cross_entropy, value and gradient, with and without smoothing", async () => {
  const x = [
    [2.0, -1.0, 0.5, 0.0],
    [0.1, 0.2, 0.3, 0.4],
    [-3.0, 5.0, 1.0, 2.5],
  ];
  const y = [0, 3, 1];
  for (const eps of [0, 0.1, 0.5]) {
    const want = torchCrossEntropy(x, y, eps);
    const [logits, labels] = [tf.tensor2d(x), tf.tensor1d(y, "int32")];
    const loss = softmaxCrossEntropy(logits, labels, eps);
    assertEquals(loss.shape, []);
    close((await loss.data())[0], want.loss, 1e-6, `loss eps=${eps}`);
    const g = tf.grad((l: tf.Tensor) => softmaxCrossEntropy(l as tf.Tensor2D, labels, eps))(logits);
    const got = (await g.array()) as number[][];
    got.forEach((row, i) => row.forEach((v, j) => close(v, want.grad[i][j], 1e-6, `grad[${i},${j}] eps=${eps}`)));
    [logits, labels, loss, g].forEach((t) => t.dispose());
  }
  // Smoothing changes the value (the test above would not notice an ignored eps otherwise).
  assert(Math.abs(torchCrossEntropy(x, y, 0.1).loss - torchCrossEntropy(x, y, 0).loss) > 1e-2);
});

Deno.test("softmaxCrossEntropy is numerically stable for huge logits", async () => {
  const x = [[1000, 0, -1000], [-500, 500, 499]];
  const y = [0, 2];
  const want = torchCrossEntropy(x, y, 0.1);
  const loss = tf.tidy(() => softmaxCrossEntropy(tf.tensor2d(x), tf.tensor1d(y, "int32"), 0.1));
  const v = (await loss.data())[0];
  assert(Number.isFinite(v));
  close(v, want.loss, 1e-5, "huge logits");
  loss.dispose();
});

Deno.test("softmaxCrossEntropy rejects bad shapes, dtypes and smoothing, and allocates only its result", () => {
  const logits = tf.zeros([2, 3]) as tf.Tensor2D;
  const labels = tf.tensor1d([0, 1], "int32");
  tf.tidy(() => {
    throws(() => softmaxCrossEntropy(tf.zeros([2]) as unknown as tf.Tensor2D, labels), /logits must be \[N, K\]/);
    throws(() => softmaxCrossEntropy(logits, tf.tensor1d([0, 1])), /labels must be an int32 \[N\] tensor, got float32/);
    throws(() => softmaxCrossEntropy(logits, tf.tensor1d([0], "int32")), /2 rows of logits but 1 labels/);
    throws(() => softmaxCrossEntropy(logits, labels, 1.5), /labelSmoothing must be in \[0, 1\], got 1.5/);
  });
  const before = tf.memory().numTensors;
  const loss = softmaxCrossEntropy(logits, labels, 0.1);
  assertEquals(tf.memory().numTensors, before + 1, "only the returned scalar is allocated");
  [loss, logits, labels].forEach((t) => t.dispose());
});

/** Deterministic values in [-scale, scale) (an LCG), so that the larger cases need no tfjs RNG. */
function table(rows: number, cols: number, seed: number, scale: number): number[][] {
  let a = seed;
  return Array.from({ length: rows }, () =>
    Array.from({ length: cols }, () => {
      a = (a * 1103515245 + 12345) % 2 ** 31;
      return (a / 2 ** 30 - 1) * scale;
    }));
}

Deno.test("fusedCrossEntropy matches PyTorch's cross_entropy in value and gradient, up to 300 rows × 1000 classes", async () => {
  const cases: [number[][], number[]][] = [
    [[[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4], [-3.0, 5.0, 1.0, 2.5]], [0, 3, 1]],
    [[[1000, 0, -1000], [-500, 500, 499]], [0, 2]], // huge logits: max-shifted
    [table(300, 1000, 7, 8), Array.from({ length: 300 }, (_, i) => (i * 37) % 1000)], // more rows than threads
  ];
  for (const [x, y] of cases) {
    for (const eps of [0, 0.1, 0.5]) {
      const what = `${x.length}x${x[0].length} eps=${eps}`;
      const want = torchCrossEntropy(x, y, eps);
      const [logits, labels] = [tf.tensor2d(x), tf.tensor1d(y, "int32")];
      const { loss, correct } = fusedCrossEntropy(logits, labels, eps);
      assertEquals(loss.shape, []);
      close((await loss.data())[0], want.loss, 2e-6, `loss ${what}`);
      // Scaled by 2: the gradient must use the incoming dy, not assume 1.
      const g = tf.grad((l: tf.Tensor) => fusedCrossEntropy(l as tf.Tensor2D, labels, eps).loss.mul(2))(logits);
      // Relative to the largest gradient: an absolute tolerance would pass anything at 1000 classes (|grad| ~ 1e-6).
      const err = relativeError(await g.data(), want.grad.flat().map((v) => 2 * v));
      assert(err <= 1e-5, `gradient ${what}: relative error ${err}`);
      [logits, labels, loss, correct, g].forEach((t) => t.dispose());
    }
  }
});

Deno.test("fusedCrossEntropy counts top-1 like topKCorrect: ties to the lower class, labels out of range never", async () => {
  // Ties: only the lowest of the tied classes is top-1, so rows 0, 1 and 4 are right and 2, 3 wrong (a rule favouring
  // the highest tied class would count 1: row 4).
  const x = [[1, 3, 3, 0], [5, 5, 5, 5], [5, 5, 5, 5], [5, 5, 5, 5], [0, 1, 2, 3], [0, 1, 2, 3], [9, 0, 0, 0]];
  const y = [1, 0, 1, 2, 3, -1, 4];
  const [logits, labels] = [tf.tensor2d(x), tf.tensor1d(y, "int32")];
  const { loss, correct } = fusedCrossEntropy(logits, labels, 0.1);
  assertEquals((await correct.data())[0], 3);
  const inRange = tf.tensor1d(y.slice(0, 5), "int32");
  const ref = tf.tidy(() => topKCorrect(tf.slice(logits, [0, 0], [5, 4]) as tf.Tensor2D, inRange, 1));
  assertEquals((await ref.data())[0], 3);
  // Out-of-range labels contribute their smoothing term only, like softmaxCrossEntropy.
  const ops = softmaxCrossEntropy(logits, labels, 0.1);
  close((await loss.data())[0], (await ops.data())[0], 1e-6, "loss with out-of-range labels");
  [logits, labels, loss, correct, inRange, ref, ops].forEach((t) => t.dispose());
});

Deno.test("lossAndTop1 gives the tfjs ops' loss and count on webgpu, without leaving tensors behind", async () => {
  const x = table(6, 5, 3, 2);
  const [logits, labels] = [tf.tensor2d(x), tf.tensor1d([0, 1, 2, 3, 4, 0], "int32")];
  const before = tf.memory().numTensors;
  const { loss, correct } = lossAndTop1(logits, labels, 0.1);
  assertEquals(tf.memory().numTensors, before + 2, "only the loss and the count");
  const ops = softmaxCrossEntropy(logits, labels, 0.1);
  const count = topKCorrect(logits, labels, 1);
  close((await loss.data())[0], (await ops.data())[0], 1e-6, "loss");
  assertEquals((await correct.data())[0], (await count.data())[0]);
  assertEquals(correct.dtype, "float32");
  [logits, labels, loss, correct, ops, count].forEach((t) => t.dispose());
});

Deno.test("clipGradNorm matches torch.nn.utils.clip_grad_norm_", async () => {
  const a = [3, 0, -4]; // norm 5
  const b = [[12]]; // norm 12 -> total 13
  for (const maxNorm of [1, 6.5, 13, 100]) {
    const grads = new Map<string, tf.Tensor>([["a", tf.tensor1d(a)], ["b", tf.tensor2d(b)]]);
    const { grads: out, totalNorm } = clipGradNorm(grads, maxNorm);
    close((await totalNorm.data())[0], 13, 1e-7, "total norm");
    const coef = Math.min(1, maxNorm / (13 + 1e-6));
    assertEquals([...out.keys()], ["a", "b"]);
    const ga = await out.get("a")!.data();
    a.forEach((v, i) => close(ga[i], v * coef, 1e-6, `a[${i}] maxNorm=${maxNorm}`));
    assertEquals(out.get("b")!.shape, [1, 1]);
    close((await out.get("b")!.data())[0], 12 * coef, 1e-6, `b maxNorm=${maxNorm}`);
    // The inputs are untouched and still usable.
    assertEquals(Array.from(await grads.get("a")!.data()), a);
    [...grads.values(), ...out.values(), totalNorm].forEach((t) => t.dispose());
  }
  throws(() => clipGradNorm(new Map(), 0), /maxNorm must be a finite number > 0, got 0/);
});

Deno.test("clipGradNorm is right with as many gradients as a ResNet has (tf.addN silently failed past 31)", async () => {
  // 102 gradients (ResNet-50's 161 parameters would do too): each [2] = [3, 4], norm 5; total 5·√102.
  const grads = new Map<string, tf.Tensor>(
    Array.from({ length: 102 }, (_, i) => [`p${i}`, tf.tensor1d([3, 4])] as [string, tf.Tensor]),
  );
  const { grads: out, totalNorm } = clipGradNorm(grads, 1);
  const total = 5 * Math.sqrt(102);
  close((await totalNorm.data())[0], total, 1e-6, "total norm");
  const last = await out.get("p101")!.data();
  close(last[1], 4 / (total + 1e-6), 1e-6, "clipped");
  [...grads.values(), ...out.values(), totalNorm].forEach((t) => t.dispose());
});

Deno.test("clipGradNorm allocates only its results", () => {
  const grads = new Map<string, tf.Tensor>([["a", tf.ones([4])], ["b", tf.ones([2, 2])], ["c", tf.ones([1])]]);
  const before = tf.memory().numTensors;
  const { grads: out, totalNorm } = clipGradNorm(grads, 1);
  assertEquals(tf.memory().numTensors, before + 4);
  [...grads.values(), ...out.values(), totalNorm].forEach((t) => t.dispose());
});
