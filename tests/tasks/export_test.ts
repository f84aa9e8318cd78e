import { assert, assertEquals, assertStrictEquals, rejects, throws } from "../assert.ts";
import type { HostTensor, StateDict } from "../../io/host_tensor.ts";
import { encodeCheckpoint, encodeWeights } from "../../io/checkpoint.ts";
import { readSafetensors } from "../../io/safetensors.ts";
import { exportWeights, parseExportArgs } from "../../tasks/export.ts";
import { UsageError } from "../../tasks/args.ts";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { initWebGPU } from "../../kernels/webgpu_backend.ts";
import { registerFastKernels } from "../../kernels/register.ts";
import { relativeError } from "../../kernels/selftest/relative_error.ts";
import { createResNet } from "../../models/resnet.ts";
import { resnetSpec } from "../../models/resnet_spec.ts";
import { keyedRandom } from "../../data/random.ts";
import { decodeNpy, encodeNpy } from "../../io/npy.ts";
import { TORCH_PYTHON } from "../torch_python.ts";

/** A small synthetic ResNet-like state dict (torchvision names; the contents do not matter, the bytes do). */
function model(offset = 0): StateDict {
  const f = (shape: number[], start: number) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => offset + start + i / 8);
    return { dtype: "F32" as const, shape, data };
  };
  return new Map<string, HostTensor>([
    ["conv1.weight", f([4, 3, 3, 3], 1)],
    ["bn1.weight", f([4], 2)],
    ["bn1.bias", f([4], 3)],
    ["bn1.running_mean", f([4], 4)],
    ["bn1.running_var", f([4], 5)],
    ["bn1.num_batches_tracked", { dtype: "I64", shape: [], data: new BigInt64Array([17n]) }],
    ["fc.weight", f([10, 4], 6)],
    ["fc.bias", f([10], 7)],
  ]);
}

