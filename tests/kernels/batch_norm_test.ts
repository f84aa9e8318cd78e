import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { batchNormTrain } from "../../kernels/batch_norm_train.ts";
import { bnChunking } from "../../kernels/batch_norm_programs.ts";
import { relativeError } from "../../bench/relative_error.ts";
import { recordPrograms } from "./program_log.ts";

await initWebGPU();

const TOLERANCE = 1e-4;
const EPS = 1e-5;

/** The composite the model used before: tf.moments + tf.batchNorm (+ tf.relu). */
function composite(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, relu: boolean) {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const y = tf.batchNorm(x, mean, variance, beta, gamma, EPS);
  return { y: relu ? tf.relu(y) : y, mean, variance };
}

/** [shape, relu, offset added to x] */
const CASES: [[number, number, number, number], boolean, number][] = [
  [[2, 5, 3, 7], true, 0],
  [[2, 5, 3, 7], false, 0],
  [[4, 9, 9, 6], true, 3], // 324 rows: several chunks; a mean far from zero
  [[1, 2, 2, 70], false, -2], // more channels than one reduction workgroup covers
];

Deno.test("bnChunking covers every row with chunks of at least 64 rows", () => {
  for (const rows of [1, 63, 64, 65, 324, 131072, 1605632]) {
    for (const target of [1, 8, 512]) {
      const { chunks, rowsPerChunk } = bnChunking(rows, target);
      assert(rowsPerChunk >= 64);
      assert(chunks * rowsPerChunk >= rows && (chunks - 1) * rowsPerChunk < rows, `${rows} rows, target ${target}`);
      assert(chunks <= Math.max(1, target), `${rows} rows, target ${target}: ${chunks} chunks`);
    }
  }
  throws(() => bnChunking(0, 8), /rows must be a positive integer, got 0/);
});

Deno.test("batchNormTrain matches tf.moments + tf.batchNorm (+ relu): outputs and gradients", async () => {
  for (const [shape, relu, offset] of CASES) {
    const c = shape[3];
    const x = tf.tidy(() => tf.randomNormal(shape, offset, 1.5, "float32", 21)) as tf.Tensor4D;
    const gamma = tf.randomNormal([c], 1, 0.3, "float32", 22) as tf.Tensor1D;
    const beta = tf.randomNormal([c], 0, 0.3, "float32", 23) as tf.Tensor1D;
    const r = tf.randomNormal(shape, 0, 1, "float32", 24);
    const lossOf = (f: typeof composite) => (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      f(a as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, relu).y.mul(r).sum();
    const { result: ours, programs } = recordPrograms(() => batchNormTrain(x, gamma, beta, { eps: EPS, relu }));
    const ref = composite(x, gamma, beta, relu);
    const { result: oursGrads, programs: gradPrograms } = recordPrograms(() =>
      tf.grads(lossOf((a, g, b) => batchNormTrain(a, g, b, { eps: EPS, relu })))([x, gamma, beta])
    );
    // The composite would match too: prove that our 3 forward and 3 backward dispatches ran.
    const ourNames = (ps: typeof programs) => ps.map((p) => p.constructor.name).filter((n) => n.startsWith("Bn"));
    assertEquals(ourNames(programs), ["BnPartialSumsProgram", "BnTotalsProgram", "BnElementwiseProgram"]);
    assertEquals(ourNames(gradPrograms), [...ourNames(programs), ...ourNames(programs)], `case [${shape}]`);
    const refGrads = tf.grads(lossOf(composite))([x, gamma, beta]);
    const pairs: [string, tf.Tensor, tf.Tensor][] = [
      ["y", ours.y, ref.y],
      ["mean", ours.mean, ref.mean],
      ["variance", ours.variance, ref.variance],
      ["dx", oursGrads[0], refGrads[0]],
      ["dgamma", oursGrads[1], refGrads[1]],
      ["dbeta", oursGrads[2], refGrads[2]],
    ];
    for (const [name, a, b] of pairs) {
      assertEquals(a.shape, b.shape, `${name} shape, case [${shape}] relu ${relu}`);
      const err = relativeError(await a.data(), await b.data());
      assert(err <= TOLERANCE, `${name}, case [${shape}] relu ${relu} offset ${offset}: relative error ${err}`);
    }
    tf.dispose([x, gamma, beta, r, ours.y, ours.mean, ours.variance, ref.y, ref.mean, ref.variance]);
    tf.dispose([...oursGrads, ...refGrads]);
  }
});

Deno.test("batchNormTrain leaves no tensors behind under tf.tidy and rejects bad input by name", () => {
  const x = tf.randomNormal([2, 3, 3, 4]) as tf.Tensor4D;
  const g = tf.ones([4]) as tf.Tensor1D, b = tf.zeros([4]) as tf.Tensor1D;
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    batchNormTrain(x, g, b, { eps: EPS, relu: true });
  });
  assertEquals(tf.memory().numTensors, before);
  throws(() => batchNormTrain(x, tf.ones([3]) as tf.Tensor1D, b, { eps: EPS, relu: false }), /C = 4 elements, got 3/);
  throws(
    () => batchNormTrain(x.toInt() as unknown as tf.Tensor4D, g, b, { eps: EPS, relu: false }),
    /float32 \[N, H, W, C\] tensor, got int32/,
  );
  tf.dispose([x, g, b]);
});
