import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, rejects } from "../assert.ts";
import { registerFastKernels } from "../../kernels/register.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { resnet18 } from "../../models/zoo.ts";
import { decodeCheckpoint, encodeCheckpoint } from "../../io/checkpoint.ts";
import { acquireRunLock, RunFolderLockedError } from "../../io/run_lock.ts";
import { SGD, weightDecayFilter } from "../../train/sgd.ts";
import { ConfigError, type EvalConfig, type TrainConfig } from "../../train/config.ts";
import { usageErrorFrom } from "../../tasks/args.ts";
import { parseEvalArgs } from "../../tasks/eval_flags.ts";
import { exportWeights } from "../../tasks/export.ts";
import { parseTrainArgs } from "../../tasks/train_flags.ts";
import { evaluateCheckpoint } from "../../train/evaluate_checkpoint.ts";
import { loadSharp } from "../../data/image_decode.ts";
import { generateSynthetic } from "../../data/synthetic.ts";
import { createLoaders } from "../../data/loaders.ts";
import { makeDataParallelStep, makeTrainStep } from "../../train/train_step.ts";
import type { Collective } from "../../dist/collective.ts";
import { NonFiniteLossError, train, type TrainHooks } from "../../train/trainer.ts";
import { RunLog } from "../../train/run_log.ts";

await initWebGPU();
registerFastKernels();

// 96 synthetic images, 32 held out for validation: 64 train images = 4 steps of 16 per epoch.
const DATA: TrainHooks["data"] = { syntheticTrain: 96, syntheticTest: 32, workers: 0 };

function config(out: string, ...flags: string[]): TrainConfig {
  const c = parseTrainArgs([
    "--dataset=synthetic",
    "--width=2",
    "--batch-size=16",
    "--epochs=2",
    "--val-split=32",
    "--log-every=2",
    "--checkpoint-every=3",
    `--out=${out}`,
    ...flags,
  ]);
  if (c === "help") throw new Error("unreachable");
  return c;
}

/** The final checkpoint's tensors and the metrics log without its wall-clock fields. */
async function outcome(out: string) {
  const state = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
  const metrics = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n").map((l) => {
    const { time: _t, images_per_second: _i, ...rest } = JSON.parse(l);
    return rest;
  });
  return { state, metrics };
}

function assertSameOutcome(a: Awaited<ReturnType<typeof outcome>>, b: Awaited<ReturnType<typeof outcome>>) {
  assertEquals(b.metrics, a.metrics);
  assertEquals(b.state.globalStep, a.state.globalStep);
  for (const part of ["model", "optimizer", "ema"] as const) {
    const [was, now] = [a.state[part] ?? new Map(), b.state[part] ?? new Map()];
    assertEquals([...now.keys()], [...was.keys()], part);
    for (const [name, t] of was) {
      const u = now.get(name)!;
      assertEquals(
        new Uint8Array(u.data.buffer, u.data.byteOffset, u.data.byteLength),
        new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        `${part} ${name}`,
      );
    }
  }
}

const tmp = await Deno.makeTempDir({ prefix: "trainer_test_" });
let reference: Awaited<ReturnType<typeof outcome>>;

Deno.test("an uninterrupted run writes config, metrics, summary and checkpoints", async () => {
  const out = `${tmp}/reference`;
  const events: number[] = [];
  const result = await train(config(out), { data: DATA, progress: (p) => events.push(p.globalStep) });
  assertEquals([result.globalStep, result.interrupted, result.epochs.length], [8, false, 2]);
  assertEquals(events, [2, 4, 6, 8], "one readback every --log-every steps");
  const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
  for (const f of ["config.json", "metrics.jsonl", "summary.csv", "last.safetensors", "best.safetensors"]) {
    assert(files.includes(f), `${f} in ${files}`);
  }
  assert(!files.some((f) => f.includes(".tmp")), `no temporary files left: ${files}`);
  reference = await outcome(out);
  assertEquals(reference.metrics.map((m) => m.epoch), [1, 2]);
  for (const m of reference.metrics) {
    for (const k of ["train_loss", "val_loss", "val_top1", "test_loss", "test_top1", "test_top5"]) {
      assert(Number.isFinite(m[k]), `${k} = ${m[k]}`);
    }
  }
  assertEquals(reference.state.dataPosition, { epoch: 2, batch: 0 });
  assertEquals(reference.state.classNames.length, 10);
  // best is chosen on the validation split and records its metric.
  assertEquals(reference.state.bestMetric, Math.max(...reference.metrics.map((m) => m.val_top1)));
  const csv = (await Deno.readTextFile(`${out}/summary.csv`)).trim().split("\n");
  assertEquals(csv.length, 3, "header + one row per epoch");
});

