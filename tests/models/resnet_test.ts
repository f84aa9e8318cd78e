import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { type BatchStat, createResNet } from "../../models/resnet.ts";
import { ARCHITECTURES, resnetSpec } from "../../models/resnet_spec.ts";
import { resnetSummary } from "../../models/resnet_summary.ts";
import { resnet18 } from "../../models/zoo.ts";
import { relativeError } from "../../kernels/selftest/relative_error.ts";

await initWebGPU();

/** CHW (summary) → HWC (tfjs activations). */
const hwc = (s: number[]) => (s.length === 3 ? [s[1], s[2], s[0]] : s);

Deno.test("every architecture's stage outputs match the shape arithmetic", async (t) => {
  for (const arch of Object.keys(ARCHITECTURES)) {
    for (const [stem, size] of [["cifar", 12], ["imagenet", 40]] as const) {
      await t.step(`${arch} ${stem} ${size}×${size}`, () => {
        const model = createResNet(resnetSpec(arch, { stem, width: 4, numClasses: 5 }));
        const expected = resnetSummary(model.plan, size, size).layers.filter((r) =>
          r.depth === 0 && r.kind !== "bn" && r.kind !== "relu"
        );
        tf.tidy(() => {
          const { stages, logits } = model.forward(tf.randomNormal([2, size, size, 3]) as tf.Tensor4D, {
            training: false,
            stages: true,
          });
          assertEquals([...stages!.keys()], expected.map((r) => r.name));
          for (const r of expected) assertEquals(stages!.get(r.name)!.shape, [2, ...hwc(r.outputShape)], r.name);
          assertEquals(logits.shape, [2, 5]);
        });
        model.dispose();
      });
    }
  }
});

Deno.test("forward passes do not leak tensors, in training and evaluation", () => {
  const model = resnet18({ stem: "cifar", width: 4, numClasses: 3 });
  const x = tf.randomNormal([2, 8, 8, 3]) as tf.Tensor4D;
  const step = () => {
    let stats: BatchStat[] = [];
    tf.tidy(() => {
      stats = model.forward(x, { training: true }).batchStats;
    });
    model.updateRunningStats(stats);
    tf.tidy(() => {
      model.forward(x, { training: false });
    });
  };
  step();
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) step();
  assertEquals(tf.memory().numTensors, before);
  x.dispose();
  model.dispose();
});

Deno.test("running statistics follow PyTorch: momentum 0.1, unbiased variance, batch counter", async () => {
  const model = resnet18({ stem: "cifar", width: 4, numClasses: 3 });
  const x = tf.randomNormal([2, 4, 4, 3], 1, 2, "float32", 7) as tf.Tensor4D;
  // conv1's output is what bn1 normalises: compute its batch statistics independently on the host.
  const conv1 = tf.conv2d(x, model.parameters().get("conv1.weight") as tf.Tensor4D, 1, 1);
  const y = await conv1.data(); // [2, 4, 4, 4] NHWC
  let stats: BatchStat[] = [];
  tf.tidy(() => {
    stats = model.forward(x, { training: true }).batchStats;
  });
  model.updateRunningStats(stats);
  const state = await model.exportState();
  const n = 2 * 4 * 4;
  for (let c = 0; c < 4; c++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += y[i * 4 + c] / n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += (y[i * 4 + c] - mean) ** 2;
    const rm = state.get("bn1.running_mean")!.data[c] as number;
    const rv = state.get("bn1.running_var")!.data[c] as number;
    assert(Math.abs(rm - 0.1 * mean) < 1e-5 * (1 + Math.abs(mean)), `running_mean[${c}]`);
    assert(Math.abs(rv - (0.9 + 0.1 * ss / (n - 1))) < 1e-4, `running_var[${c}] ${rv}`);
  }
  assertEquals(state.get("bn1.num_batches_tracked")!.data, BigInt64Array.of(1n));
  tf.dispose([x, conv1]);
  model.dispose();
});

Deno.test("exportState/importState round-trip bit-exactly in torchvision layouts", async () => {
  const a = resnet18({ stem: "cifar", width: 4, numClasses: 3, seed: 1 });
  const b = resnet18({ stem: "cifar", width: 4, numClasses: 3, seed: 2 });
  const sa = await a.exportState();
  assertEquals(sa.get("conv1.weight")!.shape, [4, 3, 3, 3]);
  assertEquals(sa.get("fc.weight")!.shape, [3, 32]);
  // Layout check: torch [out, in, kh, kw] element (o, i, y, x) equals tfjs [kh, kw, in, out] element (y, x, i, o).
  const tfW = await a.parameters().get("layer1.0.conv1.weight")!.data();
  const torchW = sa.get("layer1.0.conv1.weight")!.data;
  const [o, i, ky, kx] = [3, 2, 1, 2];
  assertEquals(torchW[((o * 4 + i) * 3 + ky) * 3 + kx], tfW[((ky * 3 + kx) * 4 + i) * 4 + o]);
  b.importState(sa);
  const sb = await b.exportState();
  assertEquals([...sb.keys()], [...sa.keys()]);
  for (const [name, t] of sa) {
    assertEquals(new Uint8Array(sb.get(name)!.data.buffer), new Uint8Array(t.data.buffer), name);
  }
  const x = tf.randomNormal([2, 8, 8, 3]) as tf.Tensor4D;
  const [ya, yb] = tf.tidy(() => [a.forward(x, { training: false }).logits, b.forward(x, { training: false }).logits]);
  assertEquals(await ya.data(), await yb.data());
  tf.dispose([x, ya, yb]);
  a.dispose();
  b.dispose();
});

