import { assert, assertEquals, assertStrictEquals, throws } from "../assert.ts";
import {
  batchCount,
  batchSlice,
  drawKey,
  epochOrder,
  repeatedAugmentationOrder,
  splitTrainVal,
} from "../../data/batch_plan.ts";
import { hashKeys, keyedRandom, permutation } from "../../data/random.ts";
import { ConfigError } from "../../io/config_error.ts";

const range = (n: number) => Uint32Array.from({ length: n }, (_, i) => i);

Deno.test("keyedRandom: same keys, same stream; any key changed, another stream; values in [0, 1)", () => {
  const draw = (...keys: number[]) => {
    const r = keyedRandom(...keys);
    return Array.from({ length: 8 }, () => r());
  };
  assertEquals(draw(1, 2, 3), draw(1, 2, 3));
  const variants = [draw(1, 2, 3), draw(1, 2, 4), draw(1, 3, 3), draw(2, 2, 3), draw(1, 2), draw(1 + 2 ** 32, 2, 3)];
  assertStrictEquals(new Set(variants.map((v) => v.join())).size, variants.length);
  for (const v of variants) for (const x of v) assert(x >= 0 && x < 1);
  throws(() => hashKeys(1.5), /integers, received 1.5/);
});

Deno.test("permutation: a permutation of 0..n-1, and roughly uniform in first position", () => {
  for (const n of [0, 1, 2, 17, 1000]) {
    const p = permutation(n, keyedRandom(n));
    assertEquals([...p].sort((a, b) => a - b), [...range(n)]);
  }
  const firsts = new Array(4).fill(0);
  for (let i = 0; i < 4000; i++) firsts[permutation(4, keyedRandom(9, i))[0]]++;
  for (const f of firsts) assert(f > 850 && f < 1150, `first-position counts ${firsts}`);
});

Deno.test("splitTrainVal: disjoint, complete, sorted, deterministic per seed, different across seeds", () => {
  const a = splitTrainVal(100, 10, 42);
  assertStrictEquals(a.val.length, 10);
  assertStrictEquals(a.train.length, 90);
  assertEquals([...a.train, ...a.val].sort((x, y) => x - y), [...range(100)]);
  assertEquals([...a.val], [...a.val].sort((x, y) => x - y));
  assertEquals(splitTrainVal(100, 10, 42), a);
  assert(splitTrainVal(100, 10, 43).val.join() !== a.val.join());
  assertEquals(splitTrainVal(5, 0, 1), { train: range(5), val: new Uint32Array(0) });
  throws(() => splitTrainVal(10, 10, 1), /valSplit must be an integer in \[0, 9\].*received 10/);
  // A ConfigError on the field, so that a command line names its flag and calls it a usage error.
  throws(
    () => splitTrainVal(300, 500, 1),
    (e: Error) =>
      e instanceof ConfigError && e.field === "valSplit" &&
      e.describe((f) => `--${f}`) === "--valSplit must be an integer in [0, 299] (the training set has 300 images), " +
          "received 500",
  );
  throws(() => splitTrainVal(10, -1, 1), /received -1/);
  // An empty training set (a validation-only download) splits into nothing, and holds nothing out.
  assertEquals(splitTrainVal(0, 0, 1), { train: new Uint32Array(0), val: new Uint32Array(0) });
  throws(() => splitTrainVal(0, 1, 1), /valSplit must be 0 \(the training set has 0 images\), received 1/);
  throws(() => splitTrainVal(10, 1.5, 1), /received 1.5/);
});

Deno.test("batchCount: drop_last floors, keep-last ceils", () => {
  for (let n = 0; n <= 40; n++) {
    for (const b of [1, 3, 8, 40, 41]) {
      assertStrictEquals(batchCount(n, b, true), Math.floor(n / b));
      assertStrictEquals(batchCount(n, b, false), Math.ceil(n / b));
    }
  }
  throws(() => batchCount(10, 0, true), /batchSize must be a positive integer, received 0/);
});

Deno.test("epochOrder: shuffles per (seed, epoch) and keeps order for evaluation; batchSlice cuts it", () => {
  const indices = Uint32Array.from([3, 5, 7, 11, 13, 17, 19]);
  assertStrictEquals(epochOrder(indices, 1, 0, false), indices);
  const e0 = epochOrder(indices, 1, 0, true);
  assertEquals([...e0].sort((a, b) => a - b), [...indices]);
  assertEquals(epochOrder(indices, 1, 0, true), e0);
  const others = [epochOrder(indices, 1, 1, true), epochOrder(indices, 2, 0, true)];
  for (const o of others) assert(o.join() !== e0.join());
  assertEquals([...batchSlice(e0, 0, 3)], [...e0.subarray(0, 3)]);
  assertEquals([...batchSlice(e0, 2, 3)], [e0[6]]);
  assertEquals([...batchSlice(e0, 3, 3)], []);
});

Deno.test("repeatedAugmentationOrder: RASampler's order (each shuffled sample repeated in a row), cut to the epoch", () => {
  const indices = Uint32Array.from({ length: 10 }, (_, i) => 100 + i);
  const shuffled = [...epochOrder(indices, 4, 2, true)];
  const { order, keys } = repeatedAugmentationOrder(indices, 4, 2, 4);
  // torchvision: [e for e in perm for _ in range(reps)], then the first len(dataset) (one process).
  const expected = shuffled.flatMap((e) => [e, e, e, e]).slice(0, 10);
  assertEquals([...order], expected);
  assertEquals([...keys], expected.map((e, i) => drawKey(e, i % 4)));
  assertEquals(drawKey(7, 0), 7, "the first copy draws as without repeats");
  assertEquals(hashKeys(drawKey(7, 2)), hashKeys(7 + 2 * 2 ** 32), "other copies: (index, repeat) as two words");
  assert(hashKeys(drawKey(7, 1)) !== hashKeys(7));
  assertEquals([...repeatedAugmentationOrder(indices, 4, 2, 1).order], shuffled, "1 repeat: the plain order");
  throws(() => repeatedAugmentationOrder(indices, 4, 2, 0), RangeError, "repeats must be a positive integer");
});
