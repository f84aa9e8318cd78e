import { assert, assertEquals } from "../assert.ts";
import { batchMixFor, sampleBatchMix, sampleBeta } from "../../data/batch_mix.ts";
import { keyedRandom } from "../../data/random.ts";

Deno.test("sampleBeta: Beta(α, α) has mean 1/2 and variance 1 / (4 (2α + 1)), for α below and above 1", () => {
  for (const alpha of [0.2, 1, 4]) {
    const random = keyedRandom(5, alpha * 10);
    const xs = Array.from({ length: 20000 }, () => sampleBeta(random, alpha));
    assert(xs.every((x) => x >= 0 && x <= 1), `α ${alpha}: in [0, 1]`);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    const want = 1 / (4 * (2 * alpha + 1));
    assert(Math.abs(mean - 0.5) < 0.01, `α ${alpha}: mean ${mean}`);
    assert(Math.abs(variance / want - 1) < 0.05, `α ${alpha}: variance ${variance}, expected ${want}`);
  }
});

Deno.test("sampleBatchMix: off, one kind, or each of the two for about half the batches; boxes inside, λ their area", () => {
  const random = keyedRandom(1);
  assertEquals(sampleBatchMix(random, { mixupAlpha: 0, cutmixAlpha: 0 }, 32, 32), null);
  assertEquals(sampleBatchMix(random, { mixupAlpha: 0.2, cutmixAlpha: 0 }, 32, 32)?.kind, "mixup");
  assertEquals(sampleBatchMix(random, { mixupAlpha: 0, cutmixAlpha: 1 }, 32, 32)?.kind, "cutmix");
  let cutmix = 0;
  for (let b = 0; b < 2000; b++) {
    const mix = batchMixFor(3, 0, b, { mixupAlpha: 0.2, cutmixAlpha: 1 }, 24, 40)!;
    if (mix.kind === "mixup") {
      assertEquals(mix.box, null);
      continue;
    }
    cutmix++;
    const { x1, y1, x2, y2 } = mix.box!;
    assert(0 <= x1 && x1 <= x2 && x2 <= 40 && 0 <= y1 && y1 <= y2 && y2 <= 24, JSON.stringify(mix.box));
    assertEquals(mix.lambda, 1 - (x2 - x1) * (y2 - y1) / (24 * 40));
  }
  assert(Math.abs(cutmix / 2000 - 0.5) < 0.04, `cutmix chosen for ${cutmix} of 2000 batches`);
});

Deno.test("batchMixFor: a function of (seed, epoch, batch), so a resumed run mixes its batches alike", () => {
  const options = { mixupAlpha: 0.2, cutmixAlpha: 1 };
  assertEquals(batchMixFor(7, 2, 5, options, 32, 32), batchMixFor(7, 2, 5, options, 32, 32));
  const others = [batchMixFor(8, 2, 5, options, 32, 32), batchMixFor(7, 3, 5, options, 32, 32)];
  others.push(batchMixFor(7, 2, 6, options, 32, 32));
  for (const o of others) assert(o!.lambda !== batchMixFor(7, 2, 5, options, 32, 32)!.lambda, "another key, another λ");
});
