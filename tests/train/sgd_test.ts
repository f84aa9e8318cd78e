import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, throws } from "../assert.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import type { StateDict } from "../../io/host_tensor.ts";
import {
  decayAllFilter,
  defaultWeightDecayFilter,
  SGD,
  type SGDOptions,
  sgdOptionsFor,
  weightDecayFilter,
} from "../../train/sgd.ts";
import { resolveTrainConfig } from "../../train/config.ts";

await initWebGPU();
// Run every op as a GPU shader: by default tfjs-webgpu computes ops on tiny CPU-resident tensors (like these test
// tensors) on the CPU, which would leave the shaders that real training uses untested.
tf.env().set("WEBGPU_CPU_FORWARD", false);

/** Deterministic pseudo-random float32 values in [-1, 1) (mulberry32), so the test needs no tfjs RNG. */
function values(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 31) - 1;
  });
}

const SHAPES: Record<string, number[]> = { "conv.weight": [2, 3], "bn.bias": [3], "fc.weight": [70, 2] };
const STEPS = 4;
const LRS = [0.1, 0.05, 0.2, 0.01];

function gradAt(name: string, step: number): Float32Array {
  return values(SHAPES[name].reduce((a, b) => a * b, 1), 1000 * step + name.length);
}

/**
 * torch.optim.SGD's update (dampening 0) in float64, typed from torch/optim/sgd.py `_single_tensor_sgd`:
 * d_p = grad.add(param, alpha=weight_decay); buf = clone(d_p) on the first step else buf.mul_(momentum).add_(d_p);
 * d_p = d_p.add(buf, alpha=momentum) if nesterov else buf; param.add_(d_p, alpha=-lr).
 */
function torchSGD(
  params: Map<string, Float64Array>,
  o: { momentum: number; nesterov: boolean; weightDecay: number; decayed: Set<string> },
): Map<string, Float64Array> {
  const p = new Map([...params].map(([k, v]) => [k, Float64Array.from(v)]));
  const bufs = new Map<string, Float64Array>();
  for (let s = 0; s < STEPS; s++) {
    for (const [name, param] of p) {
      const grad = gradAt(name, s);
      const wd = o.decayed.has(name) ? o.weightDecay : 0;
      const dp = Float64Array.from(grad, (g, i) => g + wd * param[i]);
      let d: Float64Array = dp;
      if (o.momentum !== 0) {
        let buf: Float64Array | undefined = bufs.get(name);
        if (!buf) buf = Float64Array.from(dp);
        else for (let i = 0; i < buf.length; i++) buf[i] = buf[i] * o.momentum + dp[i];
        bufs.set(name, buf);
        d = o.nesterov ? Float64Array.from(dp, (x, i) => x + o.momentum * buf![i]) : buf;
      }
      for (let i = 0; i < param.length; i++) param[i] += -LRS[s] * d[i];
    }
  }
  return p;
}

function makeParams(): Map<string, tf.Variable> {
  return new Map(
    Object.entries(SHAPES).map(([name, shape], i) => [
      name,
      tf.tidy(() => tf.variable(tf.tensor(values(shape.reduce((a, b) => a * b, 1), 7 + i), shape))),
    ]),
  );
}

async function runSteps(opt: SGD, from: number, to: number) {
  for (let s = from; s < to; s++) {
    const grads = new Map(Object.entries(SHAPES).map(([n, shape]) => [n, tf.tensor(gradAt(n, s), shape)]));
    opt.step(s % 2 === 0 ? grads : Object.fromEntries(grads), LRS[s]);
    for (const g of grads.values()) g.dispose();
  }
  await Promise.resolve();
}

const CASES: Omit<SGDOptions, "decay">[] = [];
for (const momentum of [0, 0.9]) {
  for (const nesterov of momentum > 0 ? [false, true] : [false]) {
    for (const weightDecay of [0, 0.1]) CASES.push({ momentum, nesterov, weightDecay });
  }
}