Deno.test("killed at an epoch boundary and resumed equals uninterrupted", async () => {
  const out = `${tmp}/boundary`;
  const tensors = tf.memory().numTensors;
  const first = await train(config(out), { data: DATA, stopAfterStep: 5 });
  assert(first.interrupted);
  // The newest checkpoint is the end of epoch 1 (step 4); step 5 is lost, as in a real crash.
  const resumed = await train(config(out, "--resume=auto"), { data: DATA });
  assertEquals(resumed.globalStep, 8);
  // Checkpoint saves (momentum copies) and the resume (loaded buffers) leave no tensor behind.
  assertEquals(tf.memory().numTensors, tensors);
  assertSameOutcome(reference, await outcome(out));
});

Deno.test("killed mid-epoch and resumed from a mid-epoch checkpoint equals uninterrupted", async () => {
  const out = `${tmp}/mid`;
  await train(config(out), { data: DATA, stopAfterStep: 7 });
  // --checkpoint-every 3: the newest checkpoint is step 6, batch 2 of epoch 2.
  const mid = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
  assertEquals([mid.globalStep, mid.dataPosition], [6, { epoch: 1, batch: 2 }]);
  await train(config(out, "--resume=auto"), { data: DATA });
  assertSameOutcome(reference, await outcome(out));
});

Deno.test("with TrivialAugmentWide and random erasing on, killed mid-epoch and resumed (in workers) equals uninterrupted", async () => {
  const augment = ["--auto-augment=ta_wide", "--random-erase=0.5"];
  const reference = `${tmp}/augment-reference`, out = `${tmp}/augment-mid`;
  await train(config(reference, ...augment), { data: DATA });
  const augmented = await outcome(reference);
  assert(augmented.metrics[0].train_loss !== (await outcome(`${tmp}/reference`)).metrics[0].train_loss, "augmented");
  // Interrupted and resumed with decode workers: the per-image draws depend on (seed, epoch, index) only.
  const workers = { ...DATA, workers: 2 };
  await train(config(out, ...augment), { data: workers, stopAfterStep: 7 });
  const mid = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
  assertEquals([mid.globalStep, mid.dataPosition], [6, { epoch: 1, batch: 2 }]);
  // Resuming without the options would not continue this run: refused, naming the field.
  await rejects(
    () => train(config(out, "--resume=auto", "--random-erase=0.5"), { data: workers }),
    (e: Error) => e instanceof ConfigError && e.field === "autoAugment" && /randomErase/.test(e.message) === false,
  );
  await train(config(out, "--resume=auto", ...augment), { data: workers });
  assertSameOutcome(augmented, await outcome(out));
});

