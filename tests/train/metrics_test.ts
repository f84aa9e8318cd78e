import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { EvalAccumulator, topKCorrect, topKCorrectCounts } from "../../train/metrics.ts";

await initWebGPU();
// Run every op as a GPU shader: by default tfjs-webgpu computes ops on tiny CPU-resident tensors (like these test
// tensors) on the CPU, which would leave the shaders that real training uses untested.
tf.env().set("WEBGPU_CPU_FORWARD", false);

// 4 samples, 6 classes. Label ranks (0 = best): sample 0 -> 0, 1 -> 2, 2 -> 5, 3 -> 1 (tie with a lower index).
const LOGITS = [
  [9, 1, 2, 3, 4, 5], // label 0: rank 0
  [1, 2, 3, 9, 8, 0], // label 2: 9 and 8 are higher -> rank 2
  [0, 1, 2, 3, 4, 5], // label 0: the lowest -> rank 5
  [7, 7, 0, 0, 0, 0], // label 1: ties with class 0, which ranks first -> rank 1
];
const LABELS = [0, 2, 0, 1];

Deno.test("topKCorrect counts labels among the k best logits, ties ranked by lower index, on the GPU", async () => {
  const [logits, labels] = [tf.tensor2d(LOGITS), tf.tensor1d(LABELS, "int32")];
  const expected: Record<number, number> = { 1: 1, 2: 2, 3: 3, 5: 3, 6: 4, 10: 4 };
  for (const [k, want] of Object.entries(expected)) {
    const c = topKCorrect(logits, labels, Number(k));
    assertEquals(c.dtype, "int32");
    assertEquals(c.shape, []);
    assertEquals((await c.data())[0], want, `k=${k}`);
    c.dispose();
  }
  const many = topKCorrectCounts(logits, labels, [1, 5, 3]);
  assertEquals(Array.from(await many.data()), [1, 3, 3]);
  const before = tf.memory().numTensors;
  topKCorrectCounts(logits, labels, [1, 5]).dispose();
  assertEquals(tf.memory().numTensors, before, "no intermediate tensors survive");
  throws(() => topKCorrect(logits, labels, 0), /k must be an integer >= 1, got 0/);
  tf.tidy(() => throws(() => topKCorrect(logits, tf.tensor1d(LABELS), 1), /labels must be int32, got float32/));
  [logits, labels, many].forEach((t) => t.dispose());
});

Deno.test("EvalAccumulator: top-1, top-5, loss, per-class accuracy and confusion matrix on known inputs", () => {
  const acc = new EvalAccumulator(6, ["a", "b", "c", "d", "e", "f"]);
  acc.addLogits(Float32Array.from(LOGITS.flat()).subarray(0, 12), LABELS.slice(0, 2));
  acc.addLogits(Float32Array.from(LOGITS.flat()).subarray(12), LABELS.slice(2));
  const r = acc.result();
  assertEquals(r.count, 4);
  assertEquals(r.top1, 1 / 4);
  assertEquals(r.top5, 3 / 4);
  // Predictions (argmax, first among ties): 0, 3, 5, 0.
  const confusion = Array.from({ length: 6 }, () => new Array(6).fill(0));
  confusion[0][0] = 1;
  confusion[2][3] = 1;
  confusion[0][5] = 1;
  confusion[1][0] = 1;
  assertEquals(r.confusion, confusion);
  assertEquals(r.perClassCount, [2, 1, 1, 0, 0, 0]);
  assertEquals(r.perClassAccuracy, [0.5, 0, 0, null, null, null]);
  assertEquals(r.classNames, ["a", "b", "c", "d", "e", "f"]);
  // Mean cross-entropy, log-sum-exp written out independently.
  const ce = LOGITS.map((row, i) => Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[LABELS[i]]);
  assert(Math.abs(r.loss - ce.reduce((a, b) => a + b) / 4) < 1e-12);
  assertEquals(JSON.parse(JSON.stringify(r)), r, "JSON-serialisable");
});

Deno.test("EvalAccumulator: label-smoothed loss matches (1 - eps) * nll + eps * mean(-log p)", () => {
  const acc = new EvalAccumulator(6);
  acc.addLogits(Float64Array.from(LOGITS.flat()), LABELS, 0.1);
  let want = 0;
  LOGITS.forEach((row, i) => {
    const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    const logp = row.map((v) => v - lse);
    want += 0.9 * -logp[LABELS[i]] + 0.1 * -logp.reduce((a, b) => a + b) / 6;
  });
  assert(Math.abs(acc.result().loss - want / 4) < 1e-12);
});

Deno.test("EvalAccumulator: GPU top-k indices and host logits give the same result, and match topKCorrect", async () => {
  // Random logits with many ties (values rounded to a few levels).
  const n = 64, k = 10;
  let s = 12345;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const flat = Float32Array.from({ length: n * k }, () => Math.round(rand() * 4));
  const labels = Int32Array.from({ length: n }, () => Math.floor(rand() * k));
  const [logits, lab] = [tf.tensor2d(flat, [n, k]), tf.tensor1d(labels, "int32")];
  const { indices } = tf.topk(logits, 5);
  const counts = topKCorrectCounts(logits, lab, [1, 5]);
  const fromLogits = new EvalAccumulator(k);
  fromLogits.addLogits(flat, labels);
  const fromIndices = new EvalAccumulator(k);
  fromIndices.addPredictions(labels, await indices.data(), fromLogits.result().loss * n);
  const [a, b] = [fromLogits.result(), fromIndices.result()];
  assertEquals(b, a);
  const [c1, c5] = await counts.data();
  assertEquals([a.top1 * n, a.top5 * n], [c1, c5]);
  assert(c1 < c5 && c5 < n, "the data exercise both misses and top-5 hits");
  [logits, lab, indices, counts].forEach((t) => t.dispose());
});

Deno.test("EvalAccumulator: bad inputs are errors naming the sample and the value", () => {
  const acc = new EvalAccumulator(3);
  throws(() => acc.addLogits(new Float32Array(5), [0, 1]), /5 logits for 2 labels x 3 classes/);
  throws(() => acc.addLogits(new Float32Array(6), [0, 3]), /label of sample 1 is 3, expected an integer in \[0, 3\)/);
  throws(() => acc.addPredictions([0, 1], [0, 1, 2], 0), /3 indices for 2 labels/);
  throws(() => acc.addPredictions([0], [7], 0), /sample 0 predicts class 7/);
  throws(() => new EvalAccumulator(0), /numClasses must be an integer >= 1, got 0/);
  throws(() => new EvalAccumulator(2, ["x"]), /1 class names for 2 classes/);
  assertEquals(acc.count, 0, "rejected batches add nothing");
});
