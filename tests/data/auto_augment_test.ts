/**
 * The automatic augmentation policies: magnitude tables, sub-policies and the random draws of TrivialAugmentWide,
 * RandAugment and AutoAugment. The tables are also compared with torchvision's own where torch is installed.
 */
import { join } from "node:path";
import { assert, assertEquals, assertStrictEquals, throws } from "../assert.ts";
import { AUGMENT_OPS, type AugmentOp } from "../../data/augment_ops.ts";
import {
  augmentationSpace,
  AUTO_AUGMENT_BINS,
  AUTO_AUGMENT_SUBPOLICIES,
  autoAugmentSampler,
  MAGNITUDE_BINS,
  type SpaceKind,
  torchLinspace,
} from "../../data/auto_augment.ts";
import { keyedRandom } from "../../data/random.ts";
import { TORCH_PYTHON } from "../torch_python.ts";
import { scripted } from "../scripted_random.ts";

const SCRIPT = new URL("../fixtures/torchvision_augment.py", import.meta.url).pathname;

Deno.test("torchLinspace reproduces torch.linspace's float32 values, vector blocks included", () => {
  // Printed by torch 1.13 (CPU, AVX2): index 13 lies in the second 8-lane block (base 8·step + fround(5·step)),
  // one ulp below the scalar formula's 13.866667747...; 16 must be exact, or TranslateX 16 truncates to 15.
  const t = torchLinspace(0, 32, 31);
  assertStrictEquals(t[13], 13.866666793823242);
  assertStrictEquals(t[14], 14.933334350585938);
  assertStrictEquals(t[15], 16);
  const r = torchLinspace(0, (150 / 331) * 32, 31);
  assertEquals([r[9], r[13], r[14]], [4.3504533767700195, 6.283987998962402, 6.767371654510498]);
  // Solarize thresholds: halves and integers from 255 down to 0, exactly.
  assertEquals([...torchLinspace(255, 0, 31)], Array.from({ length: 31 }, (_, i) => 255 - 8.5 * i));
  assertEquals([...torchLinspace(3, 9, 1)], [3]);
  assertEquals([...torchLinspace(3, 9, 0)], []);
});

Deno.test("augmentation spaces: torchvision's operations, order, signs and posterize bits", () => {
  const names = (kind: SpaceKind) => augmentationSpace(kind, 31, 32, 32).map((e) => e.op);
  const ta: AugmentOp[] = AUGMENT_OPS.filter((op) => op !== "Invert");
  assertEquals(names("ta_wide"), ta);
  assertEquals(names("ra"), ta);
  assertEquals(names("aa"), [...ta.slice(1), "Invert"]);
  const ta31 = new Map(augmentationSpace("ta_wide", 31, 32, 32).map((e) => [e.op, e]));
  assertEquals([...ta31.get("Posterize")!.magnitudes], [
    ...[8, 8, 8, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 2, 2, 2],
  ]);
  assertEquals(ta31.get("Rotate")!.magnitudes.at(-1), 135);
  assertEquals([ta31.get("Identity")!.magnitudes.length, ta31.get("Identity")!.signed], [0, false]);
  assertEquals([ta31.get("Solarize")!.signed, ta31.get("Brightness")!.signed], [false, true]);
  const aa = new Map(augmentationSpace("aa", 10, 40, 24).map((e) => [e.op, e]));
  assertEquals([...aa.get("Posterize")!.magnitudes], [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]);
  // RandAugment and AutoAugment translate by up to 150/331 of the width (X) and the height (Y).
  assertEquals(aa.get("TranslateX")!.magnitudes.at(-1), Math.fround((150 / 331) * 24));
  assertEquals(aa.get("TranslateY")!.magnitudes.at(-1), Math.fround((150 / 331) * 40));
});

Deno.test("TrivialAugmentWide draws one operation, one of 31 bins and a sign", () => {
  const sample = autoAugmentSampler({ policy: "ta_wide" }, 32, 32);
  const space = augmentationSpace("ta_wide", 31, 32, 32);
  // op index ⌊0.45·14⌋ = 6 (Brightness), bin ⌊0.5·31⌋ = 15, sign: u < 0.5 negates.
  assertEquals(sample(scripted(0.45, 0.5, 0.2)), [{ op: "Brightness", magnitude: -space[6].magnitudes[15] }]);
  assertEquals(sample(scripted(0.45, 0.999, 0.7)), [{ op: "Brightness", magnitude: Math.fround(0.99) }]);
  // Unsigned operations draw no sign; operations without magnitudes draw no bin.
  assertEquals(sample(scripted(11 / 14, 0)), [{ op: "Solarize", magnitude: 255 }]);
  assertEquals(sample(scripted(0)), [{ op: "Identity", magnitude: 0 }]);
  // Over many keyed streams: every operation, every bin of a signed one, both signs.
  const ops = new Set<string>(), shear = new Set<number>();
  for (let i = 0; i < 20000; i++) {
    const [step] = sample(keyedRandom(5, i));
    ops.add(step.op);
    if (step.op === "ShearX") shear.add(step.magnitude);
  }
  assertEquals(ops.size, 14);
  assertEquals(shear.size, 61, "31 bins, both signs, one zero");
});

