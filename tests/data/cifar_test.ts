import { assert, assertEquals, assertStrictEquals, rejects } from "../assert.ts";
import {
  CIFAR100_LAYOUT,
  CIFAR10_LAYOUT,
  CIFAR_PIXEL_BYTES,
  type CifarLayout,
  readCifar,
} from "../../data/cifar_binary.ts";
import { CIFAR100_NORMALIZATION, CIFAR10_NORMALIZATION, createLoaders } from "../../data/loaders.ts";
import { join } from "node:path";

/** Pixel byte k (0..3071, official planar order) of record i of a file with salt s. */
const pixel = (s: number, i: number, k: number) => (s * 31 + i * 7 + k * 13) & 255;

/** Records in the official layout: label byte(s), then 1,024 R, 1,024 G, 1,024 B. */
function records(layout: CifarLayout, salt: number, count: number): Uint8Array {
  const size = layout.labelBytes + CIFAR_PIXEL_BYTES;
  const out = new Uint8Array(count * size);
  for (let i = 0; i < count; i++) {
    const base = i * size;
    if (layout.labelBytes === 2) out[base] = (i + salt) % 20;
    out[base + layout.labelBytes - 1] = (i * 3 + salt) % layout.numClasses;
    for (let k = 0; k < CIFAR_PIXEL_BYTES; k++) out[base + layout.labelBytes + k] = pixel(salt, i, k);
  }
  return out;
}

/** A small layout with the official names but few records, so the tests stay fast. */
function small(layout: CifarLayout): CifarLayout {
  const n = layout.files.train.length;
  return {
    ...layout,
    files: {
      train: layout.files.train.map((f, i) => ({ name: f.name, records: i === n - 1 ? 2 : 3 })),
      test: layout.files.test.map((f) => ({ name: f.name, records: 4 })),
    },
  };
}

/** Writes every file of `layout` under `dir/<layout.directory>/`; salts are the file's position in train + test. */
async function writeRelease(dir: string, layout: CifarLayout): Promise<string> {
  const root = join(dir, layout.directory);
  await Deno.mkdir(root, { recursive: true });
  const files = [...layout.files.train, ...layout.files.test];
  for (const [salt, f] of files.entries()) await Deno.writeFile(join(root, f.name), records(layout, salt, f.records));
  return root;
}

async function tarGz(dir: string, archive: string, member: string): Promise<void> {
  const { code, stderr } = await new Deno.Command("tar", { args: ["-czf", archive, "-C", dir, member] }).output();
  assertStrictEquals(code, 0, new TextDecoder().decode(stderr));
}

/** Checks every record of both splits byte for byte against the generator (HWC order, labels, coarse labels). */
function assertSplitsMatch(layout: CifarLayout, splits: Awaited<ReturnType<typeof readCifar>>): void {
  for (const key of ["train", "test"] as const) {
    const split = splits[key];
    let n = 0;
    for (const [fileIndex, f] of layout.files[key].entries()) {
      const salt = key === "train" ? fileIndex : layout.files.train.length + fileIndex;
      for (let i = 0; i < f.records; i++, n++) {
        assertStrictEquals(split.labels[n], (i * 3 + salt) % layout.numClasses, `${key} label ${n}`);
        if (layout.labelBytes === 2) assertStrictEquals(split.coarseLabels![n], (i + salt) % 20);
        for (let y = 0; y < 32; y++) {
          for (let x = 0; x < 32; x++) {
            for (let c = 0; c < 3; c++) {
              const got = split.images[n * CIFAR_PIXEL_BYTES + (y * 32 + x) * 3 + c];
              const want = pixel(salt, i, c * 1024 + y * 32 + x);
              if (got !== want) throw new Error(`${key} image ${n} (${y},${x},${c}): ${got} != ${want}`);
            }
          }
        }
      }
    }
    assertStrictEquals(split.count, n);
  }
}

