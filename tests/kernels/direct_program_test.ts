import * as tf from "@tensorflow/tfjs";
import { assertEquals, throws } from "../assert.ts";
import { initWebGPU, takeWebGPUErrors } from "../../kernels/webgpu_backend.ts";
import { allocateTensor, gridStride, runDirectProgram } from "../../kernels/direct_program.ts";
import { copyTensor } from "../../kernels/copy_tensor.ts";

await initWebGPU();
// Every op on the GPU, so that tfjs's programs and ours share the command stream (tfjs otherwise computes ops on small
// CPU-resident tensors on the CPU).
tf.env().set("WEBGPU_CPU_FORWARD", false);

/** out1 = 2·a, out2 = a + u.shift, acc += a (in place), over n elements, grid-stride. */
function affine(a: tf.Tensor, out1: tf.Tensor, out2: tf.Tensor, acc: tf.Tensor, shift: number) {
  const n = a.size;
  runDirectProgram({
    key: `test_affine_${n}`,
    bindings: [
      { name: "a", tensor: a, access: "read" },
      { name: "out1", tensor: out1, access: "read_write" },
      { name: "out2", tensor: out2, access: "read_write" },
      { name: "acc", tensor: acc, access: "read_write" },
    ],
    uniforms: [{ name: "shift", value: shift }],
    workgroups: gridStride(n, 2),
    code: () => `
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < ${n}u; i += nwg.x * 256u) {
    out1[i] = 2.0 * a[i];
    out2[i] = a[i] + u.shift;
    acc[i] = acc[i] + a[i];
  }
}`,
  });
}

Deno.test("a direct program runs in order with tfjs's programs, writes several outputs and updates in place", async () => {
  const n = 1000; // more than the 2 workgroups × 256 threads: the grid-stride loop runs twice per thread
  const base = tf.range(0, n, 1, "float32");
  const acc = tf.fill([n], 10);
  const [out1, out2] = [allocateTensor([n]), allocateTensor([n])];
  const a = tf.add(base, 1); // a tfjs program before ours...
  affine(a, out1, out2, acc, 0.5);
  const after = tf.mul(out1, 3); // ...and one after, reading our output
  const [o1, o2, ac, af] = await Promise.all([out1.data(), out2.data(), acc.data(), after.data()]);
  for (const i of [0, 1, 511, 512, 999]) {
    const v = i + 1;
    assertEquals([o1[i], o2[i], ac[i], af[i]], [2 * v, v + 0.5, 10 + v, 6 * v], `element ${i}`);
  }
  assertEquals(takeWebGPUErrors(), []);
  tf.dispose([base, acc, out1, out2, a, after]);
});

Deno.test("uniforms of dispatches recorded before one submit stay apart, and many dispatches submit on the way", async () => {
  const n = 8;
  const a = tf.ones([n]);
  const acc = tf.zeros([n]);
  const outs: tf.Tensor[] = [];
  // 40 dispatches: tfjs submits every 15, and each keeps its own uniform value.
  for (let k = 0; k < 40; k++) {
    const [o1, o2] = [allocateTensor([n]), allocateTensor([n])];
    affine(a, o1, o2, acc, k);
    outs.push(o1, o2);
  }
  for (let k = 0; k < 40; k++) assertEquals((await outs[2 * k + 1].data())[3], 1 + k, `dispatch ${k}`);
  assertEquals((await acc.data())[0], 40);
  assertEquals(takeWebGPUErrors(), []);
  tf.dispose([a, acc, ...outs]);
});

Deno.test("an in-place write replaces the values tfjs cached on the CPU by an earlier read", async () => {
  const acc = tf.fill([4], 1);
  assertEquals(await acc.data(), Float32Array.of(1, 1, 1, 1)); // tfjs now keeps a CPU copy
  const a = tf.fill([4], 2);
  const [o1, o2] = [allocateTensor([4]), allocateTensor([4])];
  affine(a, o1, o2, acc, 0);
  assertEquals(await acc.data(), Float32Array.of(3, 3, 3, 3));
  tf.dispose([acc, a, o1, o2]);
});

Deno.test("a buffer bound twice where the program writes it is refused before anything runs", () => {
  const a = tf.ones([4]);
  const shared = tf.reshape(a, [2, 2]); // tfjs's reshape shares a's buffer
  const [o1, o2] = [allocateTensor([4]), allocateTensor([4])];
  throws(() => affine(a, o1, o2, shared, 0), /"a" and "acc" share a buffer that the program writes/);
  tf.dispose([a, shared, o1, o2]);
});

Deno.test("copyTensor copies into a buffer of its own, float32 and int32, bit for bit", async () => {
  const f = tf.tensor([1.5, -0, NaN, 3e38, -7]);
  const i = tf.tensor([1, -2, 2147483647], [3], "int32");
  const [fc, ic] = [copyTensor(f), copyTensor(i)];
  assertEquals(new Uint8Array((await fc.data()).buffer), new Uint8Array((await f.data()).buffer));
  assertEquals(await ic.data(), await i.data());
  // An in-place write to the original does not reach the copy (tf.clone would share the buffer).
  const [ones, o1, o2] = [tf.ones([5]), allocateTensor([5]), allocateTensor([5])];
  affine(ones, o1, o2, f, 0);
  assertEquals((await fc.data())[0], 1.5);
  assertEquals((await f.data())[0], 2.5);
  tf.dispose([f, i, fc, ic, ones, o1, o2]);
});
