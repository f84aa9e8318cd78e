import { assertEquals, rejects } from "../assert.ts";
import { readCifar10Archive } from "../../data/cifar10_archive.ts";
import { CIFAR10_CLASS_NAMES } from "../../data/class_names.ts";
import { cifar10Archive, fixtureLabel, fixturePixel } from "./cifar10_archive_fixture.ts";
import { tar } from "../run_tar.ts";

Deno.test("cifar10 archive: train is data_batch_1..5 in order, test is test_batch, pixels HWC, names from the meta", async () => {
  const meta = CIFAR10_CLASS_NAMES.map((n) => n.toUpperCase()).join("\n") + "\n";
  const data = await readCifar10Archive(await cifar10Archive({ records: 6, meta }), "tiny.tar.gz");
  assertEquals([data.train.count, data.test.count], [30, 6]);
  assertEquals(data.classNames, CIFAR10_CLASS_NAMES.map((n) => n.toUpperCase()));
  for (const [split, files] of [[data.train, [0, 1, 2, 3, 4]], [data.test, [5]]] as const) {
    files.forEach((f, k) => {
      for (let r = 0; r < 6; r++) {
        const n = k * 6 + r;
        assertEquals(split.labels[n], fixtureLabel(f, r), `label of file ${f} record ${r}`);
        // HWC byte (y, x, c) is planar byte c * 1024 + y * 32 + x.
        for (const [y, x, c] of [[0, 0, 0], [5, 17, 1], [31, 31, 2]]) {
          assertEquals(split.images[n * 3072 + (y * 32 + x) * 3 + c], fixturePixel(f, r, c * 1024 + y * 32 + x));
        }
      }
    });
  }
});

Deno.test("cifar10 archive: GNU tar's headers (as the official archive has) and pax headers read the same", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cifar10_archive_test_" });
  try {
    const { gunzipSync } = await import("node:zlib");
    await Deno.writeFile(`${dir}/a.tar`, gunzipSync(await cifar10Archive({ records: 2 })));
    await tar(["-xf", `${dir}/a.tar`, "-C", dir]);
    for (const format of ["gnu", "pax"]) {
      // Under a ./ prefix, as `tar -C dir .` writes it; the walk drops it.
      await tar(["-czf", `${dir}/${format}.tar.gz`, `--format=${format}`, "-C", dir, "./cifar-10-batches-bin"]);
      const data = await readCifar10Archive(await Deno.readFile(`${dir}/${format}.tar.gz`), `${format}.tar.gz`);
      assertEquals([data.train.count, data.test.count, data.train.labels[2]], [10, 2, fixtureLabel(1, 0)], format);
      assertEquals(data.classNames, CIFAR10_CLASS_NAMES);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cifar10 archive: a file that is not the archive is named, with what was expected", async () => {
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0]);
  await rejects(
    () => readCifar10Archive(png, "cat.png"),
    /^Error: cat\.png: not the CIFAR-10 binary archive.*got bytes 89 50 4e 47/,
  );
  const { gzipSync } = await import("node:zlib");
  await rejects(
    () => readCifar10Archive(new Uint8Array(gzipSync(new Uint8Array(2048).fill(65))), "notes.gz"),
    /notes\.gz: not a tar archive: the header at byte offset 0 .*expected the CIFAR-10 binary archive/,
  );
  await rejects(
    async () => readCifar10Archive(await cifar10Archive({ records: 1, omit: ["test_batch.bin"] }), "part.tar.gz"),
    /part\.tar\.gz: not the CIFAR-10 binary archive .*: cifar-10-batches-bin\/test_batch\.bin missing; it holds 6 file/,
  );
  await rejects(
    async () => readCifar10Archive(await cifar10Archive({ records: 2, truncate: 5 }), "cut.tar.gz"),
    /cut\.tar\.gz:cifar-10-batches-bin\/data_batch_1\.bin: 6141 bytes, .*record 1 \(0-based\) has only 3068 of 3073/,
  );
  await rejects(
    async () => readCifar10Archive(await cifar10Archive({ records: 1, meta: "cat\ndog\n" }), "m.tar.gz"),
    /m\.tar\.gz:cifar-10-batches-bin\/batches\.meta\.txt: 2 class name\(s\), expected 10/,
  );
});