Deno.test("importState rejects a state dict that does not fit and changes nothing", async () => {
  const model = resnet18({ stem: "cifar", width: 4, numClasses: 3 });
  const before = await model.exportState();
  const bad = new Map(before);
  bad.set("conv1.weight", { dtype: "F32", shape: [4, 3, 7, 7], data: new Float32Array(4 * 3 * 49) });
  bad.delete("fc.bias");
  bad.set("layer9.weight", { dtype: "F32", shape: [1], data: new Float32Array(1) });
  // Zero every other tensor so a partial load would show.
  for (const [k, v] of bad) {
    if (k !== "conv1.weight" && v.dtype === "F32") bad.set(k, { ...v, data: new Float32Array(v.data.length) });
  }
  throws(
    () => model.importState(bad),
    (e: Error) =>
      /nothing was loaded/.test(e.message) && /missing 1: fc.bias/.test(e.message) &&
      /unexpected 1: layer9.weight/.test(e.message) &&
      /conv1.weight expected F32\[4,3,3,3\] got F32\[4,3,7,7\]/.test(e.message),
  );
  const after = await model.exportState();
  for (const [k, v] of before) assertEquals(after.get(k)!.data, v.data, k);
  // A classifier of another class count can be skipped (fine-tuning from another head).
  const other = await resnet18({ stem: "cifar", width: 4, numClasses: 10 }).exportState();
  model.importState(other, { skip: ["fc.weight", "fc.bias"] });
  assertEquals((await model.exportState()).get("conv1.weight")!.data, other.get("conv1.weight")!.data);
  model.dispose();
});

Deno.test("initialisation is torchvision's and deterministic per seed, seed 0 included", async () => {
  const z1 = await resnet18({ width: 4, numClasses: 3, seed: 0 }).exportState();
  const z2 = await resnet18({ width: 4, numClasses: 3, seed: 0 }).exportState();
  for (const [name, t] of z1) assertEquals(z2.get(name)!.data, t.data, name);
  const a = await resnet18({ width: 8, numClasses: 10, seed: 3, zeroInitResidual: true }).exportState();
  const b = await resnet18({ width: 8, numClasses: 10, seed: 3, zeroInitResidual: true }).exportState();
  const c = await resnet18({ width: 8, numClasses: 10, seed: 4 }).exportState();
  assertEquals(a.get("layer2.0.conv1.weight")!.data, b.get("layer2.0.conv1.weight")!.data);
  assert(a.get("layer2.0.conv1.weight")!.data[0] !== c.get("layer2.0.conv1.weight")!.data[0]);
  // zero_init_residual: the last BN of each block starts at gamma 0, the others at 1.
  assert((a.get("layer1.1.bn2.weight")!.data as Float32Array).every((v) => v === 0));
  assert((a.get("layer1.1.bn1.weight")!.data as Float32Array).every((v) => v === 1));
  assert((c.get("layer1.1.bn2.weight")!.data as Float32Array).every((v) => v === 1));
  // kaiming_normal_(fan_out): std sqrt(2 / (out·k·k)); conv1 of width 8 has 8·3·7·7 = 1176 samples.
  const w = a.get("conv1.weight")!.data as Float32Array;
  const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  assert(Math.abs(std - Math.sqrt(2 / (8 * 49))) < 0.1 * Math.sqrt(2 / (8 * 49)), `conv1 std ${std}`);
  // nn.Linear: U(±1/sqrt(in)).
  const bound = 1 / Math.sqrt(64);
  assert((a.get("fc.weight")!.data as Float32Array).every((v) => Math.abs(v) <= bound));
  assert((a.get("fc.bias")!.data as Float32Array).every((v) => Math.abs(v) <= bound));
});