Deno.test("with mixup, cutmix, repeated augmentation and the weight average on, killed mid-epoch and resumed equals uninterrupted", async () => {
  // A warm-up epoch (the average copies the model at each update), then averaging every 2 steps at decay
  // 1 - 0.01 x 16 x 2 / 2 = 0.84; mixup or cutmix on every batch; each image twice per epoch, augmented apart.
  const recipe = [
    "--ra-sampler",
    "--ra-reps=2",
    "--auto-augment=ta_wide",
    "--schedule=cosine",
    "--warmup-epochs=1",
    "--model-ema",
    "--model-ema-decay=0.99",
    "--model-ema-steps=2",
    "--mixup-alpha=0.2",
    "--cutmix-alpha=1.0",
  ];
  const whole = `${tmp}/recipe-reference`, out = `${tmp}/recipe-mid`;
  const said: string[] = [];
  await train(config(whole, ...recipe), { data: DATA, log: (m) => said.push(m) });
  // 4 steps per epoch, an update every 2: 4 updates, which the run says, with a warning (too few to average much).
  assert(
    said.includes(
      "model EMA: decay 0.840000 (adjusted), an update every 2 steps, 4 updates in 2 epochs; warning: too few for a " +
        "useful average (a shorter update interval suits short runs)",
    ),
    said.join("\n"),
  );
  const uninterrupted = await outcome(whole);
  const ema = uninterrupted.state.ema!;
  assert(ema !== undefined, "the checkpoint holds the average");
  // Epoch 2: a copy at batch 0, an average at batch 2.
  assertEquals(ema.get("n_averaged")!.data, BigInt64Array.of(2n));
  const [m, e] = [uninterrupted.state.model.get("fc.weight")!.data, ema.get("fc.weight")!.data];
  assert(m.some((v, i) => v !== e[i]), "the average is not the model");
  for (const r of uninterrupted.metrics) {
    for (
      const k of ["ema_val_loss", "ema_val_top1", "ema_val_top5", "ema_test_loss", "ema_test_top1", "ema_test_top5"]
    ) {
      assert(Number.isFinite(r[k]), `${k} = ${r[k]}`);
    }
  }
  const header = (await Deno.readTextFile(`${whole}/summary.csv`)).split("\n")[0];
  assert(header.includes("ema_test_top1"), header);
  // Mixing changes the training loss of the same batches.
  const plain = `${tmp}/recipe-plain`;
  await train(config(plain, ...recipe.slice(0, 8)), { data: DATA });
  assert((await outcome(plain)).metrics[0].train_loss !== uninterrupted.metrics[0].train_loss, "mixed");
  // Killed after step 7; the newest checkpoint is step 6 (epoch 2, batch 2), before the second update of the epoch.
  await train(config(out, ...recipe), { data: DATA, stopAfterStep: 7 });
  const mid = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
  assertEquals([mid.globalStep, mid.dataPosition], [6, { epoch: 1, batch: 2 }]);
  assertEquals(mid.ema!.get("n_averaged")!.data, BigInt64Array.of(1n));
  await train(config(out, "--resume=auto", ...recipe), { data: DATA });
  assertSameOutcome(uninterrupted, await outcome(out));
});

Deno.test("a non-finite loss stops the run and leaves the last good checkpoint untouched", async () => {
  const out = `${tmp}/nan`;
  await rejects(
    () => train(config(out), { data: DATA, nanAtStep: 5 }),
    // The loss readback stops it, not the parameter check before the next save (which would say "parameters").
    (e: Error) =>
      e instanceof NonFiniteLossError && /training loss became NaN at or before global step 6/.test(e.message),
  );
  const last = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
  assertEquals(last.globalStep, 4, "the end-of-epoch-1 checkpoint is still the last one");
  const steps = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.startsWith("checkpoint-")).sort();
  assertEquals(steps.at(-1), "checkpoint-000000004.safetensors");
});

Deno.test("training steps do not grow the number of live tensors, and disposing frees all", () => {
  const start = tf.memory().numTensors;
  const model = resnet18({ stem: "cifar", width: 2, numClasses: 10 });
  const optimizer = new SGD(model.parameters(), {
    momentum: 0.9,
    nesterov: true,
    weightDecay: 5e-4,
    decay: weightDecayFilter(false),
  });
  const step = makeTrainStep(model, optimizer, { labelSmoothing: 0.1, clipGradNorm: 1 });
  const x = tf.randomNormal([4, 8, 8, 3]) as tf.Tensor4D;
  const y = tf.tensor1d([0, 1, 2, 3], "int32");
  const run = () => tf.dispose(Object.values(step(x, y, 0.1)));
  run(); // the first step creates the momentum buffers
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) run();
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([x, y]);
  step.dispose();
  optimizer.dispose();
  model.dispose();
  assertEquals(tf.memory().numTensors, start, "the step keeps a tensor after dispose()");
});

Deno.test("a frozen (non-trainable) parameter keeps its values; the others move", async () => {
  const model = resnet18({ stem: "cifar", width: 2, numClasses: 10 });
  const optimizer = new SGD(model.parameters(), { momentum: 0.9, nesterov: false, weightDecay: 0, decay: () => false });
  const fc = model.parameters().get("fc.weight")!;
  fc.trainable = false;
  const step = makeTrainStep(model, optimizer, { labelSmoothing: 0, clipGradNorm: 0 });
  const x = tf.randomNormal([4, 8, 8, 3], 0, 1, "float32", 3) as tf.Tensor4D;
  const y = tf.tensor1d([0, 1, 2, 3], "int32");
  const conv = model.parameters().get("conv1.weight")!;
  const [fcBefore, convBefore] = [await fc.data(), await conv.data()];
  tf.dispose(Object.values(step(x, y, 0.5)));
  assertEquals(await fc.data(), fcBefore);
  assert((await conv.data()).some((v, i) => v !== convBefore[i]), "conv1.weight did not move");
  tf.dispose([x, y]);
  step.dispose();
  optimizer.dispose();
  model.dispose();
});

