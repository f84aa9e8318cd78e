import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { decodeNpy, encodeNpy } from "../../io/npy.ts";
import { keyedRandom } from "../../data/random.ts";
import { eraseBox, sampleRandomErasing } from "../../data/random_erasing.ts";
import { TORCH_PYTHON } from "../torch_python.ts";
import { scripted } from "../scripted_random.ts";

const SCRIPT = new URL("../fixtures/torchvision_augment.py", import.meta.url).pathname;

Deno.test("sampleRandomErasing: get_params' geometry from given draws (height is √(area·ratio))", () => {
  // u = 0.1 < p; area 1024·(0.02 + 0.5·0.31) = 179.2; ratio exp(mid of log 0.3..log 3.3) = √0.99;
  // h = round(√(179.2·0.99499)) = round(13.35) = 13, w = round(√(179.2/0.99499)) = round(13.42) = 13; offsets ⌊u·20⌋.
  assertEquals(sampleRandomErasing(scripted(0.1, 0.5, 0.5, 0.25, 0.75), 0.5, 32, 32), {
    top: 5,
    left: 15,
    height: 13,
    width: 13,
  });
  // A tall box: ratio near 3.3 gives h ≈ √(area·3.3), w ≈ √(area/3.3).
  const tall = sampleRandomErasing(scripted(0, 0.5, 0.999, 0, 0), 1, 32, 32)!;
  assertEquals([tall.height, tall.width], [24, 7]);
  // Not drawn (u >= p): no box, and only one draw made.
  assertEquals(sampleRandomErasing(scripted(0.5), 0.5, 32, 32), null);
  assertEquals(sampleRandomErasing(scripted(0.99), 0, 32, 32), null);
  // Ten failed tries (the box never fits: h >= height) leave the image alone.
  const tooBig = Array.from({ length: 10 }, () => [0.999, 0.999]).flat();
  assertEquals(sampleRandomErasing(scripted(0, ...tooBig), 1, 4, 40), null);
});

Deno.test("sampleRandomErasing: boxes stay inside with area and ratio in range; p is the erasing rate", () => {
  let erased = 0;
  for (let i = 0; i < 4000; i++) {
    const box = sampleRandomErasing(keyedRandom(9, i), 0.25, 224, 224);
    if (!box) continue;
    erased++;
    assert(box.top >= 0 && box.left >= 0 && box.top + box.height <= 224 && box.left + box.width <= 224);
    const area = (box.height * box.width) / (224 * 224), ratio = box.height / box.width;
    assert(area > 0.018 && area < 0.34, `area ${area}`);
    assert(ratio > 0.28 && ratio < 3.4, `ratio ${ratio}`);
  }
  assert(Math.abs(erased / 4000 - 0.25) < 0.03, `erased ${erased} of 4000`);
});

Deno.test("eraseBox sets the box, every channel, of one NHWC slot and nothing else", () => {
  const out = new Float32Array(2 * 3 * 4 * 3).fill(1);
  eraseBox(out, 36, 4, { top: 1, left: 2, height: 2, width: 2 });
  const slot = (n: number) =>
    Array.from({ length: 3 }, (_, y) => Array.from({ length: 4 }, (_, x) => out[n * 36 + (y * 4 + x) * 3 + 2]));
  assertEquals(slot(0), [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]);
  assertEquals(slot(1), [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]]);
  eraseBox(out, 0, 4, { top: 0, left: 0, height: 1, width: 1 }, -7);
  assertEquals([...out.subarray(0, 4)], [-7, -7, -7, 1]);
});

Deno.test({
  name: "eraseBox equals torchvision's F.erase(img, i, j, h, w, 0) on a normalised tensor",
  ignore: TORCH_PYTHON === null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "random_erasing_" });
    try {
      const random = keyedRandom(4);
      const img = new Float32Array(20 * 28 * 3).map(() => random() * 4 - 2);
      await Deno.writeFile(join(dir, "x.npy"), encodeNpy(img, [20, 28, 3]));
      const boxes = [[3, 5, 7, 11], [0, 0, 20, 1], [19, 27, 1, 1]];
      const erase = boxes.map((box) => ({ file: "x.npy", box }));
      await Deno.writeTextFile(join(dir, "request.json"), JSON.stringify({ images: [], erase }));
      const result = await new Deno.Command(TORCH_PYTHON!, { args: [SCRIPT, dir] }).output();
      assert(result.success, new TextDecoder().decode(result.stderr));
      for (const [k, [top, left, height, width]] of boxes.entries()) {
        const ours = img.slice();
        eraseBox(ours, 0, 28, { top, left, height, width });
        const theirs = decodeNpy(await Deno.readFile(join(dir, `erase_${k}.npy`))).data;
        assertEquals(ours, theirs, `box ${boxes[k]}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
