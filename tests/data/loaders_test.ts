import { assert, assertEquals, assertStrictEquals, rejects } from "../assert.ts";
import { type Batch, type BatchLoader, createLoaders, type DataConfig, type Loaders } from "../../data/loaders.ts";
import { channelStats, generateSynthetic } from "../../data/synthetic.ts";
import { type BatchRunner, PipelineLoader } from "../../data/batch_loader.ts";
import { createBatchMaker } from "../../data/batch_source.ts";
import { batchSlice, epochOrder } from "../../data/batch_plan.ts";

const base: DataConfig = {
  dataset: "synthetic",
  dataDir: "data",
  valSplit: 40,
  seed: 11,
  batchSize: 16,
  workers: 0,
  syntheticTrain: 200,
  syntheticTest: 50,
};

/** An in-memory source of `n` black 32×32 images, unnormalised, for PipelineLoader tests with a stand-in runner. */
function arraySpec(n: number) {
  return {
    kind: "array" as const,
    images: new Uint8Array(n * 3072),
    labels: new Uint8Array(n),
    height: 32,
    width: 32,
    pad: 4,
    norm: { mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] },
    seed: 0,
  };
}

async function collect(loader: BatchLoader, epoch: number, start = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader.batches(epoch, start)) out.push(b);
  return out;
}

async function withLoaders<T>(config: DataConfig, fn: (l: Loaders) => Promise<T>): Promise<T> {
  const l = await createLoaders(config);
  try {
    return await fn(l);
  } finally {
    await Promise.all([l.train.close(), l.val?.close(), l.test.close()]);
  }
}

Deno.test("synthetic: deterministic, balanced, learnable-looking data with its own mean/std", () => {
  const a = generateSynthetic(100, 0, 1);
  assertEquals(a, generateSynthetic(100, 0, 1));
  assert(a.images.join() !== generateSynthetic(100, 0, 2).images.join());
  const counts = new Array(10).fill(0);
  for (const l of a.labels) counts[l]++;
  assertEquals(counts, new Array(10).fill(10));
  // Classes differ in their mean colour far more than images of one class do: a tiny net can separate them.
  const classMean = (c: number) => {
    const s = [0, 0, 0];
    for (let n = c; n < 100; n += 10) for (let i = 0; i < 3072; i++) s[i % 3] += a.images[n * 3072 + i];
    return s.map((v) => v / 10 / 1024);
  };
  const m0 = classMean(0), m5 = classMean(5);
  assert(Math.hypot(m0[0] - m5[0], m0[1] - m5[1], m0[2] - m5[2]) > 20, `${m0} vs ${m5}`);
  const stats = channelStats(a.images);
  for (let c = 0; c < 3; c++) assert(stats.mean[c] > 0.2 && stats.mean[c] < 0.8 && stats.std[c] > 0.05);
});

Deno.test("loaders: sizes, drop_last for train, partial last batch for eval, normalised to about zero mean", async () => {
  await withLoaders(base, async (l) => {
    assertEquals([l.train.numImages, l.val!.numImages, l.test.numImages], [160, 40, 50]);
    assertEquals([l.train.batchesPerEpoch, l.val!.batchesPerEpoch, l.test.batchesPerEpoch], [10, 3, 4]);
    assertEquals([l.numClasses, l.imageSize, l.classNames.length], [10, 32, 10]);
    const test = await collect(l.test, 0);
    assertEquals(test.map((b) => b.size), [16, 16, 16, 2]);
    assertEquals([...test[0].labels.subarray(0, 12)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]); // file order
    const train = await collect(l.train, 0);
    assertEquals(train.map((b) => b.size), new Array(10).fill(16));
    let sum = 0, n = 0;
    for (const b of train) {
      assertEquals([b.images.length, b.labels.length, b.height, b.width], [16 * 3072, 16, 32, 32]);
      for (const v of b.images) sum += v;
      n += b.images.length;
    }
    assert(Math.abs(sum / n) < 0.25, `mean ${sum / n}`);
  });
});

Deno.test("loaders: same seed, same batches; another epoch or seed, other batches; val never overlaps train", async () => {
  const run = (config: DataConfig) => withLoaders(config, async (l) => await collect(l.train, 1));
  const a = await run(base);
  assertEquals(await run(base), a);
  assert((await run({ ...base, seed: 12 }))[0].labels.join() !== a[0].labels.join());
  await withLoaders(base, async (l) => {
    const e0 = await collect(l.train, 0);
    assert(e0[0].images.join() !== a[0].images.join());
    // An image's pixels identify it: no validation image appears in training.
    const key = (b: Batch, i: number) => b.images.subarray(i * 3072 + 1200, i * 3072 + 1210).join();
    const evalOf = async (loader: BatchLoader) =>
      (await collect(loader, 0)).flatMap((b) => [...b.labels].map((_, i) => key(b, i)));
    const val = new Set(await evalOf(l.val!));
    const noAugment = await createLoaders({ ...base, augment: false, batchSize: 1 });
    try {
      const trainKeys = (await collect(noAugment.train, 0)).map((b) => key(b, 0));
      assertStrictEquals(trainKeys.length, 160);
      for (const k of trainKeys) assert(!val.has(k), "a validation image is also in training");
      assertStrictEquals(val.size, 40);
    } finally {
      await Promise.all([noAugment.train.close(), noAugment.val!.close(), noAugment.test.close()]);
    }
  });
});

