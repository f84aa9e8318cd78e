import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertStrictEquals, rejects, throws } from "../assert.ts";
import { createLoaders } from "../../data/loaders.ts";
import { splitTrainVal } from "../../data/batch_plan.ts";
import { generateSynthetic, SYNTHETIC_CLASS_NAMES } from "../../data/synthetic.ts";
import { registerFastKernels } from "../../kernels/register.ts";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import type { StateDict } from "../../io/host_tensor.ts";
import { createResNet } from "../../models/resnet.ts";
import { resnetPlan } from "../../models/resnet_plan.ts";
import { ARCHITECTURES, type ArchName, archName, type ResNetSpec, resnetSpec } from "../../models/resnet_spec.ts";
import { stateLayout } from "../../models/state_layout.ts";
import { encodeWeights, saveCheckpoint } from "../../io/checkpoint.ts";
import {
  checkSpecFlags,
  evaluateCheckpoint,
  inferResNetSpec,
  type SpecFlags,
} from "../../train/evaluate_checkpoint.ts";
import { decodeNpy } from "../../io/npy.ts";
import { evalReportFromJSON } from "../../train/eval_report.ts";
import { ConfigError, type EvalConfig, type TrainConfig } from "../../train/config.ts";
import { UsageError, usageErrorFrom } from "../../tasks/args.ts";
import { parseEvalArgs } from "../../tasks/eval_flags.ts";
import { parseTrainArgs } from "../../tasks/train_flags.ts";
import { exportWeights } from "../../tasks/export.ts";
import {
  abbreviateNames,
  type EvalReport,
  formatEvalReport,
  MAX_PRINTED_CONFUSION,
  progressLines,
} from "../../tasks/eval.ts";

// ---------------------------------------------------------------------------------------------------------------
// Spec inference (pure: names and shapes from stateLayout, no tensors).

/** The state dict a spec has, as names and shapes only. */
function layoutOf(spec: ResNetSpec): Map<string, { shape: number[] }> {
  return new Map(stateLayout(resnetPlan(spec)).map((e) => [e.name, { shape: e.shape }]));
}

Deno.test("inferResNetSpec recovers every architecture, stem, width and class count from its state layout", () => {
  const cases: [ArchName, Parameters<typeof resnetSpec>[1]][] = [];
  for (const arch of Object.keys(ARCHITECTURES) as ArchName[]) {
    cases.push([arch, {}]); // torchvision's ImageNet model
    cases.push([arch, { stem: "cifar", width: 4, numClasses: 10 }]);
    cases.push([arch, { stem: "imagenet", width: 2, numClasses: 3 }]);
  }
  for (const [arch, options] of cases) {
    const spec = resnetSpec(arch, options);
    const inferred = inferResNetSpec(layoutOf(spec), "f.safetensors");
    assertEquals(inferred, spec, `${arch} ${JSON.stringify(options)}`);
    assertStrictEquals(archName(inferred), arch);
  }
});

Deno.test("inferResNetSpec accepts a block layout no torchvision model has, and archName says so", () => {
  const spec: ResNetSpec = { ...resnetSpec("resnet18"), layers: [1, 3, 1, 2] };
  assertEquals(inferResNetSpec(layoutOf(spec), "f"), spec);
  assertStrictEquals(archName(spec), null);
  // Same counts as resnet34 but basic vs bottleneck decide the name.
  assertStrictEquals(archName({ block: "bottleneck", layers: [3, 4, 6, 3] }), "resnet50");
  assertStrictEquals(archName({ block: "basic", layers: [3, 4, 6, 3] }), "resnet34");
});