for (const implementation of ["fused", "ops"] as const) {
  Deno.test(`SGD (${implementation}) matches a float64 torch.optim.SGD over ${STEPS} steps for every option`, async () => {
    for (const c of CASES) {
      const params = makeParams();
      const start = new Map<string, Float64Array>();
      for (const [n, v] of params) start.set(n, Float64Array.from(await v.data()));
      const opt = new SGD(params, { ...c, decay: defaultWeightDecayFilter, implementation });
      await runSteps(opt, 0, STEPS);
      const decayed = new Set(c.weightDecay > 0 ? ["conv.weight", "fc.weight"] : []);
      assertEquals([...opt.decayed], [...decayed]);
      const want = torchSGD(start, { ...c, decayed });
      // A run that ignored weight decay, momentum or Nesterov would differ by > 1e-3 here; float32 rounding < 1e-6.
      for (const [n, v] of params) {
        const got = await v.data();
        const w = want.get(n)!;
        for (let i = 0; i < w.length; i++) {
          assert(Math.abs(got[i] - w[i]) <= 2e-6 * (1 + Math.abs(w[i])), `${JSON.stringify(c)} ${n}[${i}]`);
        }
        // And the update really moved the parameter.
        assert(Math.abs(w[0] - start.get(n)![0]) > 1e-3);
      }
      opt.dispose();
      for (const v of params.values()) v.dispose();
    }
  });
}

Deno.test("the fused and the tfjs-ops implementations agree to float32 rounding", async () => {
  const c = { momentum: 0.9, nesterov: true, weightDecay: 0.05, decay: decayAllFilter };
  const [pa, pb] = [makeParams(), makeParams()];
  const [a, b] = [new SGD(pa, { ...c, implementation: "fused" }), new SGD(pb, { ...c, implementation: "ops" })];
  await runSteps(a, 0, STEPS);
  await runSteps(b, 0, STEPS);
  for (const [n, v] of pa) {
    const [x, y] = [await v.data(), await pb.get(n)!.data()];
    for (let i = 0; i < x.length; i++) assert(Math.abs(x[i] - y[i]) <= 1e-6 * (1 + Math.abs(y[i])), `${n}[${i}]`);
  }
  [a, b].forEach((o) => o.dispose());
  [...pa.values(), ...pb.values()].forEach((v) => v.dispose());
});

Deno.test("saving and loading momentum buffers resumes bit-exactly", async () => {
  const c = { momentum: 0.9, nesterov: false, weightDecay: 0.1, decay: defaultWeightDecayFilter };
  const straight = makeParams();
  const s = new SGD(straight, c);
  await runSteps(s, 0, STEPS);

  const resumed = makeParams();
  const first = new SGD(resumed, c);
  await runSteps(first, 0, 2);
  const saved = first.momentumBuffers();
  assertEquals([...saved.keys()], Object.keys(SHAPES));
  // Round-trip through host memory, as a checkpoint does.
  const host = new Map<string, [Float32Array, number[]]>();
  for (const [n, t] of saved) host.set(n, [(await t.data()) as Float32Array, t.shape]);
  saved.forEach((t) => t.dispose());
  first.dispose();
  const second = new SGD(resumed, c);
  const loaded = new Map([...host].map(([n, [d, shape]]) => [n, tf.tensor(d, shape)]));
  second.loadMomentumBuffers(loaded);
  loaded.forEach((t) => t.dispose()); // the optimizer copied them
  await runSteps(second, 2, STEPS);
  for (const [n, v] of straight) assertEquals(await resumed.get(n)!.data(), await v.data(), n);
  // Without the buffers the resumed run would differ: the momentum state matters.
  const fresh = makeParams();
  const f1 = new SGD(fresh, c);
  await runSteps(f1, 0, 2);
  f1.dispose();
  const f2 = new SGD(fresh, c);
  await runSteps(f2, 2, STEPS);
  assert((await fresh.get("conv.weight")!.data())[0] !== (await straight.get("conv.weight")!.data())[0]);
  [s, second, f2].forEach((o) => o.dispose());
  [...straight.values(), ...resumed.values(), ...fresh.values()].forEach((v) => v.dispose());
});

