import { assert, assertEquals, assertStrictEquals, rejects } from "../assert.ts";
import { tar } from "../run_tar.ts";
import { join } from "node:path";
import { indexTar, readRange } from "../../data/tar_index.ts";
import { indexFolderDataset } from "../../data/folder_dataset.ts";

/** A tree with a name longer than ustar's 100 bytes, an empty file and sizes that are and are not multiples of 512. */
async function makeTree(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>([
    ["tree/train/cat/a.jpg", new Uint8Array(700).map((_, i) => i % 251)],
    ["tree/train/cat/empty.jpg", new Uint8Array(0)],
    [`tree/train/${"long_class_name_".repeat(8)}/b.jpg`, new Uint8Array(1024).fill(7)],
    ["tree/val/cat/c.jpg", new Uint8Array(1).fill(9)],
  ]);
  for (const [name, bytes] of files) {
    await Deno.mkdir(join(dir, name, ".."), { recursive: true });
    await Deno.writeFile(join(dir, name), bytes);
  }
  return files;
}

for (const format of ["gnu", "pax", "ustar"]) {
  Deno.test(`indexTar (${format} format): every file's name, offset and size, read in place byte for byte`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const files = await makeTree(dir);
      if (format === "ustar") files.delete([...files.keys()][2]); // ustar cannot hold a 140-byte folder name
      const path = join(dir, "t.tar");
      await tar([`--format=${format}`, "-cf", path, "-C", dir, ...files.keys()]);
      const members = await indexTar(path);
      assertEquals(members.map((m) => m.name).sort(), [...files.keys()].sort());
      for (const m of members) {
        assertStrictEquals(m.offset % 512, 0, `${m.name} data starts on a block`);
        assertEquals(await readRange(path, m.offset, m.size), files.get(m.name), m.name);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("indexTar names the archive and the place of a corrupt header or a member cut short", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await makeTree(dir);
    const path = join(dir, "t.tar");
    await tar(["--format=gnu", "-cf", path, "-C", dir, ...files.keys()]);
    const bytes = await Deno.readFile(path);
    const members = await indexTar(path);
    const a = members.find((m) => m.name.endsWith("a.jpg"))!;
    await Deno.writeFile(join(dir, "cut.tar"), bytes.subarray(0, a.offset + 100));
    await rejects(indexTar(join(dir, "cut.tar")), /cut\.tar: tree\/train\/cat\/a\.jpg is cut short: its 700 bytes/);
    const broken = bytes.slice();
    broken.fill(0x41, a.offset + 1024, a.offset + 1024 + 512); // the header after a.jpg's two data blocks
    await Deno.writeFile(join(dir, "broken.tar"), broken);
    await rejects(
      indexTar(join(dir, "broken.tar")),
      new RegExp(`broken\\.tar: invalid tar header at byte ${a.offset + 1024}`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("indexTar reads a tar stored inside another (ImageNet's per-class tars): absolute offsets, its own end", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await makeTree(dir);
    const inner = join(dir, "inner.tar");
    await tar(["--format=gnu", "-cf", inner, "-C", dir, ...files.keys()]);
    const innerBytes = await Deno.readFile(inner);
    // The inner tar at byte 4096 of a larger file, followed by bytes that are not part of it.
    const outer = new Uint8Array(4096 + innerBytes.length + 2048).fill(0x55);
    outer.set(innerBytes, 4096);
    const path = join(dir, "outer.bin");
    await Deno.writeFile(path, outer);
    const range = { start: 4096, size: innerBytes.length, name: "member inner.tar" };
    const members = await indexTar(path, range);
    assertEquals(members.map((m) => m.name), [...files.keys()]);
    for (const m of members) {
      assertEquals(await readRange(path, m.offset, m.size), files.get(m.name), `${m.name} at its absolute offset`);
    }
    // A member running past the inner tar's end (its range cut short) names both archives.
    const a = members.find((m) => m.name.endsWith("a.jpg"))!;
    await rejects(
      indexTar(path, { ...range, size: a.offset - 4096 + 100 }),
      /outer\.bin: member inner\.tar: tree\/train\/cat\/a\.jpg is cut short: its 700 bytes from byte \d+ run past the end \(byte \d+\)/,
    );
    await rejects(
      indexTar(path, { ...range, size: outer.length }),
      /outer\.bin: member inner\.tar is cut short: its \d+ bytes from byte 4096 run past the end/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("folder datasets read .tar images in place and keep .tar.gz images in memory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = await makeTree(dir);
    await tar(["-cf", join(dir, "t.tar"), "-C", dir, ...files.keys()]);
    await tar(["-czf", join(dir, "t.tar.gz"), "-C", dir, ...files.keys()]);
    const plain = await indexFolderDataset(join(dir, "t.tar"));
    const gz = await indexFolderDataset(join(dir, "t.tar.gz"));
    assert(plain.train.tar && !plain.train.blob, "a .tar is read in place");
    assert(gz.train.blob && !gz.train.tar, "a .tar.gz is held in memory");
    assertEquals(plain.classNames, gz.classNames);
    assertEquals(plain.train.names.map((n) => n.split(":")[1]), gz.train.names.map((n) => n.split(":")[1]));
    assertEquals([...plain.train.tar!.sizes], [700, 0, 1024], "cat/a.jpg, cat/empty.jpg, then the long class");
    // A split spread over a .tar and a .tar.gz is held in memory, with the same bytes.
    const both = join(dir, "both");
    await Deno.mkdir(both);
    const names = [...files.keys()];
    await tar(["-cf", join(both, "a.tar"), "-C", dir, names[0]]);
    await tar(["-czf", join(both, "b.tar.gz"), "-C", dir, ...names.slice(1)]);
    const mixed = await indexFolderDataset(both);
    assert(mixed.train.blob && !mixed.train.tar, "a mixed split is held in memory");
    assertEquals(mixed.train.blob.offsets[1], 700, "a.jpg's 700 bytes first");
    // Held in memory up to a limit: past it, a message says to extract or decompress, before or while reading.
    const advice = /t\.tar\.gz: its images \(\d+ bytes or more\) exceed the \d+ bytes .*extract it .*or decompress it/;
    await rejects(indexFolderDataset(join(dir, "t.tar.gz"), { maxInMemoryBytes: 100 }), advice);
    const compressed = (await Deno.stat(join(dir, "t.tar.gz"))).size;
    await rejects(indexFolderDataset(join(dir, "t.tar.gz"), { maxInMemoryBytes: compressed + 1 }), advice);
    await indexFolderDataset(join(dir, "t.tar"), { maxInMemoryBytes: 100 }); // a .tar is read in place: no limit
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