Deno.test("a data-parallel step whose all-reduce fails (a timeout a library caller catches) leaves no tensor behind", async () => {
  const model = resnet18({ stem: "cifar", width: 2, numClasses: 10 });
  const optimizer = new SGD(model.parameters(), { momentum: 0.9, nesterov: false, weightDecay: 0, decay: () => false });
  let fail = false;
  const collective: Collective = {
    rank: 0,
    size: 2,
    description: "test",
    allReduceSum: (_data, what) => fail ? Promise.reject(new Error(`timed out: ${what}`)) : Promise.resolve(),
    broadcast: () => Promise.resolve(),
    allGather: (data) => Promise.resolve([data, data]),
    abort: () => {
      throw new Error("abort");
    },
    finalize: () => {},
  };
  const step = makeDataParallelStep(model, optimizer, { labelSmoothing: 0, clipGradNorm: 0 }, collective);
  const x = tf.randomNormal([4, 8, 8, 3]) as tf.Tensor4D;
  const y = tf.tensor1d([0, 1, 2, 3], "int32");
  tf.dispose(Object.values(await step(x, y, 0.1, 1))); // the first step creates the momentum buffers
  const before = tf.memory().numTensors;
  fail = true;
  await rejects(() => step(x, y, 0.1, 2), /timed out: the gradient all-reduce of step 2/);
  assertEquals(tf.memory().numTensors, before);
  tf.dispose([x, y]);
  step.dispose();
  optimizer.dispose();
  model.dispose();
});

Deno.test("an end-to-end synthetic run learns well above chance", async () => {
  const out = `${tmp}/learn`;
  const c = parseTrainArgs(["--dataset=synthetic", "--epochs=3", `--out=${out}`, "--log-every=1000"]);
  if (c === "help") throw new Error("unreachable");
  const result = await train(c, { data: { syntheticTrain: 512, syntheticTest: 256, workers: 0 } });
  const last = result.epochs.at(-1)!;
  // 10 classes: chance is 10 %; this run reaches 59 % on llvmpipe (the 1,024-image demo reaches 95 %).
  assert(last.test_top1! >= 0.4, `test top-1 ${last.test_top1} after ${result.globalStep} steps`);
});