Deno.test("inferResNetSpec rejects what is not a ResNet state dict, naming the file and the key", () => {
  const base = layoutOf(resnetSpec("resnet18", { stem: "cifar", width: 2, numClasses: 10 }));
  const without = (name: string) => new Map([...base].filter(([n]) => n !== name));
  const edited = (name: string, shape: number[]) => new Map([...base, [name, { shape }]]);
  const withoutBlock = (prefix: string) => new Map([...base].filter(([n]) => !n.startsWith(prefix)));
  const bad: [Map<string, { shape: number[] }>, RegExp][] = [
    [new Map(), /m\.safetensors: not a torchvision ResNet state dict: .*"conv1\.weight".*no tensors/],
    [without("conv1.weight"), /"conv1\.weight"/],
    [without("fc.weight"), /"fc\.weight"/],
    [edited("conv1.weight", [2, 3, 5, 5]), /conv1\.weight.*\[2,3,5,5\].*expected/],
    [edited("conv1.weight", [2, 1, 3, 3]), /conv1\.weight.*\[2,1,3,3\]/],
    [edited("conv1.weight", [2, 3, 3]), /conv1\.weight.*expected 4 dimensions/],
    [edited("fc.weight", [10]), /fc\.weight.*expected 2 dimensions/],
    [withoutBlock("layer3."), /no "layer3\.0\." tensors/],
    [withoutBlock("layer2.0."), /layer2 has block 1 but no block 0/],
    [edited("layer5.0.conv1.weight", [2, 2, 3, 3]), /layer5.*layer1 to layer4/],
  ];
  for (const [state, message] of bad) throws(() => inferResNetSpec(state, "m.safetensors"), message);
});

