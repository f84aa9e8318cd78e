import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { clipGradNorm, softmaxCrossEntropy } from "../../train/losses.ts";

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