Deno.test("a class folder of small JPEGs trains with --transforms cifar --decoder js, and evaluates the same way", async () => {
  // 48 synthetic 32x32 images as JPEGs in train/<class>/ and test/<class>/ folders, 3 classes.
  const root = `${tmp}/jpegs`;
  const sharp = await loadSharp();
  const images = generateSynthetic(48, 0, 5);
  const classes = ["a_zero", "b_one", "c_two"];
  for (let i = 0; i < images.count; i++) {
    const split = i < 36 ? "train" : "test", cls = classes[images.labels[i] % 3];
    await Deno.mkdir(`${root}/${split}/${cls}`, { recursive: true });
    const raw = images.images.slice(i * 3072, (i + 1) * 3072);
    const jpeg = await sharp(raw, { raw: { width: 32, height: 32, channels: 3 } }).jpeg().toBuffer();
    await Deno.writeFile(`${root}/${split}/${cls}/${i}.jpg`, jpeg);
  }
  const out = `${tmp}/folder-js`;
  const c = parseTrainArgs([
    "--dataset=folder",
    `--data-dir=${root}`,
    "--transforms=cifar",
    "--decoder=js",
    "--width=2",
    "--batch-size=12",
    "--epochs=1",
    `--out=${out}`,
  ]);
  if (c === "help") throw new Error("unreachable");
  assertEquals([c.stem, c.imageSize, c.schedule], ["cifar", 32, "onecycle"], "the CIFAR recipe");
  const result = await train(c, { data: { workers: 0 } });
  assertEquals(result.globalStep, 3);
  const saved = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  assertEquals([saved.transforms, saved.decoder], ["cifar", "js"]);
  const state = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
  assertEquals(state.classNames, classes);
  // eval takes transforms and decoder from the checkpoint and sees the 12 test images.
  const evaluation = await evaluateCheckpoint(parseEvalArgs(["--checkpoint", `${out}/last.safetensors`]) as EvalConfig);
  assertEquals(evaluation.result.count, 12);
  assertEquals(evaluation.result.top1, result.epochs[0].test_top1);
  const evalArgs = (...flags: string[]) => parseEvalArgs(["--checkpoint", `${out}/last.safetensors`, ...flags]);
  // The library names fields (ConfigError); the command line says them as flags, as `deno task eval` prints them.
  const asCommandLine = (p: Promise<unknown>) =>
    p.catch((e) => {
      throw e instanceof ConfigError ? usageErrorFrom(e) : e;
    });
  await rejects(
    asCommandLine(evaluateCheckpoint(evalArgs("--transforms", "imagenet") as EvalConfig)),
    /--decoder js does not resize images, so it needs --transforms cifar/,
  );
  await rejects(
    asCommandLine(evaluateCheckpoint(evalArgs("--dataset", "synthetic", "--decoder", "sharp") as EvalConfig)),
    /--decoder applies to --dataset folder and imagenet only/,
  );
  // The mean/std the run normalised with (its training images' own) are recorded, in the checkpoint and config.json.
  const loaders = await createLoaders({
    dataset: "folder",
    dataDir: root,
    valSplit: 0,
    seed: 0,
    batchSize: 12,
    transforms: "cifar",
    decoder: "js",
    workers: 0,
  });
  await Promise.all([loaders.train.close(), loaders.test.close()]);
  assertEquals(state.normalization, { mean: loaders.mean, std: loaders.std });
  assertEquals(saved.normalization, state.normalization);
  // eval uses them, so the test split alone is enough: the same result without train/.
  await Deno.rename(`${root}/train`, `${root}/train-moved`);
  try {
    const alone = await evaluateCheckpoint(evalArgs() as EvalConfig);
    assertEquals(
      [alone.result.count, alone.result.top1, alone.result.loss],
      [12, evaluation.result.top1, evaluation.result.loss],
    );
    // Its export records how the images were prepared: eval of the bare weights prepares them alike (32x32, js).
    await exportWeights({ checkpoint: `${out}/last.safetensors`, out: `${out}/model.safetensors` });
    const exported = await evaluateCheckpoint(
      parseEvalArgs([
        "--checkpoint",
        `${out}/model.safetensors`,
        "--dataset",
        "folder",
        "--data-dir",
        root,
      ]) as EvalConfig,
    );
    assertEquals(
      [exported.result.count, exported.result.top1, exported.result.loss],
      [12, evaluation.result.top1, evaluation.result.loss],
    );
    // A checkpoint from before they were recorded still takes them from train/, which it needs.
    const { normalization: _n, ...older } = state;
    await Deno.writeFile(`${out}/older.safetensors`, encodeCheckpoint(older));
    await rejects(
      evaluateCheckpoint(parseEvalArgs(["--checkpoint", `${out}/older.safetensors`]) as EvalConfig),
      /jpegs: holds neither a train\/ folder nor \.tar\/\.tar\.gz archives/,
    );
  } finally {
    await Deno.rename(`${root}/train-moved`, `${root}/train`);
  }
});

const TRAIN_TASK = new URL("../../tasks/train.ts", import.meta.url).pathname;

/** `deno run tasks/train.ts ...args`: exit code, stdout and stderr. */
async function trainTask(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TRAIN_TASK, ...args],
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return { code, stdout: text.decode(stdout), stderr: text.decode(stderr) };
}

Deno.test("resume refuses a checkpoint of another configuration, naming each field, unless told to continue", async () => {
  const out = `${tmp}/changed`;
  await train(config(out), { data: DATA, stopAfterStep: 3 }); // the newest checkpoint: step 3, batch 3 of epoch 1
  await rejects(
    () => train(config(out, "--resume=auto", "--batch-size=8", "--lr=0.1", "--workers=1"), { data: DATA }),
    (e: Error) =>
      e instanceof ConfigError && e.field === "batchSize" &&
      /batchSize 16 in the checkpoint, 8 now; lr 0\.2 in the checkpoint, 0\.1 now\. /.test(e.message) &&
      !e.message.includes("workers"), // what cannot change the computation may change
  );
  // The command line: exit status 2 naming the flag.
  const { code, stderr } = await trainTask(
    ...["--dataset=synthetic", "--width=2", "--epochs=2", "--val-split=32", "--log-every=2", "--checkpoint-every=3"],
    ...[`--out=${out}`, "--resume=auto", "--batch-size=8"],
  );
  assertEquals(code, 2, stderr);
  assert(/error: .*--batch-size 16 in the checkpoint, 8 now.*--allow-config-change/.test(stderr), stderr);
  // Told to, it continues from the weights under the new batch size, from the start of the interrupted epoch.
  const messages: string[] = [];
  const result = await train(config(out, "--resume=auto", "--batch-size=8", "--allow-config-change"), {
    data: DATA,
    log: (m) => messages.push(m),
  });
  assert(messages.includes("the data order changed: epoch 1 starts again at its first batch"), messages.join("\n"));
  assert(messages.some((m) => /^warning: continuing .* under a changed configuration: batchSize 16 -> 8/.test(m)));
  assertEquals(result.globalStep, 16, "2 epochs of 8 steps under the new batch size");
});

