import { assert, assertEquals, throws } from "../assert.ts";
import { ARCHITECTURES, resnetSpec } from "../../models/resnet_spec.ts";
import { resnetPlan } from "../../models/resnet_plan.ts";
import { convOutputSize, InputTooSmallError, resnetSummary } from "../../models/resnet_summary.ts";
import { stateLayout } from "../../models/state_layout.ts";

// ../shared/reference.md, "Model arithmetic": [params, G MACs] for (imagenet, 1000, 224), (cifar, 10, 32),
// (cifar, 100, 32).
const REFERENCE: Record<string, [number, number][]> = {
  resnet18: [[11_689_512, 1.8141], [11_173_962, 0.5554], [11_220_132, 0.5555]],
  resnet34: [[21_797_672, 3.6638], [21_282_122, 1.1594], [21_328_292, 1.1594]],
  resnet50: [[25_557_032, 4.0892], [23_520_842, 1.2978], [23_705_252, 1.2980]],
  resnet101: [[44_549_160, 7.8014], [42_512_970, 2.5100], [42_697_380, 2.5102]],
  resnet152: [[60_192_808, 11.5136], [58_156_618, 3.7221], [58_341_028, 3.7223]],
};
const SETTINGS = [["imagenet", 1000, 224], ["cifar", 10, 32], ["cifar", 100, 32]] as const;

Deno.test("totals of every architecture and stem equal the reference table", () => {
  for (const [arch, expected] of Object.entries(REFERENCE)) {
    SETTINGS.forEach(([stem, numClasses, size], i) => {
      const { totals } = resnetSummary(resnetPlan(resnetSpec(arch, { stem, numClasses })), size, size);
      assertEquals(totals.params, expected[i][0], `${arch} ${stem} ${numClasses} params`);
      assertEquals(Number((totals.macs / 1e9).toFixed(4)), expected[i][1], `${arch} ${stem} ${numClasses} MACs`);
    });
  }
});

Deno.test("parameter count equals the trainable entries of the state layout", () => {
  for (const arch of Object.keys(ARCHITECTURES)) {
    const plan = resnetPlan(resnetSpec(arch, { width: 8, numClasses: 7 }));
    const fromLayout = stateLayout(plan).filter((e) => e.trainable).reduce(
      (a, e) => a + e.shape.reduce((x, y) => x * y, 1),
      0,
    );
    assertEquals(resnetSummary(plan, 64, 64).totals.params, fromLayout, arch);
  }
});

const stageShapes = (arch: string, stem: "imagenet" | "cifar", numClasses: number, size: number) =>
  Object.fromEntries(
    resnetSummary(resnetPlan(resnetSpec(arch, { stem, numClasses })), size, size).layers
      .filter((r) => r.depth === 0 && r.kind !== "bn" && r.kind !== "relu")
      .map((r) => [r.name, r.outputShape]),
  );

Deno.test("stage outputs of ResNet-50 at 224 and ResNet-18 CIFAR match the reference", () => {
  assertEquals(stageShapes("resnet50", "imagenet", 1000, 224), {
    conv1: [64, 112, 112],
    maxpool: [64, 56, 56],
    layer1: [256, 56, 56],
    layer2: [512, 28, 28],
    layer3: [1024, 14, 14],
    layer4: [2048, 7, 7],
    avgpool: [2048],
    fc: [1000],
  });
  assertEquals(stageShapes("resnet18", "cifar", 10, 32), {
    conv1: [64, 32, 32],
    layer1: [64, 32, 32],
    layer2: [128, 16, 16],
    layer3: [256, 8, 8],
    layer4: [512, 4, 4],
    avgpool: [512],
    fc: [10],
  });
});

Deno.test("stage and block rows sum the rows inside them", () => {
  const s = resnetSummary(resnetPlan(resnetSpec("resnet34")), 224, 224);
  const top = s.layers.filter((r) => r.depth === 0);
  assertEquals(top.reduce((a, r) => a + r.params, 0), s.totals.params);
  assertEquals(top.reduce((a, r) => a + r.macs, 0), s.totals.macs);
  const layer3 = s.layers.find((r) => r.name === "layer3")!;
  const blocks = s.layers.filter((r) => r.kind === "block" && r.name.startsWith("layer3."));
  assertEquals(blocks.length, 6);
  assertEquals(blocks.reduce((a, r) => a + r.macs, 0), layer3.macs);
});