Deno.test("exportState/importState round-trip the momentum buffers in PyTorch layout and resume bit-exactly", async () => {
  const c = { momentum: 0.9, nesterov: true, weightDecay: 0.1, decay: defaultWeightDecayFilter };
  const straight = makeParams();
  const s = new SGD(straight, c);
  await runSteps(s, 0, STEPS);

  const resumed = makeParams();
  const first = new SGD(resumed, c);
  await runSteps(first, 0, 2);
  const tensors = tf.memory().numTensors;
  const state = await first.exportState();
  assertEquals(tf.memory().numTensors, tensors, "exportState leaves no tensor behind");
  // torch.optim.SGD's momentum_buffer per parameter, in PyTorch layout: 2-D weights are transposed ([out, in]).
  assertEquals([...state].map(([n, t]) => [n, t.dtype, t.shape]), [
    ["conv.weight", "F32", [3, 2]],
    ["bn.bias", "F32", [3]],
    ["fc.weight", "F32", [2, 70]],
  ]);
  const tfjs = first.momentumBuffers();
  const [b, host] = [await tfjs.get("conv.weight")!.data(), state.get("conv.weight")!.data];
  assertEquals([host[1 * 2 + 0], host[2 * 2 + 1]], [b[0 * 3 + 1], b[1 * 3 + 2]], "element [o][i] = tfjs [i][o]");
  tfjs.forEach((t) => t.dispose());
  first.dispose();

  const second = new SGD(resumed, c);
  const before = tf.memory().numTensors;
  second.importState(state);
  assertEquals(tf.memory().numTensors, before + 3, "the optimizer holds its three buffers and nothing else");
  assertEquals(await second.exportState(), state, "export(import(state)) is the same state, bit for bit");
  await runSteps(second, 2, STEPS);
  for (const [n, v] of straight) assertEquals(await resumed.get(n)!.data(), await v.data(), n);
  [s, second].forEach((o) => o.dispose());
  [...straight.values(), ...resumed.values()].forEach((v) => v.dispose());
});

Deno.test("importState refuses a bad name, shape or dtype and changes nothing", async () => {
  const params = makeParams();
  const opt = new SGD(params, { momentum: 0.9, nesterov: false, weightDecay: 0, decay: defaultWeightDecayFilter });
  await runSteps(opt, 0, 1);
  const good = await opt.exportState();
  const f32 = (shape: number[]) => ({
    dtype: "F32" as const,
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  });
  const bad: [StateDict, RegExp][] = [
    [new Map([["bn.bias", f32([3])], ["x", f32([3])]]), /"x" is not a parameter/],
    // The tfjs layout of conv.weight, not PyTorch's: a missed transposition must not load.
    [
      new Map([["bn.bias", f32([3])], ["conv.weight", f32([2, 3])]]),
      /"conv.weight" is F32 \[2,3\], expected F32 \[3,2\]/,
    ],
    [
      new Map([["bn.bias", { dtype: "I64", shape: [3], data: new BigInt64Array(3) }]]),
      /"bn.bias" is I64 \[3\], expected F32 \[3\]/,
    ],
    [new Map([["bn.bias", { ...f32([3]), data: new Float32Array(4) }]]), /should have 3 values but has 4/],
  ];
  const tensors = tf.memory().numTensors;
  for (const [state, re] of bad) {
    throws(() => opt.importState(state), re);
    assertEquals(tf.memory().numTensors, tensors, `no tensor left behind by ${re}`);
    assertEquals(await opt.exportState(), good, `unchanged after ${re}`);
  }
  throws(() => opt.importState(new Map([["x", f32([1])], ["y", f32([1])]])), /"x" is not a parameter; "y" is not/);
  const plain = new SGD(params, { momentum: 0, nesterov: false, weightDecay: 0, decay: defaultWeightDecayFilter });
  throws(() => plain.importState(good), /momentum is 0 but 3 momentum buffer\(s\) were given/);
  assertEquals(tf.memory().numTensors, tensors);
  [opt, plain].forEach((o) => o.dispose());
  params.forEach((v) => v.dispose());
});

Deno.test("SGD steps do not leak tensors, inside or outside a caller's tidy", async () => {
  for (const implementation of ["fused", "ops"] as const) {
    const params = makeParams();
    const opt = new SGD(params, {
      momentum: 0.9,
      nesterov: true,
      weightDecay: 1e-4,
      decay: defaultWeightDecayFilter,
      implementation,
    });
    await runSteps(opt, 0, 1); // the first step creates the buffers
    const before = tf.memory().numTensors;
    await runSteps(opt, 1, 3);
    assertEquals(tf.memory().numTensors, before, `${implementation}: constant across steps`);
    tf.tidy(() => opt.step(new Map([["bn.bias", tf.ones([3])]]), 0.1));
    assertEquals(tf.memory().numTensors, before, `${implementation}: buffers survive a caller's tidy`);
    const buffers = opt.momentumBuffers();
    assertEquals(buffers.size, 3);
    buffers.forEach((b) => b.dispose());
    opt.dispose();
    params.forEach((v) => v.dispose());
    assertEquals(tf.memory().numTensors, before - 2 * 3, `${implementation}: dispose frees the buffers`);
  }
});