Deno.test("a checkpoint without the epoch's partial sums is refused by name, not with a TypeError", async () => {
  const out = `${tmp}/no-partial`;
  await train(config(out, "--epochs=1"), { data: DATA });
  const state = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
  const path = `${tmp}/no-partial.safetensors`;
  await Deno.writeFile(path, encodeCheckpoint({ ...state, rng: { seed: 0 } }));
  await rejects(
    () => train(config(`${tmp}/no-partial-2`, "--epochs=1", `--resume=${path}`), { data: DATA }),
    /no-partial\.safetensors: metadata "rng" lacks the epoch's partial sums/,
  );
});

Deno.test("a checkpoint of other classes is refused on resume (a moved data folder must hold the same classes)", async () => {
  const out = `${tmp}/classes`;
  await train(config(out, "--epochs=1"), { data: DATA });
  const state = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
  const path = `${tmp}/classes.safetensors`;
  const renamed = state.classNames.map((n, i) => (i === 0 ? "zebra" : n));
  await Deno.writeFile(path, encodeCheckpoint({ ...state, classNames: renamed }));
  await rejects(
    () => train(config(`${tmp}/classes-2`, "--epochs=1", `--resume=${path}`), { data: DATA }),
    (e: Error) =>
      e instanceof ConfigError && e.field === "dataDir" && /trained on the classes \[zebra, /.test(e.message),
  );
});

Deno.test("a data folder that gives another number of training images is refused on resume, unless told to continue", async () => {
  const out = `${tmp}/count`;
  await train(config(out), { data: DATA, stopAfterStep: 3 }); // mid-epoch: step 3 of 4 in epoch 1
  const more = { ...DATA, syntheticTrain: 112 }; // 80 training images after the 32 held out, not 64
  await rejects(
    () => train(config(out, "--resume=auto"), { data: more }),
    (e: Error) =>
      e instanceof ConfigError && e.field === "dataDir" &&
      /was trained on 64 training images, but dataDir .* gives 80 now \(after valSplit 32\)/.test(e.message),
  );
  const messages: string[] = [];
  const result = await train(config(out, "--resume=auto", "--allow-config-change"), {
    data: more,
    log: (m) => messages.push(m),
  });
  assert(messages.includes("the data order changed: epoch 1 starts again at its first batch"), messages.join("\n"));
  assertEquals(result.globalStep, 10, "2 epochs of 5 steps over the 80 images");
});

Deno.test("a second run on the same folder stops at once, naming the first one's pid", async () => {
  const out = `${tmp}/locked`;
  await Deno.mkdir(out, { recursive: true });
  const lock = await acquireRunLock(out); // this process plays the first run
  try {
    await rejects(() => train(config(out), { data: DATA }), RunFolderLockedError);
    const { code, stderr } = await trainTask("--dataset=synthetic", `--out=${out}`);
    assertEquals(code, 1, stderr);
    assert(stderr.includes(`in use by process ${Deno.pid} on `), stderr);
  } finally {
    await lock.release();
  }
});

/** Runs `fn` with every checkpoint file write failing as `error` once `failFrom` checkpoint files were written. */
async function withFailingCheckpointWrites<T>(error: Error, failFrom: number, fn: () => Promise<T>): Promise<T> {
  const open = Deno.open;
  let opened = 0;
  (Deno as { open: typeof Deno.open }).open = async (path, options) => {
    if (/\.safetensors\.tmp-/.test(String(path)) && opened++ >= failFrom) throw error;
    return await open(path, options);
  };
  try {
    return await fn();
  } finally {
    (Deno as { open: typeof Deno.open }).open = open;
  }
}

/** Runs `fn` with every removal of a run lock (`run.lock`) failing as `error`. */
async function withFailingLockRemoval<T>(error: Error, fn: () => Promise<T>): Promise<T> {
  const remove = Deno.remove;
  (Deno as { remove: typeof Deno.remove }).remove = async (path, options) => {
    if (String(path).endsWith("/run.lock")) throw error;
    return await remove(path, options);
  };
  try {
    return await fn();
  } finally {
    (Deno as { remove: typeof Deno.remove }).remove = remove;
  }
}

Deno.test("a full disk or a read-only folder during a save stops the run by name and keeps the last checkpoint", async () => {
  for (
    const [code, text] of [["ENOSPC", "No space left on device (os error 28)"], ["EROFS", "Read-only file system"]]
  ) {
    const out = `${tmp}/${code}`;
    const error = Object.assign(new Error(text), { code });
    // A read-only folder also refuses the removal of the lock; that must not replace the error of the save.
    const readOnly = code === "EROFS";
    const lockError = new Error(`Read-only file system (os error 30): remove '${out}/run.lock'`);
    const messages: string[] = [];
    const run = () => train(config(out), { data: DATA, log: (m) => messages.push(m) });
    // The saves at step 3 write checkpoint-3 and last; the end of epoch 1 (step 4) then fails.
    await rejects(
      () => withFailingCheckpointWrites(error, 2, () => readOnly ? withFailingLockRemoval(lockError, run) : run()),
      (e: Error) =>
        e.message.startsWith(`atomic write of ${out}/checkpoint-000000004.safetensors failed, the previous file`) &&
        e.message.endsWith(text),
    );
    const last = decodeCheckpoint(await Deno.readFile(`${out}/last.safetensors`), out);
    assertEquals([last.globalStep, last.dataPosition], [3, { epoch: 0, batch: 3 }], code);
    const left = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.includes(".tmp-") || n === "run.lock");
    assertEquals(
      left,
      readOnly ? ["run.lock"] : [],
      `${code}: no temporary file left behind, nor a lock that could go`,
    );
    assertEquals(
      messages.filter((m) => m.startsWith("warning:")),
      readOnly ? [`warning: ${out}/run.lock not removed (${lockError.message}); the next run takes it over`] : [],
    );
  }
  // (The lock left behind is this process's; once it has ended, the next run takes it over: tests/io/run_lock_test.ts.)
  await Deno.remove(`${tmp}/EROFS/run.lock`);
});