Deno.test("loaders: resuming at (epoch, batch) continues exactly where an uninterrupted run was", async () => {
  await withLoaders(base, async (l) => {
    const full = await collect(l.train, 3);
    // Stop after batch 4 (as a crash would), then resume at the saved position in a fresh loader.
    const seen: Batch[] = [];
    for await (const b of l.train.batches(3)) {
      seen.push(b);
      if (seen.length === 4) break;
    }
    assertEquals(seen, full.slice(0, 4));
    await withLoaders(base, async (fresh) => {
      assertEquals(await collect(fresh.train, 3, 4), full.slice(4));
      assertEquals(await collect(fresh.train, 3, 10), []);
      await rejects(collect(fresh.train, 3, 11), /startBatch must be an integer in \[0, 10\], received 11/);
    });
  });
});

Deno.test("loaders: background workers give the same batches as inline, with a bounded queue, and close cleanly", async () => {
  const inline = await withLoaders(base, async (l) => [await collect(l.train, 2), await collect(l.test, 0)]);
  const workers = await withLoaders({ ...base, workers: 2, prefetch: 3 }, async (l) => {
    // Breaking out mid-epoch and starting again must not mix batches of the two iterations.
    for await (const _ of l.train.batches(2)) break;
    return [await collect(l.train, 2), await collect(l.test, 0)];
  });
  assertEquals(workers, inline);
});

Deno.test("loaders: per-image augmentations are the same inline and in workers, resume exactly, and spare evaluation", async () => {
  const augmented: DataConfig = { ...base, autoAugment: "ta_wide", randomErase: 0.5 };
  const inline = await withLoaders(augmented, async (l) => ({
    train: await collect(l.train, 2),
    resumed: await collect(l.train, 2, 6),
    val: await collect(l.val!, 0),
    test: await collect(l.test, 0),
  }));
  assertEquals(inline.resumed, inline.train.slice(6));
  const workers = await withLoaders({ ...augmented, workers: 2 }, async (l) => await collect(l.train, 2));
  assertEquals(workers, inline.train);
  const plain = await withLoaders(base, async (l) => ({
    train: await collect(l.train, 2),
    val: await collect(l.val!, 0),
    test: await collect(l.test, 0),
  }));
  assertEquals([inline.val, inline.test], [plain.val, plain.test], "evaluation batches are never augmented");
  assert(inline.train[0].images.join() !== plain.train[0].images.join());
  assertEquals(inline.train.map((b) => [...b.labels]), plain.train.map((b) => [...b.labels]), "the same order");
  for (const autoAugment of ["ra", "imagenet", "cifar10"] as const) {
    const other = await withLoaders({ ...base, autoAugment }, async (l) => await collect(l.train, 2));
    assert(other[0].images.join() !== plain.train[0].images.join(), autoAugment);
  }
});

Deno.test("loaders: repeated augmentation serves each image --ra-reps times in a row, each copy augmented apart", async () => {
  const repeated: DataConfig = { ...base, raReps: 3, autoAugment: "ta_wide", randomErase: 0.5 };
  const pixels = 32 * 32 * 3;
  const got = await withLoaders(repeated, async (l) => ({
    train: await collect(l.train, 1),
    resumed: await collect(l.train, 1, 4),
    val: await collect(l.val!, 0),
    batches: l.train.batchesPerEpoch,
  }));
  const plain = await withLoaders(base, async (l) => ({
    train: await collect(l.train, 1),
    val: await collect(l.val!, 0),
    batches: l.train.batchesPerEpoch,
  }));
  assertEquals(got.batches, plain.batches, "an epoch keeps its length");
  assertEquals(got.resumed, got.train.slice(4), "resume exact");
  assertEquals(got.val, plain.val, "evaluation is not repeated");
  // The first copies follow the epoch's shuffle: the labels of samples 0, 3, 6... are the plain order's 0, 1, 2...
  const labels = got.train.flatMap((b) => [...b.labels]);
  const plainLabels = plain.train.flatMap((b) => [...b.labels]);
  for (let i = 0; i + 2 < labels.length; i += 3) {
    assertEquals([labels[i + 1], labels[i + 2]], [labels[i], labels[i]], `copies of sample ${i / 3}`);
    assertEquals(labels[i], plainLabels[i / 3]);
  }
  // Three copies of one image, three different crops/augmentations; the first copy draws as without repeats.
  const first = got.train[0].images;
  const copy = (k: number) => first.subarray(k * pixels, (k + 1) * pixels).join();
  assert(copy(0) !== copy(1) && copy(1) !== copy(2) && copy(0) !== copy(2), "copies augmented apart");
  const unrepeated = await withLoaders(
    { ...base, autoAugment: "ta_wide", randomErase: 0.5 },
    (l) => collect(l.train, 1),
  );
  assertEquals(copy(0), unrepeated[0].images.subarray(0, pixels).join(), "copy 0 keyed by the sample index alone");
  // In workers, the same batches.
  const workers = await withLoaders({ ...repeated, workers: 2 }, async (l) => await collect(l.train, 1));
  assertEquals(workers, got.train);
});