Deno.test("parameters without a gradient are left untouched, like PyTorch's grad None", async () => {
  const params = makeParams();
  const before = await params.get("fc.weight")!.data();
  const opt = new SGD(params, { momentum: 0.9, nesterov: false, weightDecay: 0.1, decay: decayAllFilter });
  const g = tf.ones([3]);
  opt.step({ "bn.bias": g }, 0.5);
  g.dispose();
  assertEquals(await params.get("fc.weight")!.data(), before);
  const buffers = opt.momentumBuffers();
  assertEquals([...buffers.keys()], ["bn.bias"]);
  buffers.forEach((b) => b.dispose());
  opt.dispose();
  params.forEach((v) => v.dispose());
});

Deno.test("bad options, gradients and buffers are clear errors, and a failed load changes nothing", async () => {
  const params = makeParams();
  const base = { momentum: 0.9, nesterov: false, weightDecay: 0, decay: defaultWeightDecayFilter };
  throws(() => new SGD(params, { ...base, momentum: 0, nesterov: true }), /Nesterov momentum requires momentum > 0/);
  throws(() => new SGD(params, { ...base, momentum: -1 }), /momentum must be a finite number >= 0, got -1/);
  throws(() => new SGD(params, { ...base, weightDecay: NaN }), /weightDecay must be a finite number >= 0, got NaN/);
  const opt = new SGD(params, base);
  const g = tf.zeros([4]);
  throws(() => opt.step({ "bn.bias": g }, 0.1), /gradient of "bn.bias" has shape \[4\], the parameter has \[3\]/);
  throws(() => opt.step({ "nope": g }, 0.1), /gradient for unknown parameter "nope"/);
  throws(() => opt.step({}, NaN), /lr must be a finite number >= 0, got NaN/);
  await runSteps(opt, 0, 1);
  const keep = opt.momentumBuffers();
  const bad: [Map<string, tf.Tensor>, RegExp][] = [
    [new Map([["bn.bias", tf.zeros([3])], ["x", tf.zeros([3])]]), /momentum buffer "x" is not a parameter/],
    [new Map([["bn.bias", tf.zeros([4])]]), /momentum buffer "bn.bias" has shape \[4\], expected \[3\]/],
    [new Map([["bn.bias", tf.zeros([3], "int32")]]), /momentum buffer "bn.bias" has dtype int32, expected float32/],
  ];
  for (const [m, re] of bad) {
    throws(() => opt.loadMomentumBuffers(m), re);
    m.forEach((t) => t.dispose());
  }
  const after = opt.momentumBuffers();
  for (const [n, t] of keep) assertEquals(await after.get(n)!.data(), await t.data(), `${n} unchanged`);
  const plain = new SGD(params, { ...base, momentum: 0 });
  throws(() => plain.loadMomentumBuffers(keep), /momentum is 0 but 3 momentum buffer\(s\) were given/);
  [...keep.values(), ...after.values(), g].forEach((t) => t.dispose());
  [opt, plain].forEach((o) => o.dispose());
  params.forEach((v) => v.dispose());
});

Deno.test("defaultWeightDecayFilter decays conv and fc weights, not BN parameters nor biases", () => {
  const v = (shape: number[]) => tf.variable(tf.zeros(shape));
  const cases: [string, number[], boolean][] = [
    ["conv1.weight", [8, 3, 3, 3], true],
    ["layer1.0.downsample.0.weight", [8, 8, 1, 1], true],
    ["fc.weight", [10, 8], true],
    ["fc.bias", [10], false],
    ["bn1.weight", [8], false],
    ["layer1.0.bn2.bias", [8], false],
    ["odd.bias", [2, 2], false],
  ];
  for (const [name, shape, want] of cases) {
    const p = v(shape);
    assertEquals(defaultWeightDecayFilter(name, p), want, name);
    assertEquals(weightDecayFilter(false)(name, p), want, name);
    assertEquals(weightDecayFilter(true)(name, p), true, name);
    p.dispose();
  }
});