for (const base of [CIFAR10_LAYOUT, CIFAR100_LAYOUT]) {
  const layout = small(base);
  Deno.test(`${base.dataset}: byte-exact pixels (planar file -> HWC) and labels, from the directory and the .tar.gz`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const root = await writeRelease(dir, layout);
      assertSplitsMatch(layout, await readCifar(layout, { kind: "directory", path: root }));
      const archive = join(dir, base.archive);
      await tarGz(dir, archive, base.directory);
      assertSplitsMatch(layout, await readCifar(layout, { kind: "archive", path: archive }));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** Writes a small release, applies `corrupt` to one file, and expects readCifar to reject with `pattern`. */
async function expectCorrupt(
  base: CifarLayout,
  file: string,
  corrupt: (bytes: Uint8Array) => Uint8Array | undefined,
  pattern: RegExp,
): Promise<void> {
  const layout = small(base);
  const dir = await Deno.makeTempDir();
  try {
    const root = await writeRelease(dir, layout);
    const path = join(root, file);
    const changed = corrupt(await Deno.readFile(path));
    if (changed) await Deno.writeFile(path, changed);
    else await Deno.remove(path);
    await rejects(readCifar(layout, { kind: "directory", path: root }), pattern);
    const archive = join(dir, "a.tar.gz");
    await tarGz(dir, archive, base.directory);
    await rejects(readCifar(layout, { kind: "archive", path: archive }), pattern);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cifar10: a truncated file names the file and the incomplete record", async () => {
  // data_batch_2 has 3 records of 3,073 bytes; cut 1,000 bytes: record 2 keeps 2,073.
  await expectCorrupt(
    CIFAR10_LAYOUT,
    "data_batch_2.bin",
    (b) => b.subarray(0, b.length - 1000),
    /data_batch_2\.bin: 8219 bytes, expected 9219 \(3 records of 3073 bytes\); truncated: record 2 \(0-based\) has only 2073 of 3073 bytes/,
  );
  await expectCorrupt(
    CIFAR10_LAYOUT,
    "test_batch.bin",
    (b) => b.subarray(0, b.length - 3073),
    /test_batch\.bin: .*truncated: record 3 \(0-based\) is missing/,
  );
});

Deno.test("cifar10: a padded file names the file and the last record", async () => {
  await expectCorrupt(
    CIFAR10_LAYOUT,
    "data_batch_1.bin",
    (b) => Uint8Array.from([...b, 0, 0, 0, 0, 0]),
    /data_batch_1\.bin: 9224 bytes, .*padded: 5 extra byte\(s\) after record 2/,
  );
});

Deno.test("cifar10/100: a label byte out of range names the file, record and offset", async () => {
  await expectCorrupt(
    CIFAR10_LAYOUT,
    "data_batch_3.bin",
    (b) => {
      b[3073] = 10; // record 1's label
      return b;
    },
    /data_batch_3\.bin: record 1 \(byte offset 3073\): label 10, expected 0–9/,
  );
  await expectCorrupt(
    CIFAR100_LAYOUT,
    "train.bin",
    (b) => {
      b[3074] = 20; // record 1's coarse label (the small train.bin has 2 records)
      return b;
    },
    /train\.bin: record 1 \(byte offset 3074\): coarse label 20, expected 0–19/,
  );
  await expectCorrupt(
    CIFAR100_LAYOUT,
    "test.bin",
    (b) => {
      b[3 * 3074 + 1] = 100; // record 3's fine label
      return b;
    },
    /test\.bin: record 3 \(byte offset 9223\): fine label 100, expected 0–99/,
  );
});

Deno.test("cifar10: a missing file is named, in the directory and in the archive", async () => {
  await expectCorrupt(CIFAR10_LAYOUT, "data_batch_4.bin", () => undefined, /data_batch_4\.bin.*missing/);
});

Deno.test("createLoaders reads the official full-size CIFAR-10 and CIFAR-100 (coarse) layouts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const layout of [CIFAR10_LAYOUT, CIFAR100_LAYOUT]) {
      await writeRelease(dir, layout);
      const coarse = layout === CIFAR100_LAYOUT;
      const loaders = await createLoaders({
        dataset: layout.dataset,
        dataDir: dir,
        valSplit: 1000,
        seed: 5,
        batchSize: 500,
        workers: 0,
        download: false,
        coarseLabels: coarse,
      });
      try {
        assertStrictEquals(loaders.train.numImages, 49000);
        assertStrictEquals(loaders.val!.numImages, 1000);
        assertStrictEquals(loaders.test.numImages, 10000);
        assertStrictEquals(loaders.numClasses, coarse ? 20 : 10);
        assertStrictEquals(loaders.classNames[0], coarse ? "aquatic_mammals" : "airplane");
        const norm = coarse ? CIFAR100_NORMALIZATION : CIFAR10_NORMALIZATION;
        assertEquals([loaders.mean, loaders.std], [norm.mean, norm.std]);
        // The test loader keeps file order and does not augment: image 0 of the test file (salt = train files).
        const salt = layout.files.train.length;
        const batch = (await loaders.test.batches(0)[Symbol.asyncIterator]().next()).value!;
        assertEquals([batch.size, batch.height, batch.width, batch.images.length], [500, 32, 32, 500 * 3072]);
        assertStrictEquals(batch.labels[7], coarse ? (7 + salt) % 20 : (7 * 3 + salt) % 10);
        for (const [y, x, c] of [[0, 0, 0], [5, 17, 1], [31, 31, 2]]) {
          const want = (pixel(salt, 0, c * 1024 + y * 32 + x) / 255 - norm.mean[c]) / norm.std[c];
          assert(Math.abs(batch.images[(y * 32 + x) * 3 + c] - want) < 1e-5, `(${y},${x},${c})`);
        }
      } finally {
        await Promise.all([loaders.train.close(), loaders.val!.close(), loaders.test.close()]);
      }
      await Deno.remove(join(dir, layout.directory), { recursive: true });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