Deno.test("createLoaders: bad config fields are named with what was expected", async () => {
  await rejects(
    createLoaders({ ...base, batchSize: 0 }),
    /DataConfig\.batchSize: expected an integer >= 1, received 0/,
  );
  await rejects(
    createLoaders({ ...base, valSplit: -2 }),
    /DataConfig\.valSplit: expected an integer >= 0, received -2/,
  );
  await rejects(
    createLoaders({ ...base, dataset: "mnist" as DataConfig["dataset"] }),
    /DataConfig\.dataset: expected cifar10 \| cifar100 \| synthetic \| folder \| imagenet, received "mnist"/,
  );
  await rejects(createLoaders({ ...base, workers: 1.5 }), /DataConfig\.workers: expected an integer >= 0/);
  await rejects(createLoaders({ ...base, valSplit: 200 }), /valSplit must be an integer in \[0, 199\]/);
  await rejects(
    createLoaders({ ...base, transforms: "imagenet" }),
    /DataConfig\.transforms: expected "cifar" \(or nothing\) for dataset synthetic, received "imagenet"/,
  );
  await rejects(
    createLoaders({ ...base, transforms: "big" as DataConfig["transforms"] }),
    /DataConfig\.transforms: expected imagenet \| cifar, received "big"/,
  );
  await rejects(
    createLoaders({ ...base, autoAugment: "svhn" as DataConfig["autoAugment"] }),
    /DataConfig\.autoAugment: expected none \| ta_wide \| ra \| imagenet \| cifar10, received "svhn"/,
  );
  await rejects(
    createLoaders({ ...base, randomErase: 2 }),
    /DataConfig\.randomErase: expected a probability in \[0, 1\], received 2/,
  );
  await rejects(
    createLoaders({ ...base, raMagnitude: 31 }),
    /DataConfig\.raMagnitude: expected an integer in \[0, 30\], received 31/,
  );
  await rejects(
    createLoaders({ ...base, dataset: "folder", dataDir: "x", decoder: "js" }),
    /DataConfig\.decoder: expected "sharp" with transforms "imagenet" .*received "js"/,
  );
});

Deno.test("createLoaders: a batch larger than the training split leaves train empty and evaluation working", async () => {
  // Evaluating with a big batch must not depend on the training split's size (drop_last empties only train).
  const loaders = await createLoaders({ ...base, batchSize: 161 });
  try {
    assertStrictEquals(loaders.train.batchesPerEpoch, 0);
    assertStrictEquals(loaders.val!.batchesPerEpoch, 1);
    let seen = 0;
    for await (const b of loaders.test.batches(0)) seen += b.size;
    assertStrictEquals(seen, loaders.test.numImages);
  } finally {
    await Promise.all([loaders.train, loaders.val, loaders.test].map((l) => l?.close()));
  }
});

Deno.test("PipelineLoader: at most `prefetch` batches are built ahead of a slow consumer", async () => {
  const spec = arraySpec(64);
  const make = createBatchMaker(spec);
  let inFlight = 0, maxInFlight = 0, started = 0;
  const runner: BatchRunner = {
    size: 2,
    async run(job) {
      started++;
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      return make({ ...job, id: 0 });
    },
  };
  const loader = new PipelineLoader({
    spec,
    source: 0,
    indices: Uint32Array.from({ length: 64 }, (_, i) => i),
    batchSize: 4,
    train: true,
    augment: true,
    seed: 0,
    pool: runner,
    prefetch: 3,
  });
  let consumed = 0;
  for await (const _ of loader.batches(0)) {
    consumed++;
    assert(started - consumed <= 3, `${started} started, ${consumed} consumed`);
    await new Promise((r) => setTimeout(r, 5)); // a slow trainer
  }
  assertEquals([consumed, started, maxInFlight], [16, 16, 3]);
  await loader.close();
});