Deno.test("sgdOptionsFor reads a training configuration's optimizer fields, weightDecayAll as the filter", () => {
  const bn = tf.variable(tf.zeros([8])), conv = tf.variable(tf.zeros([8, 3, 3, 3]));
  for (const weightDecayAll of [false, true]) {
    const config = resolveTrainConfig({ momentum: 0.8, nesterov: false, weightDecay: 1e-3, weightDecayAll });
    const { decay, ...rest } = sgdOptionsFor(config);
    assertEquals(rest, { momentum: 0.8, nesterov: false, weightDecay: 1e-3 });
    assertEquals(
      [decay("bn1.weight", bn), decay("conv1.weight", conv)],
      [weightDecayAll, true],
      `all ${weightDecayAll}`,
    );
  }
  [bn, conv].forEach((v) => v.dispose());
});

Deno.test("many parameters over several dispatches, first and later steps mixed, match the tfjs-ops implementation", async () => {
  // 40 parameters of varied sizes (several dispatches on a device with few storage bindings); the even ones get a
  // gradient in step 0 only, so step 1 mixes first steps (new buffers) and later ones in the same dispatches.
  const shapes = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? [3, 3, 2, i + 1] : [i * 7 + 1]));
  const make = () =>
    new Map(
      shapes.map((
        shape,
        i,
      ) => [
        `p${i}.${shape.length > 1 ? "weight" : "bias"}`,
        tf.variable(tf.tensor(values(shape.reduce((a, b) => a * b, 1), 100 + i), shape)),
      ]),
    );
  const c = { momentum: 0.9, nesterov: true, weightDecay: 0.05, decay: defaultWeightDecayFilter };
  const [pa, pb] = [make(), make()];
  const [fused, ops] = [new SGD(pa, { ...c, implementation: "fused" }), new SGD(pb, { ...c, implementation: "ops" })];
  for (let step = 0; step < 3; step++) {
    const names = [...pa.keys()].filter((_, i) => step !== 0 || i % 2 === 0);
    const grads = new Map(
      names.map((n, i) => [n, tf.tensor(values(pa.get(n)!.size, 1000 * step + i), pa.get(n)!.shape)]),
    );
    fused.step(grads, 0.1);
    ops.step(grads, 0.1);
    grads.forEach((g) => g.dispose());
  }
  for (const [n, v] of pa) {
    const [x, y] = [await v.data(), await pb.get(n)!.data()];
    for (let i = 0; i < x.length; i++) assert(Math.abs(x[i] - y[i]) <= 1e-6 * (1 + Math.abs(y[i])), `${n}[${i}]`);
  }
  const [ba, bb] = [fused.momentumBuffers(), ops.momentumBuffers()];
  assertEquals([...ba.keys()].sort(), [...pa.keys()].sort());
  for (const [n, b] of ba) {
    const [x, y] = [await b.data(), await bb.get(n)!.data()];
    for (let i = 0; i < x.length; i++) {
      assert(Math.abs(x[i] - y[i]) <= 1e-6 * (1 + Math.abs(y[i])), `buffer ${n}[${i}]`);
    }
  }
  [...ba.values(), ...bb.values(), ...pa.values(), ...pb.values()].forEach((t) => t.dispose());
  [fused, ops].forEach((o) => o.dispose());
});

Deno.test("in-place steps: reads between steps see them; momentum buffers taken or given are copies they leave alone", async () => {
  const c = { momentum: 0.9, nesterov: false, weightDecay: 0, decay: defaultWeightDecayFilter } as const;
  const [params, ref] = [makeParams(), makeParams()];
  const [opt, refOpt] = [
    new SGD(params, { ...c, implementation: "fused" }),
    new SGD(ref, { ...c, implementation: "ops" }),
  ];
  const check = async (what: string) => {
    for (const [n, v] of params) {
      const [x, y] = [await v.data(), await ref.get(n)!.data()]; // tfjs keeps a CPU copy of what it read
      for (let i = 0; i < x.length; i++) assert(Math.abs(x[i] - y[i]) <= 1e-6 * (1 + Math.abs(y[i])), `${what} ${n}`);
    }
  };
  await runSteps(opt, 0, 1);
  await runSteps(refOpt, 0, 1);
  await check("step 1");
  const taken = opt.momentumBuffers();
  const takenBefore = await Promise.all([...taken.values()].map((t) => t.data()));
  await runSteps(opt, 1, 2);
  await runSteps(refOpt, 1, 2);
  await check("step 2");
  assertEquals(await Promise.all([...taken.values()].map((t) => t.data())), takenBefore, "taken buffers unchanged");
  const given = new Map([...taken].map(([n, b]) => [n, tf.mul(b, 2)]));
  const givenBefore = await Promise.all([...given.values()].map((t) => t.data()));
  opt.loadMomentumBuffers(given);
  await runSteps(opt, 2, 4);
  assertEquals(await Promise.all([...given.values()].map((t) => t.data())), givenBefore, "given buffers unchanged");
  [...taken.values(), ...given.values(), ...params.values(), ...ref.values()].forEach((t) => t.dispose());
  [opt, refOpt].forEach((o) => o.dispose());
});

