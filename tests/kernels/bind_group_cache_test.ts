import * as tf from "@tensorflow/tfjs";
import type { WebGPUBackend } from "@tensorflow/tfjs-backend-webgpu";
import { assert, assertEquals, assertStrictEquals } from "../assert.ts";
import { initWebGPU, takeWebGPUErrors } from "../../kernels/webgpu_backend.ts";
import { allocateTensor, runDirectProgram } from "../../kernels/direct_program.ts";
import {
  bindGroupCacheInstalled,
  bindGroupCacheStats,
  installBindGroupCache,
  submitPendingWork,
  uninstallBindGroupCache,
} from "../../kernels/bind_group_cache.ts";

await initWebGPU();
// Every op on the GPU (tfjs otherwise computes ops on small CPU-resident tensors on the CPU).
tf.env().set("WEBGPU_CPU_FORWARD", false);

/** `out = a·u.scale` over n elements, as a direct program with a uniform. */
function scaled(a: tf.Tensor, scale: number, out = allocateTensor(a.shape)): tf.Tensor {
  runDirectProgram({
    key: `test_cache_scale_${a.size}`,
    bindings: [
      { name: "a", tensor: a, access: "read" },
      { name: "out", tensor: out, access: "read_write" },
    ],
    uniforms: [{ name: "scale", value: scale }],
    workgroups: [1, 1, 1],
    code: () => `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x < ${a.size}u) { out[gid.x] = a[gid.x] * u.scale; }
}`,
  });
  return out;
}

/** The same small graph of tfjs programs and a direct program every iteration, like a training step. */
function iteration(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const y = tf.relu(tf.add(tf.mul(x, 2), 1));
    const z = scaled(y, 0.5);
    return tf.sum(tf.sub(z, y));
  });
}

Deno.test("a repeated step creates no bind group and writes no uniform once warm: all hits", async () => {
  const x = tf.tensor([-1, 0, 1, 2, 3, 4, 5, 6]);
  const s = await iteration(x).data(); // -0.5·Σ relu(2x+1) = -0.5·(0+1+3+5+7+9+11+13) = -24.5
  assertEquals(s[0], -24.5);
  for (let i = 0; i < 3; i++) {
    tf.dispose(iteration(x));
    submitPendingWork();
  }
  const before = bindGroupCacheStats();
  for (let i = 0; i < 5; i++) {
    tf.dispose(iteration(x));
    submitPendingWork();
  }
  const last = iteration(x);
  const after = bindGroupCacheStats();
  assertEquals(after.misses - before.misses, 0, "bind groups created in steady state");
  assertEquals(after.uniformMisses - before.uniformMisses, 0, "uniform buffers created in steady state");
  assert(after.hits - before.hits >= 6 * 6, `hits: ${after.hits - before.hits}`);
  assertEquals((await last.data())[0], -24.5);
  assertEquals(takeWebGPUErrors(), []);
  tf.dispose([x, last]);
});

Deno.test("same program and shapes over other buffers, or other uniform values, never gets a cached bind group", async () => {
  const a = tf.tensor([1, 2, 3, 4]);
  const b = tf.tensor([10, 20, 30, 40]);
  // tfjs programs: identical pipeline and uniforms (shapes), only the input buffer differs.
  const [ra, rb] = [tf.neg(a), tf.neg(b)];
  assertEquals(await rb.data(), Float32Array.of(-10, -20, -30, -40));
  assertEquals(await ra.data(), Float32Array.of(-1, -2, -3, -4));
  // Direct programs: the very same buffers, only the uniform differs.
  const out = scaled(a, 2);
  assertEquals(await out.data(), Float32Array.of(2, 4, 6, 8));
  scaled(a, 3, out);
  assertEquals(await out.data(), Float32Array.of(3, 6, 9, 12));
  assertEquals(takeWebGPUErrors(), []);
  tf.dispose([a, b, ra, rb, out]);
});

Deno.test("a buffer recycled by tfjs's pool for a new tensor binds that tensor's values", async () => {
  const a = tf.tensor([1, 2, 3, 4]);
  const first = tf.neg(a);
  assertEquals(await first.data(), Float32Array.of(-1, -2, -3, -4));
  const bufferOf = (t: tf.Tensor) => (tf.backend() as WebGPUBackend).tensorMap.get(t.dataId).resource as GPUBuffer;
  const [aBuffer, firstBuffer] = [bufferOf(a), bufferOf(first)];
  // tfjs's pool hands out the last released buffer first, and a program takes its output's buffer before its
  // inputs': first's buffer goes to the next output, a's to b.
  a.dispose();
  first.dispose();
  const b = tf.tensor([5, 6, 7, 8]);
  const hits = bindGroupCacheStats().hits;
  const second = tf.neg(b);
  assertStrictEquals(bufferOf(b), aBuffer, "tfjs's pool gave a's buffer to b");
  assertStrictEquals(bufferOf(second), firstBuffer, "and first's to second");
  assertEquals(bindGroupCacheStats().hits, hits + 1, "the bind group over the same buffers is reused");
  assertEquals(await second.data(), Float32Array.of(-5, -6, -7, -8));
  assertEquals(takeWebGPUErrors(), []);
  tf.dispose([b, second]);
});

Deno.test("destroying a buffer drops the cached bind groups that name it; a new buffer binds afresh", async () => {
  const device = (tf.backend() as WebGPUBackend).device;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const run = async (values: number[]) => {
    const buffer = device.createBuffer({ size: 16, usage });
    device.queue.writeBuffer(buffer, 0, Float32Array.from(values));
    const t = tf.tensor({ buffer, zeroCopy: true }, [4], "float32"); // ours: tfjs never destroys it
    const r = tf.neg(t);
    const out = await r.data();
    tf.dispose([t, r]);
    return { buffer, out };
  };
  const first = await run([1, 2, 3, 4]);
  assertEquals(first.out, Float32Array.of(-1, -2, -3, -4));
  const before = bindGroupCacheStats();
  first.buffer.destroy();
  const after = bindGroupCacheStats();
  assertEquals(after.invalidated - before.invalidated, 1, "the bind group over the destroyed buffer is dropped");
  const second = await run([5, 6, 7, 8]);
  assertEquals(second.out, Float32Array.of(-5, -6, -7, -8));
  assertEquals(bindGroupCacheStats().misses - after.misses, 1, "a new buffer gets a new bind group");
  second.buffer.destroy();
  assertEquals(takeWebGPUErrors(), []);
});

Deno.test("uninstalled, tfjs creates its own bind groups again (the bench's stock side); reinstalled, it hits", () => {
  const x = tf.tensor([-1, 0, 1, 2, 3, 4, 5, 6]);
  const tfjsSteps = (n: number) => {
    for (let i = 0; i < n; i++) {
      tf.dispose(tf.tidy(() => tf.sum(tf.relu(tf.add(tf.mul(x, 2), 1)))));
      submitPendingWork();
    }
  };
  tfjsSteps(3);
  uninstallBindGroupCache();
  assertStrictEquals(bindGroupCacheInstalled(), false);
  const before = bindGroupCacheStats();
  tfjsSteps(3);
  const off = bindGroupCacheStats();
  assertEquals([off.hits - before.hits, off.misses - before.misses], [0, 0], "tfjs's programs bypass the cache");
  installBindGroupCache();
  tfjsSteps(3);
  const on = bindGroupCacheStats();
  assert(on.hits - off.hits > 0, "reinstalled: hits again");
  assertEquals(takeWebGPUErrors(), []);
  x.dispose();
});