Deno.test("PipelineLoader: a batch none of whose images decode is skipped and keeps its slot in the epoch", async () => {
  const spec = arraySpec(16);
  const make = createBatchMaker(spec);
  // Batch 1 of every epoch fails to decode entirely (as a run of corrupt JPEGs would); the runner numbers its jobs
  // its own way, as the worker pool does, so the index must not come from the result.
  let jobs = 0;
  const runner: BatchRunner = {
    size: 1,
    async run(job) {
      const result = await make({ ...job, id: 1000 + jobs++ });
      if (job.indices[0] !== order1First) return result;
      return { ...result, size: 0, images: new Float32Array(0), labels: new Int32Array(0), failures: [] };
    },
  };
  const indices = Uint32Array.from({ length: 16 }, (_, i) => i);
  const order1First = batchSlice(epochOrder(indices, 0, 0, true), 1, 4)[0];
  const loader = new PipelineLoader({
    spec,
    source: 0,
    indices,
    batchSize: 4,
    train: true,
    augment: false,
    seed: 0,
    pool: runner,
  });
  try {
    assertEquals((await collect(loader, 0)).map((b) => b.index), [0, 2, 3]);
    // Resuming after batch 2 (position 3) continues with batch 3, as the uninterrupted run did.
    assertEquals((await collect(loader, 0, 3)).map((b) => b.index), [3]);
    assertEquals((await collect(loader, 0, 1)).map((b) => b.index), [2, 3]);
  } finally {
    await loader.close();
  }
});

Deno.test("PipelineLoader: a rank of a data-parallel job stops, naming the images, where one process would skip", async () => {
  const spec = arraySpec(16);
  const make = createBatchMaker(spec);
  const runner: BatchRunner = {
    size: 1,
    async run(job) {
      const result = await make({ ...job, id: 0 });
      if (job.indices[0] !== failing) return result;
      const failures = [...job.indices].map((index) => ({ index, name: `img-${index}.jpg`, message: "bad" }));
      return { ...result, size: 0, images: new Float32Array(0), labels: new Int32Array(0), failures };
    },
  };
  const indices = Uint32Array.from({ length: 16 }, (_, i) => i);
  // Rank 1's share of global batch 1 (batch 2 x 2 ranks) fails entirely.
  const failing = batchSlice(epochOrder(indices, 0, 0, true), 1, 4)[1];
  const loader = new PipelineLoader({
    spec,
    source: 0,
    indices,
    batchSize: 2,
    train: true,
    augment: false,
    seed: 0,
    pool: runner,
    shard: { rank: 1, size: 2 },
  });
  try {
    await rejects(
      () => collect(loader, 0),
      new RegExp(
        `^Error: batch 1 of epoch 1: none of the 2 images of rank 1's share decodes \\(img-${failing}\\.jpg, `,
      ),
    );
  } finally {
    await loader.close();
  }
});

for (const raReps of [1, 2]) {
  Deno.test(
    `createLoaders shard: the ranks' batches interleave into the one-process global batch, augmentation and all${
      raReps > 1 ? ", under repeated augmentation (each copy's own draws)" : ""
    }`,
    async () => {
      // 160 training images, global batch 2 x 6 = 12: 13 batches per epoch on each rank, as for one process at batch 12.
      const one = await withLoaders({ ...base, raReps, batchSize: 12 }, (l) => collect(l.train, 1));
      const ranks = await Promise.all(
        [0, 1].map((rank) =>
          withLoaders({ ...base, raReps, batchSize: 6, shard: { rank, size: 2 } }, async (l) => {
            assertEquals(l.train.batchesPerEpoch, 13);
            assertEquals(l.test.batchesPerEpoch, Math.ceil(50 / 6)); // evaluation loaders are whole on every rank
            return await collect(l.train, 1, 2); // resumed at batch 2: the same slots
          })
        ),
      );
      assertEquals(one.length, 13);
      for (const [rank, batches] of ranks.entries()) {
        assertEquals(batches.map((b) => b.index), one.slice(2).map((b) => b.index));
        for (const [i, b] of batches.entries()) {
          const g = one[i + 2];
          const rows = [0, 1, 2, 3, 4, 5].map((j) => 2 * j + rank); // globalBatch[rank::2]
          assertEquals(b.labels, Int32Array.from(rows, (r) => g.labels[r]));
          const px = 32 * 32 * 3;
          const expected = new Float32Array(rows.length * px);
          rows.forEach((r, j) => expected.set(g.images.subarray(r * px, (r + 1) * px), j * px));
          assert(b.images.every((v, k) => v === expected[k]), `rank ${rank} batch ${b.index}: other pixels`);
        }
      }
      await rejects(() => createLoaders({ ...base, shard: { rank: 2, size: 2 } }), /RangeError: shard: .*rank 2 of 2/);
    },
  );
}