Deno.test("convolution and max pool pad symmetrically like PyTorch", async () => {
  // A 7×7/2 pad-3 conv and a 3×3/2 pad-1 max pool on a 6×6 input, against direct float64 loops.
  const H = 6, C = 2, O = 3, K = 7;
  const xs = Float32Array.from({ length: H * H * C }, (_, i) => Math.sin(i * 1.3));
  const ws = Float32Array.from({ length: K * K * C * O }, (_, i) => Math.cos(i * 0.7));
  const x = tf.tensor4d(xs, [1, H, H, C]);
  const w = tf.tensor4d(ws, [K, K, C, O]);
  const y = tf.conv2d(x, w, 2, 3);
  const p = tf.maxPool(x, 3, 2, 1);
  assertEquals(y.shape, [1, 3, 3, O]);
  assertEquals(p.shape, [1, 3, 3, C]);
  const yd = await y.data(), pd = await p.data();
  for (let oy = 0; oy < 3; oy++) {
    for (let ox = 0; ox < 3; ox++) {
      for (let o = 0; o < O; o++) {
        let s = 0;
        for (let ky = 0; ky < K; ky++) {
          for (let kx = 0; kx < K; kx++) {
            const iy = oy * 2 - 3 + ky, ix = ox * 2 - 3 + kx;
            if (iy < 0 || ix < 0 || iy >= H || ix >= H) continue;
            for (let c = 0; c < C; c++) s += xs[(iy * H + ix) * C + c] * ws[((ky * K + kx) * C + c) * O + o];
          }
        }
        assert(Math.abs(yd[(oy * 3 + ox) * O + o] - s) < 1e-4, `conv (${oy},${ox},${o})`);
      }
      for (let c = 0; c < C; c++) {
        let m = -Infinity;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
            if (iy >= 0 && ix >= 0 && iy < H && ix < H) m = Math.max(m, xs[(iy * H + ix) * C + c]);
          }
        }
        assertEquals(pd[(oy * 3 + ox) * C + c], Math.fround(m), `maxpool (${oy},${ox},${c})`);
      }
    }
  }
  tf.dispose([x, w, y, p]);
});

Deno.test("fused training batch norm gives the composite's loss, gradients and batch statistics", async () => {
  const make = (fusedBatchNorm: boolean) =>
    createResNet(resnetSpec("resnet18", { stem: "cifar", width: 4, numClasses: 5 }), { seed: 5, fusedBatchNorm });
  const x = tf.randomNormal([3, 9, 9, 3], 0, 1, "float32", 11) as tf.Tensor4D;
  const results = [];
  for (const fused of [true, false]) {
    const model = make(fused);
    const params = model.parameters();
    let stats: BatchStat[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const r = model.forward(x, { training: true });
      stats = r.batchStats;
      return tf.mean(tf.square(r.logits)) as tf.Scalar;
    }, [...params.values()]);
    const g = new Map<string, Float32Array>();
    for (const [name, v] of params) g.set(name, (await grads[v.name].data()) as Float32Array);
    // Each layer's [4, C]: batch mean, batch variance, running_mean, running_var.
    const means = await Promise.all(stats.map((s) => s.stats.data()));
    results.push({ loss: (await value.data())[0], g, means });
    tf.dispose([value, ...Object.values(grads)]);
    model.updateRunningStats(stats);
    model.dispose();
  }
  const [fused, composite] = results;
  const close = (a: number, b: number, what: string) =>
    assert(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `${what}: fused ${a} vs composite ${b}`);
  close(fused.loss, composite.loss, "loss");
  for (const [name, ref] of composite.g) {
    const got = fused.g.get(name)!;
    const scale = Math.max(1e-3, ...ref.map(Math.abs));
    ref.forEach((v, i) => assert(Math.abs(got[i] - v) <= 2e-4 * scale, `${name}[${i}]: ${got[i]} vs ${v}`));
  }
  fused.means.forEach((m, i) => m.forEach((v, j) => close(v, composite.means[i][j], `statistics ${i}.${j}`)));
  x.dispose();
});

Deno.test("fused evaluation-mode batch norm gives the composite's logits, with trained running statistics", async () => {
  const spec = resnetSpec("resnet18", { stem: "cifar", width: 4, numClasses: 5 });
  const [fused, composite] = [true, false].map((fusedBatchNorm) => createResNet(spec, { seed: 6, fusedBatchNorm }));
  const x = tf.randomNormal([3, 9, 9, 3], 0.5, 1, "float32", 12) as tf.Tensor4D;
  let stats: BatchStat[] = [];
  tf.tidy(() => {
    stats = fused.forward(x, { training: true }).batchStats;
  });
  fused.updateRunningStats(stats); // running statistics far from their initial 0 and 1
  composite.importState(await fused.exportState());
  const [a, b] = [fused, composite].map((m) => tf.tidy(() => m.forward(x, { training: false }).logits));
  const err = relativeError(await a.data(), await b.data());
  assert(err <= 1e-5, `relative error ${err}`);
  tf.dispose([a, b, x]);
  [fused, composite].forEach((m) => m.dispose());
});

Deno.test("running statistics are committed pass by pass: a stale pass is refused and changes nothing", async () => {
  const model = resnet18({ stem: "cifar", width: 4, numClasses: 3 });
  const x = tf.randomNormal([2, 4, 4, 3]) as tf.Tensor4D;
  const pass = () => {
    let stats: BatchStat[] = [];
    tf.tidy(() => {
      stats = model.forward(x, { training: true }).batchStats;
    });
    return stats;
  };
  const [first, second] = [pass(), pass()];
  model.updateRunningStats(first);
  const before = await model.exportState();
  throws(() => model.updateRunningStats(second), /statistics of "bn1" changed after the forward pass/);
  const after = await model.exportState();
  for (const [name, t] of before) assertEquals(after.get(name)!.data, t.data, name);
  tf.dispose(second.map((s) => s.stats));
  x.dispose();
  model.dispose();
});