const rejectsAsUsage = (run: () => Promise<unknown>, field: string, message: string) =>
  rejects(run, (e: Error) => {
    assert(e instanceof ConfigError, String(e));
    assertEquals([e.field, usageErrorFrom(e).message], [field, message]);
    return true;
  });

Deno.test("a run folder that cannot be created is refused by name", async () => {
  const mkdir = Deno.mkdir;
  (Deno as { mkdir: typeof Deno.mkdir }).mkdir = (path) =>
    Promise.reject(new Error(`Read-only file system (os error 30): mkdir '${path}'`));
  try {
    await rejectsAsUsage(
      () => train(config(`${tmp}/read-only/run`), { data: DATA }),
      "out",
      `--out ${tmp}/read-only/run: cannot create the run folder (Read-only file system)`,
    );
  } finally {
    (Deno as { mkdir: typeof Deno.mkdir }).mkdir = mkdir;
  }
});

/** The names and modification times of what `dir` holds. */
const listing = (dir: string) =>
  [...Deno.readDirSync(dir)].map((e) => `${e.name} ${Deno.statSync(`${dir}/${e.name}`).mtime?.getTime()}`).sort();

Deno.test("a failed start removes the run folder it created, and leaves one that existed", async () => {
  const out = `${tmp}/new/run`;
  const tooLarge = "--val-split must be an integer in [0, 95] (the training set has 96 images), received 96";
  await rejectsAsUsage(() => train(config(out, "--val-split=96"), { data: DATA }), "valSplit", tooLarge);
  assertEquals(await Deno.stat(out).then(() => "left", () => "removed"), "removed");
  await Deno.mkdir(out);
  await rejectsAsUsage(() => train(config(out, "--val-split=96"), { data: DATA }), "valSplit", tooLarge);
  assertEquals(listing(out), [], "the folder it did not create stays, empty");
  await Deno.remove(out);
  // The command line: a usage error naming the flag (the synthetic set has 1024 training images), no folder left.
  const { code, stderr } = await trainTask("--dataset=synthetic", "--width=2", "--val-split=1024", `--out=${out}`);
  assertEquals(code, 2, stderr);
  assert(stderr.startsWith("error: --val-split must be an integer in [0, 1023] (the training set has 1024 "), stderr);
  assertEquals(await Deno.stat(out).then(() => "left", () => "removed"), "removed");
});

