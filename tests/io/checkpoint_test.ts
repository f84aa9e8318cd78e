import { assert, assertEquals, assertStrictEquals, rejects, throws } from "../assert.ts";
import type { HostTensor, StateDict } from "../../io/host_tensor.ts";
import { FieldMessageError } from "../../io/config_error.ts";
import { resnetSpec } from "../../models/resnet_spec.ts";
import { resnetPlan } from "../../models/resnet_plan.ts";
import { stateLayout } from "../../models/state_layout.ts";
import { atomicWriteFile } from "../../io/atomic_write.ts";
import { decodeSafetensors, encodeSafetensors } from "../../io/safetensors.ts";
import {
  CHECKPOINT_FORMAT,
  type CheckpointState,
  checkStateDictShapes,
  compareStateDict,
  decodeCheckpoint,
  decodeWeights,
  encodeCheckpoint,
  type ExpectedShapes,
  loadCheckpoint,
  loadWeights,
  saveCheckpoint,
} from "../../io/checkpoint.ts";
import {
  BEST_CHECKPOINT,
  checkpointFileName,
  findResumeCheckpoint,
  LAST_CHECKPOINT,
  listStepCheckpoints,
  parseCheckpointFileName,
  pruneCheckpoints,
  removeStaleTempFiles,
  saveRunCheckpoint,
  stepCheckpointPath,
} from "../../io/checkpoint_dir.ts";

/** Deterministic pseudo-random floats (LCG), so failures reproduce. */
function floats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** A random state dict with the names, shapes and dtypes of a ResNet-18 (CIFAR stem, width 2, 10 classes). */
function resnet18Layout() {
  return stateLayout(resnetPlan(resnetSpec("resnet18", { stem: "cifar", width: 2, numClasses: 10 })));
}

function modelState(seed = 1): StateDict {
  const model: StateDict = new Map();
  resnet18Layout().forEach((e, i) => {
    const n = e.shape.reduce((a, b) => a * b, 1);
    model.set(
      e.name,
      e.dtype === "I64"
        ? { dtype: "I64", shape: e.shape, data: new BigInt64Array([BigInt(seed * 1000 + i)]) }
        : { dtype: "F32", shape: e.shape, data: floats(n, seed * 7919 + i) },
    );
  });
  return model;
}

function checkpointState(globalStep: number, seed = 1): CheckpointState {
  const model = modelState(seed);
  const optimizer: StateDict = new Map();
  for (const e of resnet18Layout().filter((e) => e.trainable)) {
    optimizer.set(e.name, { dtype: "F32", shape: e.shape, data: floats(model.get(e.name)!.data.length, globalStep) });
  }
  return {
    model,
    optimizer,
    epoch: 2,
    globalStep,
    dataPosition: { epoch: 2, batch: 7 },
    rng: { seed: 42, state: [1, 2, 3, 4] },
    config: { arch: "resnet18", lr: 0.1, milestones: [30, 60], nested: { ok: true } },
    bestMetric: 0.8125,
    classNames: ["airplane", "automobile", "bird"],
    archSpec: { arch: "resnet18", stem: "cifar", width: 2, numClasses: 10 },
    normalization: { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] },
  };
}

const bits = (t: HostTensor) => Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));