async function run(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../tasks/export.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

/** A weight average: the model's names and shapes with other values, and torch's update count. */
function average(): StateDict {
  return new Map([...model(100), ["n_averaged", { dtype: "I64", shape: [], data: new BigInt64Array([3n]) }]]);
}

async function withCheckpoint(fn: (dir: string, checkpoint: string) => Promise<void>, ema?: StateDict) {
  const dir = await Deno.makeTempDir({ prefix: "export_test_" });
  try {
    const weights = model();
    const optimizer: StateDict = new Map(
      [...weights].filter(([name]) =>
        !name.endsWith("running_mean") && !name.endsWith("running_var") &&
        !name.endsWith("num_batches_tracked")
      ),
    );
    const checkpoint = `${dir}/last.safetensors`;
    await Deno.writeFile(
      checkpoint,
      encodeCheckpoint({
        model: weights,
        optimizer,
        ...(ema ? { ema } : {}),
        epoch: 1,
        globalStep: 50,
        dataPosition: { epoch: 1, batch: 0 },
        rng: [1, 2],
        config: { lr: 0.1, dataset: "folder", imageSize: 32, transforms: "cifar", decoder: "js" },
        bestMetric: 0.5,
        classNames: ["a", "b"],
        archSpec: { arch: "resnet18" },
        normalization: { mean: [0.5, 0.25, 0.125], std: [0.2, 0.3, 0.4] },
      }),
    );
    await fn(dir, checkpoint);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("exportWeights writes exactly the model's tensors, byte for byte, with format pt metadata", async () => {
  await withCheckpoint(async (dir, checkpoint) => {
    const result = await exportWeights({ checkpoint, out: `${dir}/model.safetensors` });
    assertEquals([result.tensors, result.dropped], [8, 5]);
    const { tensors, metadata } = await readSafetensors(`${dir}/model.safetensors`);
    const expected = model();
    // strict=True in load_state_dict needs exactly these keys: nothing missing, nothing extra (no optim.*).
    assertEquals([...tensors.keys()], [...expected.keys()]);
    for (const [name, t] of expected) {
      const got = tensors.get(name)!;
      assertEquals([got.dtype, got.shape, Array.from(got.data as Iterable<number | bigint>)], [
        t.dtype,
        t.shape,
        Array.from(t.data as Iterable<number | bigint>),
      ], name);
    }
    // The normalisation too: what a torchvision user must feed the model (README: evaluating elsewhere).
    assertEquals(metadata, {
      format: "pt",
      arch_spec: '{"arch":"resnet18"}',
      class_names: '["a","b"]',
      normalization: '{"mean":[0.5,0.25,0.125],"std":[0.2,0.3,0.4]}',
      // How the images were prepared, which eval of the export follows.
      input: '{"dataset":"folder","imageSize":32,"transforms":"cifar","decoder":"js"}',
    });
    assertStrictEquals(result.bytes, (await Deno.stat(`${dir}/model.safetensors`)).size);
    // Exporting an exported file is the identity (a weights file is accepted as input too).
    await exportWeights({ checkpoint: `${dir}/model.safetensors`, out: `${dir}/again.safetensors` });
    assertEquals(await Deno.readFile(`${dir}/again.safetensors`), await Deno.readFile(`${dir}/model.safetensors`));
  });
});

Deno.test("exportWeights --ema writes the checkpoint's average of the weights, byte for byte, without its count", async () => {
  await withCheckpoint(async (dir, checkpoint) => {
    const result = await exportWeights({ checkpoint, out: `${dir}/ema.safetensors`, ema: true });
    // Left out: 5 optimizer tensors, the 8 model tensors and the average's n_averaged.
    assertEquals([result.tensors, result.dropped], [8, 14]);
    const { tensors, metadata } = await readSafetensors(`${dir}/ema.safetensors`);
    const expected = model(100);
    assertEquals([...tensors.keys()], [...expected.keys()]);
    for (const [name, t] of expected) {
      assertEquals(
        Array.from(tensors.get(name)!.data as Iterable<number | bigint>),
        Array.from(t.data as Iterable<number | bigint>),
        name,
      );
    }
    assertEquals(metadata.format, "pt");
    // Without --ema the same checkpoint gives the model; the average is left out with the optimizer state.
    const plain = await exportWeights({ checkpoint, out: `${dir}/model.safetensors` });
    assertEquals([plain.tensors, plain.dropped], [8, 14]);
    const written = (await readSafetensors(`${dir}/model.safetensors`)).tensors;
    assertEquals(
      Array.from(written.get("fc.bias")!.data as Float32Array),
      Array.from(model().get("fc.bias")!.data as Float32Array),
    );
  }, average());
  await withCheckpoint(async (dir, checkpoint) => {
    await rejects(
      () => exportWeights({ checkpoint, out: `${dir}/ema.safetensors`, ema: true }),
      Error,
      `${checkpoint}: holds no average of the weights`,
    );
    await rejects(Deno.stat(`${dir}/ema.safetensors`), Deno.errors.NotFound, "nothing written on failure");
  });
});

Deno.test("parseExportArgs requires both flags and rejects unknown ones, naming the flag", () => {
  assertEquals(parseExportArgs(["--checkpoint", "a", "--out", "b"]), { checkpoint: "a", out: "b", ema: false });
  assertEquals(parseExportArgs(["--checkpoint", "a", "--out", "b", "--ema"]), { checkpoint: "a", out: "b", ema: true });
  assertStrictEquals(parseExportArgs(["-h"]), "help");
  const cases: [string[], RegExp][] = [
    [["--out", "b"], /--checkpoint PATH is required/],
    [["--checkpoint", "a"], /--out FILE is required/],
    [["--checkpoint", "a", "--out", "b", "--strict"], /--strict/],
    [["--checkpoint", "a", "--out", "b", "extra"], /unexpected argument "extra"/],
    [["--checkpoint"], /--checkpoint/],
  ];
  for (const [args, message] of cases) {
    throws(() => parseExportArgs(args), (err: Error) => err instanceof UsageError && message.test(err.message));
  }
});

Deno.test("deno task export: exit 0 on success, 2 on a bad command line, 1 on a bad checkpoint", async () => {
  await withCheckpoint(async (dir, checkpoint) => {
    const ok = await run("--checkpoint", checkpoint, "--out", `${dir}/m.safetensors`);
    assertStrictEquals(ok.code, 0, ok.stderr);
    assert(ok.stdout.includes("8 tensors") && ok.stdout.includes("left out 5 optimizer tensors"), ok.stdout);
    const usage = await run("--checkpoint", checkpoint, "--output", "x");
    assertStrictEquals(usage.code, 2);
    assert(usage.stderr.includes("--output"), usage.stderr);
    await Deno.writeFile(`${dir}/bad.safetensors`, new Uint8Array(4));
    const bad = await run("--checkpoint", `${dir}/bad.safetensors`, "--out", `${dir}/n.safetensors`);
    assertStrictEquals(bad.code, 1);
    assert(bad.stderr.includes(`${dir}/bad.safetensors: not a safetensors file`), bad.stderr);
    assert(bad.stderr.includes("file is 4 bytes"), bad.stderr);
    await rejects(Deno.stat(`${dir}/n.safetensors`), Deno.errors.NotFound, "nothing written on failure");
    // Paths are checked before loading: a usage error naming the flag, not an OS error about a temporary file.
    const noFolder = await run("--checkpoint", checkpoint, "--out", `${dir}/nope/m.safetensors`);
    assertStrictEquals(noFolder.code, 2, noFolder.stderr);
    assert(
      noFolder.stderr.includes(`--out ${dir}/nope/m.safetensors: the folder ${dir}/nope does not exist`),
      noFolder.stderr,
    );
    const noFile = await run("--checkpoint", `${dir}/nope.safetensors`, "--out", `${dir}/m2.safetensors`);
    assertStrictEquals(noFile.code, 2, noFile.stderr);
    assert(noFile.stderr.includes(`--checkpoint ${dir}/nope.safetensors: no such file`), noFile.stderr);
  });
});

Deno.test("deno task export refuses to write over its own checkpoint, by any name, exit 2", async () => {
  await withCheckpoint(async (dir, checkpoint) => {
    const before = await Deno.readFile(checkpoint);
    await Deno.symlink(checkpoint, `${dir}/link.safetensors`);
    await Deno.link(checkpoint, `${dir}/hard.safetensors`);
    for (const out of [checkpoint, `${dir}/./last.safetensors`, `${dir}/link.safetensors`, `${dir}/hard.safetensors`]) {
      const same = await run("--checkpoint", checkpoint, "--out", out);
      assertStrictEquals(same.code, 2, `${out}: ${same.stderr}`);
      assert(
        same.stderr.startsWith(`error: --out ${out} is the file of --checkpoint ${checkpoint}: the export would`),
        same.stderr,
      );
      assertEquals(await Deno.readFile(checkpoint), before, `${out}: the checkpoint is untouched`);
    }
    // The other way round too: the checkpoint named through the link.
    const viaLink = await run("--checkpoint", `${dir}/link.safetensors`, "--out", checkpoint);
    assertStrictEquals(viaLink.code, 2, viaLink.stderr);
    assertEquals(await Deno.readFile(checkpoint), before);
  });
});

const TO_TORCHVISION = new URL("../../docs/safetensors_to_torchvision.py", import.meta.url).pathname;

/** Runs `docs/safetensors_to_torchvision.py` as a library on `x.npy` in `dir`: its logits, and its class names. */
const LOGITS_PY = `
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from safetensors_to_torchvision import load_torchvision
model, names = load_torchvision(sys.argv[2])
with torch.no_grad():
    np.save(sys.argv[4], model(torch.from_numpy(np.load(sys.argv[3]))).numpy().astype(np.float32))
print(json.dumps(names))
`;

Deno.test({
  name:
    "docs/safetensors_to_torchvision.py builds torchvision's ResNet of an export, loads it strictly, gives our logits",
  ignore: TORCH_PYTHON === null,
  async fn() {
    await initWebGPU();
    registerFastKernels();
    const cases = [
      // The export of a training checkpoint (arch_spec and class names in its metadata); width 64 is torchvision's own.
      { arch: "resnet18", stem: "cifar", width: 64, classes: 10, size: 8, checkpoint: true },
      // Another width: torchvision's blocks at other planes.
      { arch: "resnet18", stem: "cifar", width: 8, classes: 3, size: 16, checkpoint: true },
      // A bare weights file (no metadata): the spec inferred from the tensors; bottlenecks and the ImageNet stem.
      { arch: "resnet50", stem: "imagenet", width: 4, classes: 5, size: 32, checkpoint: false },
    ] as const;
    const dir = await Deno.makeTempDir({ prefix: "to_torchvision_test_" });
    try {
      for (const c of cases) {
        const what = `${c.arch} ${c.stem} width ${c.width}`;
        const spec = resnetSpec(c.arch, { stem: c.stem, width: c.width, numClasses: c.classes });
        const model = createResNet(spec, { seed: 5 });
        try {
          // Batch-norm parameters and statistics away from 1 and 0, so that a swapped mean/var or gamma/beta shows.
          const state = await model.exportState();
          const random = keyedRandom(11);
          for (const [name, t] of state) {
            if (t.dtype !== "F32" || !/(bn\d|downsample\.1)\./.test(name)) continue;
            const positive = /running_var|weight$/.test(name);
            for (let i = 0; i < t.data.length; i++) t.data[i] = positive ? 0.5 + random() : 0.4 * random() - 0.2;
          }
          model.importState(state);
          const classNames = Array.from({ length: c.classes }, (_, i) => `class ${i}`);
          const weights = join(dir, "model.safetensors");
          if (c.checkpoint) {
            const checkpoint = join(dir, "last.safetensors");
            await Deno.writeFile(
              checkpoint,
              encodeCheckpoint({
                model: state,
                optimizer: new Map(),
                epoch: 1,
                globalStep: 1,
                dataPosition: { epoch: 1, batch: 0 },
                rng: [1, 2],
                config: {},
                bestMetric: null,
                classNames,
                archSpec: spec,
              }),
            );
            const exported = await run("--checkpoint", checkpoint, "--out", weights);
            assertStrictEquals(exported.code, 0, exported.stderr);
          } else {
            await Deno.writeFile(weights, encodeWeights(state));
          }

          const n = 3, s = c.size;
          const xNCHW = new Float32Array(n * 3 * s * s).map(() => 2 * random() - 1);
          await Deno.writeFile(join(dir, "x.npy"), encodeNpy(xNCHW, [n, 3, s, s]));
          const x = tf.tidy(() => tf.tensor4d(xNCHW, [n, 3, s, s]).transpose([0, 2, 3, 1]) as tf.Tensor4D);
          const logits = tf.tidy(() => model.forward(x, { training: false }).logits);
          const ours = (await logits.data()) as Float32Array;
          tf.dispose([x, logits]);

          const py = await new Deno.Command(TORCH_PYTHON!, {
            args: ["-c", LOGITS_PY, join(TO_TORCHVISION, ".."), weights, join(dir, "x.npy"), join(dir, "y.npy")],
          }).output();
          assert(py.success, `${what}: ${new TextDecoder().decode(py.stderr)}`);
          const theirs = decodeNpy(await Deno.readFile(join(dir, "y.npy")));
          assertEquals(theirs.shape, [n, c.classes], what);
          const err = relativeError(ours, theirs.data as Float32Array);
          assert(err < 1e-4, `${what}: relative error ${err.toExponential(2)} against torchvision`);
          const names = JSON.parse(new TextDecoder().decode(py.stdout));
          assertEquals(names, c.checkpoint ? classNames : null, what);

          // The command line: torchvision's parameter count is ours (every tensor but BN statistics and counters).
          const parameters = [...state]
            .filter(([name]) => !/running_(mean|var)$|num_batches_tracked$/.test(name))
            .reduce((sum, [, t]) => sum + t.data.length, 0);
          const cli = await new Deno.Command(TORCH_PYTHON!, { args: [TO_TORCHVISION, weights] }).output();
          const stdout = new TextDecoder().decode(cli.stdout);
          assert(cli.success, `${what}: ${new TextDecoder().decode(cli.stderr)}`);
          assert(
            stdout.startsWith(
              `${weights}: torchvision ${c.arch} (${c.stem} stem, width ${c.width}, ${c.classes} classes), ` +
                `${parameters.toLocaleString("en-US")} parameters, loaded with strict=True`,
            ),
            `${what}: ${stdout}`,
          );
        } finally {
          model.dispose();
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