Deno.test("a run folder that holds a run is refused without --resume, before anything in it is written", async () => {
  const out = `${tmp}/held`;
  await Deno.mkdir(out, { recursive: true });
  const runLog = new RunLog(out);
  for (const epoch of [1, 2, 3]) {
    const record = { epoch, step: 4 * epoch, lr: 0.1, train_loss: 1, train_top1: 0.5, time: 1, images_per_second: 1 };
    await runLog.appendEpoch(record);
  }
  await runLog.writeConfig({ the: "first run" });
  await Deno.writeFile(`${out}/last.safetensors`, new Uint8Array(8)); // its name is what counts here
  const before = listing(out);
  const refusal = `--out ${out} already holds a run (3 epochs, last.safetensors); continue it with --resume auto, ` +
    "or choose another --out";
  await rejectsAsUsage(() => train(config(out), { data: DATA }), "out", refusal);
  assertEquals(listing(out), before, "config.json untouched, no lock left");
  // The command line says it with exit status 2, before the GPU starts.
  const { code, stdout, stderr } = await trainTask("--dataset=synthetic", "--width=2", `--out=${out}`);
  assertEquals([code, stderr], [2, `error: ${refusal} (see --help)\n`]);
  assert(!stdout.includes("WebGPU adapter"), stdout);
  assertEquals(listing(out), before);
  // A checkpoint alone holds a run too (killed in epoch 1, before any epoch was logged).
  const mid = `${tmp}/held-mid`;
  await Deno.mkdir(mid);
  await Deno.writeFile(`${mid}/checkpoint-000000003.safetensors`, new Uint8Array(8));
  await rejectsAsUsage(
    () => train(config(mid), { data: DATA }),
    "out",
    `--out ${mid} already holds a run (no epoch finished, checkpoint-000000003.safetensors); continue it with ` +
      "--resume auto, or choose another --out",
  );
  // Logs without a checkpoint (killed between epoch 1's metrics and its checkpoint): --resume auto starts anew.
  await Deno.remove(`${out}/last.safetensors`);
  await rejectsAsUsage(
    () => train(config(out), { data: DATA }),
    "out",
    `--out ${out} already holds a run (3 epochs, no checkpoint); start it anew with --resume auto, or choose another ` +
      "--out",
  );
  const messages: string[] = [];
  const result = await train(config(out, "--resume=auto", "--epochs=1"), { data: DATA, log: (m) => messages.push(m) });
  assertEquals(result.epochs.length, 1);
  assertEquals((await runLog.readMetrics()).map((r) => [r.epoch, r.train_loss]), [[1, result.epochs[0].train_loss]]);
  assert(
    messages.includes(
      `warning: ${out}/metrics.jsonl: dropped 3 logged epochs that no checkpoint holds; this run logs them anew`,
    ),
    messages.join("\n"),
  );
});

Deno.test("--resume auto in a new folder starts a new run", async () => {
  const out = `${tmp}/auto-new`;
  const messages: string[] = [];
  const result = await train(config(out, "--resume=auto", "--epochs=1"), { data: DATA, log: (m) => messages.push(m) });
  assert(messages.includes(`no checkpoint in ${out} to resume from; starting a new run`), messages.join("\n"));
  assertEquals([result.globalStep, result.epochs.length], [4, 1]);
});

Deno.test("a --resume or --init file that does not exist is a usage error naming the flag, before the GPU starts", async () => {
  for (const flag of ["--resume", "--init"]) {
    const { code, stderr } = await trainTask(
      "--dataset=synthetic",
      `--out=${tmp}/none`,
      `${flag}=${tmp}/nope.safetensors`,
    );
    assertEquals(code, 2, stderr);
    assert(stderr.startsWith(`error: ${flag} ${tmp}/nope.safetensors: no such file`), stderr);
  }
  // So is a folder or ImageNet --data-dir that does not exist, and no run folder is left behind.
  for (const dataset of ["folder", "imagenet"]) {
    const { code, stderr } = await trainTask(
      `--dataset=${dataset}`,
      `--out=${tmp}/none-${dataset}`,
      `--data-dir=${tmp}/nope`,
    );
    assertEquals(code, 2, stderr);
    assert(stderr.startsWith(`error: --data-dir ${tmp}/nope: no such folder or archive`), stderr);
    assertEquals(await Deno.stat(`${tmp}/none-${dataset}`).then(() => "made", () => "none"), "none");
  }
});

Deno.test({
  name: "cleanup",
  fn: () => Deno.removeSync(tmp, { recursive: true }),
});