function assertSameTensors(a: StateDict, b: StateDict) {
  assertEquals([...a.keys()], [...b.keys()]);
  for (const [name, t] of a) {
    const u = b.get(name)!;
    assertEquals([u.dtype, u.shape], [t.dtype, t.shape], name);
    assertEquals(bits(u), bits(t), name);
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "checkpoint_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const names = (dir: string) => [...Deno.readDirSync(dir)].map((e) => e.name).sort();

Deno.test("checkpoint round trip is bit-exact: model, momentum buffers and every metadata field", () => {
  const state = checkpointState(123);
  // NaN payload and -0 in a weight, extreme counter: the file must not canonicalise anything.
  const w = state.model.get("conv1.weight")!.data as Float32Array;
  new Uint32Array(w.buffer, w.byteOffset, 2).set([0x7fc0beef, 0x80000000]);
  state.model.get("bn1.num_batches_tracked")!.data[0] = 2n ** 63n - 1n;
  const back = decodeCheckpoint(encodeCheckpoint(state), "ckpt");
  assertSameTensors(back.model, state.model);
  assertSameTensors(back.optimizer, state.optimizer);
  const { model: _m, optimizer: _o, ...meta } = state;
  const { model: _bm, optimizer: _bo, ...backMeta } = back;
  assertEquals(backMeta, meta);
  assertStrictEquals(
    decodeCheckpoint(encodeCheckpoint({ ...state, bestMetric: null, rng: undefined })).bestMetric,
    null,
  );
  // Checkpoints written before the normalisation was recorded have none, and read back without it.
  const { normalization: _n, ...older } = state;
  const file = encodeCheckpoint(older);
  assertStrictEquals(decodeSafetensors(file).metadata.normalization, undefined);
  assertStrictEquals("normalization" in decodeCheckpoint(file), false);
  assertEquals(decodeSafetensors(encodeCheckpoint(state)).metadata.normalization, JSON.stringify(state.normalization));
});

Deno.test("the weight average round-trips as ema.<name> and ema.n_averaged; weights files read it only with ema", () => {
  const state = checkpointState(7);
  const ema: StateDict = new Map([...modelState(3), ["n_averaged", {
    dtype: "I64",
    shape: [],
    data: new BigInt64Array([5n]),
  }]]);
  const bytes = encodeCheckpoint({ ...state, ema });
  const names = [...decodeSafetensors(bytes, "ckpt").tensors.keys()];
  assert(names.includes("ema.conv1.weight") && names.includes("ema.n_averaged"), names.join());
  const back = decodeCheckpoint(bytes, "ckpt");
  assertSameTensors(back.ema!, ema);
  assertSameTensors(back.model, state.model);
  assertStrictEquals(decodeCheckpoint(encodeCheckpoint(state)).ema, undefined, "no average: no ema field");
  // Weights: the model by default (the average dropped with the optimizer), the average without its count with ema.
  const plain = decodeWeights(bytes, "ckpt");
  assertSameTensors(plain.model, state.model);
  assert(plain.dropped.includes("ema.n_averaged") && plain.dropped.includes("optim.fc.weight"));
  const averaged = decodeWeights(bytes, "ckpt", { ema: true });
  assertSameTensors(averaged.model, modelState(3));
  throws(() => decodeWeights(encodeCheckpoint(state), "c2", { ema: true }), (err: unknown) => {
    assert(err instanceof FieldMessageError && err.message.startsWith("c2: holds no average"), String(err));
    assert(err.describe((f) => `<${f}>`).endsWith("its run was trained without <modelEma>"), err.message);
    return true;
  });
  // An average that does not match the model, or lacks its count, is refused naming the tensor.
  const wrong = new Map(ema).set("fc.bias", { dtype: "F32", shape: [3], data: new Float32Array(3) });
  throws(() => encodeCheckpoint({ ...state, ema: wrong }), Error, 'weight average "ema.fc.bias" is F32 [3]');
  const uncounted = new Map(ema);
  uncounted.delete("n_averaged");
  throws(() => encodeCheckpoint({ ...state, ema: uncounted }), Error, '"ema.n_averaged" must be an I64 [] tensor');
  const partial = new Map(ema);
  partial.delete("fc.bias");
  throws(() => encodeCheckpoint({ ...state, ema: partial }), Error, "weight average lacks 1 model tensor(s): fc.bias");
});

Deno.test("a checkpoint is plain safetensors: bare torchvision names, optim.<name> buffers, string metadata", async () => {
  const state = checkpointState(5);
  const { tensors, metadata } = decodeSafetensors(encodeCheckpoint(state));
  const torchvisionKeys =
    (await Deno.readTextFile(new URL("../fixtures/resnet18_state_dict_keys.txt", import.meta.url)))
      .trim().split("\n");
  const modelKeys = [...tensors.keys()].filter((k) => !k.startsWith("optim."));
  assertEquals(modelKeys, torchvisionKeys, "model tensors in torchvision's state_dict order under its names");
  const optimKeys = [...tensors.keys()].filter((k) => k.startsWith("optim."));
  assertEquals(optimKeys, [...state.optimizer.keys()].map((k) => `optim.${k}`));
  assertEquals(tensors.get("optim.fc.weight")!.shape, tensors.get("fc.weight")!.shape);
  assertEquals(tensors.get("bn1.num_batches_tracked")!.shape, []);
  assertStrictEquals(tensors.get("bn1.num_batches_tracked")!.dtype, "I64");
  assertEquals(metadata, {
    format: CHECKPOINT_FORMAT,
    epoch: "2",
    global_step: "5",
    data_position: '{"epoch":2,"batch":7}',
    rng: JSON.stringify(state.rng),
    config: JSON.stringify(state.config),
    best_metric: "0.8125",
    class_names: '["airplane","automobile","bird"]',
    arch_spec: JSON.stringify(state.archSpec),
    normalization: '{"mean":[0.49,0.48,0.45],"std":[0.25,0.24,0.26]}',
  });
});

Deno.test("decodeCheckpoint rejects bad metadata and inconsistent optimizer state, each with its own message", () => {
  const good = checkpointState(9);
  const file = encodeCheckpoint(good);
  const { tensors, metadata } = decodeSafetensors(file);
  const withMeta = (patch: Record<string, string | undefined>) => {
    const m = { ...metadata, ...patch };
    for (const k of Object.keys(m)) if (m[k] === undefined) delete m[k];
    return encodeSafetensors(tensors, m as Record<string, string>);
  };
  const cases: [Uint8Array, RegExp][] = [
    [withMeta({ format: "pt" }), /^c\.st: not a training checkpoint: __metadata__\.format is "pt", expected .*init/],
    [withMeta({ global_step: undefined }), /^c\.st: checkpoint metadata lacks "global_step"/],
    [withMeta({ epoch: "2.5" }), /^c\.st: checkpoint metadata "epoch" must be a non-negative integer, got "2\.5"/],
    [withMeta({ config: "{oops" }), /^c\.st: checkpoint metadata "config" is not valid JSON/],
    [
      withMeta({ data_position: '{"epoch":1}' }),
      /"data_position" must be \{"epoch": int, "batch": int\}, got \{"epoch":1\}/,
    ],
    [withMeta({ best_metric: '"high"' }), /"best_metric" must be a number or null, got "high"/],
    [withMeta({ class_names: "[1,2]" }), /"class_names" must be an array of strings, got \[1,2\]/],
    [
      withMeta({ normalization: '{"mean":[0.5,0.5],"std":[1,1,1]}' }),
      /^c\.st: checkpoint metadata "normalization" must be \{"mean": \[r, g, b\], "std": \[r, g, b\]\} \(stds > 0\), got \{"mean":\[0\.5,0\.5\]/,
    ],
    [withMeta({ normalization: '{"mean":[0,0,0],"std":[1,0,1]}' }), /"normalization" must be .*"std":\[1,0,1\]/],
  ];
  const stray = new Map(tensors);
  stray.set("optim.nope.weight", { dtype: "F32", shape: [1], data: new Float32Array(1) });
  cases.push([
    encodeSafetensors(stray, metadata),
    /optimizer state "optim\.nope\.weight" has no model tensor "nope\.weight"/,
  ]);
  const reshaped = new Map(tensors);
  reshaped.set("optim.fc.bias", { dtype: "F32", shape: [1, 10], data: new Float32Array(10) });
  cases.push([
    encodeSafetensors(reshaped, metadata),
    /optimizer state "optim\.fc\.bias" is F32 \[1,10\] but the parameter is F32 \[10\]/,
  ]);
  const messages = new Set<string>();
  for (const [bytes, message] of cases) {
    throws(() => decodeCheckpoint(bytes, "c.st"), (err: Error) => {
      assert(message.test(err.message), `${JSON.stringify(err.message)} should match ${message}`);
      messages.add(err.message);
      return true;
    });
  }
  assertStrictEquals(messages.size, cases.length, "every failure has its own message");
  // Its advice names the fields (a command line says them as flags); a path with braces stays a path.
  throws(() => decodeCheckpoint(withMeta({ format: "pt" }), "{out}/c.st"), (err: unknown) => {
    assert(err instanceof FieldMessageError, String(err));
    const text = err.describe((f) => `<${f}>`);
    assert(text.startsWith("{out}/c.st: ") && text.endsWith("used with <init>, not <resume>)"), text);
    return true;
  });
  // A damaged file fails in the safetensors layer, naming the file.
  throws(() => decodeCheckpoint(file.subarray(0, file.length - 4), "c.st"), /c\.st: file is truncated/);
});

Deno.test("encodeCheckpoint refuses states it could not restore faithfully", () => {
  const s = checkpointState(1);
  const cases: [Partial<CheckpointState>, RegExp][] = [
    [{ globalStep: -1 }, /globalStep must be a non-negative integer, got -1/],
    [{ epoch: 1.5 }, /epoch must be a non-negative integer, got 1\.5/],
    [{ dataPosition: { epoch: 0, batch: -3 } }, /dataPosition must be \{epoch, batch\}/],
    [{ bestMetric: NaN }, /bestMetric must be a finite number or null, got NaN/],
    [{ classNames: [1] as unknown as string[] }, /classNames must be an array of strings/],
    [{ rng: { big: 1n } }, /rng is not JSON-serialisable/],
    [
      { normalization: { mean: [0, 0, NaN], std: [1, 1, 1] } },
      /cannot encode checkpoint: normalization must be \{"mean": \[r, g, b\], "std": \[r, g, b\]\}/,
    ],
    [{ model: new Map([...s.model, ["optim.x", s.model.get("fc.bias")!]]) }, /"optim\.x" uses the reserved prefix/],
    [{ optimizer: new Map([["fc.bias", s.model.get("fc.weight")!]]) }, /"optim\.fc\.bias" is F32 \[10,16\] but/],
  ];
  for (const [patch, message] of cases) throws(() => encodeCheckpoint({ ...s, ...patch }), message);
});

Deno.test("checkStateDictShapes lists missing, unexpected and mismatched entries with counts, or passes", () => {
  const expected: ExpectedShapes = new Map(resnet18Layout().map((e) => [e.name, { shape: e.shape, dtype: e.dtype }]));
  // A file in another order (as safetensors.torch.save_file sorts) passes and comes back in the model's order.
  const shuffled = new Map([...modelState()].sort(([a], [b]) => a < b ? -1 : 1));
  const ordered = checkStateDictShapes(shuffled, expected, "ok.safetensors");
  assertEquals([...ordered.keys()], [...expected.keys()]);
  assertStrictEquals(ordered.get("fc.bias"), shuffled.get("fc.bias"));
  const found = modelState();
  const layer4 = [...found.keys()].filter((k) => k.startsWith("layer4."));
  for (const name of layer4) found.delete(name);
  found.set("head.weight", { dtype: "F32", shape: [1], data: new Float32Array(1) });
  found.set("fc.weight", { dtype: "F32", shape: [100, 16], data: new Float32Array(1600) });
  found.set("bn1.num_batches_tracked", { dtype: "F32", shape: [], data: new Float32Array(1) });
  throws(() => checkStateDictShapes(found, expected, "w.safetensors"), (err: Error) => {
    const lines = err.message.split("\n");
    assertStrictEquals(lines[0], "w.safetensors: state dict does not match the model (nothing was loaded):");
    assertStrictEquals(
      lines[1],
      `  ${layer4.length} missing: ${layer4.slice(0, 5).join(", ")}, ... and ${layer4.length - 5} more`,
    );
    assertStrictEquals(lines[2], "  1 unexpected: head.weight");
    assertStrictEquals(
      lines[3],
      "  2 with another shape or dtype: bn1.num_batches_tracked: file has F32 [], model expects I64 [], " +
        "fc.weight: file has F32 [100,16], model expects F32 [10,16]",
    );
    return true;
  });
});

Deno.test("compareStateDict reports a classifier head of another class count without throwing", () => {
  const expected: ExpectedShapes = new Map(resnet18Layout().map((e) => [e.name, { shape: e.shape, dtype: e.dtype }]));
  const found = modelState();
  found.set("fc.weight", { dtype: "F32", shape: [1000, 16], data: new Float32Array(16000) });
  found.set("fc.bias", { dtype: "F32", shape: [1000], data: new Float32Array(1000) });
  assertEquals(compareStateDict(found, expected), {
    missing: [],
    unexpected: [],
    mismatched: [
      { name: "fc.weight", found: { shape: [1000, 16], dtype: "F32" }, expected: { shape: [10, 16], dtype: "F32" } },
      { name: "fc.bias", found: { shape: [1000], dtype: "F32" }, expected: { shape: [10], dtype: "F32" } },
    ],
  });
  assertEquals(compareStateDict(modelState(), expected), { missing: [], unexpected: [], mismatched: [] });
});

Deno.test("loadWeights reads plain torchvision-style files and checkpoints (without optim.)", async () => {
  await withTempDir(async (dir) => {
    const state = checkpointState(3);
    await saveCheckpoint(`${dir}/c.safetensors`, state);
    const fromCheckpoint = await loadWeights(`${dir}/c.safetensors`);
    assertSameTensors(fromCheckpoint.model, state.model);
    assertStrictEquals(fromCheckpoint.dropped.length, state.optimizer.size);
    // What safetensors.torch.save_file(model.state_dict()) writes: tensors and {"format": "pt"}.
    await Deno.writeFile(`${dir}/tv.safetensors`, encodeSafetensors(state.model, { format: "pt" }));
    const plain = await loadWeights(`${dir}/tv.safetensors`);
    assertSameTensors(plain.model, state.model);
    assertEquals([plain.metadata, plain.dropped], [{ format: "pt" }, []]);
    assertEquals(decodeWeights(encodeSafetensors(state.model)).metadata, {}, "no metadata at all is fine too");
    await rejects(loadCheckpoint(`${dir}/tv.safetensors`), /tv\.safetensors: not a training checkpoint/);
    assertSameTensors((await loadCheckpoint(`${dir}/c.safetensors`)).optimizer, state.optimizer);
  });
});

Deno.test("atomicWriteFile replaces a file whole and leaves no temporary file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/f.bin`;
    await atomicWriteFile(path, new Uint8Array([1, 2, 3]));
    await atomicWriteFile(path, [new Uint8Array([4, 5]), new Uint8Array([6])]);
    assertEquals(Array.from(await Deno.readFile(path)), [4, 5, 6]);
    assertEquals(names(dir), ["f.bin"]);
  });
});