Deno.test("RandAugment applies N operations at bin M, Identity among the choices", () => {
  const sample = autoAugmentSampler({ policy: "ra", raNumOps: 3, raMagnitude: 30 }, 32, 32);
  const steps = sample(scripted(5 / 14, 0.9, 0, 0.99, 0.3));
  // Rotate at the last bin (30°, positive), Identity, Equalize (13/14 ≤ 0.99·14 < 14).
  assertEquals(steps, [{ op: "Rotate", magnitude: 30 }, { op: "Identity", magnitude: 0 }, {
    op: "Equalize",
    magnitude: 0,
  }]);
  const defaults = autoAugmentSampler({ policy: "ra" }, 32, 32)(keyedRandom(1));
  assertEquals(defaults.length, 2, "torchvision's num_ops default");
  const ra = new Map(augmentationSpace("ra", 31, 32, 32).map((e) => [e.op, e]));
  const nine = autoAugmentSampler({ policy: "ra", raNumOps: 1 }, 32, 32)(scripted(1 / 14, 0.9));
  assertEquals(nine, [{ op: "ShearX", magnitude: ra.get("ShearX")!.magnitudes[9] }], "default magnitude bin 9");
  throws(
    () => autoAugmentSampler({ policy: "ra", raMagnitude: 31 }, 32, 32),
    /raMagnitude must be an integer in \[0, 30\]/,
  );
  throws(() => autoAugmentSampler({ policy: "ra", raNumOps: -1 }, 32, 32), /raNumOps must be an integer >= 0/);
});

Deno.test("AutoAugment picks a sub-policy, then applies each operation with its probability (u <= p)", () => {
  const sample = autoAugmentSampler({ policy: "cifar10" }, 32, 32);
  const aa = new Map(augmentationSpace("aa", 10, 32, 32).map((e) => [e.op, e]));
  // Sub-policy 1: (Rotate, 0.7, 2), (TranslateX, 0.3, 9). Draws: policy, p0, p1, sign0, sign1 (u < 0.5 negates).
  assertEquals(sample(scripted(1.5 / 25, 0.7, 0.3, 0.6, 0.1)), [
    { op: "Rotate", magnitude: aa.get("Rotate")!.magnitudes[2] },
    { op: "TranslateX", magnitude: -aa.get("TranslateX")!.magnitudes[9] },
  ]);
  assertEquals(sample(scripted(1.5 / 25, 0.71, 0.31, 0.6, 0.1)), [], "both above their probabilities");
  // ImageNet sub-policy 12 is (Equalize, 0.0), (Equalize, 0.8): the first never applies unless u is exactly 0.
  const imagenet = autoAugmentSampler({ policy: "imagenet" }, 224, 224);
  assertEquals(imagenet(scripted(12.5 / 25, 0.01, 0.5, 0.9, 0.9)), [{ op: "Equalize", magnitude: 0 }]);
  assertEquals(autoAugmentSampler({ policy: "none" }, 32, 32)(scripted()), []);
  // Every sub-policy is reachable, and every operation in the tables is an operation we implement.
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) seen.add(Math.floor(keyedRandom(3, i)() * 25));
  assertEquals(seen.size, 25);
  for (const table of Object.values(AUTO_AUGMENT_SUBPOLICIES)) {
    assertEquals(table.length, 25);
    for (const pair of table) for (const [op] of pair) assert(AUGMENT_OPS.includes(op), op);
  }
});

Deno.test({
  name: "magnitude tables, operation order and sub-policies equal torchvision's",
  ignore: TORCH_PYTHON === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "auto_augment_" });
    try {
      const spaces: { kind: SpaceKind; bins: number; height: number; width: number }[] = [];
      for (const [height, width] of [[32, 32], [224, 224], [37, 53], [176, 176], [8, 300]]) {
        spaces.push({ kind: "ta_wide", bins: MAGNITUDE_BINS, height, width });
        spaces.push({ kind: "ra", bins: MAGNITUDE_BINS, height, width });
        spaces.push({ kind: "aa", bins: AUTO_AUGMENT_BINS, height, width });
        spaces.push({ kind: "ra", bins: 17, height, width }); // other bin counts: other vector blocks
      }
      await Deno.writeTextFile(join(dir, "request.json"), JSON.stringify({ images: [], spaces }));
      const result = await new Deno.Command(TORCH_PYTHON!, { args: [SCRIPT, dir] }).output();
      assert(result.success, new TextDecoder().decode(result.stderr));
      const tables = JSON.parse(await Deno.readTextFile(join(dir, "tables.json")));
      spaces.forEach((s, k) => {
        const ours = augmentationSpace(s.kind, s.bins, s.height, s.width).map((e) => [
          e.op,
          [...e.magnitudes],
          e.signed,
        ]);
        assertEquals(ours, tables.spaces[k], `${s.kind} ${s.bins} bins, ${s.height}x${s.width}`);
      });
      assertEquals(tables.policies, JSON.parse(JSON.stringify(AUTO_AUGMENT_SUBPOLICIES)));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