Deno.test("downsampling sits in the first block of layer2-4, on the 3x3 conv, with a 1x1/2 projection", () => {
  for (const arch of ["resnet18", "resnet50"]) {
    const plan = resnetPlan(resnetSpec(arch));
    plan.stages.forEach((blocks, s) => {
      blocks.forEach((b, i) => {
        const strided = b.convs.filter((c) => c.stride === 2);
        if (s > 0 && i === 0) {
          assertEquals(strided.map((c) => c.kernel), [3], `${b.name}`);
          assertEquals(b.downsample?.conv.kernel, 1);
          assertEquals(b.downsample?.conv.stride, 2);
        } else {
          assertEquals(strided.length, 0, b.name);
          // Only ResNet-50's layer1.0 needs a projection without a stride (64 → 256 channels).
          assertEquals(b.downsample !== undefined, arch === "resnet50" && b.name === "layer1.0", b.name);
        }
      });
    });
  }
});

Deno.test("convOutputSize agrees with counting window positions", () => {
  for (let size = 0; size <= 20; size++) {
    for (const kernel of [1, 2, 3, 5, 7]) {
      for (const stride of [1, 2, 3]) {
        for (let padding = 0; padding <= Math.floor(kernel / 2); padding++) {
          let count = 0;
          for (let start = -padding; start + kernel <= size + padding; start += stride) count++;
          assertEquals(convOutputSize(size, kernel, stride, padding), count, `${size} ${kernel} ${stride} ${padding}`);
        }
      }
    }
  }
});

Deno.test("an input too small for a layer is rejected naming the layer", () => {
  const plan = resnetPlan(resnetSpec("resnet18"));
  throws(() => resnetSummary(plan, 0, 224), (e: Error) => e instanceof InputTooSmallError && /conv1/.test(e.message));
  // The smallest possible input still reaches the classifier with 1×1 feature maps.
  const tiny = resnetSummary(plan, 1, 1);
  assertEquals(tiny.layers.find((r) => r.name === "layer4")!.outputShape, [512, 1, 1]);
});

Deno.test("state dict keys of resnet18 and resnet50 follow torchvision's order", async () => {
  for (const [arch, params] of [["resnet18", 62], ["resnet50", 161]] as const) {
    const expected = (await Deno.readTextFile(new URL(`../fixtures/${arch}_state_dict_keys.txt`, import.meta.url)))
      .trim().split("\n");
    const layout = stateLayout(resnetPlan(resnetSpec(arch)));
    assertEquals(layout.map((e) => e.name), expected);
    assertEquals(layout.filter((e) => e.trainable).length, params);
    for (const e of layout) {
      if (e.name.endsWith("num_batches_tracked")) assertEquals([e.dtype, e.shape], ["I64", []]);
      else assertEquals(e.dtype, "F32");
    }
    assertEquals(layout.find((e) => e.name === "conv1.weight")!.shape, [64, 3, 7, 7]);
    assertEquals(layout.find((e) => e.name === "fc.weight")!.shape, [1000, arch === "resnet18" ? 512 : 2048]);
  }
});

Deno.test("resnetSpec validates names and options", () => {
  throws(() => resnetSpec("resnet19"), /Unknown architecture "resnet19".*resnet18/);
  throws(() => resnetSpec("resnet18", { width: 0 }), /width/);
  throws(() => resnetSpec("resnet18", { numClasses: 2.5 }), /numClasses/);
  // deno-lint-ignore no-explicit-any
  throws(() => resnetSpec("resnet18", { stem: "tiny" as any }), /stem/);
  const spec = resnetSpec("resnet50", { stem: "cifar", width: 4, numClasses: 100 });
  assertEquals(spec, {
    block: "bottleneck",
    layers: [3, 4, 6, 3],
    stem: "cifar",
    width: 4,
    numClasses: 100,
    zeroInitResidual: false,
  });
  assert(JSON.parse(JSON.stringify(spec)).layers.length === 4);
});