Deno.test("atomicWriteFile failures keep the old file and remove the temporary file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/f.bin`;
    await atomicWriteFile(path, new Uint8Array([1, 2, 3]));
    // A writer that dies after part of the data was written (as a crash or a full disk would).
    async function* dying() {
      yield new Uint8Array(1 << 20).fill(9);
      throw new Error("simulated crash mid-write");
    }
    await rejects(atomicWriteFile(path, dying()), (err: Error) => {
      assert(err.message.includes(path) && err.message.includes("simulated crash mid-write"), err.message);
      return true;
    });
    assertEquals(Array.from(await Deno.readFile(path)), [1, 2, 3], "old contents intact");
    assertEquals(names(dir), ["f.bin"], "temporary file removed");
    // Rename fails when the target is a non-empty directory: the temporary file must still go.
    await Deno.mkdir(`${dir}/d/x`, { recursive: true });
    await rejects(atomicWriteFile(`${dir}/d`, new Uint8Array([1])), /atomic write of .*\/d failed/);
    assertEquals(names(dir), ["d", "f.bin"]);
    await rejects(atomicWriteFile(`${dir}/missing/f.bin`, new Uint8Array([1])), /missing\/f\.bin failed/);
  });
});

Deno.test("a process killed while rewriting a checkpoint leaves the old or the new file, never a partial one", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/last.safetensors`;
    const writer = `
      import { atomicWriteFile } from ${JSON.stringify(new URL("../../io/atomic_write.ts", import.meta.url).href)};
      import { encodeSafetensors } from ${JSON.stringify(new URL("../../io/safetensors.ts", import.meta.url).href)};
      const files = [1, 2].map((v) => encodeSafetensors(new Map([["w", { dtype: "F32", shape: [1 << 21],
        data: new Float32Array(1 << 21).fill(v) }]])));
      await atomicWriteFile(${JSON.stringify(path)}, files[0]);
      console.log("ready");
      for (let i = 1; ; i++) await atomicWriteFile(${JSON.stringify(path)}, files[i % 2]);
    `;
    for (const delay of [20, 90, 170]) {
      const child = new Deno.Command(Deno.execPath(), { args: ["eval", writer], stdout: "piped", stderr: "inherit" })
        .spawn();
      const reader = child.stdout.getReader();
      assert(!(await reader.read()).done, "the writer printed ready: the first version is in place");
      await new Promise((r) => setTimeout(r, delay));
      child.kill("SIGKILL");
      await child.status;
      reader.releaseLock();
      await child.stdout.cancel();
      const w = decodeSafetensors(await Deno.readFile(path), path).tensors.get("w")!.data as Float32Array;
      assert(w.every((x) => x === w[0]) && (w[0] === 1 || w[0] === 2), `killed after ${delay} ms: mixed contents`);
      await removeStaleTempFiles(dir);
      assertEquals(names(dir), ["last.safetensors"]);
    }
  });
});

Deno.test("checkpoint file names sort by step and parse back", () => {
  assertStrictEquals(checkpointFileName(0), "checkpoint-000000000.safetensors");
  assertStrictEquals(checkpointFileName(1234), "checkpoint-000001234.safetensors");
  assertStrictEquals(checkpointFileName(1_234_567_890), "checkpoint-1234567890.safetensors");
  assertStrictEquals(stepCheckpointPath("runs/a", 5), "runs/a/checkpoint-000000005.safetensors");
  for (const step of [0, 7, 1234, 999_999_999, 1_234_567_890]) {
    assertStrictEquals(parseCheckpointFileName(checkpointFileName(step)), step);
  }
  for (
    const name of [
      LAST_CHECKPOINT,
      BEST_CHECKPOINT,
      "checkpoint-12.safetensors",
      "checkpoint-000000001.safetensors.tmp-ab",
    ]
  ) {
    assertStrictEquals(parseCheckpointFileName(name), null, name);
  }
  throws(() => checkpointFileName(-1), /non-negative integer, got -1/);
});

Deno.test("saveRunCheckpoint writes step, last and best copies and prunes to the newest N step files", async () => {
  await withTempDir(async (dir) => {
    for (const step of [10, 20, 30, 40]) {
      const saved = await saveRunCheckpoint(dir, checkpointState(step), { isBest: step === 20, keep: 2 });
      assertStrictEquals(saved.written.length, step === 20 ? 3 : 2);
    }
    assertEquals(names(dir), [
      BEST_CHECKPOINT,
      "checkpoint-000000030.safetensors",
      "checkpoint-000000040.safetensors",
      LAST_CHECKPOINT,
    ]);
    assertStrictEquals((await loadCheckpoint(`${dir}/${LAST_CHECKPOINT}`)).globalStep, 40);
    assertStrictEquals((await loadCheckpoint(`${dir}/${BEST_CHECKPOINT}`)).globalStep, 20, "best survives pruning");
    assertEquals(await pruneCheckpoints(dir, 0), [
      `${dir}/checkpoint-000000030.safetensors`,
      `${dir}/checkpoint-000000040.safetensors`,
    ]);
    assertEquals(names(dir), [BEST_CHECKPOINT, LAST_CHECKPOINT], "pruning never touches last or best");
    await rejects(pruneCheckpoints(dir, -1), /keep must be|non-negative integer, got -1/);
    assertEquals(await listStepCheckpoints(`${dir}/nope`), []);
  });
});

Deno.test("findResumeCheckpoint skips a corrupt newest file (with its reason) and takes the newest valid one", async () => {
  await withTempDir(async (dir) => {
    assertStrictEquals(await findResumeCheckpoint(dir), null, "empty folder: start fresh");
    assertStrictEquals(await findResumeCheckpoint(`${dir}/missing`), null, "no folder: start fresh");
    for (const step of [100, 200, 300]) await saveRunCheckpoint(dir, checkpointState(step));
    // A crash (or disk trouble) damaged the newest step file and `last`, both at step 300.
    const newest = `${dir}/checkpoint-000000300.safetensors`;
    const bytes = await Deno.readFile(newest);
    await Deno.writeFile(newest, bytes.subarray(0, bytes.length >> 1));
    await Deno.writeFile(`${dir}/${LAST_CHECKPOINT}`, new Uint8Array(3));
    const found = (await findResumeCheckpoint(dir))!;
    assertStrictEquals(found.path, `${dir}/checkpoint-000000200.safetensors`);
    assertStrictEquals(found.state.globalStep, 200);
    assertSameTensors(found.state.optimizer, checkpointState(200).optimizer);
    assertEquals(found.skipped.map((s) => s.path), [newest, `${dir}/${LAST_CHECKPOINT}`]);
    assert(/file is truncated/.test(found.skipped[0].reason), found.skipped[0].reason);
    assert(/too short for the 8-byte header length/.test(found.skipped[1].reason), found.skipped[1].reason);

    // With every step file pruned (--keep 0), `last` is the resume point.
    await pruneCheckpoints(dir, 0);
    await saveRunCheckpoint(dir, checkpointState(400), { keep: 0 });
    const fromLast = (await findResumeCheckpoint(dir))!;
    assertEquals([fromLast.path, fromLast.state.globalStep, fromLast.skipped], [`${dir}/${LAST_CHECKPOINT}`, 400, []]);

    // Checkpoints present but none valid: an error listing why, not a silent fresh start.
    await Deno.writeFile(`${dir}/${LAST_CHECKPOINT}`, encodeSafetensors(new Map(), { format: "pt" }));
    await rejects(findResumeCheckpoint(dir), /no valid checkpoint to resume from in .*\n.*not a training checkpoint/);
  });
});

Deno.test("removeStaleTempFiles removes only crash leftovers of atomic writes", async () => {
  await withTempDir(async (dir) => {
    await saveRunCheckpoint(dir, checkpointState(1));
    await Deno.writeFile(`${dir}/last.safetensors.tmp-0a1b2c`, new Uint8Array(10));
    await Deno.writeFile(`${dir}/notes.txt`, new Uint8Array(1));
    assertEquals(await removeStaleTempFiles(dir), [`${dir}/last.safetensors.tmp-0a1b2c`]);
    assertEquals(names(dir), ["checkpoint-000000001.safetensors", LAST_CHECKPOINT, "notes.txt"]);
  });
});