Deno.test("checkSpecFlags: agreeing flags pass, each contradicting field is an error the command line names", () => {
  const spec = resnetSpec("resnet50", { stem: "cifar", width: 4, numClasses: 10 });
  const none: SpecFlags = { arch: null, width: null, numClasses: null, stem: null };
  assertEquals(checkSpecFlags(spec, none, "w.st"), spec);
  assertEquals(checkSpecFlags(spec, { arch: "resnet50", width: 4, numClasses: 10, stem: "cifar" }, "w.st"), spec);
  const bad: [Partial<SpecFlags>, string, RegExp][] = [
    [{ arch: "resnet101" }, "--arch", /--arch resnet101 contradicts w\.st, which holds resnet50/],
    [{ arch: "resnet34" }, "--arch", /bottleneck/],
    [{ width: 8 }, "--width", /--width 8 .*width 4/],
    [{ numClasses: 100 }, "--num-classes", /--num-classes 100 .*10 classes/],
    [{ stem: "imagenet" }, "--stem", /--stem imagenet .*cifar stem/],
  ];
  for (const [flags, flag, message] of bad) {
    let caught: unknown;
    try {
      checkSpecFlags(spec, { ...none, ...flags }, "w.st");
    } catch (e) {
      // The library names fields; the command line (runTask) says them as flags.
      caught = e instanceof ConfigError ? usageErrorFrom(e) : e;
    }
    assert(caught instanceof UsageError, `${flag}: expected a ConfigError, got ${caught}`);
    assertStrictEquals(caught.flag, flag);
    assert(message.test(caught.message), caught.message);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Report formatting (pure).

function report(names: string[], confusion: number[][]): EvalReport {
  const counts = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  return {
    checkpoint: "runs/x/last.safetensors",
    source: "checkpoint",
    spec: resnetSpec("resnet18", { stem: "cifar", numClasses: names.length }),
    dataset: "cifar10",
    split: "test",
    numImages: counts.reduce((a, b) => a + b, 0),
    loss: 1.25,
    top1: 0.5,
    top5: 0.875,
    perClass: names.map((name, c) => ({
      name,
      count: counts[c],
      accuracy: counts[c] ? confusion[c][c] / counts[c] : null,
    })),
    confusion,
  };
}

Deno.test("abbreviateNames drops the shared prefix, cuts to width and falls back to indices on collisions", () => {
  assertEquals(abbreviateNames(SYNTHETIC_CLASS_NAMES, 5), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  assertEquals(abbreviateNames(["airplane", "automobile", "bird"], 5), ["airpl", "autom", "bird"]);
  assertEquals(abbreviateNames(["aa", "ab"], 5), ["a", "b"]); // "a" is shared, each keeps a character
  assertEquals(abbreviateNames(["catalogue1", "catalogue2"], 3), ["1", "2"]);
  assertEquals(abbreviateNames(["dog_big", "dog_bad", "cat"], 3), ["dog", "dog", "cat"].map((_, i) => String(i)));
  assertEquals(abbreviateNames(["same"], 2), ["sa"]);
});

Deno.test("formatEvalReport: header, metrics, per-class table and a confusion matrix with rows true, columns predicted", () => {
  const text = formatEvalReport(report(["airplane", "automobile", "bird"], [[3, 1, 0], [0, 2, 2], [0, 0, 0]]), {
    epoch: 7,
  });
  assert(text.includes("model:   resnet18 (basic [2,2,2,2], cifar stem, width 64, 3 classes)"), text);
  assert(text.includes("runs/x/last.safetensors (training checkpoint after epoch 7)"), text);
  assert(text.includes("cifar10, test split, 8 images"), text);
  assert(text.includes("loss 1.2500   top-1 50.00%   top-5 87.50%"), text);
  assert(/automobile\s+4\s+50\.00%/.test(text), text);
  assert(/bird\s+0\s+-/.test(text), text); // a class without images has no accuracy
  const lines = text.split("\n");
  const header = lines.findIndex((l) => l.startsWith("confusion matrix"));
  assertEquals(lines[header + 1].trim().split(/\s+/), ["airpl", "autom", "bird"]);
  assertEquals(lines[header + 2].trim().split(/\s+/), ["airplane", "3", "1", "0"]);
  assertEquals(lines[header + 3].trim().split(/\s+/), ["automobile", "0", "2", "2"]);
});

Deno.test("progressLines: one line per tenth of the images, thousands separated, the last at the end", () => {
  const lines: string[] = [];
  const report = progressLines((l) => lines.push(l));
  for (let done = 256; done < 10_000; done += 256) report(done, 10_000);
  report(10_000, 10_000);
  assertStrictEquals(lines.length, 10);
  assertEquals(lines.slice(0, 2), ["evaluated 1,024/10,000 images", "evaluated 2,048/10,000 images"]);
  assertStrictEquals(lines.at(-1), "evaluated 10,000/10,000 images");
  // A single batch says it once.
  const one: string[] = [];
  progressLines((l) => one.push(l))(12, 12);
  assertEquals(one, ["evaluated 12/12 images"]);
});

Deno.test("evalReportFromJSON accepts a report and names the field of a broken one", () => {
  const good = {
    checkpoint: "c",
    dataset: "synthetic",
    split: "test",
    numImages: 3,
    loss: 1,
    top1: 2 / 3,
    top5: 1,
    perClass: [{ name: "a", count: 2, accuracy: 0.5 }, { name: "b", count: 1, accuracy: 1 }],
    confusion: [[1, 1], [0, 1]],
  };
  assertEquals(evalReportFromJSON(good, "e.json"), good);
  const bad: [unknown, RegExp][] = [
    [[], /e\.json: expected an evaluation report object/],
    [{ ...good, top1: "x" }, /field "top1" must be a number/],
    [{ ...good, perClass: [{ name: "a" }] }, /perClass\[0\] must be \{ name, count, accuracy \}/],
    [{ ...good, confusion: [[1, 1]] }, /field "confusion" must be a 2x2 matrix/],
    [{ ...good, confusion: [[1, 1], [0, "1"]] }, /field "confusion" must be a 2x2 matrix/],
  ];
  for (const [value, re] of bad) throws(() => evalReportFromJSON(value, "e.json"), re);
});

Deno.test("formatEvalReport prints only the per-class table above 20 classes and points to --json", () => {
  const k = MAX_PRINTED_CONFUSION + 1;
  const names = Array.from({ length: k }, (_, i) => `class${i}`);
  const confusion = names.map((_, t) => names.map((_, p) => (t === p ? 2 : 0)));
  const text = formatEvalReport(report(names, confusion));
  assert(!text.includes("rows: true class"), text);
  assert(text.includes(`${k} classes, too wide to print; it is in the --json output`), text);
  assert(text.includes("class20"), text);
  const small = formatEvalReport(
    report(names.slice(0, MAX_PRINTED_CONFUSION), confusion.slice(0, 20).map((r) => r.slice(0, 20))),
  );
  assert(small.includes("rows: true class"), small);
});

// ---------------------------------------------------------------------------------------------------------------
// `deno task eval` end to end on the software adapter: a tiny ResNet-18 (CIFAR stem, width 2) on the synthetic
// test set (512 images; batch 100 leaves a partial last batch of 12).

const EVAL = new URL("../../tasks/eval.ts", import.meta.url).pathname;
const BATCH = 100;

async function runEval(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", EVAL, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

function lastJsonLine(stdout: string): EvalReport {
  const line = stdout.trim().split("\n").at(-1)!;
  return JSON.parse(line);
}

function trainConfig(...flags: string[]): TrainConfig {
  const config = parseTrainArgs(["--dataset", "synthetic", "--width", "2", "--batch-size", "16", ...flags]);
  if (config === "help") throw new Error("unreachable");
  return config;
}

async function writeCheckpoint(path: string, model: StateDict, config: TrainConfig, spec: ResNetSpec) {
  await saveCheckpoint(path, {
    model,
    optimizer: new Map(),
    epoch: 2,
    globalStep: 10,
    dataPosition: { epoch: 2, batch: 0 },
    rng: null,
    config,
    bestMetric: null,
    classNames: SYNTHETIC_CLASS_NAMES,
    archSpec: spec,
  });
}

function evalConfig(overrides: Partial<EvalConfig>): EvalConfig {
  const config = parseEvalArgs(["--checkpoint", "unset"]);
  if (config === "help") throw new Error("unreachable");
  return { ...config, ...overrides };
}

/** First index of the maximum (tf.topk's tie order). */
function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

Deno.test({
  name: "deno task eval: checkpoint and inferred bare weights agree; JSON, confusion and .npy logits are consistent",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    await initWebGPU();
    registerFastKernels();
    const dir = await Deno.makeTempDir({ prefix: "eval_task_test_" });
    const spec = resnetSpec("resnet18", { stem: "cifar", width: 2, numClasses: 10 });
    const model = createResNet(spec, { seed: 3 });
    try {
      const state = await model.exportState();
      const checkpoint = `${dir}/last.safetensors`;
      await writeCheckpoint(checkpoint, state, trainConfig(), spec);
      const bare = `${dir}/weights.safetensors`;
      // No arch_spec / class_names metadata: the spec must be inferred. Without the BN batch counters too, which
      // PyTorch's BatchNorm also accepts from a state dict without version metadata.
      const counterless = new Map([...state].filter(([name]) => !name.endsWith(".num_batches_tracked")));
      assert(counterless.size < state.size);
      await Deno.writeFile(bare, encodeWeights(counterless));
      const npy = `${dir}/logits.npy`;

      // The labels and the last (partial) batch of the same test loader, read in-process.
      const loaders = await createLoaders({
        dataset: "synthetic",
        dataDir: "data",
        valSplit: 0,
        seed: 0,
        batchSize: BATCH,
        workers: 0,
      });
      const labels: number[] = [];
      let last: { images: Float32Array; size: number } | undefined;
      for await (const b of loaders.test.batches(0)) {
        labels.push(...b.labels);
        last = { images: b.images.slice(), size: b.size };
      }
      await Promise.all([loaders.train, loaders.test].map((l) => l.close()));
      const n = labels.length;
      assertStrictEquals(n, 512);
      assertStrictEquals(last!.size, n % BATCH);

      let fromCheckpoint: EvalReport;
      await t.step("checkpoint: --json fields, counts add up, confusion rows sum to per-class counts", async () => {
        const out = await runEval(
          "--checkpoint",
          checkpoint,
          "--json",
          "--save-logits",
          npy,
          "--batch-size",
          `${BATCH}`,
          "--out-json",
          `${dir}/eval.json`,
        );
        assertStrictEquals(out.code, 0, out.stderr);
        // Progress on stderr, once per tenth done: batches of 100 of 512 images.
        const progress = out.stderr.split("\n").filter((l) => l.startsWith("evaluated "));
        assertEquals(progress, [100, 200, 300, 400, 500, 512].map((n) => `evaluated ${n}/512 images`));
        const r = fromCheckpoint = lastJsonLine(out.stdout);
        // --out-json writes the same object, in a form the run report accepts.
        const saved = JSON.parse(await Deno.readTextFile(`${dir}/eval.json`));
        assertEquals(saved, r);
        assertEquals(evalReportFromJSON(saved, "eval.json"), r);
        assertEquals(
          [r.checkpoint, r.source, r.dataset, r.split, r.numImages, r.spec],
          [checkpoint, "checkpoint", "synthetic", "test", n, spec],
        );
        assertEquals(r.perClass.map((c) => c.name), SYNTHETIC_CLASS_NAMES);
        assertStrictEquals(r.perClass.reduce((a, c) => a + c.count, 0), n);
        const counts = new Array(10).fill(0);
        for (const y of labels) counts[y]++;
        assertEquals(r.perClass.map((c) => c.count), counts);
        r.confusion.forEach((row, c) => {
          assertStrictEquals(row.reduce((a, b) => a + b, 0), r.perClass[c].count);
          assertStrictEquals(r.perClass[c].accuracy, row[c] / r.perClass[c].count);
        });
        const correct = r.confusion.reduce((a, row, c) => a + row[c], 0);
        assertStrictEquals(r.top1, correct / n);
        assert(r.top5 >= r.top1 && r.top5 <= 1 && Number.isFinite(r.loss) && r.loss > 0);
      });

      await t.step(".npy logits: [N, 10] float32 in dataset order; argmax and loss reproduce the report", async () => {
        const { data, shape } = decodeNpy(await Deno.readFile(npy), npy);
        assertEquals(shape, [n, 10]);
        assert(data instanceof Float32Array);
        const confusion = Array.from({ length: 10 }, () => new Array(10).fill(0));
        let lossSum = 0;
        for (let i = 0; i < n; i++) {
          const row = data.subarray(i * 10, (i + 1) * 10);
          confusion[labels[i]][argmax(row)]++;
          const max = Math.max(...row);
          lossSum += max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0)) - row[labels[i]];
        }
        assertEquals(confusion, fromCheckpoint.confusion);
        assertStrictEquals(confusion.reduce((a, row, c) => a + row[c], 0) / n, fromCheckpoint.top1);
        assert(Math.abs(lossSum / n - fromCheckpoint.loss) < 1e-9 * Math.max(1, fromCheckpoint.loss));
        // Rows 500..511 are the partial last batch: run it here and compare, which pins the order.
        const expected = tf.tidy(() =>
          model.forward(tf.tensor4d(last!.images, [last!.size, 32, 32, 3]), { training: false }).logits
        );
        const want = (await expected.data()) as Float32Array;
        expected.dispose();
        const got = data.subarray((n - last!.size) * 10);
        const scale = Math.max(...want.map(Math.abs));
        for (let i = 0; i < want.length; i++) {
          assert(Math.abs(got[i] - want[i]) <= 1e-4 * scale, `logit ${i} of the last batch: ${got[i]} vs ${want[i]}`);
        }
      });

      await t.step("bare weights: spec inferred from the tensors (no batch counters), identical report", async () => {
        const out = await runEval("--checkpoint", bare, "--dataset", "synthetic", "--json", "--batch-size", `${BATCH}`);
        assertStrictEquals(out.code, 0, out.stderr);
        const r = lastJsonLine(out.stdout);
        assertEquals([r.checkpoint, r.source], [bare, "weights"]);
        assertEquals({ ...r, checkpoint: "", source: "" }, { ...fromCheckpoint, checkpoint: "", source: "" });
      });

      await t.step("errors: exit 1 naming the file, exit 2 naming the flag", async () => {
        const corrupt = `${dir}/corrupt.safetensors`;
        const bytes = await Deno.readFile(checkpoint);
        await Deno.writeFile(corrupt, bytes.subarray(0, bytes.length - 100));
        const noVal = checkpoint; // trained with --val-split 0
        const notResNet = `${dir}/not_resnet.safetensors`;
        await Deno.writeFile(notResNet, encodeWeights(new Map([...state].filter(([k]) => !k.startsWith("layer3.")))));
        const cases: [string[], number, RegExp][] = [
          [
            ["--checkpoint", `${dir}/missing.safetensors`],
            1,
            /missing\.safetensors: cannot read the checkpoint: no such/,
          ],
          [["--checkpoint", corrupt], 1, /corrupt\.safetensors/],
          [["--checkpoint", notResNet, "--dataset", "synthetic"], 1, /not_resnet\.safetensors.*layer3/],
          [["--checkpoint", checkpoint, "--split", "train"], 2, /--split/],
          [["--checkpoint", checkpoint, "--bogus"], 2, /--bogus/],
          [["--dataset", "synthetic"], 2, /--checkpoint/],
          [["--checkpoint", noVal, "--split", "val"], 2, /--split val: .*without a validation split/],
          [["--checkpoint", bare], 2, /bare weights file.*--dataset/],
          [["--checkpoint", bare, "--dataset", "synthetic", "--split", "val"], 2, /--split val needs a training/],
          [["--checkpoint", bare, "--dataset", "synthetic", "--width", "8"], 2, /--width 8 contradicts/],
          [["--checkpoint", checkpoint, "--arch", "resnet50"], 2, /--arch resnet50 contradicts/],
          // Output paths are checked before the evaluation, not after it.
          [
            ["--checkpoint", checkpoint, "--out-json", `${dir}/nodir/e.json`],
            2,
            /^error: --out-json \S+nodir\/e\.json: the folder \S+nodir does not exist \(see --help\)\n$/,
          ],
          [
            ["--checkpoint", checkpoint, "--save-logits", `${dir}/nodir/l.npy`],
            2,
            /^error: --save-logits \S+nodir\/l\.npy: the folder \S+nodir does not exist/,
          ],
          [["--checkpoint", checkpoint, "--out-json", dir], 2, /^error: --out-json \S+: is a folder; expected a file/],
          [
            ["--checkpoint", checkpoint, "--image-size", "64"],
            2,
            /--image-size 64 applies to --dataset folder and imagenet only \(synthetic images are always 32x32\)/,
          ],
        ];
        const results = await Promise.all(cases.map(([args]) => runEval(...args)));
        results.forEach((out, i) => {
          const [args, code, message] = cases[i];
          assertStrictEquals(out.code, code, `${args.join(" ")}: ${out.stderr}`);
          assert(message.test(out.stderr), `${args.join(" ")}: ${out.stderr}`);
          assertStrictEquals(out.stdout.trim(), "", `${args.join(" ")} printed a report`);
        });
      });

      await t.step("a file that fails to be written after all: the results were printed before", async () => {
        // 250 characters pass the up-front check; the atomic write's temporary name beside it is too long.
        const long = `${dir}/${"e".repeat(245)}.json`;
        const out = await runEval("--checkpoint", checkpoint, "--json", "--batch-size", `${BATCH}`, "--out-json", long);
        assertStrictEquals(out.code, 1, out.stderr);
        assert(/^error: .*e\.json/m.test(out.stderr), out.stderr);
        assertEquals(lastJsonLine(out.stdout), fromCheckpoint);
      });

      await t.step(
        "a data folder recorded in the checkpoint that has moved: named as such, --data-dir advised",
        async () => {
          const moved = `${dir}/moved.safetensors`;
          const gone = `${dir}/messy`; // never created
          await writeCheckpoint(moved, state, trainConfig("--dataset", "folder", "--data-dir", gone), spec);
          const out = await runEval("--checkpoint", moved);
          assertStrictEquals(out.code, 2, out.stderr);
          assertStrictEquals(
            out.stderr.trim(),
            `error: ${gone}, the data folder recorded in ${moved}, is not found (moved or deleted?): pass --data-dir ` +
              "with where the folder data is now (see --help)",
          );
        },
      );

      await t.step("deno task export output: its arch_spec metadata is used and must fit the tensors", async () => {
        const exported = `${dir}/exported.safetensors`;
        await exportWeights({ checkpoint, out: exported });
        const warnings: string[] = [];
        const e = await evaluateCheckpoint(
          evalConfig({ checkpoint: exported, dataset: "synthetic", batchSize: BATCH }),
          { onWarning: (m) => warnings.push(m) },
        );
        assertEquals([e.source, e.spec, e.numImages, warnings], ["weights", spec, 512, []]);
        assertEquals(e.result.confusion, fromCheckpoint.confusion);
        assert(Math.abs(e.result.loss - fromCheckpoint.loss) <= 1e-6 * fromCheckpoint.loss);

        const wrongSpec = `${dir}/wrong_spec.safetensors`;
        await Deno.writeFile(wrongSpec, encodeWeights(state, { arch_spec: JSON.stringify({ ...spec, width: 4 }) }));
        await rejects(
          evaluateCheckpoint(evalConfig({ checkpoint: wrongSpec, dataset: "synthetic" })),
          /wrong_spec\.safetensors: state dict does not match the model.*\n.*conv1\.weight: file has F32 \[2,3,3,3\], model expects F32 \[4,3,3,3\]/s,
        );
        const badMeta = `${dir}/bad_meta.safetensors`;
        const noLayer3 = new Map([...state].filter(([k]) => !k.startsWith("layer3.")));
        await Deno.writeFile(badMeta, encodeWeights(noLayer3, { arch_spec: "{not json" }));
        await rejects(
          evaluateCheckpoint(
            evalConfig({ checkpoint: badMeta, dataset: "synthetic" }),
            { onWarning: (m) => warnings.push(m) },
          ),
          /bad_meta\.safetensors: not a torchvision ResNet state dict: it has no "layer3\.0\." tensors/,
        );
        assertStrictEquals(warnings.length, 1);
        assert(/ignoring unusable metadata.*inferring the architecture/.test(warnings[0]), warnings[0]);
      });

      await t.step(
        "--split val evaluates the checkpoint's held-out images; a class-count mismatch names --dataset",
        async () => {
          const withVal = `${dir}/val.safetensors`;
          await writeCheckpoint(withVal, state, trainConfig("--val-split", "40", "--seed", "9"), spec);
          const e = await evaluateCheckpoint(evalConfig({ checkpoint: withVal, split: "val", batchSize: 16 }));
          assertEquals([e.numImages, e.result.count, e.split, e.source, e.epoch], [40, 40, "val", "checkpoint", 2]);
          assertStrictEquals(e.logits, undefined); // only kept for --save-logits
          // The same 40 images the run held out: (training set size, --val-split, --seed) decide which.
          const trainLabels = generateSynthetic(1024, 0, 1).labels;
          const heldOut = new Array(10).fill(0);
          for (const i of splitTrainVal(1024, 40, 9).val) heldOut[trainLabels[i]]++;
          assertEquals(e.result.perClassCount, heldOut);

          const five = new Map(state);
          five.set("fc.weight", { dtype: "F32", shape: [5, 16], data: new Float32Array(80) });
          five.set("fc.bias", { dtype: "F32", shape: [5], data: new Float32Array(5) });
          const fiveClasses = `${dir}/five.safetensors`;
          await Deno.writeFile(fiveClasses, encodeWeights(five));
          await rejects(
            evaluateCheckpoint(evalConfig({ checkpoint: fiveClasses, dataset: "synthetic", batchSize: 16 })),
            (e: Error) => {
              const u = e instanceof ConfigError ? usageErrorFrom(e) : e;
              return u instanceof UsageError && u.flag === "--dataset" &&
                /--dataset synthetic: .*five\.safetensors has a classifier for 5 classes .*synthetic has 10 classes/
                  .test(u.message);
            },
          );
        },
      );
    } finally {
      model.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
