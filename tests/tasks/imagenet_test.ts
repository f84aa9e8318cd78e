// `deno task prepare`, `train` and `eval` with `--dataset imagenet` end to end, as subprocesses, on a miniature
// ImageNet in the official archives' layout (4 classes, 12 training and 8 validation JPEGs): a tiny ResNet-18
// (width 4, ImageNet stem, 64-pixel crops) for one epoch on the software adapter, its batches built in a decode
// worker (images read in place from the nested train tar).
import { assert, assertEquals, assertStrictEquals } from "../assert.ts";
import { join } from "node:path";
import { decodeSafetensors } from "../../io/safetensors.ts";
import { makeMiniImageNet, MINI_CLASSES, VAL_LABELS } from "../imagenet_miniature.ts";
import { runPrepare } from "../../tasks/prepare.ts";

const TASKS = new URL("../../tasks/", import.meta.url).pathname;
const NAMES = MINI_CLASSES.map((c) => c.words);

async function task(name: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(TASKS, `${name}.ts`), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test({
  name: "deno task prepare/train/eval --dataset imagenet on a miniature of the official archives",
  // The WebGPU device and sharp's threads outlive the subprocesses' own bookkeeping, not this test's.
  sanitizeResources: false,
  fn: async () => {
    const tmp = await Deno.makeTempDir({ prefix: "imagenet-e2e-" });
    try {
      const dir = await makeMiniImageNet(join(tmp, "imagenet"), "archives");

      let r = await task("prepare", "--dataset", "imagenet", "--data-dir", dir);
      assertStrictEquals(r.code, 0, r.stderr + r.stdout);
      assert(r.stdout.includes("archives layout"), r.stdout);
      assert(r.stdout.includes("12 training and 8 validation images in 4 classes"), r.stdout);
      assert(r.stdout.includes("warning: these counts differ from the full ILSVRC-2012 set (1,281,167"), r.stdout);
      assert(/decoded 8 validation images .* images\/s/.test(r.stdout), r.stdout);
      assert(r.stdout.includes(`index file ${join(dir, ".resnet-webgpu-index.json")} written`), r.stdout);
      r = await task("prepare", "--dataset", "imagenet", "--data-dir", dir, "--skip-decode-check");
      assert(r.stdout.includes("reused (the archives have not changed)"), r.stdout);

      // A damaged image is found and named, and one is within what a run skips.
      const broken = await makeMiniImageNet(join(tmp, "broken"), "kaggle");
      const victim = join(broken, "ILSVRC", "Data", "CLS-LOC", "val", "ILSVRC2012_val_00000005.JPEG");
      const jpeg = await Deno.readFile(victim);
      await Deno.writeFile(victim, jpeg.subarray(0, jpeg.length >> 1));
      r = await task("prepare", "--dataset", "imagenet", "--data-dir", broken);
      assertStrictEquals(r.code, 0, r.stderr + r.stdout);
      assert(r.stdout.includes("kaggle layout"), r.stdout);
      assert(/warning: does not decode: .*ILSVRC2012_val_00000005\.JPEG/.test(r.stdout), r.stdout);

      const out = join(tmp, "run");
      r = await task(
        "train",
        ...["--dataset", "imagenet", "--data-dir", dir, "--image-size", "64", "--width", "4", "--epochs", "1"],
        ...["--batch-size", "4", "--val-split", "4", "--schedule", "constant", "--workers", "1", "--out", out],
      );
      assertStrictEquals(r.code, 0, r.stderr + r.stdout);
      const config = JSON.parse(await Deno.readTextFile(join(out, "config.json")));
      assertEquals(
        [config.dataset, config.recipe, config.stem, config.transforms, config.imageSize],
        ["imagenet", "classic", "imagenet", "imagenet", 64],
      );
      const checkpoint = join(out, "last.safetensors");
      const meta = decodeSafetensors(await Deno.readFile(checkpoint), checkpoint).metadata;
      assertEquals(JSON.parse(meta.class_names), NAMES, "the checkpoint records the devkit's class names");

      r = await task("eval", "--checkpoint", checkpoint, "--split", "val", "--json");
      assertStrictEquals(r.code, 0, r.stderr + r.stdout);
      let report = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      assertEquals([report.dataset, report.split, report.numImages], ["imagenet", "val", 4]);
      // The test split is the official validation set; here read from Kaggle's layout of the same images.
      const kaggle = await makeMiniImageNet(join(tmp, "kaggle"), "kaggle");
      r = await task("eval", "--checkpoint", checkpoint, "--data-dir", kaggle, "--json");
      assertStrictEquals(r.code, 0, r.stderr + r.stdout);
      assert(!r.stderr.includes("warning"), `the same classes under another layout: ${r.stderr}`);
      report = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
      assertEquals([report.split, report.numImages], ["test", VAL_LABELS.length]);
      assertEquals(report.perClass.map((c: { name: string }) => c.name), NAMES);
      assertEquals(report.perClass.map((c: { count: number }) => c.count), [2, 2, 2, 2]);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test("deno task prepare --dataset imagenet: more undecodable images than a run skips is exit 1", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "imagenet-prepare-" });
  try {
    const dir = await makeMiniImageNet(join(tmp, "broken"), "folders");
    // All 20 images cut in half: more than the max(10, 0.1 %) a training run tolerates.
    for (const split of ["train", "val"]) {
      for (const c of MINI_CLASSES) {
        for await (const f of Deno.readDir(join(dir, split, c.wnid))) {
          const path = join(dir, split, c.wnid, f.name);
          const bytes = await Deno.readFile(path);
          await Deno.writeFile(path, bytes.subarray(0, bytes.length >> 1));
        }
      }
    }
    const lines: string[] = [];
    const io = { log: (l: string) => lines.push(l), error: (l: string) => lines.push(l) };
    assertStrictEquals(await runPrepare(["--dataset", "imagenet", "--data-dir", dir], io), 1);
    assertStrictEquals(lines.filter((l) => l.includes("warning: does not decode")).length, 20, lines.join("\n"));
    assert(
      lines.at(-1)!.startsWith("error: 20 images do not decode, more than a run skips by default (10)"),
      lines.at(-1),
    );
    assertStrictEquals(await runPrepare(["--dataset", "cifar10", "--skip-decode-check"], io), 2);
    assert(lines.at(-1)!.includes("--skip-decode-check applies to --dataset imagenet only"), lines.at(-1));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