Deno.test("the fused kernels are correct past 65,535 workgroups (tfjs then dispatches in 2-D)", async () => {
  const n = 65535 * 64 + 65; // one more workgroup of 64 than fits in one dispatch dimension
  const make = () => new Map([["w", tf.tidy(() => tf.variable(tf.linspace(-1, 1, n)))]]);
  const [a, b] = [make(), make()];
  const g = tf.linspace(2, -3, n);
  const c = { momentum: 0.9, nesterov: true, weightDecay: 0.1, decay: decayAllFilter };
  const [fa, fb] = [new SGD(a, { ...c, implementation: "fused" }), new SGD(b, { ...c, implementation: "ops" })];
  for (let i = 0; i < 2; i++) [fa, fb].forEach((o) => o.step({ w: g }, 0.1));
  const [x, y] = [await a.get("w")!.data(), await b.get("w")!.data()];
  let worst = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  assert(worst <= 1e-6, `max difference ${worst}`);
  assert(x[n - 1] !== 1 && x[0] !== -1, "the first and the last elements were updated");
  [fa, fb].forEach((o) => o.dispose());
  [...a.values(), ...b.values(), g].forEach((t) => t.dispose());
});

Deno.test("a fused step is one dispatch for as many parameters as the device binds at once; tfjs ops take 6+ each", () => {
  const original = GPUComputePassEncoder.prototype.dispatchWorkgroups;
  let dispatches = 0;
  GPUComputePassEncoder.prototype.dispatchWorkgroups = function (...args) {
    dispatches++;
    return original.apply(this, args);
  };
  const limits = (tf.backend() as unknown as { device: GPUDevice }).device.limits;
  const bindings = Math.min(limits.maxStorageBuffersPerShaderStage, limits.maxBindingsPerBindGroup - 1);
  try {
    /** Dispatches of one step (after the first, which creates the buffers) over `params` parameters. */
    const count = (c: Omit<SGDOptions, "decay">, params: number) => {
      const vars = new Map(Array.from({ length: params }, (_, i) => [`w${i}.weight`, tf.variable(tf.ones([3, 2]))]));
      const opt = new SGD(vars, { ...c, decay: defaultWeightDecayFilter });
      const grads = new Map([...vars.keys()].map((n) => [n, tf.ones([3, 2])]));
      opt.step(grads, 0.1);
      dispatches = 0;
      opt.step(grads, 0.1);
      const n = dispatches;
      opt.dispose();
      [...vars.values(), ...grads.values()].forEach((t) => t.dispose());
      return n;
    };
    const nesterov = { momentum: 0.9, nesterov: true, weightDecay: 5e-4, implementation: "fused" } as const;
    assertEquals(count(nesterov, 3), 1);
    // Parameter, gradient and momentum buffer are three storage bindings; without momentum, two.
    assertEquals(count(nesterov, 62), Math.ceil(62 / Math.floor(bindings / 3)), `62 parameters, ${bindings} bindings`);
    assertEquals(count({ ...nesterov, momentum: 0, nesterov: false }, 62), Math.ceil(62 / Math.floor(bindings / 2)));
    // The same update as separate tfjs ops takes several times as many.
    const ops = count({ ...nesterov, implementation: "ops" }, 3) / 3;
    assert(ops >= 6, `${ops} dispatches per parameter`);
  } finally {
    GPUComputePassEncoder.prototype.dispatchWorkgroups = original;
  }
});
